"""Shared fixtures: a loopback-only guard and the provider emulator."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


_LIVE = os.environ.get("RXSTREAM_LIVE") == "1"  # opt-in live API tests (tests/live) may leave loopback


def _check(address: Any) -> None:
    if _LIVE:
        return
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if not (host.startswith("127.") or host in ("::1", "localhost")):
            raise RuntimeError(f"tests may only connect to loopback, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _no_api_keys(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("live"):
        return
    for name in (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A fresh `rxstream.testing.ProviderEmulator` on 127.0.0.1 (free port)."""
    from rxstream.testing import ProviderEmulator

    with ProviderEmulator() as emu:
        yield emu


@pytest.fixture
def serve_asgi() -> Iterator[Any]:
    """``serve_asgi(app) -> base_url``: run an ASGI app under uvicorn on 127.0.0.1 (free port).

    The socket listens before uvicorn starts, so clients may connect at once (the backlog
    holds them). Every server is stopped and its thread joined at teardown.
    """
    import threading

    import uvicorn

    started: list[tuple[Any, threading.Thread, socket.socket]] = []

    def serve(app: Any) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        started.append((server, thread, sock))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield serve
    for server, thread, sock in started:
        server.should_exit = True
        server.force_exit = True
        thread.join(10)
        sock.close()

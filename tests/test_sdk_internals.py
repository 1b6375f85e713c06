"""Canaries for `rxstream._sdk_internals`: each private third-party attribute rxstream reads.

Every accessor returns None/False on a layout it does not know (the library then degrades:
disposal waits for the response headers). These tests use the installed packages with real
objects and the emulator, so an upgrade that moves one of those attributes fails here.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import pytest
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxstream._sdk_internals import (
    event_stream_operation,
    event_stream_raw,
    httpx_pending_socket,
    scheduler_loop,
    watch_botocore_connections,
)
from rxstream.providers import get_spec
from rxstream.testing import ProviderEmulator, ResponseScript

HEADER = b"x-rxstream-stream-id"
CREATE: dict[str, Any] = {
    "anthropic": lambda client: client.messages.create,
    "openai": lambda client: client.chat.completions.create,
    "openai-responses": lambda client: client.responses.create,
}


def test_scheduler_loop_is_the_constructor_argument() -> None:
    loop = asyncio.new_event_loop()
    try:
        assert scheduler_loop(AsyncIOScheduler(loop)) is loop
    finally:
        loop.close()


def _wait_for_request(emu: ProviderEmulator) -> None:
    deadline = time.monotonic() + 5
    while not emu.connections and time.monotonic() < deadline:
        time.sleep(0.005)
    assert emu.connections, "the request did not arrive"


@pytest.mark.parametrize("provider", ["anthropic", "openai", "openai-responses"])
def test_httpx_pending_socket_finds_a_request_waiting_for_headers(provider: str) -> None:
    spec = get_spec(provider)
    with ProviderEmulator(ResponseScript(text="late", headers_delay=30)) as emu:
        client = emu.client(provider)
        outcome: list[BaseException | None] = []

        def call() -> None:
            params = spec.request("hi", model="m", max_tokens=64)
            params = {**params, "extra_headers": {HEADER.decode(): "rxs_canary"}}
            try:
                CREATE[provider](client)(stream=True, **params)
                outcome.append(None)
            except BaseException as exc:  # the shutdown makes the blocked call fail
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        try:
            _wait_for_request(emu)
            assert httpx_pending_socket(client, HEADER, b"rxs_other") is None
            sock = httpx_pending_socket(client, HEADER, b"rxs_canary")
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            caller.join(5)
            assert not caller.is_alive() and isinstance(outcome[0], Exception)
        finally:
            caller.join(5)
            client.close()


def _boto(emu: ProviderEmulator) -> Any:
    return emu.client("bedrock")


def test_botocore_event_stream_internals() -> None:
    with ProviderEmulator() as emu:
        client = _boto(emu)
        converse = client.converse_stream(
            modelId="m", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )["stream"]
        raw = event_stream_raw(converse)
        assert raw is not None and callable(raw.stream) and callable(raw.shutdown)
        assert hasattr(raw, "connection")
        assert event_stream_operation(converse, "x") == "ConverseStream"
        converse.close()
        invoke = client.invoke_model_with_response_stream(
            modelId="m",
            body=b'{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8, '
            b'"messages": [{"role": "user", "content": "hi"}]}',
        )["body"]
        assert event_stream_raw(invoke) is not None
        assert event_stream_operation(invoke, "x") == "InvokeModelWithResponseStream"
        invoke.close()
        assert event_stream_operation(object(), "fallback") == "fallback"
        client.close()


def test_watch_botocore_connections_reports_each_checkout_once_per_pool() -> None:
    seen: list[Any] = []
    with ProviderEmulator() as emu:
        client = _boto(emu)
        assert watch_botocore_connections(client, seen.append)
        assert watch_botocore_connections(client, lambda conn: None)  # idempotent: first kept
        stream = client.converse_stream(
            modelId="m", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )["stream"]
        for _ in stream:
            pass
        assert len(seen) == 1 and isinstance(seen[0].sock, socket.socket | type(None))
        assert hasattr(seen[0], "sock")
        client.close()
    assert not watch_botocore_connections(object(), seen.append)

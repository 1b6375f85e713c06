"""The public facade: an explicit, sorted __all__ that names only things that exist."""

from __future__ import annotations

import logging
import threading

import anthropic
import pytest

import rxstream
from rxstream import operators
from rxstream.testing import Fault, ProviderEmulator, ResponseScript


@pytest.mark.parametrize("module", [rxstream, operators, rxstream.errors, rxstream.events])
def test_all_is_sorted_and_resolves(module: object) -> None:
    names = list(module.__all__)  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert hasattr(module, name), name


def test_entry_points_have_the_documented_names() -> None:
    for name in (
        "from_anthropic",
        "from_openai",
        "from_openai_responses",
        "from_bedrock",
        "from_bedrock_invoke",
    ):
        assert callable(getattr(rxstream, name))
    assert rxstream.Response().text == ""


def test_py_typed_ships() -> None:
    from importlib.resources import files

    assert files("rxstream").joinpath("py.typed").is_file()


def test_secrets_never_appear_in_events_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-ant-api03-SECRET-VALUE-0123456789"
    caplog.set_level(logging.DEBUG)
    with ProviderEmulator() as emu:
        emu.enqueue(
            ResponseScript(text="a b c", fault=Fault(kind="drop", after_events=4)),
            ResponseScript(fault=Fault(kind="http_error", status=401, message="invalid x-api-key")),
        )
        with anthropic.Anthropic(api_key=secret, base_url=emu.anthropic_base_url, max_retries=0) as client:
            seen: list[str] = []
            for _ in range(2):
                done = threading.Event()
                stream = rxstream.from_anthropic(
                    client, model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
                )

                def on_error(err: Exception, done: threading.Event = done) -> None:
                    partial = getattr(err, "partial", None)
                    seen.append(f"{err!s} {err!r} {partial!r} {err.__dict__!r}")
                    done.set()

                stream.subscribe(
                    lambda e: seen.append(repr(e) + e.model_dump_json()),
                    on_error,
                    done.set,
                )
                assert done.wait(10)
        recorded = [repr(r.body) for r in emu.requests]
    everything = "\n".join(seen + recorded + [r.getMessage() for r in caplog.records])
    assert "invalid x-api-key" in everything  # the provider's message is kept ...
    assert secret not in everything  # ... the key is not

"""Errors never vanish: unhandled ones are logged once; bad parameters are named early."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from reactivex import Observable

import rxstream as rxs
from rxstream.errors import ConfigurationError, InvalidRequestError, ProviderError
from rxstream.events import StreamEvent
from rxstream.providers import PROVIDER_NAMES, get_spec
from rxstream.testing import Fault, ProviderEmulator, ResponseScript

USER = [{"role": "user", "content": "hi"}]
FAILING = ResponseScript(fault=Fault(kind="http_error", status=429, message="slow down"))


@pytest.fixture(scope="module")
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emulator:
        yield emulator


class Records(logging.Handler):
    """Collects `rxstream` log records; `wait` blocks until one arrives (with a deadline)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.arrived = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if record.levelno >= logging.ERROR:
            self.arrived.set()

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("rxstream")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def failing_stream(emu: ProviderEmulator, provider: str, clients: list[Any]) -> Observable[StreamEvent]:
    spec = get_spec(provider)
    client = emu.client(provider)
    clients.append(client)
    emu.enqueue(FAILING)
    return spec.stream(client, spec.request("hi", model="m", max_tokens=64))


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_an_error_without_on_error_is_logged_once(
    emu: ProviderEmulator, records: Records, provider: str
) -> None:
    """Before: reactivex re-raised it on a pool thread and nothing was printed."""
    clients: list[Any] = []
    failing_stream(emu, provider, clients).subscribe(lambda _: None)
    assert records.arrived.wait(20)
    emu.wait_for_disconnect()
    for client in clients:
        client.close()
    (message,) = records.errors()
    assert "ProviderError" in message and "slow down" in message and "on_error" in message
    assert "sk-" not in message and "emulator" not in message.lower().replace("rxstream", "")


def test_an_on_error_that_raises_is_logged_with_both_errors(emu: ProviderEmulator, records: Records) -> None:
    clients: list[Any] = []

    def broken_handler(error: Exception) -> None:
        raise RuntimeError("handler bug")

    failing_stream(emu, "anthropic", clients).subscribe(lambda _: None, broken_handler)
    assert records.arrived.wait(20)
    clients[0].close()
    (message,) = records.errors()
    assert "RuntimeError: handler bug" in message and "on_error" in message


def test_a_handled_error_is_not_logged(emu: ProviderEmulator, records: Records) -> None:
    clients: list[Any] = []
    seen: list[Exception] = []
    done = threading.Event()

    def on_error(error: Exception) -> None:
        seen.append(error)
        done.set()

    failing_stream(emu, "openai", clients).subscribe(lambda _: None, on_error)
    assert done.wait(20)
    clients[0].close()
    assert isinstance(seen[0], ProviderError) and records.errors() == []


@pytest.mark.parametrize(
    ("provider", "typo", "right"),
    [
        ("anthropic", "max_token", "max_tokens"),
        ("openai", "max_completion_token", "max_completion_tokens"),
        ("openai-responses", "max_output_token", "max_output_tokens"),
    ],
)
def test_a_parameter_typo_is_named_when_the_source_is_created(
    emu: ProviderEmulator, provider: str, typo: str, right: str
) -> None:
    """Before: the SDK's raw TypeError reached on_error later, without `.partial`."""
    spec = get_spec(provider)
    params = spec.request("hi", model="m", max_tokens=64)
    params = {**{k: v for k, v in params.items() if k != right}, typo: 64}
    with emu.client(provider) as client:
        for _ in range(2):  # the second time from the cached signature shape
            with pytest.raises(ConfigurationError) as info:
                spec.stream(client, params)
            assert repr(typo) in str(info.value) and repr(right) in str(info.value)


def test_a_missing_required_parameter_is_named(emu: ProviderEmulator) -> None:
    with emu.client("openai") as client, pytest.raises(ConfigurationError, match="'messages'"):
        rxs.from_openai(client, model="m")


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_scheduler_must_be_a_scheduler(emu: ProviderEmulator, provider: str) -> None:
    spec = get_spec(provider)
    client = emu.client(provider)
    try:
        with pytest.raises(ConfigurationError, match="scheduler"):
            spec.entry_point(client, scheduler="pool", **spec.request("hi", model="m"))
    finally:
        client.close()


def test_a_value_the_sdk_cannot_send_is_an_invalid_request_error_with_partial(emu: ProviderEmulator) -> None:
    """Before: a bare TypeError from json reached on_error (no `.partial`, no parameter)."""
    errors: list[Exception] = []
    done = threading.Event()
    with emu.client("anthropic") as client:
        stream = rxs.from_anthropic(
            client, model="m", max_tokens=64, messages=USER, metadata={"user_id": object()}
        )

        def on_error(error: Exception) -> None:
            errors.append(error)
            done.set()

        stream.subscribe(lambda _: None, on_error, done.set)
        assert done.wait(20)
    (error,) = errors
    assert isinstance(error, InvalidRequestError) and isinstance(error, ConfigurationError)
    assert error.parameter == "metadata" and "'metadata'" in str(error)
    assert error.partial.text == "" and isinstance(error.__cause__, TypeError)


async def test_async_clients_get_the_same_invalid_request_error(emu: ProviderEmulator) -> None:
    from rxstream import operators as rso

    client = emu.client("openai", asynchronous=True)
    try:
        stream = rxs.from_openai(client, model="m", messages=USER, metadata={"k": object()})
        with pytest.raises(InvalidRequestError, match="metadata"):
            await stream.pipe(rso.final())
    finally:
        await client.close()

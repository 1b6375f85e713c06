"""Async Bedrock: an aiobotocore ``bedrock-runtime`` client read on the loop, on the emulator.

Runs only where aiobotocore is installed (``rxstream[bedrock-async]``, its own venv in
``.ci/run``: aiobotocore pins an older botocore than ``rxstream[all]``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

aiobotocore_session = pytest.importorskip("aiobotocore.session")

import boto3  # noqa: E402
import botocore.config  # noqa: E402

import rxstream as rxs  # noqa: E402
from rxstream import operators as rso  # noqa: E402
from rxstream.errors import ProviderError, StreamError  # noqa: E402
from rxstream.events import StreamEvent  # noqa: E402
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall  # noqa: E402

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
INVOKE_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
CONFIG = botocore.config.Config(retries={"total_max_attempts": 1})
CREDENTIALS: dict[str, Any] = {
    "region_name": "us-east-1",
    "aws_access_key_id": "AKIDTEST",
    "aws_secret_access_key": "secret",
}
RICH = ResponseScript(
    text="Zürich 🌦️ and Tokyo.",
    thinking="Think first.",
    tool_calls=[
        ScriptedToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Zürich"}', fragment_size=4)
    ],
    stop_reason="tool_use",
    input_tokens=30,
    output_tokens=12,
)


async def aio_client(emu: ProviderEmulator) -> Any:
    session = aiobotocore_session.get_session()
    return session.create_client(
        "bedrock-runtime", endpoint_url=emu.bedrock_endpoint_url, config=CONFIG, **CREDENTIALS
    )


def sync_events(emu: ProviderEmulator, kind: str) -> list[StreamEvent]:
    client = boto3.client(
        "bedrock-runtime", endpoint_url=emu.bedrock_endpoint_url, config=CONFIG, **CREDENTIALS
    )
    stream = (
        rxs.from_bedrock(client, modelId=MODEL, messages=MESSAGES)
        if kind == "converse"
        else rxs.from_bedrock_invoke(client, modelId=MODEL, body=INVOKE_BODY)
    )
    events = list(rxs.to_iterator(stream))
    client.close()
    return events


def async_stream(client: Any, kind: str) -> Any:
    if kind == "converse":
        return rxs.from_bedrock(client, modelId=MODEL, messages=MESSAGES)
    return rxs.from_bedrock_invoke(client, modelId=MODEL, body=INVOKE_BODY)


def comparable(events: list[StreamEvent]) -> list[dict[str, Any]]:
    return [e.model_dump(exclude={"stream_id", "request_id", "response_id"}) for e in events]


@pytest.mark.parametrize("kind", ["converse", "invoke"])
async def test_every_event_type_matches_the_sync_path_without_a_thread(
    emulator: ProviderEmulator, kind: str
) -> None:
    emulator.enqueue(RICH)
    reference = await asyncio.to_thread(sync_events, emulator, kind)
    emulator.enqueue(RICH)
    threads: set[int] = set()
    async with await aio_client(emulator) as client:
        events = []
        async for event in rxs.to_async_iterator(async_stream(client, kind)):
            threads.add(threading.get_ident())
            events.append(event)
    assert threads == {threading.get_ident()}
    assert comparable(events) == comparable(reference)
    types = {e.type for e in events}
    assert {"stream_start", "text_delta", "thinking_delta", "tool_call_start", "tool_call_delta"} <= types
    assert {"tool_call_end", "stream_end"} <= types


@pytest.mark.parametrize("kind", ["converse", "invoke"])
async def test_stall_then_dispose_closes_the_connection(emulator: ProviderEmulator, kind: str) -> None:
    emulator.enqueue(ResponseScript(text="a b c d e f", fault=Fault(kind="stall", after_events=4)))
    async with await aio_client(emulator) as client:
        async for event in rxs.to_async_iterator(async_stream(client, kind)):
            if event.type == "text_delta":
                break
        record = await asyncio.to_thread(emulator.wait_for_disconnect, -1, 1.0)
    assert record.client_disconnected and not record.completed


@pytest.mark.parametrize("kind", ["converse", "invoke"])
async def test_exception_frames_and_http_errors_are_typed(emulator: ProviderEmulator, kind: str) -> None:
    emulator.enqueue(
        ResponseScript(
            text="one two three four",
            fault=Fault(
                kind="error_event", after_events=4, error_type="throttlingException", message="Slow down"
            ),
        ),
        ResponseScript(fault=Fault(kind="http_error", status=429, message="Nope")),
    )
    async with await aio_client(emulator) as client:
        with pytest.raises(ProviderError) as info:
            await async_stream(client, kind).pipe(rso.final())
        assert info.value.in_stream and info.value.error_type == "throttlingException"
        assert info.value.retryable and info.value.partial.text
        with pytest.raises(ProviderError) as before:
            await async_stream(client, kind).pipe(rso.final())
        assert before.value.status_code == 429 and not before.value.in_stream


async def test_final_response(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="Hello from aiobotocore.", output_tokens=5))
    async with await aio_client(emulator) as client:
        response = await async_stream(client, "converse").pipe(rso.final())
    assert response.text == "Hello from aiobotocore." and response.usage.output_tokens == 5
    assert isinstance(response, rxs.Response)
    assert not isinstance(response, StreamError)

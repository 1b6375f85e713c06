"""Anthropic Messages and OpenAI Chat sources, end to end through the official SDKs.

Every test talks HTTP to `rxstream.testing.ProviderEmulator` on 127.0.0.1; nothing of
rxstream is mocked. The SDKs' own accumulators are the reference for the final Response.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
import reactivex
from reactivex import operators as ops

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import ProviderError, StreamDecodeError, StreamError
from rxstream.events import StreamEvent
from rxstream.response import Response
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall
from rxstream.testing.kit import collect

USER_X = [{"role": "user", "content": "x"}]

API_KEY = "sk-secret-test-key-0123456789"

TOOLS_SCRIPT = ResponseScript(
    text="Checking the weather in Zürich — 東京 too 🌦️.",
    thinking="The user wants weather; call both tools.",
    tool_calls=[
        ScriptedToolCall(
            id="toolu_01A",
            name="get_weather",
            arguments='{"city": "Zürich", "unit": "celsius"}',
            fragment_size=5,
        ),
        ScriptedToolCall(id="toolu_01B", name="get_time", arguments='{"tz": "Asia/Tokyo"}', fragment_size=3),
    ],
    stop_reason="tool_use",
    input_tokens=321,
    output_tokens=87,
    cache_read_input_tokens=100,
    cache_creation_input_tokens=20,
    chunking="chars",
    chunk_size=3,
    ping_every=4,
)


_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def anthropic_client(emu: ProviderEmulator) -> anthropic.Anthropic:
    client = anthropic.Anthropic(api_key=API_KEY, base_url=emu.anthropic_base_url, max_retries=0)
    _CLIENTS.append(client)
    return client


def openai_client(emu: ProviderEmulator) -> openai.OpenAI:
    client = openai.OpenAI(api_key=API_KEY, base_url=emu.openai_base_url, max_retries=0)
    _CLIENTS.append(client)
    return client


def anthropic_stream(emu: ProviderEmulator, **extra: Any) -> reactivex.Observable[StreamEvent]:
    return rxs.from_anthropic(
        anthropic_client(emu),
        model="claude-test",
        max_tokens=256,
        messages=[{"role": "user", "content": "hi"}],
        **extra,
    )


def openai_stream(emu: ProviderEmulator, **extra: Any) -> reactivex.Observable[StreamEvent]:
    return rxs.from_openai(
        openai_client(emu), model="gpt-test", messages=[{"role": "user", "content": "hi"}], **extra
    )


STREAMS: dict[str, Callable[..., reactivex.Observable[StreamEvent]]] = {
    "anthropic": anthropic_stream,
    "openai": openai_stream,
}


def check_grammar(events: list[StreamEvent]) -> None:
    assert events[0].type == "stream_start"
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.stream_id for e in events}) == 1
    open_calls: set[int] = set()
    for e in events:
        if e.type == "tool_call_start":
            assert e.index not in open_calls
            open_calls.add(e.index)
        elif e.type == "tool_call_delta":
            assert e.index in open_calls
        elif e.type == "tool_call_end":
            open_calls.remove(e.index)
    assert not open_calls


# --- events and final response equal the SDK's own accumulators -----------------------------


def test_anthropic_events_and_final_equal_sdk_accumulator(emulator: ProviderEmulator) -> None:
    emulator.enqueue(TOOLS_SCRIPT, TOOLS_SCRIPT)
    events, error = collect(anthropic_stream(emulator))
    assert error is None
    check_grammar(events)
    kinds = {e.type for e in events}
    assert kinds == {
        "stream_start",
        "usage_update",
        "thinking_delta",
        "text_delta",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_end",
        "stream_end",
    }
    assert events[-1].type == "stream_end"
    final = rxs.Response()
    for e in events:
        final = rxs.apply(final, e)

    with anthropic_client(emulator).messages.stream(
        model="claude-test", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    ) as sdk_stream:
        message = sdk_stream.get_final_message()
    sdk_text = "".join(b.text for b in message.content if b.type == "text")
    sdk_thinking = "".join(b.thinking for b in message.content if b.type == "thinking")
    sdk_tools = [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]
    assert final.text == sdk_text == TOOLS_SCRIPT.text
    assert final.thinking == sdk_thinking
    assert final.thinking_signature == next(b.signature for b in message.content if b.type == "thinking")
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == sdk_tools
    assert final.stop_reason == "tool_use" and final.raw_stop_reason == message.stop_reason
    assert final.usage.input_tokens == message.usage.input_tokens
    assert final.usage.output_tokens == message.usage.output_tokens
    assert final.usage.cache_read_tokens == message.usage.cache_read_input_tokens
    assert final.usage.cache_write_tokens == message.usage.cache_creation_input_tokens
    assert final.model == message.model and (final.id or "").startswith("msg_")
    assert final.request_id is not None and final.complete


def test_openai_events_and_final_equal_sdk_accumulator(emulator: ProviderEmulator) -> None:
    script = TOOLS_SCRIPT.model_copy(update={"thinking": ""})
    emulator.enqueue(script, script)
    events, error = collect(openai_stream(emulator))
    assert error is None
    check_grammar(events)
    assert {e.type for e in events} == {
        "stream_start",
        "text_delta",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_end",
        "usage_update",
        "stream_end",
    }
    final = rxs.Response()
    for e in events:
        final = rxs.apply(final, e)
    with openai_client(emulator).chat.completions.stream(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream_options={"include_usage": True}
    ) as sdk_stream:
        completion = sdk_stream.get_final_completion()
    message = completion.choices[0].message
    assert final.text == message.content == script.text
    assert [(c.id, c.name, c.arguments) for c in final.tool_calls] == [
        (t.id, t.function.name, json.loads(t.function.arguments)) for t in message.tool_calls or []
    ]
    assert [c.raw_arguments for c in final.tool_calls] == [
        t.function.arguments for t in message.tool_calls or []
    ]
    assert final.raw_stop_reason == completion.choices[0].finish_reason == "tool_calls"
    assert final.stop_reason == "tool_use"
    assert completion.usage is not None
    cached = (
        completion.usage.prompt_tokens_details.cached_tokens if completion.usage.prompt_tokens_details else 0
    )
    usage = final.usage
    whole_prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    assert whole_prompt == completion.usage.prompt_tokens
    assert usage.input_tokens == script.input_tokens
    assert final.usage.cache_read_tokens == (cached or 0)
    assert final.usage.output_tokens == completion.usage.completion_tokens
    assert (final.id or "").startswith("chatcmpl")


def test_openai_compat_reasoning_content_and_usage_opt_out(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="42.", thinking="Let me think.", compat_reasoning_content=True))
    events, error = collect(openai_stream(emulator, stream_options={}))
    assert error is None
    assert "".join(e.text for e in events if e.type == "thinking_delta") == "Let me think."
    assert not any(e.type == "usage_update" for e in events)
    assert "stream_options" not in emulator.requests[-1].body
    assert events[-1].type == "stream_end"


def test_openai_requests_usage_by_default(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="hi"))
    events, _ = collect(openai_stream(emulator))
    assert emulator.requests[-1].body["stream_options"] == {"include_usage": True}
    assert any(e.type == "usage_update" for e in events)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_stop_reasons(emulator: ProviderEmulator, provider: str) -> None:
    expected = {
        "end_turn": "end_turn",
        "max_tokens": "max_tokens",
        "stop_sequence": "stop_sequence" if provider == "anthropic" else "end_turn",
        "content_filter": "refusal" if provider == "anthropic" else "content_filter",
    }
    for scripted, normalized in expected.items():
        emulator.enqueue(ResponseScript(text="x y", stop_reason=scripted, stop_sequence="END"))
        response = STREAMS[provider](emulator).pipe(rso.final()).run()
        assert response.stop_reason == normalized, scripted


# --- async clients ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_async_clients(emulator: ProviderEmulator, provider: str) -> None:
    script = TOOLS_SCRIPT.model_copy(update={"thinking": ""})
    emulator.enqueue(script)
    client: Any
    if provider == "anthropic":
        client = anthropic.AsyncAnthropic(
            api_key=API_KEY, base_url=emulator.anthropic_base_url, max_retries=0
        )
        stream = rxs.from_anthropic(
            client, model="m", max_tokens=256, messages=[{"role": "user", "content": "x"}]
        )
    else:
        client = openai.AsyncOpenAI(api_key=API_KEY, base_url=emulator.openai_base_url, max_retries=0)
        stream = rxs.from_openai(client, model="m", messages=USER_X)
    async with client:
        response: Response = await stream.pipe(rso.final())
    assert response.text == script.text
    assert [c.arguments for c in response.tool_calls] == [
        {"city": "Zürich", "unit": "celsius"},
        {"tz": "Asia/Tokyo"},
    ]
    assert response.stop_reason == "tool_use"


async def test_async_disposal_cancels_the_reading_task(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="a b c d", fault=Fault(kind="stall", after_events=3)))
    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emulator.anthropic_base_url, max_retries=0)
    stream = rxs.from_anthropic(
        client, model="m", max_tokens=256, messages=[{"role": "user", "content": "x"}]
    )
    got: list[StreamEvent] = []
    disposable = stream.subscribe(got.append)
    for _ in range(200):
        if got:
            break
        await asyncio.sleep(0.01)
    assert got
    disposable.dispose()
    record = await asyncio.to_thread(emulator.wait_for_disconnect, -1, 2.0)
    assert record.client_disconnected and not record.completed
    await client.close()


# --- cold semantics and disposal --------------------------------------------------------------


# --- errors carry the partial response ----------------------------------------------------------


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_error_event_mid_stream(emulator: ProviderEmulator, provider: str) -> None:
    emulator.enqueue(
        ResponseScript(text="alpha beta gamma delta", fault=Fault(kind="error_event", after_events=5))
    )
    events, error = collect(STREAMS[provider](emulator))
    assert isinstance(error, ProviderError)
    assert error.in_stream and error.retryable
    text = "".join(e.text for e in events if e.type == "text_delta")
    assert text and error.partial.text == text
    assert API_KEY not in str(error) and API_KEY not in repr(error)


def test_http_400_is_not_retryable(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(fault=Fault(kind="http_error", status=400, message="bad")))
    _, error = collect(anthropic_stream(emulator))
    assert isinstance(error, ProviderError) and error.status_code == 400 and not error.retryable


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_non_ascii_split_mid_utf8_and_mid_json(emulator: ProviderEmulator, provider: str, seed: int) -> None:
    text = "Grüße aus 東京 👩‍👩‍👧 and naïve café ☕ — ok"
    tool = ScriptedToolCall(
        id="call_1", name="say", arguments='{"text": "héllo 世界 🌍", "n": [1, 2]}', fragment_size=2
    )
    emulator.enqueue(
        ResponseScript(
            text=text,
            chunking="chars",
            chunk_size=1,
            tool_calls=[tool],
            stop_reason="tool_use",
            write_split_seed=seed,
        )
    )
    response = STREAMS[provider](emulator).pipe(rso.final()).run()
    assert response.text == text
    assert response.tool_calls[0].arguments == {"text": "héllo 世界 🌍", "n": [1, 2]}


def test_tool_call_partial_arguments_grow(emulator: ProviderEmulator) -> None:
    tool = ScriptedToolCall(
        id="toolu_1", name="f", arguments='{"city": "San Francisco", "days": 3}', fragment_size=4
    )
    emulator.enqueue(ResponseScript(tool_calls=[tool], stop_reason="tool_use"))
    events, _ = collect(anthropic_stream(emulator))
    partials = [e.partial_arguments for e in events if e.type == "tool_call_delta"]
    assert partials[-1] == {"city": "San Francisco", "days": 3}
    assert any(p and p.get("city", "").startswith("San") and p["city"] != "San Francisco" for p in partials)


def test_invalid_tool_json_is_a_typed_error(emulator: ProviderEmulator) -> None:
    tool = ScriptedToolCall(id="toolu_1", name="f", arguments='{"city": "Par', fragment_size=4)
    emulator.enqueue(ResponseScript(text="Calling.", tool_calls=[tool], stop_reason="tool_use"))
    _, error = collect(anthropic_stream(emulator))
    assert isinstance(error, rxs.errors.ToolArgumentsError)
    assert error.raw_arguments == '{"city": "Par' and error.name == "f"
    assert error.partial.text == "Calling."


def test_text_operator_and_snapshots(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="a b c"), ResponseScript(text="a b c"))
    pieces = anthropic_stream(emulator).pipe(rso.text(), ops.to_list()).run()
    assert "".join(pieces) == "a b c"
    snaps = anthropic_stream(emulator).pipe(rso.snapshots(), ops.to_list()).run()
    assert snaps[-1].text == "a b c" and snaps[-1].complete
    texts = [s.text for s in snaps if s.text]
    assert [t for i, t in enumerate(texts) if i == 0 or texts[i - 1] != t] == ["a", "a b", "a b c"]


def test_observer_error_in_on_next_closes_connection(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="a b c d e f", event_delay=0.02))
    errors: list[BaseException] = []
    done = threading.Event()

    def boom(event: StreamEvent) -> None:
        if event.type == "text_delta":
            raise ValueError("observer bug")

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    anthropic_stream(emulator).pipe(ops.map(lambda e: e)).subscribe(boom, on_error)
    assert done.wait(5)
    assert isinstance(errors[0], ValueError)
    record = emulator.wait_for_disconnect(-1, timeout=2)
    assert not record.completed


def test_malformed_json_is_a_decode_error() -> None:
    from rxstream.providers.anthropic import AnthropicNormaliser

    norm = AnthropicNormaliser("s")
    with pytest.raises(StreamDecodeError):
        norm.feed_sse("message_start", b"{not json")


def test_wrong_client_is_a_configuration_error() -> None:
    with pytest.raises(rxs.errors.ConfigurationError):
        rxs.from_anthropic(object(), model="m")
    with pytest.raises(rxs.errors.ConfigurationError):
        rxs.from_openai(object(), model="m")


def test_error_partial_is_a_stream_error_subclass(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="a b", fault=Fault(kind="drop", after_events=3)))
    _, error = collect(openai_stream(emulator))
    assert isinstance(error, StreamError)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_tool_call_cut_off_by_max_tokens_ends_truncated(emulator: ProviderEmulator, provider: str) -> None:
    tool = ScriptedToolCall(
        id="call_1", name="write", arguments='{"title": "Rivers", "body": "Rivers fl', fragment_size=5
    )
    emulator.enqueue(ResponseScript(text="Writing.", tool_calls=[tool], stop_reason="max_tokens"))
    events, error = collect(STREAMS[provider](emulator))
    assert error is None
    end = next(e for e in events if e.type == "tool_call_end")
    assert end.provider_details == {"truncated": True}
    assert end.arguments == {"title": "Rivers", "body": "Rivers fl"}
    final = rxs.Response()
    for e in events:
        final = rxs.apply(final, e)
    assert final.stop_reason == "max_tokens" and not final.tool_calls[0].complete
    assert events[-1].type == "stream_end"

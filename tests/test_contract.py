"""Cross-provider contract: one scripted conversation, five wire formats, one neutral result.

The emulator renders the same `ResponseScript` as Anthropic SSE, OpenAI Chat SSE, OpenAI
Responses SSE, Bedrock ConverseStream and Bedrock InvokeModelWithResponseStream event-stream
frames; each goes through its official SDK and its rxstream source. Every stream must obey
the event grammar and give the same content events and the same `Response` (modulo ids and
``provider_details``; differences a wire format cannot express are listed per provider).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reactivex import Observable

from rxstream.events import StreamEvent
from rxstream.providers import PROVIDER_NAMES, get_spec
from rxstream.response import Response, apply
from rxstream.testing import ProviderEmulator, ResponseScript, ScriptedToolCall

PROVIDERS = list(PROVIDER_NAMES)

CONVERSATION = ResponseScript(
    text="Let me look both up — Zürich and 東京 🌦️.",
    thinking="Two cities, two tools; call them in parallel.",
    tool_calls=[
        ScriptedToolCall(
            id="call_A1", name="get_weather", arguments='{"city": "Zürich", "days": 2}', fragment_size=4
        ),
        ScriptedToolCall(id="call_B2", name="get_time", arguments='{"tz": "Asia/Tokyo"}', fragment_size=3),
    ],
    stop_reason="tool_use",
    input_tokens=120,
    output_tokens=64,
    cache_read_input_tokens=30,
    cache_creation_input_tokens=10,
    chunking="chars",
    chunk_size=4,
)


@pytest.fixture(scope="module")
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emulator:
        yield emulator


@pytest.fixture
def source(emu: ProviderEmulator) -> Iterator[Callable[[str], Observable[StreamEvent]]]:
    """``source(provider)``: the provider's official SDK on the emulator, through the registry."""
    clients: list[Any] = []

    def make(provider: str) -> Observable[StreamEvent]:
        spec = get_spec(provider)
        client = emu.client(provider)
        clients.append(client)
        return spec.stream(client, spec.request("x", model="m", max_tokens=256))

    yield make
    for client in clients:
        client.close()


def run(stream: Observable[StreamEvent]) -> tuple[list[StreamEvent], BaseException | None]:
    events: list[StreamEvent] = []
    errors: list[BaseException] = []
    done = threading.Event()
    stream.subscribe(events.append, lambda e: (errors.append(e), done.set()), done.set)
    assert done.wait(15)
    return events, errors[0] if errors else None


def check_grammar(events: list[StreamEvent]) -> None:
    """StreamStart first, one terminal StreamEnd last, tool calls nested per index, seq 0..n."""
    assert events[0].type == "stream_start"
    assert [e.type for e in events].count("stream_start") == 1
    assert events[-1].type == "stream_end" and [e.type for e in events].count("stream_end") == 1
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.stream_id for e in events}) == 1
    state: dict[int, str] = {}
    for e in events:
        if e.type == "tool_call_start":
            assert e.index not in state
            state[e.index] = "open"
        elif e.type == "tool_call_delta":
            assert state.get(e.index) == "open"
        elif e.type == "tool_call_end":
            assert state.get(e.index) == "open"
            state[e.index] = "closed"
    assert all(v == "closed" for v in state.values())


def content_signature(events: list[StreamEvent]) -> dict[str, Any]:
    """What every provider must agree on, independent of how deltas were split."""
    text = "".join(e.text for e in events if e.type == "text_delta")
    thinking = "".join(e.text for e in events if e.type == "thinking_delta")
    calls = [(e.index, e.id, e.name, e.arguments) for e in events if e.type == "tool_call_end"]
    starts = [(e.index, e.id, e.name) for e in events if e.type == "tool_call_start"]
    raw = {
        e.index: "".join(
            d.arguments_delta for d in events if d.type == "tool_call_delta" and d.index == e.index
        )
        for e in events
        if e.type == "tool_call_end"
    }
    end = events[-1]
    assert end.type == "stream_end"
    return {
        "text": text,
        "thinking": thinking,
        "starts": starts,
        "calls": calls,
        "raw_arguments": raw,
        "stop_reason": end.stop_reason,
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_grammar_and_concatenated_deltas(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str
) -> None:
    script = (
        CONVERSATION
        if provider not in ("openai",)
        else CONVERSATION.model_copy(update={"compat_reasoning_content": True})
    )
    emu.enqueue(script)
    events, error = run(source(provider))
    assert error is None
    check_grammar(events)
    final = Response()
    for e in events:
        final = apply(final, e)
    assert final.text == "".join(e.text for e in events if e.type == "text_delta") == script.text
    assert final.complete and final.provider == provider


def test_same_content_and_response_across_all_five_formats(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator
) -> None:
    signatures: dict[str, dict[str, Any]] = {}
    finals: dict[str, Response] = {}
    for provider in PROVIDERS:
        script = CONVERSATION.model_copy(update={"compat_reasoning_content": provider == "openai"})
        emu.enqueue(script)
        events, error = run(source(provider))
        assert error is None, (provider, error)
        signatures[provider] = content_signature(events)
        final = Response()
        for e in events:
            final = apply(final, e)
        finals[provider] = final
    reference = signatures["anthropic"]
    assert reference["text"] == CONVERSATION.text
    assert reference["thinking"] == CONVERSATION.thinking
    assert reference["calls"] == [
        (0, "call_A1", "get_weather", {"city": "Zürich", "days": 2}),
        (1, "call_B2", "get_time", {"tz": "Asia/Tokyo"}),
    ]
    for provider, signature in signatures.items():
        assert signature == reference, provider

    def neutral(r: Response) -> dict[str, Any]:
        return r.model_dump(
            exclude={"provider", "model", "id", "request_id", "raw_stop_reason", "thinking_signature"}
        )

    for provider, final in finals.items():
        assert neutral(final) == neutral(finals["anthropic"]), provider
    usage = finals["anthropic"].usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        120,
        64,
        30,
        10,
    )


@pytest.mark.parametrize("stop", ["end_turn", "max_tokens", "tool_use"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_stop_reason(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str, stop: str
) -> None:
    calls = CONVERSATION.tool_calls if stop == "tool_use" else []
    emu.enqueue(ResponseScript(text="short answer", tool_calls=calls, stop_reason=stop))  # type: ignore[arg-type]
    events, error = run(source(provider))
    assert error is None
    check_grammar(events)
    end = events[-1]
    assert end.type == "stream_end" and end.stop_reason == stop


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wire_bytes_split_anywhere_give_identical_events(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str
) -> None:
    """The emulator writes the stream in random pieces (mid-UTF-8, mid-SSE-line, mid-frame)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    script = CONVERSATION.model_copy(update={"compat_reasoning_content": provider == "openai"})

    def neutral(events: list[StreamEvent]) -> list[dict[str, Any]]:
        return [
            e.model_dump(exclude={"stream_id", "provider_details"})
            for e in events
            if e.type != "stream_start"
        ]

    emu.enqueue(script)
    reference, error = run(source(provider))
    assert error is None

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(min_value=0, max_value=2**32))
    def split_anywhere(seed: int) -> None:
        emu.enqueue(script.model_copy(update={"write_split_seed": seed}))
        events, err = run(source(provider))
        assert err is None
        assert neutral(events) == neutral(reference)

    split_anywhere()

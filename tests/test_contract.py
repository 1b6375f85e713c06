"""Cross-provider contract: one scripted conversation, five wire formats, one neutral result.

The emulator renders the same `ResponseScript` as Anthropic SSE, OpenAI Chat SSE, OpenAI
Responses SSE, Bedrock ConverseStream and Bedrock InvokeModelWithResponseStream event-stream
frames; each goes through its official SDK and its rxstream source. Every stream must obey
the event grammar and give the same content events and the same `Response` (modulo ids and
``provider_details``; differences a wire format cannot express are listed per provider).

The behaviours every source shares are checked here for all five, through the registry:
cold subscription, disposal at three moments (request sent but no headers; headers but no
first event; stalled mid-stream) closing the connection within a second, a dropped
connection keeping the partial response, HTTP errors before the stream, unknown events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reactivex import Observable

from rxstream import operators as rso
from rxstream.errors import ProviderError, StreamInterruptedError
from rxstream.events import StopReason, StreamEvent
from rxstream.providers import PROVIDER_NAMES, get_spec
from rxstream.response import Response, apply
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall, check_grammar, collect

PROVIDERS: list[str] = list(PROVIDER_NAMES)

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
    compat_reasoning_content=True,  # OpenAI Chat streams thinking as reasoning_content (vLLM style)
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
    script = CONVERSATION
    emu.enqueue(script)
    events, error = collect(source(provider))
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
        emu.enqueue(CONVERSATION)
        events, error = collect(source(provider))
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
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str, stop: StopReason
) -> None:
    calls = CONVERSATION.tool_calls if stop == "tool_use" else []
    emu.enqueue(ResponseScript(text="short answer", tool_calls=calls, stop_reason=stop))
    events, error = collect(source(provider))
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

    script = CONVERSATION

    def neutral(events: list[StreamEvent]) -> list[dict[str, Any]]:
        return [
            e.model_dump(exclude={"stream_id", "provider_details"})
            for e in events
            if e.type != "stream_start"
        ]

    emu.enqueue(script)
    reference, error = collect(source(provider))
    assert error is None

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(min_value=0, max_value=2**32))
    def split_anywhere(seed: int) -> None:
        emu.enqueue(script.model_copy(update={"write_split_seed": seed}))
        events, err = collect(source(provider))
        assert err is None
        assert neutral(events) == neutral(reference)

    split_anywhere()


# -- behaviours every source shares ------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cold_each_subscription_is_one_request(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str
) -> None:
    before = len(emu.requests)
    stream = source(provider)
    assert len(emu.requests) == before  # creating the source sends nothing
    emu.enqueue(ResponseScript(text="first"), ResponseScript(text="second"))
    first = stream.pipe(rso.final()).run()
    second = stream.pipe(rso.final()).run()
    assert len(emu.requests) == before + 2
    assert (first.text, second.text) == ("first", "second")
    assert first.request_id != second.request_id


DISPOSE_MOMENTS = {
    # the request was read, no response headers yet: the SDK call itself is blocked
    "opening": ResponseScript(text="never", headers_delay=30),
    # headers sent, the first event is late: the first read is blocked
    "first_event_pending": ResponseScript(text="late", first_event_delay=30),
    # events arrived, then the server stalls: a read mid-stream is blocked
    "stalled": ResponseScript(text="one two three four five six", fault=Fault(kind="stall", after_events=6)),
}


@pytest.mark.parametrize("moment", sorted(DISPOSE_MOMENTS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_dispose_closes_the_connection_within_a_second(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str, moment: str
) -> None:
    emu.enqueue(DISPOSE_MOMENTS[moment])
    count = len(emu.connections)
    got: list[StreamEvent] = []
    terminal: list[str] = []
    disposable = source(provider).subscribe(
        got.append, lambda e: terminal.append(f"error {e!r}"), lambda: terminal.append("completed")
    )
    wait_until(lambda: len(emu.connections) > count)
    if moment == "first_event_pending":
        wait_until(lambda: emu.connections[-1].status == 200)
    elif moment == "stalled":
        wait_until(lambda: any(e.type == "text_delta" for e in got))
    started = time.monotonic()
    disposable.dispose()
    record = emu.wait_for_disconnect(-1, timeout=2.0)
    assert record.client_disconnected and not record.completed
    assert record.disconnected_at is not None and record.disconnected_at - started < 1.0
    assert terminal == []  # disposal is silent


@pytest.mark.parametrize("provider", PROVIDERS)
def test_dropped_connection_keeps_the_partial_response(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str
) -> None:
    words = "alpha beta gamma delta epsilon zeta eta theta"
    emu.enqueue(ResponseScript(text=words, fault=Fault(kind="drop", after_events=6)))
    events, error = collect(source(provider))
    assert isinstance(error, StreamInterruptedError) and error.retryable
    text = "".join(e.text for e in events if e.type == "text_delta")
    assert text and words.startswith(text) and error.partial.text == text
    assert not error.partial.complete and error.partial.provider == provider
    check_grammar(events, complete=False)


@pytest.mark.parametrize("status", [429, 500])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_http_error_before_the_stream(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str, status: int
) -> None:
    emu.enqueue(ResponseScript(fault=Fault(kind="http_error", status=status, message="Nope", retry_after=2)))
    events, error = collect(source(provider))
    assert events == []
    assert isinstance(error, ProviderError) and not error.in_stream
    assert error.status_code == status and error.retryable and error.retry_after == 2.0
    assert error.request_id and error.request_id in str(error) and "Nope" in str(error)
    assert error.partial == Response()
    assert "sk-emulator" not in str(error) + repr(error)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_events_are_skipped(
    source: Callable[[str], Observable[StreamEvent]], emu: ProviderEmulator, provider: str
) -> None:
    emu.enqueue(ResponseScript(text="a b c"), ResponseScript(text="a b c", unknown_event_after=2))
    plain, error1 = collect(source(provider))
    with_unknown, error2 = collect(source(provider))
    assert error1 is None and error2 is None

    def neutral(events: list[StreamEvent]) -> list[dict[str, Any]]:
        return [e.model_dump(exclude={"stream_id", "provider_details"}) for e in events[1:]]

    assert neutral(with_unknown) == neutral(plain)

"""Tests of ``rso.traced`` / `rxstream.telemetry`: in-memory OTel exporter and metric reader."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anthropic
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as semconv_attrs
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as semconv_metrics
from opentelemetry.semconv.attributes import error_attributes as semconv_error
from opentelemetry.trace import SpanKind, StatusCode
from reactivex.testing import ReactiveTest, TestScheduler

import rxstream as rxs
from rxstream import operators as rso
from rxstream import telemetry
from rxstream.errors import ConfigurationError, ProviderError
from rxstream.events import (
    IterationEnd,
    IterationStart,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageUpdate,
)
from rxstream.testing import ProviderEmulator, ResponseScript, ScriptedToolCall, ToolConversation


def on_next(time: float, value: Any) -> Any:
    """``ReactiveTest.on_next`` at a fractional virtual time (1 tick = 1 second)."""
    return ReactiveTest.on_next(cast(int, time), value)


def on_error(time: float, error: Exception) -> Any:
    return ReactiveTest.on_error(cast(int, time), error)


def on_completed(time: float) -> Any:
    return ReactiveTest.on_completed(cast(int, time))


SECRET_KEY = "sk-ant-api03-SECRET-do-not-leak-0123456789"


class Otel:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def traced(self, **kwargs: Any) -> Any:
        return rso.traced(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **kwargs)

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.close()


def start(model: str = "claude-x") -> StreamStart:
    return StreamStart(stream_id="s", seq=0, provider="anthropic", model=model, response_id="msg_1")


def t(seq: int, text: str) -> TextDelta:
    return TextDelta(stream_id="s", seq=seq, text=text)


END = StreamEnd(
    stream_id="s",
    seq=9,
    stop_reason="end_turn",
    usage=Usage(input_tokens=10, output_tokens=5, cache_read_tokens=3),
    provider_details={"stop_reason": "end_turn"},
)


def test_names_match_the_installed_semantic_conventions() -> None:
    assert telemetry.GEN_AI_CLIENT_OPERATION_DURATION == semconv_metrics.GEN_AI_CLIENT_OPERATION_DURATION
    assert telemetry.GEN_AI_CLIENT_TOKEN_USAGE == semconv_metrics.GEN_AI_CLIENT_TOKEN_USAGE
    assert (
        telemetry.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
        == semconv_metrics.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK
    )
    assert (
        telemetry.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK
        == semconv_metrics.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK
    )
    for name in (
        "GEN_AI_OPERATION_NAME",
        "GEN_AI_PROVIDER_NAME",
        "GEN_AI_REQUEST_MODEL",
        "GEN_AI_RESPONSE_MODEL",
        "GEN_AI_RESPONSE_ID",
        "GEN_AI_RESPONSE_FINISH_REASONS",
        "GEN_AI_USAGE_INPUT_TOKENS",
        "GEN_AI_USAGE_OUTPUT_TOKENS",
        "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
        "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
        "GEN_AI_OUTPUT_MESSAGES",
        "GEN_AI_TOKEN_TYPE",
        "GEN_AI_AGENT_NAME",
        "GEN_AI_TOOL_NAME",
        "GEN_AI_TOOL_CALL_ID",
        "GEN_AI_TOOL_TYPE",
        "GEN_AI_TOOL_CALL_ARGUMENTS",
        "GEN_AI_TOOL_CALL_RESULT",
    ):
        assert getattr(telemetry, name) == getattr(semconv_attrs, name), name
    assert semconv_attrs.GenAiProviderNameValues.AWS_BEDROCK.value == telemetry.provider_name("bedrock")
    operations = semconv_attrs.GenAiOperationNameValues
    assert operations.CHAT.value == "chat"
    assert operations.INVOKE_AGENT.value == "invoke_agent"
    assert operations.EXECUTE_TOOL.value == "execute_tool"
    assert semconv_error.ErrorTypeValues.OTHER.value == telemetry.TOOL_ERROR_TYPE
    assert telemetry.ERROR_TYPE == semconv_error.ERROR_TYPE


def test_completed_stream_span_and_metrics_exact_on_virtual_time(otel: Otel) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(0.1, start()),
        on_next(0.42, t(1, "Hel")),
        on_next(0.5, t(2, "lo")),
        on_next(0.75, ToolCallStart(stream_id="s", seq=3, index=0, id="toolu_1", name="f")),
        on_next(0.8, UsageUpdate(stream_id="s", seq=4, usage=Usage(input_tokens=10, output_tokens=4))),
        on_next(1.0, END),
        on_completed(1.0),
    )
    results = scheduler.start(
        lambda: source.pipe(otel.traced()), created=cast(int, 0.5), subscribed=1, disposed=100
    )
    assert len(results.messages) == 7
    (span,) = otel.spans()
    assert span.name == "chat claude-x"
    assert span.kind is SpanKind.CLIENT
    assert span.start_time == 1_000_000_000 and span.end_time == 2_000_000_000
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-x",
        "gen_ai.response.model": "claude-x",
        "gen_ai.response.id": "msg_1",
        "gen_ai.response.finish_reasons": ("end_turn",),
        "gen_ai.usage.input_tokens": 13,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.cache_read.input_tokens": 3,
    }
    (ttfc,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 1 and ttfc.sum == pytest.approx(0.42, abs=1e-9)
    (tpoc,) = otel.points("gen_ai.client.operation.time_per_output_chunk")
    assert tpoc.count == 2 and tpoc.min == pytest.approx(0.08) and tpoc.max == pytest.approx(0.25)
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.sum == pytest.approx(1.0)
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-x",
        "gen_ai.response.model": "claude-x",
    }
    usage = {p.attributes["gen_ai.token.type"]: p.sum for p in otel.points("gen_ai.client.token.usage")}
    assert usage == {"input": 13, "output": 5}


def test_error_ends_the_span_with_status_error_and_error_type(otel: Otel) -> None:
    scheduler = TestScheduler()
    error = ProviderError(f"overloaded (key {SECRET_KEY})", status_code=529, error_type="overloaded_error")
    source = scheduler.create_cold_observable(
        on_next(0.1, start()), on_next(0.2, t(1, "a")), on_error(0.3, error)
    )
    results = scheduler.start(
        lambda: source.pipe(otel.traced()), created=cast(int, 0.5), subscribed=1, disposed=100
    )
    assert getattr(results.messages[-1].value, "exception", None) is error
    (span,) = otel.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None and "overloaded" in span.status.description
    assert "SECRET" not in span.status.description
    assert span.attributes is not None
    assert span.attributes["error.type"] == "rxstream.errors.ProviderError"
    assert span.end_time == 1_300_000_000
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "rxstream.errors.ProviderError"


def test_disposal_ends_the_span_once_marked_cancelled_and_each_subscription_has_its_span(otel: Otel) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(0.1, start()), on_next(0.2, t(1, "a")), on_next(5.0, t(2, "b")), on_completed(6.0)
    )
    traced = source.pipe(otel.traced())
    scheduler.start(lambda: traced, created=cast(int, 0.5), subscribed=1, disposed=2.0)
    (span,) = otel.spans()
    assert span.attributes is not None and span.attributes["rxstream.cancelled"] is True
    assert span.end_time == 2_000_000_000
    assert span.status.status_code is StatusCode.UNSET
    assert source.subscriptions[0].unsubscribe == 2.0  # disposal reached the source
    # a second, independent subscription gets its own span; completion then disposal ends it once
    scheduler2 = TestScheduler()
    source2 = scheduler2.create_cold_observable(on_next(0.1, start()), on_completed(0.2))
    traced2 = source2.pipe(otel.traced())
    scheduler2.start(lambda: traced2, created=cast(int, 0.5), subscribed=1, disposed=10)
    scheduler3 = TestScheduler()
    scheduler3.start(lambda: traced2, created=cast(int, 0.5), subscribed=1, disposed=10)
    spans = otel.spans()
    assert len(spans) == 3
    assert len({s.context.span_id for s in spans if s.context is not None}) == 3
    assert "rxstream.cancelled" not in (spans[1].attributes or {})


def test_content_captured_only_when_asked(otel: Otel) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(0.1, start()), on_next(0.2, t(1, "Hello")), on_next(0.3, END), on_completed(0.3)
    )
    scheduler.start(lambda: source.pipe(otel.traced()), created=cast(int, 0.5), subscribed=1, disposed=10)
    scheduler2 = TestScheduler()
    source2 = scheduler2.create_cold_observable(
        on_next(0.1, start()), on_next(0.2, t(1, "Hello")), on_next(0.3, END), on_completed(0.3)
    )
    scheduler2.start(
        lambda: source2.pipe(otel.traced(capture_content=True)),
        created=cast(int, 0.5),
        subscribed=1,
        disposed=10,
    )
    plain, captured = otel.spans()
    assert all("Hello" not in str(v) for v in (plain.attributes or {}).values())
    assert not plain.events
    assert captured.attributes is not None
    messages = json.loads(str(captured.attributes["gen_ai.output.messages"]))
    assert messages == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}], "finish_reason": "end_turn"}
    ]


def test_emulator_stream_through_the_sdk_no_secret_anywhere(otel: Otel) -> None:
    script = ResponseScript(text="Hello there, friend.", input_tokens=7)
    with ProviderEmulator(script) as emu:
        client = anthropic.Anthropic(api_key=SECRET_KEY, base_url=emu.anthropic_base_url)
        stream = rxs.from_anthropic(
            client, model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
        )
        response = stream.pipe(otel.traced(server_address="127.0.0.1"), rso.final()).run()
        client.close()
    assert response.text == "Hello there, friend."
    (span,) = otel.spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert (
        attrs["gen_ai.request.model"] == "claude-sonnet-4-5" or attrs["gen_ai.request.model"] == "emulator-1"
    )
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["gen_ai.usage.input_tokens"] == 7
    dump = repr(attrs) + repr(span.events) + repr(otel.reader.get_metrics_data())
    assert "SECRET" not in dump
    assert "Hello" not in dump  # no content by default
    assert otel.points("gen_ai.client.operation.time_to_first_chunk")[0].count == 1


def test_bad_arguments_raise_at_creation() -> None:
    with pytest.raises(ConfigurationError):
        rso.traced(capture_content="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rso.traced(scheduler=object())  # type: ignore[arg-type]


def test_core_works_without_the_otel_extra() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import rxstream as rxs\nfrom rxstream import operators as rso\n"
        "from rxstream.errors import ConfigurationError\n"
        "try:\n    rso.traced()\nexcept ConfigurationError as e:\n    print('missing:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "rxstream[otel]" in out.stdout


# -- tool loops: invoke_agent → chat per turn + execute_tool per call ----------------------------


@rxs.tool
def get_weather(city: str) -> str:
    """Weather for a city.

    Args:
        city: City name.
    """
    return f"sunny in {city}"


@rxs.tool
async def get_time(tz: str) -> str:
    """The local time in a time zone.

    Args:
        tz: IANA time zone name.
    """
    return f"noon in {tz}"


@rxs.tool
def divide(a: float, b: float) -> float:
    """Divide a by b.

    Args:
        a: Numerator.
        b: Denominator.
    """
    return a / b


def scripted_call(call_id: str, name: str, arguments: str) -> ScriptedToolCall:
    return ScriptedToolCall(id=call_id, name=name, arguments=arguments, fragment_size=5)


TWO_CALLS = ResponseScript(
    text="Checking both.",
    tool_calls=[
        scripted_call("call_A1", "get_weather", '{"city": "Zürich"}'),
        scripted_call("call_B2", "get_time", '{"tz": "Asia/Tokyo"}'),
    ],
    stop_reason="tool_use",
    input_tokens=100,
    output_tokens=40,
)
ANSWER = ResponseScript(text="Sunny in Zürich; noon in Tokyo.", input_tokens=180, output_tokens=12)
MODEL = "claude-sonnet-4-5"
SERVED = "emulator-1"  # the model the emulator reports (ResponseScript.model)


def run_loop(
    otel: Otel, turns: list[ResponseScript], tools: list[Any], **traced: Any
) -> tuple[list[StreamEvent], Exception | None]:
    with ProviderEmulator(responder=ToolConversation(turns)) as emu:
        client = anthropic.Anthropic(api_key=SECRET_KEY, base_url=emu.anthropic_base_url)
        try:
            loop = rxs.tool_loop(
                rxs.from_anthropic,
                client,
                tools=tools,
                model=MODEL,
                max_tokens=256,
                messages=[{"role": "user", "content": "Weather in Zürich and time in Tokyo?"}],
            )
            events: list[StreamEvent] = []
            errors: list[Exception] = []
            done = threading.Event()

            def failed(error: Exception) -> None:
                errors.append(error)
                done.set()

            loop.pipe(otel.traced(**traced)).subscribe(events.append, failed, done.set)
            assert done.wait(20), "the tool loop did not end"
        finally:
            client.close()
    return events, (errors[0] if errors else None)


def tree(otel: Otel) -> tuple[ReadableSpan, list[ReadableSpan], list[ReadableSpan]]:
    """The loop's root span, its chat children and its execute_tool children (start order)."""
    spans = sorted(otel.spans(), key=lambda s: s.start_time or 0)
    (root,) = [s for s in spans if s.parent is None]
    assert root.context is not None
    children = [s for s in spans if s is not root]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in children)
    assert all(s.context is not None and s.context.trace_id == root.context.trace_id for s in children)
    chats = [s for s in children if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
    tools = [s for s in children if (s.attributes or {}).get("gen_ai.operation.name") == "execute_tool"]
    assert len(chats) + len(tools) == len(children)
    return root, chats, tools


def test_tool_loop_span_tree_on_the_emulator(otel: Otel) -> None:
    events, error = run_loop(
        otel, [TWO_CALLS, ANSWER], [get_weather, get_time], agent_name="Weather desk", request_model=MODEL
    )
    assert error is None and events[-1].type == "iteration_end"
    root, chats, tools = tree(otel)
    assert len(otel.spans()) == 5

    assert root.name == "invoke_agent Weather desk" and root.kind is SpanKind.INTERNAL
    assert root.status.status_code is StatusCode.UNSET
    assert dict(root.attributes or {}) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "Weather desk",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.input_tokens": 280,  # both turns
        "gen_ai.usage.output_tokens": 52,
        "gen_ai.response.finish_reasons": ("end_turn",),
    }

    assert [s.name for s in chats] == [f"chat {MODEL}", f"chat {MODEL}"]
    assert all(s.kind is SpanKind.CLIENT for s in chats)
    first, second = (dict(s.attributes or {}) for s in chats)
    response_ids = [e.response_id for e in events if isinstance(e, StreamStart)]
    assert first == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": SERVED,
        "gen_ai.response.id": response_ids[0],
        "gen_ai.response.finish_reasons": ("tool_use",),
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.output_tokens": 40,
        "rxstream.iteration": 1,
    }
    assert second["rxstream.iteration"] == 2 and second["gen_ai.response.id"] == response_ids[1]
    assert second["gen_ai.usage.input_tokens"] == 180 and second["gen_ai.usage.output_tokens"] == 12
    assert second["gen_ai.response.finish_reasons"] == ("end_turn",)

    by_call = {str((s.attributes or {})["gen_ai.tool.call.id"]): s for s in tools}
    assert sorted(by_call) == ["call_A1", "call_B2"]
    assert by_call["call_A1"].name == "execute_tool get_weather"
    assert dict(by_call["call_B2"].attributes or {}) == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "get_time",
        "gen_ai.tool.call.id": "call_B2",
        "gen_ai.tool.type": "function",
    }
    assert all(s.kind is SpanKind.INTERNAL and s.status.status_code is StatusCode.UNSET for s in tools)

    # time order: root ⊇ chat 1 < tools (start when turn 1 ends) < chat 2 ⊆ root
    def times(s: ReadableSpan) -> tuple[int, int]:
        assert s.start_time is not None and s.end_time is not None
        return s.start_time, s.end_time

    (r0, r1), (c10, c11), (c20, c21) = times(root), times(chats[0]), times(chats[1])
    assert r0 <= c10 < c11 <= c20 < c21 <= r1
    for span in tools:
        t0, t1 = times(span)
        assert t0 == c11 and t0 <= t1 <= c20

    # one operation duration (and token usage pair) per model turn, operation "chat"
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.count == 2 and duration.attributes["gen_ai.operation.name"] == "chat"
    usage = {
        p.attributes["gen_ai.token.type"]: (p.count, p.sum) for p in otel.points("gen_ai.client.token.usage")
    }
    assert usage == {"input": (2, 280), "output": (2, 52)}
    assert sum(p.count for p in otel.points("gen_ai.client.operation.time_to_first_chunk")) == 2

    dump = repr([dict(s.attributes or {}) for s in otel.spans()]) + repr(otel.reader.get_metrics_data())
    dump += repr([(s.name, s.status.description, s.events) for s in otel.spans()])
    assert "SECRET" not in dump
    for content in ("Zürich", "Tokyo", "sunny", "noon", "Checking"):
        assert content not in dump  # no content without capture_content=True


def test_tool_loop_content_only_with_capture_content(otel: Otel) -> None:
    _, error = run_loop(otel, [TWO_CALLS, ANSWER], [get_weather, get_time], capture_content=True)
    assert error is None
    root, chats, tools = tree(otel)
    assert root.name == "invoke_agent"
    by_name = {(s.attributes or {})["gen_ai.tool.name"]: dict(s.attributes or {}) for s in tools}
    weather = by_name["get_weather"]
    assert json.loads(str(weather["gen_ai.tool.call.arguments"])) == {"city": "Zürich"}
    assert weather["gen_ai.tool.call.result"] == "sunny in Zürich"
    messages = [json.loads(str((s.attributes or {})["gen_ai.output.messages"])) for s in chats]
    assert messages[0][0]["parts"][0] == {"type": "text", "content": "Checking both."}
    assert messages[1][0]["parts"] == [{"type": "text", "content": ANSWER.text}]
    assert "SECRET" not in repr([dict(s.attributes or {}) for s in otel.spans()])


def test_tool_error_result_gives_an_error_execute_tool_span(otel: Otel) -> None:
    bad = ResponseScript(
        tool_calls=[scripted_call("call_D", "divide", '{"a": 1, "b": 0}')],
        stop_reason="tool_use",
        input_tokens=20,
        output_tokens=5,
    )
    events, error = run_loop(otel, [bad, ANSWER], [divide])
    assert error is None
    assert [e.is_error for e in events if isinstance(e, ToolResult)] == [True]
    root, chats, (tool,) = tree(otel)
    assert len(chats) == 2
    assert tool.name == "execute_tool divide"
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.status.description is not None and "division" not in tool.status.description
    assert (tool.attributes or {})["error.type"] == "_OTHER"
    assert "gen_ai.tool.call.result" not in (tool.attributes or {})
    # the loop went on: the tool failure is the model's business, not the loop's
    assert root.status.status_code is StatusCode.UNSET
    assert all(s.status.status_code is StatusCode.UNSET for s in chats)
    # with capture_content the message is the status description
    otel.exporter.clear()
    run_loop(otel, [bad, ANSWER], [divide], capture_content=True)
    (tool,) = tree(otel)[2]
    assert tool.status.description == "ZeroDivisionError: float division by zero"


def test_disposal_mid_tool_ends_every_span(otel: Otel) -> None:
    started = threading.Event()
    cancelled = threading.Event()

    @rxs.tool
    async def slow_lookup(city: str) -> str:
        """A lookup that takes long.

        Args:
            city: City name.
        """
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return city

    turn = ResponseScript(
        tool_calls=[scripted_call("call_S", "slow_lookup", '{"city": "Oslo"}')],
        stop_reason="tool_use",
        input_tokens=30,
        output_tokens=7,
    )
    with ProviderEmulator(responder=ToolConversation([turn, ANSWER])) as emu:
        client = anthropic.Anthropic(api_key=SECRET_KEY, base_url=emu.anthropic_base_url)
        loop = rxs.tool_loop(
            rxs.from_anthropic,
            client,
            tools=[slow_lookup],
            model=MODEL,
            max_tokens=256,
            messages=[{"role": "user", "content": "Oslo?"}],
        )
        events: list[StreamEvent] = []
        subscription = loop.pipe(otel.traced()).subscribe(events.append)
        assert started.wait(20), "the tool did not start"
        assert otel.spans()[0].name == f"chat {SERVED}"  # turn 1 ended; the rest is open
        subscription.dispose()
        assert cancelled.wait(20), "disposal did not cancel the tool"
        client.close()
    root, (chat,), (tool,) = tree(otel)
    assert root.name == "invoke_agent" and (root.attributes or {})["rxstream.cancelled"] is True
    assert tool.name == "execute_tool slow_lookup" and (tool.attributes or {})["rxstream.cancelled"] is True
    assert "rxstream.cancelled" not in (chat.attributes or {})  # it ended at its StreamEnd
    assert (root.attributes or {})["gen_ai.usage.input_tokens"] == 30
    assert all(s.end_time is not None for s in (root, chat, tool))
    assert not [e for e in events if isinstance(e, ToolResult)]


# -- tool loops on virtual time: exact span times, error and disposal ----------------------------


def loop_events() -> list[StreamEvent]:
    """A two-iteration tool loop's events (the grammar `rxstream.tool_loop` emits)."""
    usage1 = Usage(input_tokens=10, output_tokens=4)
    usage2 = Usage(input_tokens=20, output_tokens=6, cache_read_tokens=5)
    return [
        IterationStart(stream_id="L", seq=0, iteration=1),
        StreamStart(stream_id="L", seq=1, provider="openai", model="gpt-x", response_id="r1"),
        t(2, "Let me check."),
        ToolCallStart(stream_id="L", seq=3, index=0, id="c1", name="lookup"),
        ToolCallEnd(stream_id="L", seq=4, index=0, id="c1", name="lookup", arguments={"q": "x"}),
        StreamEnd(stream_id="L", seq=5, stop_reason="tool_use", usage=usage1),
        ToolResult(stream_id="L", seq=6, iteration=1, tool_call_id="c1", name="lookup", output="42"),
        IterationEnd(stream_id="L", seq=7, iteration=1, usage=usage1, stop_reason="tool_use"),
        IterationStart(stream_id="L", seq=8, iteration=2),
        StreamStart(stream_id="L", seq=9, provider="openai", model="gpt-x", response_id="r2"),
        t(10, "42."),
        StreamEnd(stream_id="L", seq=11, stop_reason="end_turn", usage=usage2),
        IterationEnd(stream_id="L", seq=12, iteration=2, usage=usage2, stop_reason="end_turn"),
    ]


LOOP_TIMES = [0.0, 0.1, 0.3, 0.4, 0.5, 0.6, 0.9, 0.9, 1.0, 1.1, 1.4, 1.5, 1.5]


def by_name(otel: Otel) -> dict[str, ReadableSpan]:
    return {s.name: s for s in otel.spans()}


def test_tool_loop_span_times_and_metrics_exact_on_virtual_time(otel: Otel) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        *(on_next(at, e) for at, e in zip(LOOP_TIMES, loop_events(), strict=True)), on_completed(1.5)
    )
    scheduler.start(lambda: source.pipe(otel.traced()), created=cast(int, 0.5), subscribed=1, disposed=100)
    spans = otel.spans()
    assert [s.name for s in spans] == ["chat gpt-x", "execute_tool lookup", "chat gpt-x", "invoke_agent"]
    chat1, tool, chat2, root = spans
    assert [(s.start_time, s.end_time) for s in spans] == [
        (1_000_000_000, 1_600_000_000),  # IterationStart → StreamEnd
        (1_600_000_000, 1_900_000_000),  # the turn's end → ToolResult
        (2_000_000_000, 2_500_000_000),
        (1_000_000_000, 2_500_000_000),  # subscription → completion
    ]
    assert (root.attributes or {})["gen_ai.provider.name"] == "openai"
    assert (root.attributes or {})["gen_ai.request.model"] == "gpt-x"
    assert (root.attributes or {})["gen_ai.usage.input_tokens"] == 10 + 25
    assert (root.attributes or {})["gen_ai.usage.output_tokens"] == 10
    assert (root.attributes or {})["gen_ai.usage.cache_read.input_tokens"] == 5
    assert (chat2.attributes or {})["gen_ai.usage.cache_read.input_tokens"] == 5
    assert "gen_ai.usage.cache_read.input_tokens" not in (chat1.attributes or {})
    assert (tool.attributes or {})["gen_ai.tool.call.id"] == "c1"
    (duration,) = otel.points("gen_ai.client.operation.duration")
    assert duration.count == 2 and duration.sum == pytest.approx(0.6 + 0.5)
    (ttfc,) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 2 and ttfc.min == pytest.approx(0.3) and ttfc.max == pytest.approx(0.4)


def test_tool_loop_error_mid_tool_ends_every_span_with_error(otel: Otel) -> None:
    scheduler = TestScheduler()
    error = ProviderError(f"boom (key {SECRET_KEY})", status_code=500)
    source = scheduler.create_cold_observable(
        *(on_next(at, e) for at, e in zip(LOOP_TIMES[:6], loop_events()[:6], strict=True)),
        on_error(0.7, error),
    )
    results = scheduler.start(
        lambda: source.pipe(otel.traced()), created=cast(int, 0.5), subscribed=1, disposed=100
    )
    assert getattr(results.messages[-1].value, "exception", None) is error
    spans = by_name(otel)
    assert sorted(spans) == ["chat gpt-x", "execute_tool lookup", "invoke_agent"]
    assert spans["chat gpt-x"].status.status_code is StatusCode.UNSET  # it ended before the error
    for name in ("execute_tool lookup", "invoke_agent"):
        span = spans[name]
        assert span.status.status_code is StatusCode.ERROR, name
        assert (span.attributes or {})["error.type"] == "rxstream.errors.ProviderError"
        assert span.end_time == 1_700_000_000
        assert "SECRET" not in str(span.status.description)


def test_tool_loop_disposal_mid_turn_and_error_mid_turn(otel: Otel) -> None:
    events = loop_events()
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        *(on_next(at, e) for at, e in zip(LOOP_TIMES, events, strict=True)), on_completed(1.5)
    )
    scheduler.start(lambda: source.pipe(otel.traced()), created=cast(int, 0.5), subscribed=1, disposed=2.2)
    assert source.subscriptions[0].unsubscribe < 2.5  # disposal reached the source before completion
    chat1, tool, chat2, root = otel.spans()
    assert chat2.name == "chat gpt-x" and (chat2.attributes or {})["rxstream.cancelled"] is True
    assert root.name == "invoke_agent" and (root.attributes or {})["rxstream.cancelled"] is True
    assert chat2.end_time == root.end_time == 2_200_000_000
    assert "rxstream.cancelled" not in {**(chat1.attributes or {}), **(tool.attributes or {})}
    cancelled = [
        p for p in otel.points("gen_ai.client.operation.duration") if "rxstream.cancelled" in p.attributes
    ]
    assert len(cancelled) == 1 and cancelled[0].sum == pytest.approx(0.2)

    otel.exporter.clear()
    scheduler2 = TestScheduler()
    error = ProviderError("overloaded", status_code=529)
    source2 = scheduler2.create_cold_observable(
        *(on_next(at, e) for at, e in zip(LOOP_TIMES[:10], events[:10], strict=True)), on_error(1.2, error)
    )
    scheduler2.start(lambda: source2.pipe(otel.traced()), created=cast(int, 0.5), subscribed=1, disposed=100)
    chat1, tool, chat2, root = otel.spans()
    assert chat1.status.status_code is StatusCode.UNSET and tool.status.status_code is StatusCode.UNSET
    assert chat2.status.status_code is StatusCode.ERROR and root.status.status_code is StatusCode.ERROR
    assert (chat2.attributes or {})["error.type"] == "rxstream.errors.ProviderError"
    assert chat2.end_time == root.end_time == 2_200_000_000


def test_the_docs_span_tree_example_prints_what_the_page_says(capsys: pytest.CaptureFixture[str]) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "telemetry.md").read_text(encoding="utf-8")
    section = page[page.index("## Tool loops: a span tree") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    printed = re.search(r"prints\n\n```\n(.*?)```", section, re.DOTALL)
    assert code is not None and printed is not None
    exec(compile(code.group(1), "telemetry.md", "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out == printed.group(1)


def test_spans_are_children_of_the_span_current_at_subscription(otel: Otel) -> None:
    """Events arrive on reader and tool threads; the parent is taken where subscribe ran."""
    tracer = otel.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle request") as outer:
        _, error = run_loop(otel, [TWO_CALLS, ANSWER], [get_weather, get_time])
        with ProviderEmulator(ResponseScript(text="Plain.")) as emu:
            client = anthropic.Anthropic(api_key=SECRET_KEY, base_url=emu.anthropic_base_url)
            stream = rxs.from_anthropic(
                client, model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
            )
            stream.pipe(otel.traced(), rso.final()).run()
            client.close()
    assert error is None
    outer_id = outer.get_span_context().span_id
    spans = otel.spans()
    roots = [s for s in spans if s.parent is not None and s.parent.span_id == outer_id]
    assert sorted(s.name for s in roots) == [f"chat {SERVED}", "invoke_agent"]
    assert len(spans) == 5 + 1 + 1  # the loop's tree, the plain stream's span, the outer span

"""Tests of ``rso.traced`` / `rxstream.telemetry`: in-memory OTel exporter and metric reader."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
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
from opentelemetry.trace import SpanKind, StatusCode
from reactivex.testing import ReactiveTest, TestScheduler

import rxstream as rxs
from rxstream import operators as rso
from rxstream import telemetry
from rxstream.errors import ConfigurationError, ProviderError
from rxstream.events import StreamEnd, StreamStart, TextDelta, ToolCallStart, Usage, UsageUpdate
from rxstream.testing import ProviderEmulator, ResponseScript


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
    ):
        assert getattr(telemetry, name) == getattr(semconv_attrs, name), name
    assert semconv_attrs.GenAiProviderNameValues.AWS_BEDROCK.value == telemetry.provider_name("bedrock")
    assert semconv_attrs.GenAiOperationNameValues.CHAT.value == "chat"


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

"""OpenTelemetry GenAI telemetry for rxstream streams (extra ``rxstream[otel]``).

`GenAIInstrumentation` turns one stream subscription into one ``CLIENT`` span and the GenAI
client metrics, following the OpenTelemetry GenAI semantic conventions as published in
semantic-conventions v1.41 (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/
"Inference" and https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/) and as
named by the ``opentelemetry-semantic-conventions`` package
(``opentelemetry/semconv/_incubating/attributes/gen_ai_attributes.py`` and
``.../metrics/gen_ai_metrics.py``, version 0.66b2; a test compares every name below with the
installed package). The operator ``rxstream.operators.traced`` is the Rx shell around it;
this module holds no Rx and no clock: every method takes ``now`` (a `datetime` from the
scheduler), so durations are exact under ``TestScheduler``.

Span (one per subscription, name ``"chat {model}"``, kind ``CLIENT``), attributes:

* ``gen_ai.operation.name``: ``"chat"``;
* ``gen_ai.provider.name``: ``anthropic`` / ``openai`` / ``aws.bedrock`` (from
  `StreamStart.provider`; other providers verbatim);
* ``gen_ai.request.model``: ``request_model``, else the model reported in `StreamStart`;
* ``gen_ai.response.model``, ``gen_ai.response.id``: from `StreamStart`;
* ``gen_ai.response.finish_reasons``: ``[raw provider stop reason]`` at `StreamEnd`;
* ``gen_ai.usage.input_tokens``: the whole prompt (input + cache read + cache write);
  ``gen_ai.usage.output_tokens``; ``gen_ai.usage.cache_read.input_tokens`` and
  ``gen_ai.usage.cache_creation.input_tokens`` when non-zero;
* ``server.address`` / ``server.port``: when given to the instrumentation;
* on error: ``error.type`` = the error class (e.g. ``rxstream.errors.ProviderError``) and
  status ERROR; on disposal first: ``rxstream.cancelled`` = ``True``;
* ``gen_ai.output.messages``: only with ``capture_content=True``.

Metrics (histograms, seconds or ``{token}``; attributes: operation, provider, request and
response model, server address, ``error.type`` on error, ``gen_ai.token.type`` for usage):
``gen_ai.client.operation.duration`` (subscription → terminal or disposal),
``gen_ai.client.token.usage`` (``input`` and ``output``, when usage was reported),
``gen_ai.client.operation.time_to_first_chunk`` (subscription → first text, thinking or
tool-call event, as `rxstream.operators.first_token_timeout` counts it) and
``gen_ai.client.operation.time_per_output_chunk`` (gap between consecutive content deltas).

Nothing from the request is read (no prompt, no params, no headers), so no secret can
reach a span or a metric; output text is recorded only with ``capture_content=True``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from rxstream._extras import require
from rxstream.cassette import redact
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta, ThinkingDelta, Usage, UsageUpdate
from rxstream.response import ResponseAccumulator

require("opentelemetry.trace", "otel")

from opentelemetry import metrics as otel_metrics  # noqa: E402
from opentelemetry import trace as otel_trace  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402

__all__ = [
    "ATTR_CANCELLED",
    "GEN_AI_CLIENT_OPERATION_DURATION",
    "GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK",
    "GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK",
    "GEN_AI_CLIENT_TOKEN_USAGE",
    "GenAIInstrumentation",
    "StreamTelemetry",
    "provider_name",
]

# Semantic-convention names (opentelemetry-semantic-conventions 0.66b2, gen_ai_attributes.py,
# gen_ai_metrics.py, error_attributes.py, server_attributes.py). Literal here because the
# ``otel`` extra installs only ``opentelemetry-api``.
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
ATTR_CANCELLED = "rxstream.cancelled"
"""Span and duration-metric attribute set to ``True`` when the subscriber disposed first."""

GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK = "gen_ai.client.operation.time_per_output_chunk"

# Bucket advice from gen-ai-metrics.md (v1.41): seconds for the durations, powers of 4 for tokens.
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_CHUNK_BUCKETS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_TOKEN_BUCKETS = tuple(float(4**k) for k in range(14))

_PROVIDER_NAMES = {
    "anthropic": "anthropic",
    "openai": "openai",
    "openai-responses": "openai",
    "bedrock": "aws.bedrock",
    "bedrock-invoke": "aws.bedrock",
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def provider_name(provider: str) -> str:
    """Map `StreamStart.provider` to the semconv ``gen_ai.provider.name`` well-known value."""
    return _PROVIDER_NAMES.get(provider, provider)


def _ns(now: datetime) -> int:
    """Nanoseconds since the epoch of a scheduler time (naive datetimes are taken as UTC)."""
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


class GenAIInstrumentation:
    """Tracer, meter and the four GenAI instruments, shared by every traced subscription.

    Args:
        tracer_provider: Tracer provider; default the global one (``opentelemetry.trace``).
        meter_provider: Meter provider; default the global one.
        capture_content: Record the output messages (``gen_ai.output.messages``) on the span.
        request_model: The requested model (``gen_ai.request.model``); default: the model
            the stream reports in `StreamStart`.
        server_address: ``server.address`` (e.g. ``api.anthropic.com``), when known.
        server_port: ``server.port``, when known.

    Raises:
        ConfigurationError: if ``opentelemetry-api`` is not installed (at import).
    """

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        capture_content: bool = False,
        request_model: str | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> None:
        from rxstream import __version__

        self.tracer = otel_trace.get_tracer("rxstream", __version__, tracer_provider=tracer_provider)
        meter = otel_metrics.get_meter("rxstream", __version__, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.token_usage = meter.create_histogram(
            GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.time_to_first_chunk = meter.create_histogram(
            GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of the response stream.",
            explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS,
        )
        self.time_per_output_chunk = meter.create_histogram(
            GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between two consecutive output chunks.",
            explicit_bucket_boundaries_advisory=_CHUNK_BUCKETS,
        )
        self.capture_content = capture_content
        self.request_model = request_model
        self.server_address = server_address
        self.server_port = server_port

    def start(self, now: datetime) -> StreamTelemetry:
        """Open the span of one subscription started at ``now`` (scheduler time)."""
        return StreamTelemetry(self, now)


class StreamTelemetry:
    """The span and measurements of one subscription; ends its span exactly once.

    Thread-safe: events arrive on the source's thread, disposal may come from any thread.
    """

    def __init__(self, owner: GenAIInstrumentation, now: datetime) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._start = now
        self._ended = False
        self._first_chunk: datetime | None = None
        self._last_chunk: datetime | None = None
        self._usage: Usage | None = None
        self._content = ResponseAccumulator() if owner.capture_content else None
        attributes: dict[str, Any] = {GEN_AI_OPERATION_NAME: "chat"}
        if owner.request_model:
            attributes[GEN_AI_REQUEST_MODEL] = owner.request_model
        if owner.server_address:
            attributes[SERVER_ADDRESS] = owner.server_address
            if owner.server_port is not None:
                attributes[SERVER_PORT] = owner.server_port
        self._metric_attributes: dict[str, Any] = dict(attributes)
        name = f"chat {owner.request_model}" if owner.request_model else "chat"
        self.span = owner.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=attributes, start_time=_ns(now)
        )

    def observe(self, event: StreamEvent, now: datetime) -> None:
        """Account for ``event`` received at ``now``."""
        with self._lock:
            if self._ended:
                return
            if self._content is not None:
                self._content.add(event)
            kind = type(event)
            if kind is TextDelta or kind is ThinkingDelta:
                if event.text:  # type: ignore[union-attr]
                    self._chunk(now)
            elif kind is StreamStart:
                self._on_start(event)  # type: ignore[arg-type]
            elif kind is UsageUpdate:
                self._usage = event.usage  # type: ignore[union-attr]
            elif kind is StreamEnd:
                self._on_end(event)  # type: ignore[arg-type]
            elif event.type == "tool_call_start":
                self._chunk(now)

    def _chunk(self, now: datetime) -> None:
        owner = self._owner
        if self._first_chunk is None:
            self._first_chunk = now
            owner.time_to_first_chunk.record(_seconds(now, self._start), self._metric_attributes)
        elif self._last_chunk is not None:
            owner.time_per_output_chunk.record(_seconds(now, self._last_chunk), self._metric_attributes)
        self._last_chunk = now

    def _on_start(self, event: StreamStart) -> None:
        span = self.span
        attrs = {GEN_AI_PROVIDER_NAME: provider_name(event.provider)}
        if event.model:
            attrs[GEN_AI_RESPONSE_MODEL] = event.model
        request_model = self._owner.request_model or event.model
        if request_model:
            attrs[GEN_AI_REQUEST_MODEL] = request_model
            span.update_name(f"chat {request_model}")
        span.set_attributes(attrs)
        if event.response_id:
            span.set_attribute(GEN_AI_RESPONSE_ID, event.response_id)
        self._metric_attributes.update(attrs)

    def _on_end(self, event: StreamEnd) -> None:
        self._usage = event.usage
        raw = (event.provider_details or {}).get("stop_reason")
        self.span.set_attribute(GEN_AI_RESPONSE_FINISH_REASONS, [str(raw) if raw else event.stop_reason])

    def complete(self, now: datetime) -> None:
        """The stream completed at ``now``: record usage and duration, end the span."""
        self._finish(now, error=None, cancelled=False)

    def fail(self, error: Exception, now: datetime) -> None:
        """The stream failed at ``now``: status ERROR with ``error.type``, end the span."""
        self._finish(now, error=error, cancelled=False)

    def cancel(self, now: datetime) -> None:
        """The subscriber disposed at ``now`` before a terminal: mark cancelled, end the span."""
        self._finish(now, error=None, cancelled=True)

    def _finish(self, now: datetime, *, error: Exception | None, cancelled: bool) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        owner, span = self._owner, self.span
        attrs = dict(self._metric_attributes)
        usage = self._usage
        if usage is not None:
            whole_prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
            span.set_attribute(GEN_AI_USAGE_INPUT_TOKENS, whole_prompt)
            span.set_attribute(GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
            if usage.cache_read_tokens:
                span.set_attribute(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens)
            if usage.cache_write_tokens:
                span.set_attribute(GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_write_tokens)
            owner.token_usage.record(whole_prompt, {**attrs, GEN_AI_TOKEN_TYPE: "input"})
            owner.token_usage.record(usage.output_tokens, {**attrs, GEN_AI_TOKEN_TYPE: "output"})
        if self._content is not None:
            span.set_attribute(GEN_AI_OUTPUT_MESSAGES, _output_messages(self._content))
        if error is not None:
            error_type = f"{type(error).__module__}.{type(error).__qualname__}"
            attrs[ERROR_TYPE] = error_type
            span.set_attribute(ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, redact(str(error))))
        if cancelled:
            attrs[ATTR_CANCELLED] = True
            span.set_attribute(ATTR_CANCELLED, True)
        owner.duration.record(_seconds(now, self._start), attrs)
        span.end(end_time=_ns(now))


def _output_messages(acc: ResponseAccumulator) -> str:
    """``gen_ai.output.messages`` as JSON (semconv "output messages" schema: role, parts)."""
    response = acc.snapshot()
    parts: list[dict[str, Any]] = []
    if response.thinking:
        parts.append({"type": "reasoning", "content": response.thinking})
    if response.text:
        parts.append({"type": "text", "content": response.text})
    parts.extend(
        {"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments}
        for call in response.tool_calls
    )
    message: dict[str, Any] = {"role": "assistant", "parts": parts}
    if response.stop_reason is not None:
        message["finish_reason"] = response.raw_stop_reason or response.stop_reason
    return json.dumps([message], ensure_ascii=False)

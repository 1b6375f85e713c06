"""OpenTelemetry GenAI telemetry for rxstream streams (extra ``rxstream[otel]``).

`GenAIInstrumentation` turns one stream subscription into one ``CLIENT`` span (a tool loop:
a span tree, below) and the GenAI client metrics, following the OpenTelemetry GenAI
semantic conventions as published in semantic-conventions v1.41
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/ "Inference" and
https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/) and as named by the
``opentelemetry-semantic-conventions`` package
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

Tool loops (`rxstream.tool_loop`: the first event is an `IterationStart`) get a span tree
instead of one flat span, following semantic-conventions v1.41
``docs/gen-ai/gen-ai-agent-spans.md`` ("Invoke agent internal span") and
``docs/gen-ai/gen-ai-spans.md`` ("Inference", "Execute tool span") in
github.com/open-telemetry/semantic-conventions (tag v1.41.0; after v1.44 these pages moved
to the semantic-conventions-genai repository)::

    invoke_agent [{agent_name}]   INTERNAL  subscription → terminal or disposal
    ├── chat {model}              CLIENT    iteration 1: IterationStart → StreamEnd
    ├── execute_tool {tool name}  INTERNAL  the turn's StreamEnd → its ToolResult
    ├── execute_tool {tool name}  INTERNAL  (one per executed call; parallel calls overlap)
    └── chat {model}              CLIENT    iteration 2 ...

* The parent is ``invoke_agent``, kind ``INTERNAL``: the loop is an agent running in this
  process ("Invoke agent internal span": "Describes GenAI agent invocation within the same
  process", examples LangChain and CrewAI agents), not one inference, so ``chat`` would
  misreport it (and its usage would double-count the turns' usage). Attributes:
  ``gen_ai.operation.name`` = ``invoke_agent``, ``gen_ai.agent.name`` (when given; the span
  name is then ``invoke_agent {name}``, else ``invoke_agent``), ``gen_ai.provider.name`` and
  ``gen_ai.request.model`` (from the first turn unless given), ``server.*``, the **total**
  usage of all turns (``gen_ai.usage.*``, input counted as above) and the last turn's
  ``gen_ai.response.finish_reasons``.
* A ``chat`` span per model turn, child of the parent, with exactly the attributes of a plain
  stream's span for that turn alone (usage of that turn) plus ``rxstream.iteration``. It
  starts at `IterationStart`, which the loop emits right before sending the turn's request
  (``rxstream/tools/loop.py``, ``start_turn``), so like a plain stream's span it covers the
  time to first token; it ends at the turn's `StreamEnd`.
* An ``execute_tool {gen_ai.tool.name}`` span per executed tool call, child of the parent:
  ``gen_ai.operation.name`` = ``execute_tool``, ``gen_ai.tool.name``,
  ``gen_ai.tool.call.id`` (the `ToolCallEnd` id), ``gen_ai.tool.type`` = ``function``
  (executed client-side, semconv note on ``gen_ai.tool.type``). It starts when the turn that
  asked for it ends — the loop starts the tools only after the turn's stream completed, so
  a call that ended early in a turn has not started running at its `ToolCallEnd` — and ends
  at its `ToolResult`. An error result: status ERROR and ``error.type`` = ``_OTHER`` (the
  semconv fallback; a `ToolResult` carries a message, not an error class). With
  ``capture_content=True`` only: ``gen_ai.tool.call.arguments`` (JSON),
  ``gen_ai.tool.call.result`` and the error message as status description. Calls the loop
  does not execute (turn cut at ``max_tokens``, the no-tools final turn) get no span.
* Metrics are per model turn: one ``gen_ai.client.operation.duration``, one
  ``gen_ai.client.token.usage`` pair and the chunk timings (time to first chunk counted from
  `IterationStart`) per turn, with ``gen_ai.operation.name`` = ``chat``, as for a plain
  stream; none for the loop as a whole (its time is on the ``invoke_agent`` span). The
  metrics page ("Generative AI client metrics": "An operation may be a request to an LLM, a
  function call, or some other distinct action") would also allow ``execute_tool`` and
  ``invoke_agent`` durations; they are not recorded, so the ``chat`` distribution is the
  same whether a request ran alone or in a loop.
* Disposal ends every open span (the running turn's ``chat``, the running tools'
  ``execute_tool``, the parent) with ``rxstream.cancelled`` = ``True``; an error ends them
  all with status ERROR and ``error.type`` = the error class.

Nothing from the request is read (no prompt, no params, no headers), so no secret can
reach a span or a metric; output text, tool arguments and tool results are recorded only
with ``capture_content=True``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from rxstream._extras import require
from rxstream.cassette import redact
from rxstream.events import (
    IterationEnd,
    IterationStart,
    StreamEnd,
    StreamEvent,
    StreamReset,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageUpdate,
)
from rxstream.response import ResponseAccumulator

require("opentelemetry.trace", "otel")

from opentelemetry import context as otel_context  # noqa: E402
from opentelemetry import metrics as otel_metrics  # noqa: E402
from opentelemetry import trace as otel_trace  # noqa: E402
from opentelemetry.context import Context  # noqa: E402
from opentelemetry.trace import Span, SpanKind, Status, StatusCode  # noqa: E402

__all__ = [
    "ATTR_CANCELLED",
    "ATTR_ITERATION",
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
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
ATTR_CANCELLED = "rxstream.cancelled"
"""Span and duration-metric attribute set to ``True`` when the subscriber disposed first."""
ATTR_ITERATION = "rxstream.iteration"
"""Attribute of a tool loop's ``chat`` span: the `IterationStart.iteration` it belongs to."""
TOOL_ERROR_TYPE = "_OTHER"
"""``error.type`` of an ``execute_tool`` span whose `ToolResult` is an error: the semconv
fallback value (error-attributes registry, ``_OTHER``), since a `ToolResult` carries the
error message, not a class."""

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
        agent_name: ``gen_ai.agent.name`` of a tool loop's ``invoke_agent`` span (its name
            becomes ``invoke_agent {agent_name}``); unused for a plain stream.

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
        agent_name: str | None = None,
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
        self.agent_name = agent_name

    def start(self, now: datetime) -> StreamTelemetry:
        """The telemetry of one subscription started at ``now`` (scheduler time)."""
        return StreamTelemetry(self, now)

    def attributes(self, operation: str) -> dict[str, Any]:
        """A new span's attributes known before the response: operation, request model, server."""
        attributes: dict[str, Any] = {GEN_AI_OPERATION_NAME: operation}
        if self.request_model:
            attributes[GEN_AI_REQUEST_MODEL] = self.request_model
        if self.server_address:
            attributes[SERVER_ADDRESS] = self.server_address
            if self.server_port is not None:
                attributes[SERVER_PORT] = self.server_port
        return attributes


class _Turn:
    """One model request: its ``chat`` span and its metrics. No lock: the owner's lock guards it."""

    __slots__ = (
        "content",
        "finish_reason",
        "first_chunk",
        "last_chunk",
        "metric_attributes",
        "owner",
        "span",
        "start",
        "usage",
    )

    def __init__(
        self, owner: GenAIInstrumentation, now: datetime, parent: Context | None, iteration: int | None
    ) -> None:
        self.owner = owner
        self.start = now
        self.first_chunk: datetime | None = None
        self.last_chunk: datetime | None = None
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.content = ResponseAccumulator() if owner.capture_content else None
        attributes = owner.attributes("chat")
        self.metric_attributes: dict[str, Any] = dict(attributes)
        if iteration is not None:
            attributes[ATTR_ITERATION] = iteration
        name = f"chat {owner.request_model}" if owner.request_model else "chat"
        self.span: Span = owner.tracer.start_span(
            name, context=parent, kind=SpanKind.CLIENT, attributes=attributes, start_time=_ns(now)
        )

    def observe(self, event: StreamEvent, now: datetime) -> None:
        if self.content is not None:
            self.content.add(event)
        kind = type(event)
        if kind is TextDelta or kind is ThinkingDelta:
            if event.text:  # type: ignore[union-attr]
                self._chunk(now)
        elif kind is StreamStart:
            self._on_start(event)  # type: ignore[arg-type]
        elif kind is UsageUpdate:
            self.usage = event.usage  # type: ignore[union-attr]
        elif kind is StreamEnd:
            self._on_end(event)  # type: ignore[arg-type]
        elif kind is ToolCallStart:
            self._chunk(now)

    def _chunk(self, now: datetime) -> None:
        owner = self.owner
        if self.first_chunk is None:
            self.first_chunk = now
            owner.time_to_first_chunk.record(_seconds(now, self.start), self.metric_attributes)
        elif self.last_chunk is not None:
            owner.time_per_output_chunk.record(_seconds(now, self.last_chunk), self.metric_attributes)
        self.last_chunk = now

    def _on_start(self, event: StreamStart) -> None:
        span = self.span
        attrs = {GEN_AI_PROVIDER_NAME: provider_name(event.provider)}
        if event.model:
            attrs[GEN_AI_RESPONSE_MODEL] = event.model
        request_model = self.owner.request_model or event.model
        if request_model:
            attrs[GEN_AI_REQUEST_MODEL] = request_model
            span.update_name(f"chat {request_model}")
        span.set_attributes(attrs)
        if event.response_id:
            span.set_attribute(GEN_AI_RESPONSE_ID, event.response_id)
        self.metric_attributes.update(attrs)

    def _on_end(self, event: StreamEnd) -> None:
        self.usage = event.usage
        raw = (event.provider_details or {}).get("stop_reason")
        self.finish_reason = str(raw) if raw else event.stop_reason
        self.span.set_attribute(GEN_AI_RESPONSE_FINISH_REASONS, [self.finish_reason])

    def finish(self, now: datetime, error: Exception | None, cancelled: bool) -> None:
        """Record usage and duration, set the terminal attributes, end the span at ``now``."""
        owner, span = self.owner, self.span
        attrs = dict(self.metric_attributes)
        usage = self.usage
        if usage is not None:
            whole_prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
            _set_usage(span, whole_prompt, usage)
            owner.token_usage.record(whole_prompt, {**attrs, GEN_AI_TOKEN_TYPE: "input"})
            owner.token_usage.record(usage.output_tokens, {**attrs, GEN_AI_TOKEN_TYPE: "output"})
        if self.content is not None:
            span.set_attribute(GEN_AI_OUTPUT_MESSAGES, _output_messages(self.content))
        if error is not None:
            attrs[ERROR_TYPE] = _fail(span, error)
        if cancelled:
            attrs[ATTR_CANCELLED] = True
            span.set_attribute(ATTR_CANCELLED, True)
        owner.duration.record(_seconds(now, self.start), attrs)
        span.end(end_time=_ns(now))


def _set_usage(span: Span, whole_prompt: int, usage: Usage) -> None:
    span.set_attribute(GEN_AI_USAGE_INPUT_TOKENS, whole_prompt)
    span.set_attribute(GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
    if usage.cache_read_tokens:
        span.set_attribute(GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens)
    if usage.cache_write_tokens:
        span.set_attribute(GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_write_tokens)


def _fail(span: Span, error: Exception) -> str:
    """Set ``error.type`` (the error's class) and status ERROR on ``span``; return the type."""
    error_type = f"{type(error).__module__}.{type(error).__qualname__}"
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, redact(str(error))))
    return error_type


class _ToolCall:
    """A completed tool call of the current turn, waiting for its `ToolResult`."""

    __slots__ = ("arguments", "name", "start")

    def __init__(self, name: str, arguments: dict[str, Any]) -> None:
        self.name = name
        self.arguments = arguments
        self.start: datetime | None = None  # set when the turn ends: the loop runs tools then


class StreamTelemetry:
    """The spans and measurements of one subscription; ends every span it opens exactly once.

    A plain stream gets one ``chat`` span (opened at subscription). A tool loop — the first
    event is an `IterationStart` (`rxstream.tool_loop`) — gets the span tree described in the
    module docstring: an ``invoke_agent`` parent, a ``chat`` child per model turn and an
    ``execute_tool`` child per tool execution.

    Thread-safe: events arrive on the source's threads (model turns on the reader, tool
    results on the tools' asyncio loop), disposal may come from any thread.
    """

    def __init__(self, owner: GenAIInstrumentation, now: datetime) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._start = now
        # The root span is opened at the first event (or terminal), on the source's thread;
        # its parent is whatever span was current where the subscription was made.
        self._parent: Context = otel_context.get_current()
        self._ended = False
        self._loop = False
        self._turn: _Turn | None = None  # the open chat span
        self._agent: Span | None = None  # the loop's invoke_agent span
        self._agent_context: Context | None = None
        self._agent_model = False  # gen_ai.request.model set on the agent span
        self._calls: dict[str, _ToolCall] = {}
        self._totals = [0, 0, 0, 0]  # whole prompt, output, cache read, cache write: all turns
        self._usage_seen = False
        self._last_finish_reason: str | None = None

    @property
    def span(self) -> Span | None:
        """The subscription's root span: ``chat`` (plain stream) or ``invoke_agent`` (tool loop).

        ``None`` until the first event or terminal decides which; its start time is the
        subscription's either way.
        """
        return self._agent if self._loop else (self._turn.span if self._turn is not None else None)

    def observe(self, event: StreamEvent, now: datetime) -> None:
        """Account for ``event`` received at ``now``."""
        with self._lock:
            if self._ended:
                return
            turn = self._turn
            if not self._loop:
                if turn is None:
                    if type(event) is IterationStart:
                        self._open_agent()
                        self._observe_loop(event, now)
                        return
                    turn = self._turn = _Turn(self._owner, self._start, self._parent, None)
                turn.observe(event, now)
                return
            self._observe_loop(event, now)

    # -- tool loop ----------------------------------------------------------------------------

    def _open_agent(self) -> None:
        owner = self._owner
        attributes = owner.attributes("invoke_agent")
        if owner.agent_name:
            attributes[GEN_AI_AGENT_NAME] = owner.agent_name
        self._agent_model = bool(owner.request_model)
        name = f"invoke_agent {owner.agent_name}" if owner.agent_name else "invoke_agent"
        self._agent = owner.tracer.start_span(
            name,
            context=self._parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(self._start),
        )
        self._agent_context = otel_trace.set_span_in_context(self._agent)
        self._loop = True

    def _observe_loop(self, event: StreamEvent, now: datetime) -> None:
        kind = type(event)
        if kind is IterationStart:
            if self._turn is not None:  # not in the loop grammar; never leave a span open
                self._end_turn(now, None, cancelled=False)
            self._calls.clear()
            self._turn = _Turn(self._owner, now, self._agent_context, event.iteration)  # type: ignore[union-attr]
            return
        if kind is ToolResult:
            self._tool_result(event, now)  # type: ignore[arg-type]
            return
        if kind is IterationEnd:
            self._calls.clear()  # calls the loop did not execute get no span
            return
        turn = self._turn
        if turn is None:
            return
        turn.observe(event, now)
        if kind is ToolCallEnd:
            self._calls[event.id] = _ToolCall(event.name, event.arguments)  # type: ignore[union-attr]
        elif kind is StreamStart:
            self._agent_start(event)  # type: ignore[arg-type]
        elif kind is StreamReset:
            self._calls.clear()  # a retry restarted the turn: its earlier calls are void
        elif kind is StreamEnd:
            if event.stop_reason != "max_tokens":  # type: ignore[union-attr]  # loop runs no tools then
                for call in self._calls.values():
                    call.start = now
            self._end_turn(now, None, cancelled=False)

    def _agent_start(self, event: StreamStart) -> None:
        agent = self._agent
        assert agent is not None
        agent.set_attribute(GEN_AI_PROVIDER_NAME, provider_name(event.provider))
        if not self._agent_model and event.model:
            agent.set_attribute(GEN_AI_REQUEST_MODEL, event.model)
            self._agent_model = True

    def _end_turn(self, now: datetime, error: Exception | None, *, cancelled: bool) -> None:
        turn = self._turn
        if turn is None:
            return
        self._turn = None
        turn.finish(now, error, cancelled)
        usage = turn.usage
        if usage is not None:
            totals = self._totals
            totals[0] += usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
            totals[1] += usage.output_tokens
            totals[2] += usage.cache_read_tokens
            totals[3] += usage.cache_write_tokens
            self._usage_seen = True
        if turn.finish_reason is not None:
            self._last_finish_reason = turn.finish_reason

    def _tool_span(self, name: str, call_id: str, call: _ToolCall | None, start: datetime) -> Span:
        attributes: dict[str, Any] = {
            GEN_AI_OPERATION_NAME: "execute_tool",
            GEN_AI_TOOL_NAME: name,
            GEN_AI_TOOL_CALL_ID: call_id,
            GEN_AI_TOOL_TYPE: "function",
        }
        if self._owner.capture_content and call is not None:
            attributes[GEN_AI_TOOL_CALL_ARGUMENTS] = json.dumps(call.arguments, ensure_ascii=False)
        return self._owner.tracer.start_span(
            f"execute_tool {name}",
            context=self._agent_context,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(start),
        )

    def _tool_result(self, event: ToolResult, now: datetime) -> None:
        call = self._calls.pop(event.tool_call_id, None)
        start = call.start if call is not None and call.start is not None else now
        span = self._tool_span(event.name, event.tool_call_id, call, start)
        capture = self._owner.capture_content
        if event.is_error:
            span.set_attribute(ERROR_TYPE, TOOL_ERROR_TYPE)
            description = redact(event.output) if capture else "the tool call failed"
            span.set_status(Status(StatusCode.ERROR, description))
        elif capture:
            span.set_attribute(GEN_AI_TOOL_CALL_RESULT, event.output)
        span.end(end_time=_ns(now))

    # -- terminal -----------------------------------------------------------------------------

    def complete(self, now: datetime) -> None:
        """The stream completed at ``now``: record usage and duration, end the span(s)."""
        self._finish(now, error=None, cancelled=False)

    def fail(self, error: Exception, now: datetime) -> None:
        """The stream failed at ``now``: every open span gets status ERROR and ``error.type``."""
        self._finish(now, error=error, cancelled=False)

    def cancel(self, now: datetime) -> None:
        """The subscriber disposed at ``now`` before a terminal: every open span ends, cancelled."""
        self._finish(now, error=None, cancelled=True)

    def _finish(self, now: datetime, *, error: Exception | None, cancelled: bool) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            if not self._loop:
                turn = self._turn or _Turn(self._owner, self._start, self._parent, None)
                self._turn = turn
                turn.finish(now, error, cancelled)
                return
            self._end_turn(now, error, cancelled=cancelled)
            for call_id, call in self._calls.items():
                if call.start is None:  # the turn did not end: the tool never started
                    continue
                span = self._tool_span(call.name, call_id, call, call.start)
                if error is not None:
                    _fail(span, error)
                if cancelled:
                    span.set_attribute(ATTR_CANCELLED, True)
                span.end(end_time=_ns(now))
            self._calls.clear()
            agent = self._agent
            assert agent is not None
            if self._usage_seen:
                whole_prompt, output, cache_read, cache_write = self._totals
                usage = Usage(
                    input_tokens=whole_prompt - cache_read - cache_write,
                    output_tokens=output,
                    cache_read_tokens=cache_read,
                    cache_write_tokens=cache_write,
                )
                _set_usage(agent, whole_prompt, usage)
            if self._last_finish_reason is not None:
                agent.set_attribute(GEN_AI_RESPONSE_FINISH_REASONS, [self._last_finish_reason])
            if error is not None:
                _fail(agent, error)
            if cancelled:
                agent.set_attribute(ATTR_CANCELLED, True)
            agent.end(end_time=_ns(now))


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

"""AWS Bedrock streaming through boto3: ``from_bedrock`` (ConverseStream) and ``from_bedrock_invoke``.

Transport. boto3 is synchronous: ``client.converse_stream(**params)`` /
``client.invoke_model_with_response_stream(**params)`` sends the request and returns once the
response headers arrived; the body is a botocore ``EventStream`` (``botocore/eventstream.py``)
that decodes the binary ``application/vnd.amazon.eventstream`` frames (AWS "Event stream
encoding": prelude, headers, payload, two CRC32s) and yields one dict per event, keyed by the
event's ``:event-type`` header. The read runs on the scheduler (see
`rxstream.providers._source`); nothing is sent before ``subscribe`` and each subscription sends
one request. boto3 does auth (SigV4), endpoint resolution and retries of the initial request.

Wire facts (``botocore/data/bedrock-runtime/2023-09-30/service-2.json``; AWS Bedrock API
Reference, "ConverseStream", "ConverseStreamOutput", "InvokeModelWithResponseStream",
"ResponseStream"):

* ConverseStream events (members of ``ConverseStreamOutput``): ``messageStart {role}``;
  ``contentBlockStart {start: {toolUse: {toolUseId, name}}, contentBlockIndex}`` (only tool
  blocks have one; text and reasoning blocks start with their first delta);
  ``contentBlockDelta {delta: {text} | {toolUse: {input}} | {reasoningContent: {text} |
  {signature} | {redactedContent}}, contentBlockIndex}``; ``contentBlockStop
  {contentBlockIndex}``; ``messageStop {stopReason, additionalModelResponseFields}``;
  ``metadata {usage: {inputTokens, outputTokens, totalTokens, cacheReadInputTokens,
  cacheWriteInputTokens}, metrics: {latencyMs}, trace, performanceConfig, serviceTier}``, which
  comes after ``messageStop``.
* ``stopReason`` enum: ``end_turn``, ``tool_use``, ``max_tokens``, ``stop_sequence``,
  ``guardrail_intervened``, ``content_filtered``, ``malformed_model_output``,
  ``malformed_tool_use``, ``model_context_window_exceeded``.
* In-stream exceptions are frames with ``:message-type: exception`` and ``:exception-type``
  set to the camelCase member name: ``internalServerException`` (HTTP 500),
  ``modelStreamErrorException`` (424), ``validationException`` (400), ``throttlingException``
  (429), ``serviceUnavailableException`` (503) and, for InvokeModelWithResponseStream only,
  ``modelTimeoutException`` (408). botocore raises ``botocore.exceptions.EventStreamError``
  (a ``ClientError`` whose ``Error.Code`` is that name) while iterating
  (``EventStream._parse_event``); a dict keyed by the name is handled the same way.
* InvokeModelWithResponseStream events (``ResponseStream``): ``{"chunk": {"bytes": b"..."}}``,
  where botocore has already base64-decoded ``bytes`` (a ``PartBody`` blob); for Anthropic
  Claude models each chunk is one Anthropic Messages stream event as JSON, ``message_stop``
  carrying ``amazon-bedrock-invocationMetrics`` (Bedrock User Guide, "Anthropic Claude
  Messages API").
* The request id is ``response["ResponseMetadata"]["RequestId"]`` (the ``x-amzn-requestid``
  header). Errors before the stream are ``botocore.exceptions.ClientError`` with
  ``Error.Code`` (``ThrottlingException``, ``AccessDeniedException``, ``ValidationException``,
  ...) and ``ResponseMetadata.HTTPStatusCode``.

Mapping to the neutral schema (ConverseStream; InvokeModel reuses
`rxstream.providers.anthropic.AnthropicNormaliser` with ``provider="bedrock-invoke"``):

* ``messageStart`` → `StreamStart` (``model`` = the request's ``modelId``, ``request_id``).
* ``delta.text`` → `TextDelta`; ``delta.reasoningContent.text`` / ``.signature`` →
  `ThinkingDelta`; ``.redactedContent`` → `ThinkingDelta` with
  ``provider_details["redacted_content"]`` (base64 text).
* tool blocks → `ToolCallStart` / `ToolCallDelta` (``delta.toolUse.input`` fragments) /
  `ToolCallEnd` at ``contentBlockStop``; ``index`` counts tool calls (0, 1, ...), the content
  block index is in ``provider_details["content_block_index"]`` of `ToolCallStart`.
* ``metadata`` → `UsageUpdate` (raw usage in ``provider_details["usage"]``), then `StreamEnd`
  with the ``messageStop`` stop reason (raw value in ``provider_details["stop_reason"]``,
  ``metrics.latencyMs`` in ``provider_details["latency_ms"]``). A stream that ends after
  ``messageStop`` without ``metadata`` still ends with `StreamEnd`.

Disposal. The abort callback shuts down the socket under the event stream, found through the
urllib3 response botocore streams from (``EventStream._raw_stream``, set in
``parsers.py:_create_event_stream`` from ``endpoint.py:convert_to_response_dict``): urllib3 ≥
2.3's public ``HTTPResponse.shutdown()`` (``SHUT_RD`` on the socket it saved at
``getresponse``), plus ``SHUT_RDWR`` on ``HTTPResponse.connection.sock`` when the connection
still owns it, so the server sees the FIN at once. A blocked read then returns and the reading
thread closes the response. Calling ``close()`` from the disposing thread instead is not
enough: it does not wake a blocked read (urllib3 issue #2868).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from reactivex import Observable, abc

from rxstream._extras import require
from rxstream._lean import text_delta, thinking_delta, tool_call_delta
from rxstream._sdk_internals import event_stream_operation, event_stream_raw, watch_botocore_connections
from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    StreamDecodeError,
    StreamError,
    StreamInterruptedError,
    is_retryable_status,
    parse_retry_after,
)
from rxstream.events import (
    StopReason,
    StreamEnd,
    StreamEvent,
    StreamStart,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from rxstream.providers._eventstream import EventStreamDecodeError, decode_frames
from rxstream.providers._guards import check_scheduler
from rxstream.providers._source import Control, session_observable
from rxstream.providers._tool_args import ArgumentBuffer, parse_json_object, tool_call_end
from rxstream.providers.anthropic import AnthropicNormaliser

__all__ = [
    "BedrockConverseNormaliser",
    "BedrockInvokeNormaliser",
    "bedrock_stream_error",
    "from_bedrock",
    "from_bedrock_invoke",
    "map_botocore_error",
    "normalize_bedrock_stop_reason",
]

logger = logging.getLogger("rxstream")

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}

# In-stream exception members of ConverseStreamOutput / ResponseStream → (HTTP status of the
# error shape in service-2.json, retryable). The shapes' docs say "Retry your request" for the
# retryable ones; validationException is the caller's fault.
_STREAM_EXCEPTIONS: dict[str, tuple[int, bool]] = {
    "throttlingException": (429, True),
    "internalServerException": (500, True),
    "serviceUnavailableException": (503, True),
    "modelStreamErrorException": (424, True),
    "modelTimeoutException": (408, True),
    "validationException": (400, False),
}

# Error codes of ClientError before the stream that are worth retrying whatever the status
# (service-2.json error shapes of ConverseStream / InvokeModelWithResponseStream).
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelTimeoutException",
    }
)


def normalize_bedrock_stop_reason(raw: str | None) -> StopReason:
    """Map a Converse ``stopReason`` to the neutral `StopReason`.

    ``end_turn``, ``tool_use``, ``max_tokens`` and ``stop_sequence`` map to themselves,
    ``guardrail_intervened`` and ``content_filtered`` to ``content_filter``,
    ``model_context_window_exceeded`` to ``max_tokens``, anything else (e.g.
    ``malformed_tool_use``) to ``other`` (enum ``StopReason`` in ``bedrock-runtime``
    ``service-2.json``).
    """
    return _STOP_REASONS.get(raw or "", "other")


def bedrock_stream_error(
    code: str, message: str | None, *, request_id: str | None, provider: str = "bedrock"
) -> ProviderError:
    """Build the `ProviderError` for an in-stream Bedrock exception frame.

    Args:
        code: The camelCase ``:exception-type`` (``throttlingException``, ...), as botocore
            puts it in ``EventStreamError.response["Error"]["Code"]``.
        message: The frame's ``message`` (non-secret provider text), if any.
        request_id: The request id of the stream, if known.
        provider: ``"bedrock"`` or ``"bedrock-invoke"``.

    Returns:
        A `ProviderError` with ``in_stream=True``, ``error_type=code``, ``status_code`` from
        the error shape (429, 500, 503, 424, 408, 400; ``None`` if unknown) and ``retryable``
        True for throttling, internal-server, service-unavailable, model-stream-error and
        model-timeout exceptions, False otherwise.
    """
    status, retryable = _STREAM_EXCEPTIONS.get(code, (None, False))
    text = f"{provider} stream error event ({code})"
    if message:
        text += f": {message}"
    if request_id:
        text += f" [request id {request_id}]"
    return ProviderError(
        text,
        status_code=status,
        error_type=code,
        request_id=request_id,
        in_stream=True,
        retryable=retryable,
        provider=provider,
    )


def _is_exception_member(kind: str) -> bool:
    return kind in _STREAM_EXCEPTIONS or kind.endswith("Exception")


def _exception_from_dict(kind: str, body: Any, request_id: str | None, provider: str) -> ProviderError:
    message = None
    if isinstance(body, dict):
        raw = body.get("message", body.get("Message"))
        message = str(raw) if raw is not None else None
    return bedrock_stream_error(kind, message, request_id=request_id, provider=provider)


class _Tool:
    __slots__ = ("buffer", "id", "index", "name")

    def __init__(self, index: int, tool_id: str, name: str) -> None:
        self.index = index
        self.id = tool_id
        self.name = name
        self.buffer = ArgumentBuffer()


class BedrockConverseNormaliser:
    """Pure normaliser: boto3 ConverseStream event dicts → `StreamEvent` list.

    Feed each dict that boto3's ``response["stream"]`` yields (``{"messageStart": {...}}``,
    ``{"contentBlockDelta": {...}}``, ...) to ``feed``; call ``finish`` at the end of the body.
    No I/O, threads or clocks. Events after `StreamEnd` are ignored.

    Args:
        stream_id: Id stamped on every event.
        request_model: The request's ``modelId`` (ConverseStream events do not name the model).
        provider: Provider name for `StreamStart` and errors (default ``"bedrock"``).

    Attributes:
        request_id: Set by the shell from ``ResponseMetadata.RequestId`` before feeding.
        ended: True once `StreamEnd` was produced.
    """

    def __init__(
        self, stream_id: str, *, request_model: str | None = None, provider: str = "bedrock"
    ) -> None:
        self.stream_id = stream_id
        self.request_model = request_model
        self.provider = provider
        self.request_id: str | None = None
        self.ended = False
        self._seq = 0
        self._started = False
        self._stopped = False
        self._metadata_seen = False
        self._stop_details: dict[str, Any] = {}
        self._stop_raw: str | None = None
        self._usage = Usage()
        self._tools: dict[int, _Tool] = {}  # contentBlockIndex -> open tool call
        self._n_tools = 0

    def _next(self) -> int:
        seq = self._seq
        self._seq = seq + 1
        return seq

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        """Normalise one boto3 event dict.

        Args:
            event: One item of boto3's ``EventStream``: a dict keyed by the event type.

        Returns:
            The neutral events it produces (often one, possibly none).

        Raises:
            ProviderError: an exception member (``throttlingException``, ...) as a dict key.
            ToolArgumentsError: a finished tool call's arguments are not a JSON object.
            StreamDecodeError: an event of an unexpected shape.
        """
        if self.ended:
            return []
        events: list[StreamEvent] = []
        for kind, body in event.items():
            try:
                if kind == "contentBlockDelta":
                    self._delta(body, events)
                elif kind == "messageStart":
                    self._ensure_started(events, body)
                elif kind == "contentBlockStart":
                    self._block_start(body, events)
                elif kind == "contentBlockStop":
                    self._block_stop(body, events)
                elif kind == "messageStop":
                    self._message_stop(body, events)
                elif kind == "metadata":
                    self._metadata(body, events)
                elif _is_exception_member(kind):
                    raise _exception_from_dict(kind, body, self.request_id, self.provider)
                # anything else: an event type newer than this code; ignored (forward compatible)
            except (KeyError, TypeError, AttributeError, ValueError) as exc:
                # ValueError includes pydantic's ValidationError: a wrong-typed field.
                raise StreamDecodeError(
                    f"{self.provider}: unexpected shape of a {kind!r} event ({type(exc).__name__}: {exc})",
                    raw=str(body),
                    provider=self.provider,
                ) from exc
        return events

    def _ensure_started(self, events: list[StreamEvent], body: Any = None) -> None:
        if self._started:
            return
        self._started = True
        role = body.get("role") if isinstance(body, dict) else None
        events.append(
            StreamStart(
                stream_id=self.stream_id,
                seq=self._next(),
                provider=self.provider,
                model=self.request_model,
                request_id=self.request_id,
                provider_details={"role": role} if role else None,
            )
        )

    def _delta(self, body: dict[str, Any], events: list[StreamEvent]) -> None:
        if not self._started:
            self._ensure_started(events)
        delta = body["delta"]
        text = delta.get("text")
        if text:
            if not isinstance(text, str):
                raise TypeError("delta.text is not a string")
            seq = self._seq
            self._seq = seq + 1
            events.append(text_delta(self.stream_id, seq, text))
            return
        tool_delta = delta.get("toolUse")
        if tool_delta is not None:
            tool = self._tools.get(body["contentBlockIndex"])
            if tool is None:
                return  # no contentBlockStart named this block a tool call: nothing to attach to
            fragment = tool_delta.get("input") or ""
            if not isinstance(fragment, str):  # defensive: a document instead of JSON text
                fragment = json.dumps(fragment)
            if fragment:
                events.append(
                    tool_call_delta(
                        self.stream_id, self._next(), tool.index, fragment, tool.buffer.append(fragment)
                    )
                )
            return
        reasoning = delta.get("reasoningContent")
        if reasoning is not None:
            self._reasoning(reasoning, events)
        # citation, image and toolResult deltas have no neutral form: ignored

    def _reasoning(self, reasoning: dict[str, Any], events: list[StreamEvent]) -> None:
        text = reasoning.get("text")
        if text:
            if not isinstance(text, str):
                raise TypeError("reasoningContent.text is not a string")
            events.append(thinking_delta(self.stream_id, self._next(), text))
        signature = reasoning.get("signature")
        if signature:
            events.append(ThinkingDelta(stream_id=self.stream_id, seq=self._next(), signature=signature))
        redacted = reasoning.get("redactedContent")
        if redacted:
            data = (
                base64.b64encode(redacted).decode("ascii")
                if isinstance(redacted, bytes | bytearray)
                else str(redacted)
            )
            events.append(
                ThinkingDelta(
                    stream_id=self.stream_id, seq=self._next(), provider_details={"redacted_content": data}
                )
            )

    def _block_start(self, body: dict[str, Any], events: list[StreamEvent]) -> None:
        self._ensure_started(events)
        block_index = body["contentBlockIndex"]
        tool_use = (body.get("start") or {}).get("toolUse")
        if tool_use is None:
            return  # toolResult / image blocks: not client tool calls
        index = self._n_tools
        self._n_tools += 1
        tool = _Tool(index, str(tool_use["toolUseId"]), str(tool_use["name"]))
        self._tools[block_index] = tool
        events.append(
            ToolCallStart(
                stream_id=self.stream_id,
                seq=self._next(),
                index=index,
                id=tool.id,
                name=tool.name,
                provider_details={"content_block_index": block_index},
            )
        )

    def _block_stop(self, body: dict[str, Any], events: list[StreamEvent]) -> None:
        tool = self._tools.pop(body["contentBlockIndex"], None)
        if tool is not None:
            events.append(self._end_tool(tool))

    def _end_tool(self, tool: _Tool) -> ToolCallEnd:
        return tool_call_end(
            stream_id=self.stream_id,
            seq=self._next(),
            index=tool.index,
            tool_id=tool.id,
            name=tool.name,
            raw=tool.buffer.text,
            provider=self.provider,
        )

    def _message_stop(self, body: dict[str, Any], events: list[StreamEvent]) -> None:
        self._ensure_started(events)
        for block_index in sorted(self._tools):  # blocks the stream never stopped
            events.append(self._end_tool(self._tools[block_index]))
        self._tools.clear()
        stop_reason = body.get("stopReason")
        if stop_reason is not None and not isinstance(stop_reason, str):
            raise TypeError("stopReason is not a string")
        self._stopped = True
        self._stop_raw = stop_reason
        fields = body.get("additionalModelResponseFields")
        if fields is not None:
            self._stop_details["additional_model_response_fields"] = fields
        if self._metadata_seen:
            self._end(events)

    def _metadata(self, body: dict[str, Any], events: list[StreamEvent]) -> None:
        self._ensure_started(events)
        self._metadata_seen = True
        usage = body.get("usage")
        if isinstance(usage, dict):
            self._usage = bedrock_usage(usage)
            events.append(
                UsageUpdate(
                    stream_id=self.stream_id,
                    seq=self._next(),
                    usage=self._usage,
                    provider_details={"usage": usage},
                )
            )
        metrics = body.get("metrics")
        if isinstance(metrics, dict) and metrics.get("latencyMs") is not None:
            self._stop_details["latency_ms"] = metrics["latencyMs"]
        for key, name in (
            ("trace", "trace"),
            ("performanceConfig", "performance_config"),
            ("serviceTier", "service_tier"),
        ):
            if body.get(key) is not None:
                self._stop_details[name] = body[key]
        if self._stopped:
            self._end(events)

    def _end(self, events: list[StreamEvent]) -> None:
        self.ended = True
        events.append(
            StreamEnd(
                stream_id=self.stream_id,
                seq=self._next(),
                stop_reason=normalize_bedrock_stop_reason(self._stop_raw),
                usage=self._usage,
                provider_details={"stop_reason": self._stop_raw, **self._stop_details},
            )
        )

    def finish(self) -> list[StreamEvent]:
        """End of body.

        Returns:
            ``[StreamEnd]`` if ``messageStop`` arrived but no ``metadata``, else ``[]``.

        Raises:
            StreamInterruptedError: the body ended before ``messageStop``.
        """
        if self.ended:
            return []
        if self._stopped:
            events: list[StreamEvent] = []
            self._end(events)
            return events
        raise StreamInterruptedError(
            f"{self.provider} stream ended before messageStop (connection dropped?)", provider=self.provider
        )


def bedrock_usage(usage: dict[str, Any]) -> Usage:
    """Normalise a Converse ``TokenUsage`` dict (``inputTokens``, ``outputTokens``, cache fields).

    ``inputTokens`` excludes cache reads and writes, which Bedrock reports separately as
    ``cacheReadInputTokens`` / ``cacheWriteInputTokens`` (API Reference, "TokenUsage").
    """

    def pick(key: str) -> int:
        value = usage.get(key)
        return value if type(value) is int else 0  # bool and float are not counts

    return Usage(
        input_tokens=pick("inputTokens"),
        output_tokens=pick("outputTokens"),
        cache_read_tokens=pick("cacheReadInputTokens"),
        cache_write_tokens=pick("cacheWriteInputTokens"),
    )


class BedrockInvokeNormaliser:
    """Pure normaliser: boto3 InvokeModelWithResponseStream event dicts (Anthropic models) → events.

    Each ``{"chunk": {"bytes": b"..."}}`` holds one Anthropic Messages stream event as JSON;
    it is parsed and handed to `rxstream.providers.anthropic.AnthropicNormaliser` (provider
    ``"bedrock-invoke"``), which keeps ``amazon-bedrock-invocationMetrics`` of ``message_stop``
    in `StreamEnd.provider_details`.

    Args:
        stream_id: Id stamped on every event.
        request_model: The request's ``modelId`` (used if ``message_start`` names no model).

    Attributes:
        ended: True once `StreamEnd` was produced.
    """

    provider = "bedrock-invoke"

    def __init__(self, stream_id: str, *, request_model: str | None = None) -> None:
        self._inner = AnthropicNormaliser(stream_id, provider=self.provider, request_model=request_model)
        self.ended = False

    @property
    def request_id(self) -> str | None:
        """The request id stamped on `StreamStart` and errors."""
        return self._inner.request_id

    @request_id.setter
    def request_id(self, value: str | None) -> None:
        self._inner.request_id = value

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        """Normalise one boto3 event dict.

        Raises:
            ProviderError: an exception member as a dict key, or an Anthropic ``error`` event.
            StreamDecodeError: a chunk that is not a JSON object.
            ToolArgumentsError: a finished tool call's arguments are not a JSON object.
        """
        if self.ended:
            return []
        events: list[StreamEvent] = []
        for kind, body in event.items():
            if kind == "chunk":
                data = body.get("bytes") if isinstance(body, dict) else None
                if not data:
                    continue
                if isinstance(data, str):
                    raw = data.encode("utf-8")
                elif isinstance(data, bytes | bytearray | memoryview):
                    raw = bytes(data)
                else:
                    raise StreamDecodeError(
                        f"{self.provider}: chunk bytes are a {type(data).__name__}, not bytes",
                        raw=str(data),
                        provider=self.provider,
                    )
                value = parse_json_object(raw, provider=self.provider, what="chunk")
                events.extend(self._inner.feed_json(value))
            elif _is_exception_member(kind):
                raise _exception_from_dict(kind, body, self.request_id, self.provider)
        if events and isinstance(events[-1], StreamEnd):
            self.ended = True
        return events

    def finish(self) -> list[StreamEvent]:
        """End of body: raise `StreamInterruptedError` unless ``message_stop`` arrived."""
        return self._inner.finish()


class _EventNormaliser(Protocol):
    request_id: str | None
    ended: bool

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]: ...


def map_botocore_error(
    exc: BaseException, provider: str, *, request_id: str | None = None
) -> StreamError | None:
    """Map a botocore/urllib3 exception to the rxstream tree (``None`` if it is none of ours).

    * ``EventStreamError`` (an exception frame inside the 200 stream) → `bedrock_stream_error`.
    * ``ClientError`` (HTTP error before the stream) → `ProviderError` with ``status_code``
      (``ResponseMetadata.HTTPStatusCode``), ``error_type`` (``Error.Code``), ``request_id``,
      ``retry_after`` (``retry-after`` header, seconds) and ``retryable`` (408/409/425/429/5xx,
      or a throttling/unavailable/internal/not-ready/timeout code).
    * ``botocore.eventstream.ParserError`` (bad frame, CRC mismatch) → `StreamDecodeError`.
    * botocore connection/read errors, urllib3 ``HTTPError`` and ``OSError`` →
      `StreamInterruptedError`.

    Messages are built from the status, error code, AWS message and request id only; the SDK
    exception becomes ``__cause__``.
    """
    from botocore.eventstream import ParserError
    from botocore.exceptions import ClientError, EventStreamError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from urllib3.exceptions import HTTPError as Urllib3HTTPError

    err: StreamError
    if isinstance(exc, EventStreamError):
        error = exc.response.get("Error", {})
        err = bedrock_stream_error(
            str(error.get("Code") or "unknown"),
            error.get("Message") or None,
            request_id=request_id,
            provider=provider,
        )
    elif isinstance(exc, ClientError):
        err = _client_error(exc, provider)
    elif isinstance(exc, ParserError):
        err = StreamDecodeError(
            f"{provider}: malformed event stream frame ({type(exc).__name__})", provider=provider
        )
    elif isinstance(exc, BotoConnectionError | HTTPClientError | Urllib3HTTPError | OSError):
        err = StreamInterruptedError(
            f"{provider} connection failed ({type(exc).__name__})", provider=provider
        )
    else:
        return None
    err.__cause__ = exc
    return err


def _client_error(exc: Any, provider: str) -> ProviderError:
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    metadata = response.get("ResponseMetadata") or {}
    status = metadata.get("HTTPStatusCode")
    status = status if isinstance(status, int) else None
    code = error.get("Code") or None
    message = error.get("Message") or None
    request_id = metadata.get("RequestId") or None
    headers = metadata.get("HTTPHeaders") or {}
    text = f"{provider} returned HTTP {status}" if status is not None else f"{provider} request failed"
    if code:
        text += f" ({code})"
    if message:
        text += f": {message}"
    if request_id:
        text += f" [request id {request_id}]"
    return ProviderError(
        text,
        status_code=status,
        error_type=code,
        request_id=request_id,
        retry_after=parse_retry_after(headers.get("retry-after")),
        retryable=is_retryable_status(status) or code in _RETRYABLE_CODES,
        provider=provider,
    )


class _SocketAbort:
    """Thread-safe abort: shut down the socket under a botocore ``EventStream``.

    Only shuts the socket down while the urllib3 response still owns its connection (once the
    body was read to the end, urllib3 returns the connection to the pool, where another request
    may use it). Never closes anything: the reading thread does that.
    """

    __slots__ = ("_raw",)

    def __init__(self, event_stream: Any) -> None:
        # botocore/eventstream.py: EventStream(raw_stream, ...) keeps the urllib3 HTTPResponse.
        self._raw = event_stream_raw(event_stream)

    def __call__(self) -> None:
        raw = self._raw
        if raw is None:
            return
        connection = getattr(raw, "connection", None)
        if connection is None:
            return  # released to the pool (or never had one): not ours to shut down
        shutdown = getattr(raw, "shutdown", None)  # urllib3 >= 2.3
        if callable(shutdown):
            with contextlib.suppress(Exception):
                shutdown()
        sock = getattr(connection, "sock", None)  # None once http.client handed it to the response
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


_pending = threading.local()  # per reader thread: where to register a connection being used


class _PendingAbort:
    """Shut down the socket of a request still waiting for its response headers.

    boto3 gives no handle on a request before its response exists. `_watch_pool` wraps the
    urllib3 pool's ``_get_conn`` on the client's endpoint pool (once per pool): the
    connection it hands to a reader thread with a registered stream is reported here, so a
    disposal while the headers are pending shuts that socket down and the blocked call
    fails at once (measured: ~1 ms instead of when the headers arrive). It acts only until
    the headers have arrived (`done`); from then on `_SocketAbort` owns the connection.
    """

    __slots__ = ("conn", "done")

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.done = False

    def __call__(self) -> None:
        sock = getattr(self.conn, "sock", None)
        if not self.done and isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _report_connection(conn: Any) -> None:
    """`watch_botocore_connections` callback: hand ``conn`` to this reader thread's register."""
    register = getattr(_pending, "register", None)
    if register is not None:
        register(conn)


def _watch_pool(client: Any) -> bool:
    """Watch the connections ``client``'s endpoint pool hands out (idempotent); False if unreachable.

    Through `rxstream._sdk_internals.watch_botocore_connections` (private botocore/urllib3
    attributes, canary-tested). When it returns False, disposal while the headers are
    pending takes effect when they arrive.
    """
    return watch_botocore_connections(client, _report_connection)


def _decoded_events(stream: Any, provider: str) -> Iterator[dict[str, Any]]:
    """The events of a boto3 ``EventStream``, decoded by `decode_frames` when possible.

    botocore's ``EventStream`` iterates ``_raw_stream.stream()`` (the urllib3 response) and
    parses each frame in pure Python; reading the same chunks and decoding them with the
    lean decoder yields the same dicts ~4x faster. Falls back to iterating the boto3 stream
    when that attribute is missing (another botocore layout, or a stubbed client).
    """
    raw = event_stream_raw(stream)
    if raw is None or not callable(getattr(raw, "stream", None)):
        yield from stream
        return
    from botocore.exceptions import EventStreamError

    operation = event_stream_operation(stream, "ConverseStream")
    try:
        for event in decode_frames(raw.stream()):
            if len(event) == 1:
                ((kind, body),) = event.items()
                if _is_exception_member(kind):
                    # Raise what botocore's EventStream raises for an exception frame.
                    message = body.get("message", body.get("Message", "")) if isinstance(body, dict) else ""
                    raise EventStreamError({"Error": {"Code": kind, "Message": str(message)}}, operation)
            yield event
    except EventStreamDecodeError as exc:
        raise StreamDecodeError(
            f"{provider}: malformed event-stream frame: {exc}", provider=provider
        ) from exc


def _request_id(response: Any) -> str | None:
    metadata = response.get("ResponseMetadata") if isinstance(response, dict) else None
    value = metadata.get("RequestId") if isinstance(metadata, dict) else None
    return str(value) if value else None


def _event_stream_session(
    open_stream: Callable[[], Any],
    stream_key: str,
    normaliser: _EventNormaliser,
    control: Control,
    provider: str,
    client: Any = None,
) -> Iterator[StreamEvent]:
    """Run one boto3 streaming call and yield normalised events (the sync session)."""
    pending: list[_PendingAbort] = []
    if client is not None and _watch_pool(client):

        def register(conn: Any) -> None:
            abort = _PendingAbort(conn)
            pending.append(abort)
            control.on_abort(abort)  # runs at once if disposal came first

        _pending.register = register
    try:
        response = open_stream()
    except Exception as exc:
        if control.cancelled:
            return
        mapped = map_botocore_error(exc, provider)
        if mapped is None:
            raise
        raise mapped from exc
    finally:
        _pending.register = None
        for waiting in pending:
            waiting.done = True
    stream = response[stream_key]
    abort = _SocketAbort(stream)
    control.on_abort(abort)  # runs at once if disposal came while the request was opening
    try:
        if control.cancelled:
            return
        normaliser.request_id = _request_id(response)
        feed = normaliser.feed
        try:
            for event in _decoded_events(stream, provider):
                yield from feed(event)
        except StreamError:
            raise
        except Exception as exc:
            if control.cancelled:
                return
            if normaliser.ended:
                # The response is complete; a late error while draining the body is not the caller's.
                logger.debug(
                    "rxstream: %s error after the end of the stream ignored", provider, exc_info=True
                )
                return
            mapped = map_botocore_error(exc, provider, request_id=normaliser.request_id)
            if mapped is None:
                raise
            if isinstance(mapped, StreamInterruptedError):
                mapped = StreamInterruptedError(
                    f"{provider} connection dropped mid-stream ({type(exc).__name__})", provider=provider
                )
            raise mapped from exc
        if control.cancelled:
            return
        yield from normaliser.finish()
    finally:
        control.release()
        with contextlib.suppress(Exception):
            stream.close()


def _is_aio(client: Any) -> bool:
    """An aiobotocore client (``AioBaseClient``): read on the asyncio loop (`_aioboto`)."""
    return any(cls.__name__ == "AioBaseClient" for cls in type(client).__mro__)


def _check_client(client: Any, method: str, function: str) -> None:
    require("botocore", "bedrock")
    if not callable(getattr(client, method, None)):
        raise ConfigurationError(
            f"{function} needs a boto3 'bedrock-runtime' client, e.g. boto3.client('bedrock-runtime') "
            "(pip install 'rxstream[bedrock]')"
        )


def _validate_params(client: Any, operation: str, params: dict[str, Any]) -> None:
    """Validate ``params`` against the operation's input shape now (botocore's own validator)."""
    meta = getattr(client, "meta", None)
    config = getattr(meta, "config", None)
    if getattr(config, "parameter_validation", True) is False:
        return
    try:
        input_shape = meta.service_model.operation_model(operation).input_shape  # type: ignore[union-attr]
    except Exception:
        return  # not a real botocore client (e.g. a test double): boto3 validates at call time
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(params, input_shape)
    if report.has_errors():
        raise ConfigurationError(f"invalid {operation} parameters:\n{report.generate_report()}")


def from_bedrock(
    client: Any, *, scheduler: abc.SchedulerBase | None = None, **params: Any
) -> Observable[StreamEvent]:
    """Stream a Bedrock ConverseStream response as a cold ``Observable[StreamEvent]``.

    Args:
        client: A boto3 ``bedrock-runtime`` client (``boto3.client("bedrock-runtime")``); boto3
            does auth, endpoint and retries of the initial request. An aiobotocore
            ``bedrock-runtime`` client (extra ``rxstream[bedrock-async]``) is read on the asyncio
            loop with no thread instead (see `rxstream.providers._aioboto`).
        scheduler: Where the blocking reads run (default: a shared thread pool; an
            `AsyncIOScheduler` is replaced by the pool, the loop never blocks).
        **params: Exactly what ``client.converse_stream`` takes (``modelId``, ``messages``,
            ``system``, ``inferenceConfig``, ``toolConfig``, ...). Validated now with botocore's
            validator (unless the client was built with ``parameter_validation=False``).

    Returns:
        A cold Observable: each subscription sends one request. Events follow the grammar in
        `rxstream.events`; `StreamStart.model` is ``modelId``. Disposal shuts down the socket
        (a stalled read returns at once) and closes the event stream.

    Raises:
        ConfigurationError: ``client`` is not a bedrock-runtime client, boto3 is missing, or
            ``params`` fail validation (raised here, synchronously).

    Emits:
        `ProviderError` — before the stream (``ClientError``: status code, ``error_type`` such
        as ``ThrottlingException``/``AccessDeniedException``, request id, ``retryable``) or as
        an exception frame inside the stream (``in_stream=True``, ``error_type`` such as
        ``throttlingException``); `StreamInterruptedError` (connection failed or dropped, or the
        body ended before ``messageStop``); `StreamDecodeError` / `ToolArgumentsError`. Each
        carries ``.partial``, the `Response` received before the error.

    Example:
        >>> stream = from_bedrock(boto3.client("bedrock-runtime"),
        ...     modelId="anthropic.claude-3-5-haiku-20241022-v1:0",
        ...     messages=[{"role": "user", "content": [{"text": "Hi"}]}])  # doctest: +SKIP
    """
    check_scheduler("from_bedrock", scheduler)
    _check_client(client, "converse_stream", "from_bedrock")
    _validate_params(client, "ConverseStream", params)
    request_model = params.get("modelId")
    if _is_aio(client):
        from rxstream.providers._aioboto import aio_event_stream_session

        def async_session(control: Control) -> AsyncIterator[StreamEvent]:
            norm = BedrockConverseNormaliser(control.stream_id, request_model=request_model)
            return aio_event_stream_session(
                lambda: client.converse_stream(**params), "stream", norm, control, "bedrock"
            )

        return session_observable(async_session=async_session, scheduler=scheduler, provider="bedrock")

    def sync_session(control: Control) -> Iterator[StreamEvent]:
        norm = BedrockConverseNormaliser(control.stream_id, request_model=request_model)
        return _event_stream_session(
            lambda: client.converse_stream(**params), "stream", norm, control, "bedrock", client
        )

    return session_observable(sync_session=sync_session, scheduler=scheduler, provider="bedrock")


def from_bedrock_invoke(
    client: Any, *, scheduler: abc.SchedulerBase | None = None, **params: Any
) -> Observable[StreamEvent]:
    """Stream an InvokeModelWithResponseStream response of an Anthropic Claude model on Bedrock.

    The request ``body`` is the Anthropic Messages request JSON with ``anthropic_version``
    (e.g. ``"bedrock-2023-05-31"``) and without ``model``/``stream``; each response ``chunk``
    is one Anthropic stream event, normalised exactly like `rxstream.from_anthropic` (provider
    ``"bedrock-invoke"``; ``amazon-bedrock-invocationMetrics`` ends up in
    `StreamEnd.provider_details`).

    Args:
        client: A boto3 ``bedrock-runtime`` client, or an aiobotocore one (read on the loop).
        scheduler: Where the blocking reads run (default: a shared thread pool).
        **params: Exactly what ``client.invoke_model_with_response_stream`` takes (``modelId``,
            ``body``, ...). A ``dict`` body is serialised to JSON for you.

    Returns:
        A cold Observable: each subscription sends one request; disposal shuts down the socket
        and closes the event stream.

    Raises:
        ConfigurationError: ``client`` is not a bedrock-runtime client, boto3 is missing, or
            ``params`` fail validation.

    Emits:
        `ProviderError` (``ClientError`` before the stream, or an exception frame such as
        ``modelStreamErrorException`` inside it), `StreamInterruptedError`,
        `StreamDecodeError` / `ToolArgumentsError` — each with ``.partial``.
    """
    check_scheduler("from_bedrock_invoke", scheduler)
    _check_client(client, "invoke_model_with_response_stream", "from_bedrock_invoke")
    body = params.get("body")
    if isinstance(body, dict):
        params = {
            **params,
            "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        }
    _validate_params(client, "InvokeModelWithResponseStream", params)
    request_model = params.get("modelId")
    if _is_aio(client):
        from rxstream.providers._aioboto import aio_event_stream_session

        def async_session(control: Control) -> AsyncIterator[StreamEvent]:
            norm = BedrockInvokeNormaliser(control.stream_id, request_model=request_model)
            return aio_event_stream_session(
                lambda: client.invoke_model_with_response_stream(**params),
                "body",
                norm,
                control,
                "bedrock-invoke",
            )

        return session_observable(async_session=async_session, scheduler=scheduler, provider="bedrock-invoke")

    def sync_session(control: Control) -> Iterator[StreamEvent]:
        norm = BedrockInvokeNormaliser(control.stream_id, request_model=request_model)
        return _event_stream_session(
            lambda: client.invoke_model_with_response_stream(**params),
            "body",
            norm,
            control,
            "bedrock-invoke",
            client,
        )

    return session_observable(sync_session=sync_session, scheduler=scheduler, provider="bedrock-invoke")

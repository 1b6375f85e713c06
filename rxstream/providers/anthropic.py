r"""Anthropic Messages streaming: ``rxstream.from_anthropic`` and its pure normaliser.

Wire format (Anthropic docs, "Streaming Messages"; SDK ``anthropic/lib/streaming/_messages.py``):
``message_start`` → per content block ``content_block_start`` / ``content_block_delta``\* /
``content_block_stop`` → ``message_delta`` (stop reason, cumulative usage) → ``message_stop``;
``ping`` at any time; ``event: error`` (e.g. ``overloaded_error``) can arrive inside a 200
stream. Unknown event and delta types are ignored (the docs promise new ones may appear).

Mapping to the neutral schema:

* ``message_start`` → `StreamStart` (id, model) + `UsageUpdate` (input and cache tokens).
* ``text_delta`` → `TextDelta`; ``thinking_delta`` / ``signature_delta`` → `ThinkingDelta`;
  ``redacted_thinking`` blocks → `ThinkingDelta` with ``provider_details["redacted_thinking"]``.
* ``tool_use`` blocks → `ToolCallStart` / `ToolCallDelta` (``input_json_delta.partial_json``)
  / `ToolCallEnd`; ``index`` counts tool calls (0, 1, ...), the content block index is in
  ``provider_details["content_block_index"]`` of `ToolCallStart`.
* ``message_delta`` → `UsageUpdate`; ``message_stop`` → `StreamEnd`.
* Stop reasons: ``end_turn``, ``max_tokens``, ``stop_sequence``, ``tool_use``, ``refusal`` map
  to themselves, ``model_context_window_exceeded`` → ``max_tokens``, ``pause_turn`` and
  anything else → ``other``; the raw value is in ``provider_details["stop_reason"]``.
* Server-side tool blocks (``server_tool_use``, ``web_search_tool_result``, ...) are not
  client tool calls and are not emitted; ``citations_delta`` is ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jiter import from_json as _from_json
from reactivex import Observable, abc

from rxstream._lean import text_delta, thinking_delta, tool_call_delta
from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    StreamDecodeError,
    StreamInterruptedError,
    ToolArgumentsError,
)
from rxstream.events import (
    _ZERO_USAGE,
    StopReason,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from rxstream.providers._guards import check_params, check_scheduler, guard_create
from rxstream.providers._http import sse_observable
from rxstream.providers._tool_args import ArgumentBuffer, parse_json_object, tool_call_end

if TYPE_CHECKING:
    pass

__all__ = ["AnthropicNormaliser", "from_anthropic"]

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",
}

# Anthropic error types → HTTP status (Anthropic docs, "Errors": HTTP errors).
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def normalize_anthropic_stop_reason(raw: str | None) -> StopReason:
    """Map an Anthropic ``stop_reason`` to the neutral `StopReason` (unknown → ``other``)."""
    return _STOP_REASONS.get(raw or "", "other")


class AnthropicNormaliser:
    """Pure normaliser: Anthropic Messages stream events (JSON) → `StreamEvent` list.

    Feed each event's JSON data (``feed_json`` for an already-parsed dict, ``feed_sse`` for
    SSE data bytes); call ``finish`` at the end of the body. No I/O, threads or clocks.

    Args:
        stream_id: Id stamped on every event.
        provider: Provider name for `StreamStart` (``"anthropic"`` or ``"bedrock-invoke"``).
        request_model: Model named in the request (used if the stream does not name one).
    """

    def __init__(
        self, stream_id: str, *, provider: str = "anthropic", request_model: str | None = None
    ) -> None:
        self.stream_id = stream_id
        self.provider = provider
        self.request_model = request_model
        self.request_id: str | None = None
        self._seq = 0
        self._started = False
        self._ended = False
        self._usage = _ZERO_USAGE
        self._stop_raw: str | None = None
        self._stop_sequence: str | None = None
        self._tool_index: dict[int, int] = {}
        self._tools: dict[int, tuple[str, str, ArgumentBuffer, Any]] = {}
        self._invalid_tools: list[tuple[int, tuple[str, str, ArgumentBuffer, Any]]] = []
        self._n_tools = 0

    def _next(self) -> int:
        seq = self._seq
        self._seq = seq + 1
        return seq

    def feed_sse(self, event: str | None, data: bytes) -> list[StreamEvent]:
        """Normalise one SSE event (``event`` name, ``data`` bytes)."""
        if not data:
            return []
        try:
            value = _from_json(data)
        except ValueError:
            value = None
        if value.__class__ is not dict:  # raise the typed error (malformed JSON, not an object)
            value = parse_json_object(data, provider=self.provider, what=f"SSE event {event!r}")
        if event == "error" and value.get("type") != "error":
            value = {"type": "error", "error": value.get("error", value)}
        return self.feed_json(value)

    def feed_json(self, value: dict[str, Any]) -> list[StreamEvent]:
        """Normalise one parsed Anthropic stream event object.

        Raises:
            StreamDecodeError: a field of the wrong type or shape (e.g. a non-string text, an
                integer model); never an untyped exception.
            ToolArgumentsError: a finished tool call's arguments are not a JSON object.
            ProviderError: an ``error`` event.
        """
        kind = value.get("type")
        if kind == "content_block_delta":
            # Hot path: a text delta is most of every stream. Anything unusual (another
            # delta type, a missing or wrong-typed field) takes the checked path below.
            delta = value.get("delta")
            if delta.__class__ is dict and delta.get("type") == "text_delta":
                text = delta.get("text")
                if text.__class__ is str:
                    seq = self._seq
                    self._seq = seq + 1
                    return [text_delta(self.stream_id, seq, text)]
        try:
            if kind == "content_block_delta":
                return self._delta(value)
            if kind == "message_start":
                return self._message_start(value)
            if kind == "content_block_start":
                return self._block_start(value)
            if kind == "content_block_stop":
                return self._block_stop(value)
            if kind == "message_delta":
                return self._message_delta(value)
            if kind == "message_stop":
                return self._message_stop(value)
            if kind == "error":
                raise self._error(value)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            # ValueError includes pydantic's ValidationError: a wrong-typed field (e.g. an
            # integer model) never becomes an event, nor an untyped exception.
            raise StreamDecodeError(
                f"{self.provider}: unexpected shape of a {kind!r} event ({type(exc).__name__}: {exc})",
                raw=str(value),
                provider=self.provider,
            ) from exc
        return []  # "ping" and unknown event types: ignored (forward compatible)

    def _delta(self, value: dict[str, Any]) -> list[StreamEvent]:
        delta = value["delta"]
        dtype = delta.get("type")
        if dtype == "text_delta":
            text = delta["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
            seq = self._seq
            self._seq = seq + 1
            return [text_delta(self.stream_id, seq, text)]
        if dtype == "input_json_delta":
            block = value["index"]
            tool = self._tools.get(block)
            if tool is None:
                return []  # server tool input: not a client tool call
            fragment = delta.get("partial_json") or ""
            if not isinstance(fragment, str):
                raise TypeError("partial_json is not a string")
            partial = tool[2].append(fragment)
            return [tool_call_delta(self.stream_id, self._next(), self._tool_index[block], fragment, partial)]
        if dtype == "thinking_delta":
            thinking = delta["thinking"]
            if not isinstance(thinking, str):
                raise TypeError("thinking is not a string")
            return [thinking_delta(self.stream_id, self._next(), thinking)]
        if dtype == "signature_delta":
            signature = delta["signature"]
            if not isinstance(signature, str):
                raise TypeError("signature is not a string")
            return [thinking_delta(self.stream_id, self._next(), "", signature)]
        return []  # citations_delta and future delta types

    def _start(self, message: dict[str, Any]) -> list[StreamEvent]:
        self._started = True
        return [
            StreamStart(
                stream_id=self.stream_id,
                seq=self._next(),
                provider=self.provider,
                model=message.get("model") or self.request_model,
                request_id=self.request_id,
                response_id=message.get("id"),
            )
        ]

    def _message_start(self, value: dict[str, Any]) -> list[StreamEvent]:
        message = value.get("message") or {}
        events = self._start(message) if not self._started else []
        usage = message.get("usage")
        if isinstance(usage, dict):
            self._usage = _merge_usage(self._usage, usage)
            events.append(UsageUpdate(stream_id=self.stream_id, seq=self._next(), usage=self._usage))
        return events

    def _ensure_started(self) -> list[StreamEvent]:
        return [] if self._started else self._start({})

    def _block_start(self, value: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started()
        block_index = value["index"]
        block = value["content_block"]
        btype = block.get("type")
        if btype == "text":
            if block.get("text"):
                events.append(TextDelta(stream_id=self.stream_id, seq=self._next(), text=block["text"]))
        elif btype == "thinking":
            if block.get("thinking") or block.get("signature"):
                events.append(
                    ThinkingDelta(
                        stream_id=self.stream_id,
                        seq=self._next(),
                        text=block.get("thinking") or "",
                        signature=block.get("signature") or None,
                    )
                )
        elif btype == "redacted_thinking":
            events.append(
                ThinkingDelta(
                    stream_id=self.stream_id,
                    seq=self._next(),
                    provider_details={"redacted_thinking": block.get("data", "")},
                )
            )
        elif btype == "tool_use":
            index = self._n_tools
            self._n_tools += 1
            self._tool_index[block_index] = index
            initial = block.get("input")
            self._tools[block_index] = (str(block["id"]), str(block["name"]), ArgumentBuffer(), initial)
            events.append(
                ToolCallStart(
                    stream_id=self.stream_id,
                    seq=self._next(),
                    index=index,
                    id=str(block["id"]),
                    name=str(block["name"]),
                    provider_details={"content_block_index": block_index},
                )
            )
        return events

    def _block_stop(self, value: dict[str, Any]) -> list[StreamEvent]:
        block_index = value["index"]
        tool = self._tools.pop(block_index, None)
        if tool is None:
            return []
        try:
            return [self._end_tool(block_index, tool)]
        except ToolArgumentsError:
            # Held until the stop reason is known (message_delta): a call cut off by
            # max_tokens then ends with its partial arguments, flagged truncated.
            self._invalid_tools.append((block_index, tool))
            return []

    def _end_tool(self, block_index: int, tool: tuple[str, str, ArgumentBuffer, Any]) -> ToolCallEnd:
        """Build the `ToolCallEnd`; invalid JSON raises `ToolArgumentsError` (no seq is used)."""
        tool_id, name, buffer, initial = tool
        end = tool_call_end(
            stream_id=self.stream_id,
            seq=self._seq,  # taken only if the call ends now
            index=self._tool_index[block_index],
            tool_id=tool_id,
            name=name,
            raw=buffer.text,
            provider=self.provider,
            truncated=self._stop_raw in ("max_tokens", "model_context_window_exceeded"),
            partial=buffer,
            empty=initial if isinstance(initial, dict) else None,
        )
        self._seq += 1
        return end

    def _message_delta(self, value: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started()
        delta = value.get("delta") or {}
        stop_reason = delta.get("stop_reason")
        if stop_reason is not None:
            if not isinstance(stop_reason, str):
                raise TypeError("stop_reason is not a string")
            self._stop_raw = stop_reason
        stop_sequence = delta.get("stop_sequence")
        if stop_sequence is not None:
            if not isinstance(stop_sequence, str):
                raise TypeError("stop_sequence is not a string")
            self._stop_sequence = stop_sequence
        self._flush_invalid_tools(events)
        usage = value.get("usage")
        if isinstance(usage, dict):
            self._usage = _merge_usage(self._usage, usage)
            events.append(UsageUpdate(stream_id=self.stream_id, seq=self._next(), usage=self._usage))
        return events

    def _flush_invalid_tools(self, events: list[StreamEvent]) -> None:
        held, self._invalid_tools = self._invalid_tools, []
        events.extend(self._end_tool(block_index, tool) for block_index, tool in held)

    def _message_stop(self, value: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started()
        self._flush_invalid_tools(events)
        events.extend(self._end_tool(i, self._tools[i]) for i in sorted(self._tools))
        self._tools.clear()
        details: dict[str, Any] = {"stop_reason": self._stop_raw}
        if self._stop_sequence is not None:
            details["stop_sequence"] = self._stop_sequence
        metrics = value.get("amazon-bedrock-invocationMetrics")
        if metrics is not None:
            details["amazon-bedrock-invocationMetrics"] = metrics
        self._ended = True
        events.append(
            StreamEnd(
                stream_id=self.stream_id,
                seq=self._next(),
                stop_reason=normalize_anthropic_stop_reason(self._stop_raw),
                usage=self._usage,
                provider_details=details,
            )
        )
        return events

    def _error(self, value: dict[str, Any]) -> ProviderError:
        error = value.get("error") or {}
        error_type = error.get("type") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        status = _ERROR_STATUS.get(error_type or "")
        text = f"{self.provider} stream error event"
        if error_type:
            text += f" ({error_type})"
        if message:
            text += f": {message}"
        request_id = value.get("request_id") or self.request_id
        if request_id:
            text += f" [request id {request_id}]"
        return ProviderError(
            text,
            status_code=status,
            error_type=error_type,
            request_id=request_id,
            in_stream=True,
            retryable=error_type in ("overloaded_error", "api_error", "rate_limit_error", "timeout_error"),
            provider=self.provider,
        )

    def finish(self) -> list[StreamEvent]:
        """End of body: raise `StreamInterruptedError` unless ``message_stop`` arrived."""
        if not self._ended:
            raise StreamInterruptedError(
                f"{self.provider} stream ended before message_stop (connection dropped?)",
                provider=self.provider,
            )
        return []


def _merge_usage(old: Usage, usage: dict[str, Any]) -> Usage:
    """Cumulative Anthropic usage: a present, non-null field replaces the old value."""

    def pick(key: str, current: int) -> int:
        value = usage.get(key)
        return value if type(value) is int else current  # bool and float are not counts

    return Usage(
        input_tokens=pick("input_tokens", old.input_tokens),
        output_tokens=pick("output_tokens", old.output_tokens),
        cache_read_tokens=pick("cache_read_input_tokens", old.cache_read_tokens),
        cache_write_tokens=pick("cache_creation_input_tokens", old.cache_write_tokens),
        reasoning_tokens=old.reasoning_tokens,
    )


def from_anthropic(
    client: Any, *, scheduler: abc.SchedulerBase | None = None, **params: Any
) -> Observable[StreamEvent]:
    """Stream an Anthropic Messages response as a cold ``Observable[StreamEvent]``.

    Args:
        client: ``anthropic.Anthropic`` / ``AsyncAnthropic`` (or their Bedrock/Vertex
            variants); the SDK does auth, base URL, headers and retries of the request.
        scheduler: Where a sync client's blocking reads run (default: a shared thread pool;
            an `AsyncIOScheduler` is ignored for sync clients). Async clients run as a task
            on the asyncio loop (the scheduler's loop, or the loop running at subscribe).
        **params: Exactly what ``client.messages.create`` takes (``stream=True`` is implied).

    Returns:
        A cold Observable: each subscription sends one request. Disposal closes the HTTP
        connection, also while a read is stalled.

    Raises:
        ConfigurationError: ``client`` is not an Anthropic client, ``scheduler`` is not a
            scheduler, or ``params`` has a parameter ``client.messages.create`` does not take
            (the message names the closest one, e.g. ``max_token`` → ``max_tokens``) or lacks a
            required one (raised here, synchronously).

    Emits:
        `ProviderError` (HTTP error or ``event: error``), `StreamInterruptedError` (dropped
        connection), `StreamDecodeError` / `ToolArgumentsError`, `InvalidRequestError` (the SDK
        refused a parameter value while building the request) — each with ``.partial``.

    Example:
        >>> stream = from_anthropic(client, model="claude-sonnet-4-5", max_tokens=512,
        ...                         messages=[{"role": "user", "content": "Hi"}])  # doctest: +SKIP
    """
    messages = getattr(client, "messages", None)
    if messages is None or not hasattr(messages, "with_streaming_response"):
        raise ConfigurationError(
            "from_anthropic needs an anthropic.Anthropic or AsyncAnthropic client "
            "(pip install 'rxstream[anthropic]')"
        )
    check_scheduler("from_anthropic", scheduler)
    check_params("from_anthropic", messages.create, "client.messages.create", params)
    params = {**params, "stream": True}
    request_model = params.get("model")
    headers = ("request-id", "x-request-id", "x-amzn-requestid")

    return sse_observable(
        client=client,
        create=guard_create(client.messages.with_streaming_response.create, "anthropic"),
        params=params,
        make_normaliser=lambda stream_id: AnthropicNormaliser(stream_id, request_model=request_model),
        provider="anthropic",
        request_id_headers=headers,
        scheduler=scheduler,
    )

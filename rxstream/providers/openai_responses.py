"""OpenAI Responses API streaming: ``rxstream.from_openai_responses`` and its pure normaliser.

Wire format (OpenAI API reference, "Responses → Streaming events"; SDK
``openai/types/responses/response_stream_event.py``, the ``response_*_event.py`` models and
the accumulator ``openai/lib/streaming/responses/_responses.py``): ``POST /v1/responses``
with ``"stream": true`` answers ``event: <type>`` / ``data: {json}`` SSE events. Every
payload has ``type`` and ``sequence_number`` (0, 1, 2, ...). The body has no ``[DONE]``
sentinel: it ends after exactly one terminal event, ``response.completed``,
``response.incomplete`` or ``response.failed``. A typical text answer is::

    response.created → response.in_progress → response.output_item.added (message)
    → response.content_part.added → response.output_text.delta* → response.output_text.done
    → response.content_part.done → response.output_item.done → response.completed

Output items (``message``, ``reasoning``, ``function_call``, hosted tool calls, ...) are
addressed by ``output_index`` (their position in ``response.output``) and by ``item_id``.

Mapping to the neutral schema:

* ``response.created`` (or, if it is missing, ``response.queued`` / ``response.in_progress``)
  → `StreamStart` (``response.id``, ``response.model``; request id from the ``x-request-id``
  header).
* ``response.output_text.delta`` → `TextDelta`. ``response.refusal.delta`` → `TextDelta` with
  ``provider_details={"refusal": True}``, and the stop reason becomes ``refusal`` (as in
  `rxstream.providers.openai_chat`).
* ``response.reasoning_summary_text.delta`` → `ThinkingDelta` with
  ``provider_details={"reasoning": "summary", "summary_index": i}``;
  ``response.reasoning_text.delta`` (raw reasoning, open-weight models) → `ThinkingDelta` with
  ``provider_details={"reasoning": "text", "content_index": i}``. Summary parts are
  concatenated exactly as streamed (no separator is inserted; use ``summary_index`` to split).
* ``response.output_item.done`` of a ``reasoning`` item that carries ``encrypted_content``
  (requested with ``include=["reasoning.encrypted_content"]``) → `ThinkingDelta` with empty
  text, ``signature=encrypted_content`` and ``provider_details={"reasoning_item_id": "rs_..."}``.
  The SDK documents that only the ``.done`` item's ``encrypted_content`` is complete
  (``response_reasoning_item.py``), so the ``.added`` one is never used.
* ``function_call`` items → `ToolCallStart` (at ``response.output_item.added``; ``id`` is the
  ``call_id`` the caller answers with, ``index`` counts function calls 0, 1, ...;
  ``provider_details={"item_id": "fc_...", "output_index": n}``) → `ToolCallDelta` per
  ``response.function_call_arguments.delta`` (routed by ``output_index``, falling back to
  ``item_id``, so interleaved parallel calls stay apart) → `ToolCallEnd` at
  ``response.function_call_arguments.done`` or ``response.output_item.done``, whichever comes
  first. The complete ``arguments`` text of those events is authoritative: if the deltas
  fell short of it, the missing tail is emitted as one more `ToolCallDelta` first.
* ``response.completed`` → `UsageUpdate` (`rxstream.providers.openai_chat.openai_usage`:
  ``input_tokens`` excludes ``input_tokens_details.cached_tokens``, which become
  ``cache_read_tokens``; ``output_tokens_details.reasoning_tokens``; the raw usage is in
  ``provider_details["usage"]``) + `StreamEnd` with ``end_turn`` (``tool_use`` when function
  calls were made, ``refusal`` after refusal text); ``provider_details["stop_reason"]`` is
  the raw status ``"completed"``.
* ``response.incomplete`` → `UsageUpdate` + `StreamEnd` from ``incomplete_details.reason``:
  ``max_output_tokens`` → ``max_tokens``, ``content_filter`` → ``content_filter``, anything
  else → ``other``; ``provider_details["stop_reason"]`` is the raw reason and
  ``provider_details["status"]`` is ``"incomplete"``.
* ``response.failed`` (``response.error {code, message}``) and the ``error`` event (``code``,
  ``message``, ``param`` at the top level per ``response_error_event.py``; a nested
  ``{"error": {...}}`` form seen in recorded third-party traces is accepted too) → raise
  `ProviderError` with ``in_stream=True``; the first of them ends the stream.
* Every other event type (``response.in_progress``, ``response.content_part.*``,
  ``response.output_text.done``, ``response.output_text.annotation.added``, web search /
  file search / code interpreter / image / MCP / custom-tool / shell events, and any future
  type) is ignored. Hosted and custom (free-form) tool calls are not client function calls and
  are not emitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jiter import from_json as _from_json
from reactivex import Observable, abc

from rxstream._lean import text_delta, thinking_delta, tool_call_delta
from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    StreamDecodeError,
    StreamInterruptedError,
)
from rxstream.events import (
    _ZERO_USAGE,
    StopReason,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageUpdate,
)
from rxstream.providers._guards import check_params, check_scheduler, guard_create
from rxstream.providers._http import sse_observable
from rxstream.providers._tool_args import ArgumentBuffer, parse_json_object, tool_call_end
from rxstream.providers.openai_chat import openai_usage

if TYPE_CHECKING:
    pass

__all__ = ["OpenAIResponsesNormaliser", "from_openai_responses"]

# IncompleteDetails.reason (openai/types/responses/response.py) → neutral stop reason.
_INCOMPLETE: dict[str, StopReason] = {
    "max_output_tokens": "max_tokens",
    "content_filter": "content_filter",
}

# ResponseError.code (openai/types/responses/response_error.py) → HTTP status it stands for.
# Codes not listed (the image_* / invalid_* / policy codes) are request problems: 400.
_ERROR_STATUS: dict[str, int] = {
    "server_error": 500,
    "rate_limit_exceeded": 429,
    "vector_store_timeout": 504,
    "insufficient_quota": 429,
}

# Codes worth retrying unchanged. ``insufficient_quota`` (billing) is not, although it is a 429.
_RETRYABLE_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "vector_store_timeout",
        "timeout",
        "internal_error",
        "service_unavailable",
        "overloaded",
    }
)

# Known non-retryable request-problem codes (response_error.py); unknown codes get no status.
_CLIENT_ERROR_CODES = frozenset(
    {
        "invalid_prompt",
        "data_residency_mismatch",
        "bio_policy",
        "misalignment_policy_violation",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


class _Call:
    """State of one streamed function call."""

    __slots__ = ("buffer", "ended", "id", "index", "item_id", "name", "output_index")

    def __init__(
        self, index: int, call_id: str, name: str, item_id: str | None, output_index: int | None
    ) -> None:
        self.index = index
        self.id = call_id
        self.name = name
        self.item_id = item_id
        self.output_index = output_index
        self.buffer = ArgumentBuffer()
        self.ended = False


class OpenAIResponsesNormaliser:
    """Pure normaliser: Responses API SSE events → `StreamEvent` list (no I/O, no Rx, no clock).

    Feed each SSE event with `feed_sse` (or an already parsed payload with `feed_json`), then
    call `finish` at the end of the body. See the module docstring for the mapping.

    Args:
        stream_id: Id stamped on every event.
        provider: Provider name for `StreamStart` and errors (default ``"openai-responses"``).
        request_model: Model named in the request (used if the stream names none).

    Attributes:
        request_id: The ``x-request-id`` response header; set by the transport before the
            first event and copied into `StreamStart` and errors.
    """

    def __init__(
        self, stream_id: str, *, provider: str = "openai-responses", request_model: str | None = None
    ) -> None:
        self.stream_id = stream_id
        self.provider = provider
        self.request_model = request_model
        self.request_id: str | None = None
        self._seq = 0
        self._started = False
        self._ended = False
        self._refused = False
        self._usage = _ZERO_USAGE
        self._calls: list[_Call] = []
        self._by_output: dict[int, _Call] = {}
        self._by_item: dict[str, _Call] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], list[StreamEvent]]] = {
            "response.created": self._lifecycle,
            "response.queued": self._lifecycle,
            "response.in_progress": self._lifecycle,
            "response.refusal.delta": self._refusal_delta,
            "response.reasoning_summary_text.delta": self._summary_delta,
            "response.reasoning_text.delta": self._reasoning_text_delta,
            "response.output_item.added": self._item_added,
            "response.output_item.done": self._item_done,
            "response.function_call_arguments.delta": self._arguments_delta,
            "response.function_call_arguments.done": self._arguments_done,
            "response.completed": self._completed,
            "response.incomplete": self._incomplete,
            "response.failed": self._failed,
            "error": self._error_event,
        }

    def _next(self) -> int:
        seq = self._seq
        self._seq = seq + 1
        return seq

    # -- entry points -------------------------------------------------------------------

    def feed_sse(self, event: str | None, data: bytes) -> list[StreamEvent]:
        """Normalise one SSE event (``event`` name, ``data`` bytes).

        Raises:
            StreamDecodeError: ``data`` is not a JSON object or has an unexpected shape.
            ToolArgumentsError: a completed function call's arguments are not a JSON object.
            ProviderError: ``response.failed`` or an ``error`` event (``in_stream=True``).
        """
        if not data or data[:6] == b"[DONE]":
            return []  # the Responses API sends no [DONE]; tolerated from compatible servers
        try:
            value = _from_json(data)
        except ValueError:
            value = None
        if value.__class__ is not dict:  # raise the typed error (malformed JSON, not an object)
            value = parse_json_object(data, provider=self.provider, what=f"SSE event {event!r}")
        if "type" not in value and event:
            value["type"] = event
        return self.feed_json(value)

    def feed_json(self, value: dict[str, Any]) -> list[StreamEvent]:
        """Normalise one parsed Responses stream event object (it has a ``type`` key).

        Raises:
            StreamDecodeError: a known event type with an unexpected shape, or function-call
                arguments for an output item that was never announced.
            ToolArgumentsError: a completed function call's arguments are not a JSON object.
            ProviderError: ``response.failed`` or an ``error`` event (``in_stream=True``).
        """
        kind = value.get("type")
        if kind == "response.output_text.delta" and self._started and not self._ended:
            # Hot path: one dict lookup, one lean event.
            text = value.get("delta")
            if not text:
                return []
            if not isinstance(text, str):
                raise self._shape_error(kind, value, "delta is not a string")
            seq = self._seq
            self._seq = seq + 1
            return [text_delta(self.stream_id, seq, text)]
        if self._ended:
            return []  # nothing may follow the terminal event
        if kind == "response.output_text.delta":  # text before any lifecycle event
            events = self._ensure_started()
            return events + self.feed_json(value)
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return []  # unknown / ignored event types (forward compatible)
        try:
            return handler(value)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise self._shape_error(kind, value, f"{type(exc).__name__}: {exc}") from exc

    def finish(self) -> list[StreamEvent]:
        """End of body: raise `StreamInterruptedError` unless a terminal event arrived.

        The terminal events are ``response.completed``, ``response.incomplete`` and
        ``response.failed``; the last one already raised `ProviderError`.
        """
        if self._ended:
            return []
        raise StreamInterruptedError(
            f"{self.provider} stream ended before response.completed/incomplete/failed (connection dropped?)",
            provider=self.provider,
        )

    # -- helpers ------------------------------------------------------------------------

    def _shape_error(self, kind: Any, value: dict[str, Any], why: str) -> StreamDecodeError:
        return StreamDecodeError(
            f"{self.provider}: unexpected shape of a {kind!r} event ({why})",
            raw=str(value),
            provider=self.provider,
        )

    def _start(self, response: dict[str, Any]) -> StreamStart:
        self._started = True
        return StreamStart(
            stream_id=self.stream_id,
            seq=self._next(),
            provider=self.provider,
            model=response.get("model") or self.request_model,
            request_id=self.request_id,
            response_id=response.get("id"),
        )

    def _ensure_started(self) -> list[StreamEvent]:
        return [] if self._started else [self._start({})]

    # -- lifecycle ----------------------------------------------------------------------

    def _lifecycle(self, value: dict[str, Any]) -> list[StreamEvent]:
        if self._started:
            return []
        response = value.get("response")
        return [self._start(response if isinstance(response, dict) else {})]

    # -- text and reasoning -------------------------------------------------------------

    def _refusal_delta(self, value: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started()
        self._refused = True
        text = value.get("delta")
        if text:
            events.append(
                TextDelta(
                    stream_id=self.stream_id, seq=self._next(), text=text, provider_details={"refusal": True}
                )
            )
        return events

    def _summary_delta(self, value: dict[str, Any]) -> list[StreamEvent]:
        return self._thinking(value, {"reasoning": "summary", "summary_index": value.get("summary_index", 0)})

    def _reasoning_text_delta(self, value: dict[str, Any]) -> list[StreamEvent]:
        return self._thinking(value, {"reasoning": "text", "content_index": value.get("content_index", 0)})

    def _thinking(self, value: dict[str, Any], details: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started()
        text = value.get("delta")
        if text:
            if not isinstance(text, str):
                raise TypeError("delta is not a string")
            events.append(thinking_delta(self.stream_id, self._next(), text, None, details))
        return events

    # -- output items and function calls ------------------------------------------------

    def _item_added(self, value: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started()
        item = value.get("item")
        if isinstance(item, dict) and item.get("type") == "function_call":
            call = self._open_call(item, value.get("output_index"), events)
            initial = item.get("arguments")
            if initial:  # the API sends "", some compatible servers send the whole call at once
                events.append(self._delta(call, str(initial)))
        return events

    def _open_call(self, item: dict[str, Any], output_index: Any, events: list[StreamEvent]) -> _Call:
        index = len(self._calls)
        item_id = item.get("id")
        call_id = item.get("call_id") or item_id or f"call_{self.stream_id}_{index}"
        name = item.get("name") or ""
        out = output_index if isinstance(output_index, int) else None
        call = _Call(index, str(call_id), str(name), str(item_id) if item_id else None, out)
        self._calls.append(call)
        if out is not None:
            self._by_output[out] = call
        if call.item_id:
            self._by_item[call.item_id] = call
        events.append(
            ToolCallStart(
                stream_id=self.stream_id,
                seq=self._next(),
                index=index,
                id=call.id,
                name=call.name,
                provider_details={"item_id": call.item_id, "output_index": out},
            )
        )
        return call

    def _find_call(self, value: dict[str, Any]) -> _Call | None:
        output_index = value.get("output_index")
        call = self._by_output.get(output_index) if isinstance(output_index, int) else None
        if call is None:
            item_id = value.get("item_id")
            if isinstance(item_id, str):
                call = self._by_item.get(item_id)
        return call

    def _delta(self, call: _Call, fragment: str) -> ToolCallDelta:
        partial = call.buffer.append(fragment)
        return tool_call_delta(self.stream_id, self._next(), call.index, fragment, partial)

    def _arguments_delta(self, value: dict[str, Any]) -> list[StreamEvent]:
        call = self._find_call(value)
        if call is None:
            # The SDK's accumulator raises here too ("content event ... before its output item").
            raise StreamDecodeError(
                f"{self.provider}: function_call_arguments.delta for an unknown output item "
                f"(output_index={value.get('output_index')!r}, item_id={value.get('item_id')!r})",
                raw=str(value),
                provider=self.provider,
            )
        fragment = value.get("delta")
        if call.ended or not fragment:
            return []
        if not isinstance(fragment, str):
            raise TypeError("delta is not a string")
        return [self._delta(call, fragment)]

    def _arguments_done(self, value: dict[str, Any]) -> list[StreamEvent]:
        call = self._find_call(value)
        if call is None or call.ended:
            return []
        arguments = value.get("arguments")
        return self._end_call(call, arguments if isinstance(arguments, str) else None)

    def _item_done(self, value: dict[str, Any]) -> list[StreamEvent]:
        events = self._ensure_started()
        item = value.get("item")
        if not isinstance(item, dict):
            return events
        itype = item.get("type")
        if itype == "function_call":
            call = self._find_call({"output_index": value.get("output_index"), "item_id": item.get("id")})
            if call is None and item.get("call_id"):
                call = next((c for c in self._calls if c.id == item["call_id"]), None)
            if call is None:  # a server that sends the finished item only
                call = self._open_call(item, value.get("output_index"), events)
            if not call.ended:
                arguments = item.get("arguments")
                events.extend(self._end_call(call, arguments if isinstance(arguments, str) else None))
        elif itype == "reasoning":
            encrypted = item.get("encrypted_content")
            if encrypted:
                events.append(
                    ThinkingDelta(
                        stream_id=self.stream_id,
                        seq=self._next(),
                        text="",
                        signature=str(encrypted),
                        provider_details={"reasoning_item_id": item.get("id")},
                    )
                )
        return events

    def _end_call(self, call: _Call, final: str | None) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        raw = call.buffer.text
        if final is not None and final != raw:
            if final.startswith(raw):
                events.append(self._delta(call, final[len(raw) :]))
            raw = final  # the complete text of the .done event is authoritative
        call.ended = True
        events.append(
            tool_call_end(
                stream_id=self.stream_id,
                seq=self._next(),
                index=call.index,
                tool_id=call.id,
                name=call.name,
                raw=raw,
                provider=self.provider,
            )
        )
        return events

    def _close_calls(self, events: list[StreamEvent]) -> None:
        for call in self._calls:
            if not call.ended:
                events.extend(self._end_call(call, None))

    # -- terminal events ----------------------------------------------------------------

    def _terminal(
        self, value: dict[str, Any], stop_reason: StopReason, details: dict[str, Any]
    ) -> list[StreamEvent]:
        events = self._ensure_started()
        self._close_calls(events)
        response = value.get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        if isinstance(usage, dict):
            self._usage = openai_usage(usage)
            events.append(
                UsageUpdate(
                    stream_id=self.stream_id,
                    seq=self._next(),
                    usage=self._usage,
                    provider_details={"usage": usage},
                )
            )
        self._ended = True
        events.append(
            StreamEnd(
                stream_id=self.stream_id,
                seq=self._next(),
                stop_reason=stop_reason,
                usage=self._usage,
                provider_details=details,
            )
        )
        return events

    def _completed(self, value: dict[str, Any]) -> list[StreamEvent]:
        response = value.get("response")
        status = response.get("status") if isinstance(response, dict) else None
        stop: StopReason = "refusal" if self._refused else "tool_use" if self._calls else "end_turn"
        return self._terminal(value, stop, {"stop_reason": status or "completed"})

    def _incomplete(self, value: dict[str, Any]) -> list[StreamEvent]:
        response = value.get("response")
        details = response.get("incomplete_details") if isinstance(response, dict) else None
        reason = details.get("reason") if isinstance(details, dict) else None
        stop = _INCOMPLETE.get(reason or "", "other")
        return self._terminal(
            value,
            stop,
            {"stop_reason": reason or "incomplete", "status": "incomplete", "incomplete_details": details},
        )

    def _failed(self, value: dict[str, Any]) -> list[StreamEvent]:
        response = value.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        if not isinstance(error, dict):
            error = {}
        self._ended = True
        raise self._provider_error("response failed", error.get("code") or error.get("type"), error)

    def _error_event(self, value: dict[str, Any]) -> list[StreamEvent]:
        nested = value.get("error")
        fields = (
            nested if isinstance(nested, dict) and "code" not in value and "message" not in value else value
        )
        self._ended = True
        raise self._provider_error("stream error event", fields.get("code") or fields.get("type"), fields)

    def _provider_error(self, what: str, code: Any, fields: dict[str, Any]) -> ProviderError:
        kind = str(code) if code is not None else None
        message = fields.get("message")
        param = fields.get("param")
        text = f"{self.provider} {what}"
        if kind:
            text += f" ({kind})"
        if message:
            text += f": {message}"
        if param:
            text += f" (param {param})"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        status = _ERROR_STATUS.get(kind or "") or (400 if kind in _CLIENT_ERROR_CODES else None)
        return ProviderError(
            text,
            status_code=status,
            error_type=kind,
            request_id=self.request_id,
            in_stream=True,
            retryable=kind in _RETRYABLE_CODES,
            provider=self.provider,
        )


def from_openai_responses(
    client: Any, *, scheduler: abc.SchedulerBase | None = None, **params: Any
) -> Observable[StreamEvent]:
    """Stream an OpenAI Responses API response as a cold ``Observable[StreamEvent]``.

    The request is ``client.responses.with_streaming_response.create(**params, stream=True)``
    (``POST /v1/responses``); the SDK does auth, base URL, headers and retries of the
    request, we decode the SSE body (see the module docstring for the event mapping).

    Args:
        client: ``openai.OpenAI`` / ``AsyncOpenAI`` (or ``AzureOpenAI`` / ``AsyncAzureOpenAI``).
        scheduler: Where a sync client's blocking reads run (default: a shared thread pool;
            an `AsyncIOScheduler` is ignored for sync clients). Async clients run as a task on
            the asyncio loop (the scheduler's loop, or the loop running at subscribe).
        **params: Exactly what ``client.responses.create`` takes (``model``, ``input``,
            ``tools``, ``reasoning``, ``include``, ...); ``stream=True`` is implied.

    Returns:
        A cold Observable of `StreamStart`, `TextDelta` / `ThinkingDelta` / tool-call events,
        `UsageUpdate` and `StreamEnd`. Each subscription sends one request; disposal closes
        the HTTP connection, also while a read is stalled.

    Raises:
        ConfigurationError: ``client`` has no ``responses.with_streaming_response``,
            ``scheduler`` is not a scheduler, or ``params`` has a parameter
            ``client.responses.create`` does not take (raised here, synchronously).

    Emits:
        `ProviderError` (HTTP error before the stream, with ``status_code``, ``retry_after``
        and ``retryable``; or ``response.failed`` / ``error`` event with ``in_stream=True``),
        `StreamInterruptedError` (connection dropped or body ended before a terminal event),
        `StreamDecodeError` (malformed JSON), `ToolArgumentsError` (a function call's
        arguments are not a JSON object) — each with ``.partial``, the `rxstream.Response`
        received so far.

    Example:
        >>> stream = from_openai_responses(client, model="gpt-5", input="Hi")  # doctest: +SKIP
        >>> stream.pipe(rso.final()).run().text  # doctest: +SKIP
    """
    responses = getattr(client, "responses", None)
    if responses is None or not hasattr(responses, "with_streaming_response"):
        raise ConfigurationError(
            "from_openai_responses needs an openai.OpenAI or AsyncOpenAI client with the Responses API "
            "(pip install 'rxstream[openai]')"
        )
    check_scheduler("from_openai_responses", scheduler)
    check_params("from_openai_responses", responses.create, "client.responses.create", params)
    params = {**params, "stream": True}
    request_model = params.get("model")
    provider = "openai-responses"
    headers = ("x-request-id", "request-id")

    return sse_observable(
        client=client,
        create=guard_create(responses.with_streaming_response.create, provider),
        params=params,
        make_normaliser=lambda stream_id: OpenAIResponsesNormaliser(stream_id, request_model=request_model),
        provider=provider,
        request_id_headers=headers,
        scheduler=scheduler,
    )

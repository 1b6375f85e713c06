"""OpenAI Chat Completions streaming (and OpenAI-compatible servers): ``rxstream.from_openai``.

Wire format (OpenAI API reference, "The chat completion chunk object" and "Streaming";
SDK ``openai/_streaming.py`` and ``openai/lib/streaming/chat/_completions.py``): one
``data: {chunk}`` SSE event per chunk, ``data: [DONE]`` at the end. A chunk has ``id``,
``model``, ``choices[].delta`` (``role``, ``content``, ``refusal``, ``tool_calls[]`` with
``index``; the first fragment of a tool call carries ``id`` and ``function.name``), and
``choices[].finish_reason``. With ``stream_options.include_usage`` a last chunk with
``"choices": []`` carries ``usage``. An error inside a 200 stream is ``data: {"error": {...}}``.

Mapping to the neutral schema:

* the first chunk → `StreamStart` (``id``, ``model``; ``x-request-id`` header).
* ``delta.content`` → `TextDelta`; ``delta.refusal`` → `TextDelta` with
  ``provider_details={"refusal": True}`` and the stop reason becomes ``refusal``.
* ``delta.reasoning_content`` (vLLM, llama.cpp, DeepSeek) and ``delta.reasoning`` (Ollama,
  OpenRouter) → `ThinkingDelta`. OpenAI itself does not stream reasoning on this API.
* ``delta.tool_calls`` → `ToolCallStart` / `ToolCallDelta` / `ToolCallEnd` (at
  ``finish_reason``); ``index`` is the tool call's position. Local-server quirks handled:
  missing tool-call ids (a ``call_<stream>_<n>`` id is made up), whole tool calls in one
  fragment, a new id arriving on an index already in use (treated as a new call).
* ``finish_reason``: ``stop`` → ``end_turn`` (``tool_use`` if tool calls were made, as with a
  forced ``tool_choice``), ``length`` → ``max_tokens``, ``tool_calls``/``function_call`` →
  ``tool_use``, ``content_filter`` → ``content_filter``; raw value in
  ``provider_details["stop_reason"]``.
* ``usage`` → `UsageUpdate`: ``input_tokens = prompt_tokens - cached_tokens -
  cache_write_tokens`` (so that, as for Anthropic and Bedrock, input excludes cache reads
  and writes), ``cache_read_tokens = prompt_tokens_details.cached_tokens``,
  ``cache_write_tokens = prompt_tokens_details.cache_write_tokens``, ``reasoning_tokens =
  completion_tokens_details.reasoning_tokens``; raw usage in ``provider_details["usage"]``.
* Only choice 0 is used (``n > 1`` is not supported; other choices are ignored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactivex import Observable, abc

from rxstream._lean import text_delta, thinking_delta, tool_call_delta
from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    StreamDecodeError,
    StreamInterruptedError,
)
from rxstream.events import (
    StopReason,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
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

__all__ = ["OpenAIChatNormaliser", "from_openai", "openai_usage"]

_FINISH: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}

_KNOWN_ERROR_CODES = frozenset(
    {"rate_limit_exceeded", "rate_limit_error", "server_error", "overloaded_error"}
)

_RETRYABLE_ERROR_TYPES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "rate_limit_error",
        "overloaded_error",
        "timeout",
        "service_unavailable",
    }
)


def _count(value: Any, name: str) -> int:
    """A token count from the wire: an int, or an integral finite float (``12.0``); None → 0."""
    if value is None:
        return 0
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():  # False for inf and nan
        return int(value)
    raise ValueError(f"usage field {name!r} is not a token count: {value!r:.40}")


def openai_usage(usage: dict[str, Any]) -> Usage:
    """Normalise an OpenAI ``usage`` object (Chat ``prompt_tokens`` or Responses ``input_tokens`` form).

    OpenAI's input count includes cached and cache-written tokens
    (``prompt_tokens_details.cached_tokens`` / ``cache_write_tokens``; Responses
    ``input_tokens_details``); the neutral `Usage.input_tokens` excludes both, as Anthropic's
    and Bedrock's do, so ``input + cache_read + cache_write`` is the whole prompt everywhere.

    Raises:
        ValueError: a count is neither an integer nor an integral finite number (e.g.
            ``"abc"``, ``1e400``, ``true``); the normalisers turn it into `StreamDecodeError`.
    """
    prompt = _count(usage.get("prompt_tokens", usage.get("input_tokens")), "prompt_tokens")
    completion = _count(usage.get("completion_tokens", usage.get("output_tokens")), "completion_tokens")
    prompt_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    cached = (
        _count(prompt_details.get("cached_tokens"), "cached_tokens")
        if isinstance(prompt_details, dict)
        else 0
    )
    written = (
        _count(prompt_details.get("cache_write_tokens"), "cache_write_tokens")
        if isinstance(prompt_details, dict)
        else 0
    )
    reasoning = (
        _count(completion_details.get("reasoning_tokens"), "reasoning_tokens")
        if isinstance(completion_details, dict)
        else 0
    )
    return Usage(
        input_tokens=max(prompt - cached - written, 0),
        output_tokens=completion,
        cache_read_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
    )


class _Tool:
    __slots__ = ("buffer", "id", "index", "name")

    def __init__(self, index: int, tool_id: str, name: str) -> None:
        self.index = index
        self.id = tool_id
        self.name = name
        self.buffer = ArgumentBuffer()


class OpenAIChatNormaliser:
    """Pure normaliser: Chat Completions chunks (SSE data) → `StreamEvent` list.

    Args:
        stream_id: Id stamped on every event.
        provider: Provider name for `StreamStart` (default ``"openai"``).
        request_model: Model named in the request.
    """

    def __init__(self, stream_id: str, *, provider: str = "openai", request_model: str | None = None) -> None:
        self.stream_id = stream_id
        self.provider = provider
        self.request_model = request_model
        self.request_id: str | None = None
        self._seq = 0
        self._started = False
        self._ended = False
        self._finish_raw: str | None = None
        self._refused = False
        self._usage: Usage | None = None
        self._tools: dict[int, _Tool] = {}  # wire index -> open tool call
        self._n_tools = 0

    def _next(self) -> int:
        seq = self._seq
        self._seq = seq + 1
        return seq

    def feed_sse(self, event: str | None, data: bytes) -> list[StreamEvent]:
        """Normalise one SSE event's data (a chunk, an error object or ``[DONE]``)."""
        if not data:
            return []
        if data[:6] == b"[DONE]":
            return self._done()
        value = parse_json_object(data, provider=self.provider, what="SSE data")
        return self.feed_chunk(value)

    def feed_chunk(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        """Normalise one parsed chunk object.

        Raises:
            StreamDecodeError: a field of the wrong type or shape (e.g. non-string content,
                an integer model, a usage count ``"abc"``); never an untyped exception.
            ToolArgumentsError: a finished tool call's arguments are not a JSON object.
            ProviderError: an in-stream ``{"error": ...}`` chunk.
        """
        try:
            return self._chunk(chunk)
        except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
            # ValueError includes pydantic's ValidationError (e.g. an integer model or id).
            raise StreamDecodeError(
                f"{self.provider}: unexpected chunk shape ({type(exc).__name__}: {exc})",
                raw=str(chunk),
                provider=self.provider,
            ) from exc

    def _chunk(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        error = chunk.get("error")
        if error:
            raise self._error(error)
        if not chunk.get("id") and not chunk.get("choices") and chunk.get("usage") is None:
            # Azure's leading `prompt_filter_results` chunk (id "", model "", object ""): the
            # SDK skips it too (`_is_valid_chat_completion_chunk_weak`).
            return []
        events: list[StreamEvent] = []
        if not self._started:
            self._started = True
            events.append(
                StreamStart(
                    stream_id=self.stream_id,
                    seq=self._next(),
                    provider=self.provider,
                    model=chunk.get("model") or self.request_model,
                    request_id=self.request_id,
                    response_id=chunk.get("id") or None,
                )
            )
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                if choice.get("index", 0) == 0:
                    self._choice(choice, events)
        usage = chunk.get("usage")
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
        return events

    def _choice(self, choice: dict[str, Any], events: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if delta:
            content = delta.get("content")
            if content:
                if not isinstance(content, str):
                    raise TypeError("delta.content is not a string")
                seq = self._seq
                self._seq = seq + 1
                events.append(text_delta(self.stream_id, seq, content))
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                events.append(thinking_delta(self.stream_id, self._next(), reasoning))
            refusal = delta.get("refusal")
            if refusal:
                if not isinstance(refusal, str):
                    raise TypeError("delta.refusal is not a string")
                self._refused = True
                events.append(
                    TextDelta(
                        stream_id=self.stream_id,
                        seq=self._next(),
                        text=refusal,
                        provider_details={"refusal": True},
                    )
                )
            tool_calls = delta.get("tool_calls")
            if tool_calls:
                for call in tool_calls:
                    self._tool_fragment(call, events)
        finish = choice.get("finish_reason")
        if finish:
            if not isinstance(finish, str):
                raise TypeError("finish_reason is not a string")
            self._finish_raw = finish
            self._close_tools(events)

    def _tool_fragment(self, call: dict[str, Any], events: list[StreamEvent]) -> None:
        wire_index = call.get("index", 0)
        function = call.get("function") or {}
        call_id = call.get("id")
        name = function.get("name")
        tool = self._tools.get(wire_index)
        if tool is not None and call_id and name and call_id != tool.id:
            # A local server reusing an index for a new call: close the old one first.
            events.append(self._end_tool(self._tools.pop(wire_index)))
            tool = None
        if tool is None:
            index = self._n_tools
            self._n_tools += 1
            tool = _Tool(index, call_id or f"call_{self.stream_id}_{index}", name or "")
            self._tools[wire_index] = tool
            events.append(
                ToolCallStart(
                    stream_id=self.stream_id, seq=self._next(), index=index, id=tool.id, name=tool.name
                )
            )
        elif name and not tool.name:
            tool.name = name
        fragment = function.get("arguments")
        if fragment:
            if not isinstance(fragment, str):  # some servers send an object, not a JSON string
                import json

                fragment = json.dumps(fragment)
            partial = tool.buffer.append(fragment)
            events.append(tool_call_delta(self.stream_id, self._next(), tool.index, fragment, partial))

    def _end_tool(self, tool: _Tool) -> ToolCallEnd:
        # A call cut off by the token limit ("length") keeps what arrived, flagged truncated.
        return tool_call_end(
            stream_id=self.stream_id,
            seq=self._next(),
            index=tool.index,
            tool_id=tool.id,
            name=tool.name,
            raw=tool.buffer.text,
            provider=self.provider,
            truncated=self._finish_raw == "length",
            partial=tool.buffer,
        )

    def _close_tools(self, events: list[StreamEvent]) -> None:
        for tool in sorted(self._tools.values(), key=lambda t: t.index):
            events.append(self._end_tool(tool))
        self._tools.clear()

    def _stop_reason(self) -> StopReason:
        if self._refused:
            return "refusal"
        reason = _FINISH.get(self._finish_raw or "", "other")
        if reason == "end_turn" and self._n_tools:
            return "tool_use"
        return reason

    def _done(self) -> list[StreamEvent]:
        if self._ended:
            return []
        events: list[StreamEvent] = []
        if not self._started:
            self._started = True
            events.append(
                StreamStart(
                    stream_id=self.stream_id,
                    seq=self._next(),
                    provider=self.provider,
                    model=self.request_model,
                    request_id=self.request_id,
                )
            )
        self._close_tools(events)
        self._ended = True
        events.append(
            StreamEnd(
                stream_id=self.stream_id,
                seq=self._next(),
                stop_reason=self._stop_reason(),
                usage=self._usage or Usage(),
                provider_details={"stop_reason": self._finish_raw},
            )
        )
        return events

    def _error(self, error: Any) -> ProviderError:
        error_type = code = message = None
        if isinstance(error, dict):
            error_type = error.get("type")
            code = error.get("code")
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        # OpenAI puts the specific cause in ``code`` ("rate_limit_exceeded") and a family in
        # ``type`` ("tokens", "requests"); either may name a known error.
        code_name = str(code) if code is not None else None
        kind = code_name if code_name in _KNOWN_ERROR_CODES else (error_type or code_name)
        text = f"{self.provider} stream error event"
        if kind:
            text += f" ({kind})"
        if message:
            text += f": {message}"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        status = (
            429
            if kind in ("rate_limit_exceeded", "rate_limit_error")
            else 500
            if kind == "server_error"
            else None
        )
        return ProviderError(
            text,
            status_code=status,
            error_type=kind,
            request_id=self.request_id,
            in_stream=True,
            retryable=kind in _RETRYABLE_ERROR_TYPES or (isinstance(code, int) and code >= 500),
            provider=self.provider,
        )

    def finish(self) -> list[StreamEvent]:
        """End of body: tolerate a missing ``[DONE]`` after ``finish_reason``, else raise.

        Some local servers omit ``[DONE]``; a body that ends before any ``finish_reason``
        raises `StreamInterruptedError`.
        """
        if self._ended:
            return []
        if self._finish_raw is not None:
            return self._done()
        raise StreamInterruptedError(
            f"{self.provider} stream ended before finish_reason/[DONE] (connection dropped?)",
            provider=self.provider,
        )


def from_openai(
    client: Any, *, scheduler: abc.SchedulerBase | None = None, **params: Any
) -> Observable[StreamEvent]:
    """Stream an OpenAI Chat Completions response as a cold ``Observable[StreamEvent]``.

    Also works with OpenAI-compatible local servers (Ollama, llama.cpp, vLLM): point the
    client's ``base_url`` at them (see docs/providers.md for their differences).

    Args:
        client: ``openai.OpenAI`` / ``AsyncOpenAI`` (or ``AzureOpenAI``).
        scheduler: Where a sync client's blocking reads run (default: a shared thread pool).
            Async clients run as a task on the asyncio loop.
        **params: Exactly what ``client.chat.completions.create`` takes; ``stream=True`` is
            implied and ``stream_options={"include_usage": True}`` is added unless the caller
            set ``stream_options`` (pass ``stream_options={}`` to a server that rejects it).

    Returns:
        A cold Observable: each subscription sends one request; disposal closes the connection.

    Raises:
        ConfigurationError: ``client`` is not an OpenAI client, ``scheduler`` is not a
            scheduler, or ``params`` has a parameter ``client.chat.completions.create`` does
            not take (the message names the closest one) or lacks a required one.

    Emits:
        `ProviderError` (HTTP error or in-stream ``{"error": ...}``), `StreamInterruptedError`,
        `StreamDecodeError`, `ToolArgumentsError`, `InvalidRequestError` (the SDK refused a
        parameter value while building the request) — each with ``.partial``.
    """
    chat = getattr(client, "chat", None)
    completions = getattr(chat, "completions", None)
    if completions is None or not hasattr(completions, "with_streaming_response"):
        raise ConfigurationError(
            "from_openai needs an openai.OpenAI or AsyncOpenAI client (pip install 'rxstream[openai]')"
        )
    check_scheduler("from_openai", scheduler)
    check_params("from_openai", completions.create, "client.chat.completions.create", params)
    params = {**params, "stream": True}
    if "stream_options" not in params:
        params["stream_options"] = {"include_usage": True}
    elif not params["stream_options"]:
        del params["stream_options"]
    request_model = params.get("model")
    headers = ("x-request-id", "request-id")

    return sse_observable(
        client=client,
        create=guard_create(completions.with_streaming_response.create, "openai"),
        params=params,
        make_normaliser=lambda stream_id: OpenAIChatNormaliser(stream_id, request_model=request_model),
        provider="openai",
        request_id_headers=headers,
        scheduler=scheduler,
    )

"""The accumulated response (snapshot) and the pure reducer that builds it from events.

`apply(snapshot, event) -> Response` is a pure function: fold it over a stream's events to
get the snapshot after each event. `ResponseAccumulator` is the same reduction with mutable
internals (amortized O(1) per text delta), used by `rxstream.operators.final`; both give
identical results.

Example:
    >>> from rxstream.events import StreamStart, TextDelta
    >>> r = apply(Response(), StreamStart(stream_id="s", seq=0, provider="anthropic"))
    >>> apply(r, TextDelta(stream_id="s", seq=1, text="Hi")).text
    'Hi'
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from rxstream.events import (
    _ZERO_USAGE,
    IterationStart,
    ProviderName,
    StopReason,
    StreamEnd,
    StreamEvent,
    StreamReset,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)

__all__ = ["MessageFormat", "Response", "ResponseAccumulator", "ToolCall", "apply"]

MessageFormat = ProviderName
"""A wire format a `Response` renders to: a `rxstream.events.ProviderName`."""


class ToolCall(BaseModel):
    """One tool call of a response.

    Attributes:
        id: Tool call id (``toolu_...``, ``call_...``, Bedrock ``toolUseId``).
        name: Tool name.
        arguments: Parsed JSON arguments; while the call is still streaming, the partial
            parse so far.
        raw_arguments: The JSON text of the arguments as streamed so far.
        complete: True once `ToolCallEnd` arrived with complete arguments; False while
            streaming, and for a call cut off by the token limit (its `ToolCallEnd` has
            ``provider_details["truncated"]`` and the partial arguments).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = {}
    raw_arguments: str = ""
    complete: bool = False


class Response(BaseModel):
    """A snapshot of one streamed response: everything received so far.

    Attributes:
        provider: Source provider name (see `rxstream.events.StreamStart.provider`).
        model: Model name reported by the provider.
        id: Provider message/response id.
        request_id: Provider request id.
        text: The answer text (all text deltas concatenated, in characters).
        thinking: Reasoning text (all thinking deltas concatenated).
        thinking_signature: Signature of the last thinking block, if any.
        tool_calls: Tool calls in order of their index.
        usage: Latest cumulative usage (tokens).
        stop_reason: Normalized stop reason; ``None`` until the stream ended.
        raw_stop_reason: The provider's own stop reason string.
        complete: True once `StreamEnd` arrived.
    """

    model_config = ConfigDict(frozen=True)

    provider: str | None = None
    model: str | None = None
    id: str | None = None
    request_id: str | None = None
    text: str = ""
    thinking: str = ""
    thinking_signature: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    stop_reason: StopReason | None = None
    raw_stop_reason: str | None = None
    complete: bool = False

    def _repr_markdown_(self) -> str:
        """Jupyter display: the text, thinking and tool calls in ``<details>``, and the usage."""
        from rxstream._markdown import response_markdown, stats_text

        return response_markdown(self, footer=stats_text(None, self))

    def _repr_html_(self) -> str:
        """Jupyter display as escaped HTML (model output is never interpreted as markup)."""
        from rxstream._markdown import response_html, stats_text

        return response_html(self, footer=stats_text(None, self))

    def to_message(self, format: MessageFormat | None = None) -> dict[str, Any]:
        """Render this response as the provider's assistant message for a chat history.

        A thin delegate to the provider registry
        (`rxstream.providers.ProviderSpec.assistant_message`).

        Args:
            format: Target wire format (a `rxstream.events.ProviderName`); default: the
                format of ``self.provider`` (``bedrock-invoke`` uses the Anthropic format).

        Returns:
            A JSON-compatible dict: Anthropic ``{"role": "assistant", "content": [blocks]}``
            (Messages API "content blocks"), OpenAI Chat ``{"role": "assistant", "content",
            "tool_calls"}``, Bedrock Converse ``{"role", "content": [{"text"}, {"toolUse"}]}``.
            For ``openai-responses`` the message dict is ``{"role": "assistant", "content":
            text}``; tool calls must be sent back as ``function_call`` items (see
            `to_responses_input_items`).

        Raises:
            rxstream.errors.ConfigurationError: No format is given and the provider is
                unknown (also a ``ValueError``).
        """
        from rxstream.providers import get_spec

        return get_spec(format or _provider_or_raise(self.provider)).assistant_message(self)

    def to_responses_input_items(self) -> list[dict[str, Any]]:
        """Render this response as OpenAI Responses API input items (message + function calls).

        Returns:
            A list of input items: an assistant ``message`` item (when there is text) followed
            by one ``{"type": "function_call", "call_id", "name", "arguments"}`` per tool call
            (OpenAI "Function calling" guide, Responses API).
        """
        from rxstream.providers import get_spec

        return get_spec("openai-responses").render_assistant(self)


def _provider_or_raise(provider: str | None) -> str:
    if provider is None:
        from rxstream.errors import ConfigurationError

        raise ConfigurationError("cannot pick a message format for a response without provider; pass format=")
    return provider


def _replace_tool_call(calls: tuple[ToolCall, ...], index: int, call: ToolCall) -> tuple[ToolCall, ...]:
    if index < len(calls):
        return (*calls[:index], call, *calls[index + 1 :])
    return (*calls, call)


def apply(snapshot: Response, event: StreamEvent) -> Response:
    """Return the snapshot that results from applying ``event`` to ``snapshot`` (pure).

    Args:
        snapshot: The response so far (``Response()`` before the first event).
        event: The next event of the stream.

    Returns:
        A new `Response`; ``snapshot`` is not modified. A `StreamReset` returns an empty
        response that keeps only the stream identity (provider, model, ids). A tool loop's
        `IterationStart` starts a new empty response (the next model turn); its
        `ToolResult` and `IterationEnd` leave the snapshot unchanged.
    """
    if isinstance(event, TextDelta):
        return snapshot.model_copy(update={"text": snapshot.text + event.text})
    if isinstance(event, ThinkingDelta):
        update: dict[str, Any] = {"thinking": snapshot.thinking + event.text}
        if event.signature is not None:
            update["thinking_signature"] = event.signature
        return snapshot.model_copy(update=update)
    if isinstance(event, ToolCallStart):
        call = ToolCall(id=event.id, name=event.name)
        return snapshot.model_copy(
            update={"tool_calls": _replace_tool_call(snapshot.tool_calls, event.index, call)}
        )
    if isinstance(event, ToolCallDelta):
        if event.index >= len(snapshot.tool_calls):
            return snapshot
        old = snapshot.tool_calls[event.index]
        call = old.model_copy(
            update={
                "raw_arguments": old.raw_arguments + event.arguments_delta,
                "arguments": event.partial_arguments
                if event.partial_arguments is not None
                else old.arguments,
            }
        )
        return snapshot.model_copy(
            update={"tool_calls": _replace_tool_call(snapshot.tool_calls, event.index, call)}
        )
    if isinstance(event, ToolCallEnd):
        call = ToolCall(
            id=event.id,
            name=event.name,
            arguments=event.arguments,
            raw_arguments=event.raw_arguments,
            complete=not event.truncated,
        )
        return snapshot.model_copy(
            update={"tool_calls": _replace_tool_call(snapshot.tool_calls, event.index, call)}
        )
    if isinstance(event, UsageUpdate):
        return snapshot.model_copy(update={"usage": event.usage})
    if isinstance(event, StreamStart):
        return snapshot.model_copy(
            update={
                "provider": event.provider,
                "model": event.model,
                "id": event.response_id,
                "request_id": event.request_id,
            }
        )
    if isinstance(event, StreamEnd):
        raw = (event.provider_details or {}).get("stop_reason")
        return snapshot.model_copy(
            update={
                "stop_reason": event.stop_reason,
                "raw_stop_reason": raw if isinstance(raw, str) else None,
                "usage": event.usage,
                "complete": True,
            }
        )
    if isinstance(event, StreamReset):
        return Response(
            provider=snapshot.provider, model=snapshot.model, id=snapshot.id, request_id=snapshot.request_id
        )
    if isinstance(event, IterationStart):
        return Response()
    return snapshot


class _ToolCallState:
    """A tool call being accumulated: fragments are joined only when a snapshot is taken."""

    __slots__ = ("arguments", "complete", "fragments", "id", "name")

    def __init__(self, tool_id: str, name: str) -> None:
        self.id = tool_id
        self.name = name
        self.arguments: dict[str, Any] = {}
        self.fragments: list[str] = []
        self.complete = False

    def freeze(self) -> ToolCall:
        if len(self.fragments) > 1:
            self.fragments = ["".join(self.fragments)]
        raw = self.fragments[0] if self.fragments else ""
        return ToolCall.model_construct(
            id=self.id, name=self.name, arguments=self.arguments, raw_arguments=raw, complete=self.complete
        )


class ResponseAccumulator:
    """Mutable accumulator equivalent to folding `apply` (faster for long streams).

    Not thread-safe; use one per stream. ``add`` costs O(1) per text or tool-argument
    delta; ``snapshot`` joins the parts (O(total characters)).
    """

    __slots__ = (
        "_complete",
        "_id",
        "_model",
        "_provider",
        "_raw_stop_reason",
        "_request_id",
        "_stop_reason",
        "_text",
        "_thinking",
        "_thinking_signature",
        "_tool_calls",
        "_usage",
    )

    def __init__(self) -> None:
        self._provider: str | None = None
        self._model: str | None = None
        self._id: str | None = None
        self._request_id: str | None = None
        self._reset_content()

    def _reset_content(self) -> None:
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._thinking_signature: str | None = None
        self._tool_calls: dict[int, _ToolCallState] = {}
        self._usage = _ZERO_USAGE
        self._stop_reason: StopReason | None = None
        self._raw_stop_reason: str | None = None
        self._complete = False

    @property
    def text(self) -> str:
        """The text accumulated so far."""
        return "".join(self._text)

    def add(self, event: StreamEvent) -> None:
        """Apply one event."""
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            self._thinking.append(event.text)
            if event.signature is not None:
                self._thinking_signature = event.signature
        elif isinstance(event, ToolCallStart):
            self._tool_calls[event.index] = _ToolCallState(event.id, event.name)
        elif isinstance(event, ToolCallDelta):
            state = self._tool_calls.get(event.index)
            if state is not None:
                state.fragments.append(event.arguments_delta)
                if event.partial_arguments is not None:
                    state.arguments = event.partial_arguments
        elif isinstance(event, ToolCallEnd):
            state = _ToolCallState(event.id, event.name)
            state.arguments = event.arguments
            state.fragments = [event.raw_arguments]
            state.complete = not event.truncated
            self._tool_calls[event.index] = state
        elif isinstance(event, UsageUpdate):
            self._usage = event.usage
        elif isinstance(event, StreamStart):
            self._provider = event.provider
            self._model = event.model
            self._id = event.response_id
            self._request_id = event.request_id
        elif isinstance(event, StreamEnd):
            raw = (event.provider_details or {}).get("stop_reason")
            self._stop_reason = event.stop_reason
            self._raw_stop_reason = raw if isinstance(raw, str) else None
            self._usage = event.usage
            self._complete = True
        elif isinstance(event, StreamReset):
            self._reset_content()
        elif isinstance(event, IterationStart):  # a tool loop's next model turn: a new response
            self._provider = self._model = self._id = self._request_id = None
            self._reset_content()

    def snapshot(self) -> Response:
        """Return the `Response` accumulated so far."""
        return Response(
            provider=self._provider,
            model=self._model,
            id=self._id,
            request_id=self._request_id,
            text="".join(self._text),
            thinking="".join(self._thinking),
            thinking_signature=self._thinking_signature,
            tool_calls=tuple(self._tool_calls[i].freeze() for i in sorted(self._tool_calls)),
            usage=self._usage,
            stop_reason=self._stop_reason,
            raw_stop_reason=self._raw_stop_reason,
            complete=self._complete,
        )

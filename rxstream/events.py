"""The provider-neutral event schema every rxstream source emits.

Every source (`from_anthropic`, `from_openai`, `from_openai_responses`, `from_bedrock`,
`from_bedrock_invoke`) emits the same frozen pydantic models, joined in the discriminated
union `StreamEvent` on the snake_case ``type`` field. A well-formed stream obeys this grammar::

    StreamStart
    (TextDelta | ThinkingDelta | ToolCallStart ToolCallDelta* ToolCallEnd | UsageUpdate)*
    StreamEnd

`StreamReset` only appears after `rxstream.operators.retry_stream(on_partial="restart")`.

A tool loop (`rxstream.tool_loop`) is one stream of several model turns; its grammar is::

    ( IterationStart
      StreamStart (TextDelta | ThinkingDelta | ToolCallStart ToolCallDelta* ToolCallEnd
                   | UsageUpdate)* StreamEnd
      ToolResult*
      IterationEnd )+

Each `ToolResult` follows the `ToolCallEnd` with the same ``tool_call_id`` in its iteration;
the loop completes after the last `IterationEnd`. In a loop, ``stream_id`` is the loop's
(one per subscription) and ``seq`` counts across all iterations.

Every event carries ``stream_id`` (one id per subscription, i.e. per HTTP request) and
``seq``, its position in that stream (0, 1, 2, ...). Provider-specific data goes in
``provider_details`` only, never in new top-level fields.

Deltas are increments: `TextDelta.text` is the new text only; the accumulated text lives
in `rxstream.Response` (see `rxstream.response.apply`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "IterationEnd",
    "IterationStart",
    "LoopStopReason",
    "ProviderName",
    "StopReason",
    "StreamEnd",
    "StreamEvent",
    "StreamReset",
    "StreamStart",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolResult",
    "Usage",
    "UsageUpdate",
    "stream_event_adapter",
]

ProviderName: TypeAlias = Literal["anthropic", "openai", "openai-responses", "bedrock", "bedrock-invoke"]
"""The wire APIs rxstream speaks: `StreamStart.provider` of their streams, the keys of the
provider registry (`rxstream.providers.PROVIDERS`) and the emulator's route names."""

StopReason: TypeAlias = Literal[
    "end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal", "content_filter", "other"
]
"""Normalized reason the model stopped.

* ``end_turn``: natural end (Anthropic ``end_turn``/``pause_turn``, OpenAI ``stop``/``completed``).
* ``max_tokens``: output token limit (Anthropic ``max_tokens``, OpenAI ``length``,
  Responses ``incomplete_details.reason == "max_output_tokens"``).
* ``tool_use``: the model asked for tool calls (OpenAI ``tool_calls``/``function_call``).
* ``stop_sequence``: a caller-supplied stop sequence matched.
* ``refusal``: the model refused (Anthropic ``refusal``, OpenAI refusal content).
* ``content_filter``: a provider filter cut the answer (OpenAI ``content_filter``,
  Bedrock ``content_filtered``/``guardrail_intervened``).
* ``other``: anything else; the raw value is kept in ``provider_details["stop_reason"]``.
"""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Usage(_Frozen):
    """Token counts of one response, cumulative (a later value replaces an earlier one).

    Attributes:
        input_tokens: Prompt tokens not read from or written to the prompt cache, for every
            provider (Anthropic/Bedrock report it so; for OpenAI it is ``prompt_tokens`` minus
            cached and cache-written tokens). The whole prompt is
            ``input_tokens + cache_read_tokens + cache_write_tokens``.
        output_tokens: Generated tokens (including reasoning tokens for OpenAI).
        cache_read_tokens: Prompt tokens read from the prompt cache.
        cache_write_tokens: Prompt tokens written to the prompt cache.
        reasoning_tokens: Output tokens spent on hidden reasoning (OpenAI), when reported.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


_ZERO_USAGE = Usage()
"""A shared all-zero `Usage` (frozen, so one instance serves every stream's starting value)."""


class _Event(_Frozen):
    stream_id: str
    """Identifies one subscription (one HTTP request) of a source."""
    seq: int
    """Position of this event within its stream: 0, 1, 2, ..."""
    provider_details: dict[str, Any] | None = None
    """Raw provider data that has no neutral field (e.g. the raw stop reason)."""


class StreamStart(_Event):
    """The response started: the provider accepted the request and began streaming.

    Attributes:
        provider: The source's `ProviderName` (``"anthropic"``, ``"openai"``,
            ``"openai-responses"``, ``"bedrock"`` or ``"bedrock-invoke"``); typed ``str`` so
            third-party sources may use their own name.
        model: The model that answers, as the provider reports it (request model if absent).
        request_id: The provider request id (``request-id`` / ``x-request-id`` /
            ``x-amzn-requestid`` header), if any.
        response_id: The provider's message/response id (``msg_...``, ``chatcmpl-...``).
    """

    type: Literal["stream_start"] = "stream_start"
    provider: str
    model: str | None = None
    request_id: str | None = None
    response_id: str | None = None


class TextDelta(_Event):
    """New answer text (an increment, in characters as the provider sent it)."""

    type: Literal["text_delta"] = "text_delta"
    text: str


class ThinkingDelta(_Event):
    """New reasoning ("thinking") text, or the signature that seals a thinking block.

    Attributes:
        text: Reasoning text increment (empty when this delta only carries a signature).
        signature: Opaque signature of the thinking block (Anthropic ``signature_delta``,
            Bedrock ``reasoningContent.signature``); must be sent back unchanged.
    """

    type: Literal["thinking_delta"] = "thinking_delta"
    text: str = ""
    signature: str | None = None


class ToolCallStart(_Event):
    """The model started a tool call.

    Attributes:
        index: Position of this tool call among the response's tool calls (0, 1, ...).
        id: Tool call id to answer with (``toolu_...``, ``call_...``, Bedrock ``toolUseId``).
        name: Tool (function) name.
    """

    type: Literal["tool_call_start"] = "tool_call_start"
    index: int
    id: str
    name: str


class ToolCallDelta(_Event):
    """A fragment of a tool call's JSON arguments.

    Attributes:
        index: Tool-call position (matches `ToolCallStart.index`).
        arguments_delta: The raw JSON fragment exactly as streamed.
        partial_arguments: Best-effort parse of all arguments received so far (incomplete
            strings included), or ``None`` when nothing parseable has arrived yet.
    """

    type: Literal["tool_call_delta"] = "tool_call_delta"
    index: int
    arguments_delta: str
    partial_arguments: dict[str, Any] | None = None


class ToolCallEnd(_Event):
    """A tool call is complete.

    Attributes:
        index: Tool-call position.
        id: Tool call id.
        name: Tool name.
        arguments: The parsed JSON arguments object (``{}`` for no arguments).
        raw_arguments: The full JSON text of the arguments as streamed.

    A call cut off by the output token limit (stop reason ``max_tokens``) ends with the
    partial parse of what arrived and ``provider_details={"truncated": True}``; invalid JSON
    in any other case is a `rxstream.errors.ToolArgumentsError`.
    """

    type: Literal["tool_call_end"] = "tool_call_end"
    index: int
    id: str
    name: str
    arguments: dict[str, Any]
    raw_arguments: str = ""

    @property
    def truncated(self) -> bool:
        """Whether the output token limit cut this call off (``provider_details["truncated"]``)."""
        return bool((self.provider_details or {}).get("truncated", False))


class UsageUpdate(_Event):
    """Token usage so far (cumulative: replaces the previous `UsageUpdate`)."""

    type: Literal["usage_update"] = "usage_update"
    usage: Usage


class StreamEnd(_Event):
    """The response finished normally: the last event of a successful stream.

    Attributes:
        stop_reason: Normalized stop reason; the raw provider value is in
            ``provider_details["stop_reason"]``.
        usage: Final usage.
    """

    type: Literal["stream_end"] = "stream_end"
    stop_reason: StopReason
    usage: Usage = Usage()


class StreamReset(_Event):
    """Everything received so far is discarded: a retry restarted the stream.

    Emitted by `rxstream.operators.retry_stream` with ``on_partial="restart"`` before the
    events of the new attempt; `rxstream.response.apply` clears the snapshot on it.

    Attributes:
        attempt: Number of the attempt that follows (2 for the first retry).
        discarded_text: The answer text that the reset throws away.
    """

    type: Literal["stream_reset"] = "stream_reset"
    attempt: int
    discarded_text: str = ""


LoopStopReason: TypeAlias = StopReason | Literal["max_iterations"]
"""Why a tool-loop iteration ended: the model turn's `StopReason`, or ``max_iterations``
when the loop stopped at its limit although the model still asked for tools."""


class IterationStart(_Event):
    """A tool-loop iteration (one model turn, then its tool calls) begins.

    Emitted by `rxstream.tool_loop` before the turn's `StreamStart`. `rxstream.response.apply`
    starts a new, empty snapshot on it, so ``rso.final()`` on a loop gives the last turn.

    Attributes:
        iteration: 1 for the first model turn, 2 for the next, ...
    """

    type: Literal["iteration_start"] = "iteration_start"
    iteration: int


class ToolResult(_Event):
    """The result of one executed tool call, as sent back to the model.

    Attributes:
        iteration: The iteration whose model turn asked for the call.
        tool_call_id: The `ToolCallEnd.id` it answers.
        name: Tool name (as the model called it).
        output: The result text sent to the model (for an error: the error message only,
            never a traceback).
        is_error: True when the tool raised, timed out, got invalid arguments or does not
            exist; the model is told so (Anthropic ``is_error``, Converse ``status: "error"``).
        duration_s: Wall-clock seconds the call took (``time.perf_counter``).
    """

    type: Literal["tool_result"] = "tool_result"
    iteration: int
    tool_call_id: str
    name: str
    output: str
    is_error: bool = False
    duration_s: float = 0.0


class IterationEnd(_Event):
    """A tool-loop iteration ended (its model turn and its tool calls are done).

    Attributes:
        iteration: The iteration number (matches `IterationStart.iteration`).
        usage: Token usage of this iteration's model turn alone.
        stop_reason: The turn's stop reason (``tool_use`` when tools ran and another turn
            follows), or ``max_iterations`` when the loop stopped at its limit.

    ``provider_details["messages"]`` holds the history items this iteration appended, in
    the provider's own format (the assistant turn, then the tool results);
    `rxstream.operators.loop_result` joins them into `ToolLoopResult.messages`.
    """

    type: Literal["iteration_end"] = "iteration_end"
    iteration: int
    usage: Usage = Usage()
    stop_reason: LoopStopReason


StreamEvent: TypeAlias = Annotated[
    StreamStart
    | TextDelta
    | ThinkingDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageUpdate
    | StreamEnd
    | StreamReset
    | IterationStart
    | ToolResult
    | IterationEnd,
    Field(discriminator="type"),
]
"""Any rxstream event; discriminated on ``type``."""

stream_event_adapter: TypeAdapter[StreamEvent] = TypeAdapter(StreamEvent)
"""Validates/serializes `StreamEvent` values, e.g. ``stream_event_adapter.validate_json(b)``."""

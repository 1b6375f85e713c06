"""Scripts that tell the provider emulator what to stream.

A :class:`ResponseScript` describes one model reply in provider-neutral terms
(text, thinking, refusal, tool calls, stop reason, token counts, pacing and an
optional :class:`Fault`). The emulator renders the same script into each wire
format, so one script drives the Anthropic, OpenAI (Chat Completions and
Responses) and Bedrock (ConverseStream and InvokeModelWithResponseStream)
routes alike.

Mapping of the neutral ``stop_reason`` onto each wire format (Anthropic /
OpenAI Chat ``finish_reason`` / OpenAI Responses status / Bedrock Converse
``stopReason``; Bedrock InvokeModel carries the Anthropic value):

- ``end_turn``: end_turn / stop / completed / end_turn
- ``max_tokens``: max_tokens / length / incomplete ``max_output_tokens`` /
  max_tokens
- ``tool_use``: tool_use / tool_calls / completed / tool_use
- ``stop_sequence``: stop_sequence / stop / completed / stop_sequence
- ``refusal``: refusal / stop / completed / content_filtered
- ``content_filter``: refusal / content_filter / incomplete ``content_filter`` /
  content_filtered

Sources: ``anthropic/types/stop_reason.py``, the ``finish_reason`` literal in
``openai/types/chat/chat_completion_chunk.py``, ``IncompleteDetails.reason`` in
``openai/types/responses/response.py`` and the ``StopReason`` enum in
``botocore/data/bedrock-runtime/2023-09-30/service-2.json``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Fault", "FaultKind", "ResponseScript", "ScriptedToolCall", "StopReason"]

StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal", "content_filter"]
"""Provider-neutral reason why the scripted reply ended."""

FaultKind = Literal["error_event", "drop", "stall", "http_error"]
"""What goes wrong: in-stream error event, dropped connection, stall or HTTP error."""

_DEFAULT_SIGNATURE = (
    "EqQBCkYIARgCIkBlbXVsYXRvci1zaWduYXR1cmUtbm90LXZhbGlkLWZvci1yZWFsLXVzZS0w"
    "MTIzNDU2Nzg5YWJjZGVmEgxyeHN0cmVhbS10ZXN0GgxlbXVsYXRvci0xIjBmYWtlLXNpZ25h"
    "dHVyZS1ieXRlcw=="
)


class ScriptedToolCall(BaseModel):
    """One tool call the scripted model makes.

    Attributes:
        id: The call id as the wire carries it (Anthropic ``tool_use.id``,
            OpenAI ``tool_calls[].id`` / Responses ``call_id``, Bedrock
            ``toolUseId``). Pick the provider's style, e.g. ``toolu_…`` or
            ``call_…``; the emulator does not rewrite it.
        name: The tool (function) name.
        arguments: The raw JSON text of the arguments exactly as streamed. It
            may be large (hundreds of kB) and is not validated, so invalid JSON
            can be scripted on purpose.
        fragment_size: Characters (code points) per argument fragment, >= 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    arguments: str
    fragment_size: int = Field(default=16, ge=1)


class Fault(BaseModel):
    """A failure injected into one emulated response.

    Attributes:
        kind: ``"error_event"`` writes the provider's in-stream error form and
            ends the stream; ``"drop"`` closes the TCP connection without the
            HTTP terminating chunk; ``"stall"`` stops writing; ``"http_error"``
            answers with an HTTP error status and the provider's JSON error body
            instead of a stream.
        after_events: For in-stream faults, how many wire events are written
            before the fault (``0`` = right after the response headers).
        status: HTTP status for ``http_error``. For ``error_event`` it only
            selects the default ``error_type``.
        retry_after: Seconds sent in the ``retry-after`` header of an
            ``http_error`` (integers are sent without a fraction).
        error_type: Provider-native error type, e.g. ``"overloaded_error"``
            (Anthropic), ``"server_error"`` (OpenAI) or
            ``"throttlingException"`` (Bedrock). ``None`` picks a default from
            ``status`` for each provider.
        message: Human-readable error message.
        stall_seconds: How long a ``stall`` lasts before the stream resumes, in
            seconds; ``None`` stalls until the client goes away (or the
            emulator stops).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    after_events: int = Field(default=0, ge=0)
    status: int = Field(default=529, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    error_type: str | None = None
    message: str = "Overloaded"
    stall_seconds: float | None = Field(default=None, ge=0)


class ResponseScript(BaseModel):
    """A provider-neutral description of one streamed model reply.

    Content is streamed in this order on every wire format: thinking,
    text, refusal, tool calls. Anthropic and Bedrock have no separate refusal
    channel, so ``refusal`` text is streamed there as ordinary text.

    Attributes:
        model: Model name written into the wire payloads.
        text: The assistant text.
        thinking: Reasoning text (Anthropic thinking block, Responses reasoning
            summary, Bedrock ``reasoningContent``; OpenAI Chat only with
            ``compat_reasoning_content``).
        thinking_signature: Opaque signature of the thinking block (Anthropic
            ``signature_delta``, Bedrock ``reasoningContent.signature``).
        refusal: Refusal text (OpenAI ``refusal`` deltas).
        tool_calls: Tool calls, streamed after the text.
        stop_reason: Neutral stop reason; see the module docstring for the
            mapping onto each wire format.
        stop_sequence: The matched stop sequence (Anthropic ``stop_sequence``).
        input_tokens: Prompt tokens neither read from nor written to the cache
            (Anthropic ``input_tokens``, Bedrock ``inputTokens``). OpenAI counts
            the whole prompt, so its ``prompt_tokens`` / ``input_tokens`` is this
            plus both cache counts.
        output_tokens: Output token count; ``None`` estimates about four
            characters per token from the scripted content.
        cache_read_input_tokens: Cached input tokens (Anthropic
            ``cache_read_input_tokens``, OpenAI ``cached_tokens``, Bedrock
            ``cacheReadInputTokens``).
        cache_creation_input_tokens: Cache-write input tokens (Anthropic
            ``cache_creation_input_tokens``, Bedrock ``cacheWriteInputTokens``).
        reasoning_tokens: Reasoning tokens included in ``output_tokens``.
        chunking: ``"words"`` splits text into deltas of ``chunk_size`` words
            with the whitespace before each word attached to it; ``"chars"``
            splits into ``chunk_size`` code points, so a multi-byte character
            can end one delta and the next starts right after it.
        chunk_size: Words or characters per delta, >= 1.
        event_delay: Seconds between two wire events.
        headers_delay: Seconds between reading the request and sending the response
            headers (the connection is open, nothing is sent: a client is still
            "opening" the stream).
        first_event_delay: Seconds between the response headers and the first
            wire event.
        ping_every: Anthropic only: also send a ``ping`` after every N events
            (the one ``ping`` the real API sends after the first
            ``content_block_start`` is always sent).
        unknown_event_after: Insert one forward-compatible event of an unknown
            type after N wire events (per format: see the emulator docs).
        write_split_seed: When set, every wire event is written in pieces of
            1..64 bytes chosen by a ``random.Random(seed)``, so pieces end in
            the middle of UTF-8 sequences, SSE lines and event-stream frames.
        compat_reasoning_content: OpenAI Chat only: stream ``thinking`` as
            ``delta.reasoning_content`` the way vLLM, llama.cpp and Ollama do
            (OpenAI itself never sends it).
        fault: An optional injected failure.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "emulator-1"
    text: str = ""
    thinking: str = ""
    thinking_signature: str = _DEFAULT_SIGNATURE
    refusal: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    input_tokens: int = Field(default=12, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)
    reasoning_tokens: int = Field(default=0, ge=0)
    chunking: Literal["words", "chars"] = "words"
    chunk_size: int = Field(default=1, ge=1)
    event_delay: float = Field(default=0.0, ge=0)
    first_event_delay: float = Field(default=0.0, ge=0)
    headers_delay: float = Field(default=0.0, ge=0)
    ping_every: int | None = Field(default=None, ge=1)
    unknown_event_after: int | None = Field(default=None, ge=0)
    write_split_seed: int | None = None
    compat_reasoning_content: bool = False
    fault: Fault | None = None

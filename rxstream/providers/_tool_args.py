"""Tool-call argument buffers with amortized partial-JSON parsing (pure).

Each fragment is appended to a buffer; ``partial`` returns the best-effort parse of the
buffer so far using ``jiter.from_json(..., partial_mode="trailing-strings")``. Re-parsing the
whole buffer on every fragment costs O(n) per fragment (O(n²) per tool call; the Anthropic
SDK's own accumulator does this). We re-parse on every fragment while the buffer is under
``eager_limit`` bytes, and above that only once the buffer has grown by ``growth`` (1/8)
since the last parse — amortized O(1) per fragment; in between, ``partial`` returns the last
parse (still correct, just less fresh).
"""

from __future__ import annotations

from typing import Any

import jiter

from rxstream.errors import StreamDecodeError, ToolArgumentsError
from rxstream.events import ToolCallEnd

__all__ = ["ArgumentBuffer", "parse_arguments", "parse_json_object", "tool_call_end"]


class ArgumentBuffer:
    """Accumulates one tool call's JSON argument fragments."""

    __slots__ = ("_eager_limit", "_growth", "_last", "_last_len", "_parts", "_size")

    def __init__(self, *, eager_limit: int = 8192, growth: float = 0.125) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._last: dict[str, Any] | None = None
        self._last_len = 0
        self._eager_limit = eager_limit
        self._growth = growth

    def append(self, fragment: str) -> dict[str, Any] | None:
        """Add a fragment; return the partial arguments parsed so far (or the last parse)."""
        if not fragment:
            return self._last
        self._parts.append(fragment)
        self._size += len(fragment)
        if self._size <= self._eager_limit or self._size - self._last_len >= self._last_len * self._growth:
            self._last_len = self._size
            text = "".join(self._parts)
            if len(self._parts) > 1:
                self._parts = [text]
            try:
                value = jiter.from_json(text.encode(), partial_mode="trailing-strings")
            except ValueError:
                return self._last
            if isinstance(value, dict):
                self._last = value
        return self._last

    def partial_now(self) -> dict[str, Any]:
        """Parse the whole buffer now in partial mode (``{}`` if nothing parseable)."""
        try:
            value = jiter.from_json(self.text.encode(), partial_mode="trailing-strings")
        except ValueError:
            return self._last or {}
        return value if isinstance(value, dict) else {}

    @property
    def text(self) -> str:
        """The complete raw argument text received so far."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""


def parse_arguments(raw: str) -> dict[str, Any]:
    """Parse complete tool arguments: ``""`` → ``{}``; else must be a JSON object.

    Raises:
        ValueError: if ``raw`` is not valid JSON or not an object.
    """
    if not raw.strip():
        return {}
    value = jiter.from_json(raw.encode())
    if not isinstance(value, dict):
        raise ValueError(f"tool arguments must be a JSON object, got {type(value).__name__}")
    return value


def parse_json_object(data: bytes, *, provider: str, what: str) -> dict[str, Any]:
    """Parse one wire event's JSON payload (SSE data, event-stream chunk) into a dict.

    Args:
        data: The payload bytes.
        provider: Provider name for the error message.
        what: What the payload is, for the error message (e.g. ``"SSE event 'ping'"``).

    Raises:
        StreamDecodeError: ``data`` is not valid JSON, or not a JSON object; carries an
            excerpt of the data.
    """
    try:
        value = jiter.from_json(data)
    except ValueError as exc:
        raise StreamDecodeError(
            f"{provider}: malformed JSON in {what}", raw=data.decode("utf-8", "replace"), provider=provider
        ) from exc
    if not isinstance(value, dict):
        raise StreamDecodeError(
            f"{provider}: {what} is not a JSON object", raw=data.decode("utf-8", "replace"), provider=provider
        )
    return value


def tool_call_end(
    *,
    stream_id: str,
    seq: int,
    index: int,
    tool_id: str,
    name: str,
    raw: str,
    provider: str,
    truncated: bool = False,
    partial: ArgumentBuffer | None = None,
    empty: dict[str, Any] | None = None,
) -> ToolCallEnd:
    """Build the `ToolCallEnd` of a finished tool call from its complete argument text.

    Args:
        stream_id: Stream id for the event.
        seq: Sequence number for the event.
        index: Tool-call position.
        tool_id: Tool call id.
        name: Tool name.
        raw: The complete argument JSON text.
        provider: Provider name for errors.
        truncated: The response hit its output token limit: invalid JSON then ends the call
            with the partial parse (``partial``) and ``provider_details={"truncated": True}``
            instead of raising.
        partial: The call's buffer, for the partial parse of a truncated call.
        empty: Arguments to use when ``raw`` is blank (default ``{}``).

    Raises:
        ToolArgumentsError: ``raw`` is not a JSON object (and the call was not truncated).
    """
    details: dict[str, Any] | None = None
    if not raw.strip():
        arguments = dict(empty or {})
    else:
        try:
            arguments = parse_arguments(raw)
        except ValueError as exc:
            if not truncated:
                raise ToolArgumentsError(
                    f"{provider}: tool call {index} ({name}) has invalid JSON arguments: {exc}",
                    index=index,
                    tool_call_id=tool_id,
                    name=name,
                    raw_arguments=raw,
                    provider=provider,
                ) from exc
            arguments = partial.partial_now() if partial is not None else {}
            details = {"truncated": True}
    return ToolCallEnd(
        stream_id=stream_id,
        seq=seq,
        index=index,
        id=tool_id,
        name=name,
        arguments=arguments,
        raw_arguments=raw,
        provider_details=details,
    )

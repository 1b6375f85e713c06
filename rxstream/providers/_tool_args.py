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

__all__ = ["ArgumentBuffer", "parse_arguments"]


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

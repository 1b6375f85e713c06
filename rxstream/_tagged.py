"""`Tagged`: one item of `rxstream.merge_streams` (kept here so operators can import it)."""

from __future__ import annotations

from dataclasses import dataclass

from rxstream.events import StreamEvent

__all__ = ["Tagged"]


@dataclass(frozen=True, slots=True)
class Tagged:
    """One item of `rxstream.merge_streams`: an event or the error of one named source.

    Attributes:
        source: The source's name.
        event: The event (``None`` for an error item).
        error: The source's error (a `rxstream.errors.StreamError` with ``.partial`` for
            rxstream sources), ``None`` for an event item. An error item is the last item
            of its source.
    """

    source: str
    event: StreamEvent | None = None
    error: Exception | None = None

"""Small helpers for testing code that consumes rxstream streams.

* Event factories with test-friendly defaults (``stream_id="s"``): `stream_start`,
  `text_delta`, `thinking_delta`, `tool_call_start`, `usage_update`, `stream_end`.
* `run`: a marble run of an operator on a `reactivex.testing.TestScheduler` (one tick is
  one second of scheduler time; the source is hot, subscribed at tick 200 and disposed at
  ``disposed``, as in `TestScheduler.start`).
* `collect`: subscribe to a real (threaded) stream and wait, with a deadline, until it ends.
* `check_grammar`: assert the event grammar of `rxstream.events` on one stream.

Example:
    >>> from reactivex.testing import ReactiveTest
    >>> from rxstream import operators as rso
    >>> on_next = ReactiveTest.on_next
    >>> messages, _ = run([on_next(210, text_delta(1, "Hel")), on_next(211, text_delta(2, "lo"))],
    ...                   rso.coalesce_text(5))
    >>> messages[0].value.value.text
    'Hello'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from reactivex import Observable
from reactivex.testing import TestScheduler
from reactivex.testing.recorded import Recorded

from rxstream.events import (
    StopReason,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)

__all__ = [
    "check_grammar",
    "collect",
    "run",
    "stream_end",
    "stream_start",
    "text_delta",
    "thinking_delta",
    "tool_call_start",
    "usage_update",
]


def stream_start(
    seq: int = 0,
    *,
    stream_id: str = "s",
    provider: str = "anthropic",
    model: str | None = None,
    request_id: str | None = None,
) -> StreamStart:
    """A `StreamStart` (default: seq 0 of stream ``"s"`` from ``"anthropic"``)."""
    return StreamStart(stream_id=stream_id, seq=seq, provider=provider, model=model, request_id=request_id)


def text_delta(seq: int, text: str = "x", sid: str = "s") -> TextDelta:
    """A `TextDelta` of stream ``sid``."""
    return TextDelta(stream_id=sid, seq=seq, text=text)


def thinking_delta(seq: int, text: str, signature: str | None = None, sid: str = "s") -> ThinkingDelta:
    """A `ThinkingDelta` of stream ``sid``."""
    return ThinkingDelta(stream_id=sid, seq=seq, text=text, signature=signature)


def tool_call_start(
    seq: int, index: int = 0, id: str = "call_1", name: str = "f", sid: str = "s"
) -> ToolCallStart:
    """A `ToolCallStart` (default: call ``call_1`` of tool ``f`` at index 0)."""
    return ToolCallStart(stream_id=sid, seq=seq, index=index, id=id, name=name)


def usage_update(seq: int, output_tokens: int | None = None, sid: str = "s") -> UsageUpdate:
    """A `UsageUpdate` whose ``output_tokens`` defaults to ``seq``."""
    return UsageUpdate(
        stream_id=sid, seq=seq, usage=Usage(output_tokens=seq if output_tokens is None else output_tokens)
    )


def stream_end(
    seq: int, stop_reason: StopReason = "end_turn", usage: Usage | None = None, sid: str = "s"
) -> StreamEnd:
    """A `StreamEnd` (default: ``end_turn``, empty usage)."""
    return StreamEnd(stream_id=sid, seq=seq, stop_reason=stop_reason, usage=usage or Usage())


def run(
    messages: Sequence[Recorded[Any]],
    op: Callable[[Observable[Any]], Observable[Any]],
    disposed: int = 1000,
) -> tuple[list[Any], Any]:
    """Run ``op`` over a hot source emitting ``messages`` on a fresh `TestScheduler`.

    Args:
        messages: ``ReactiveTest.on_next(tick, value)`` / ``on_error`` / ``on_completed``.
        op: The operator under test (the value ``pipe`` takes).
        disposed: Tick at which the subscription is disposed.

    Returns:
        The recorded output messages (``list[Recorded]``, typed ``Any`` so tests can read
        ``.value.value`` directly) and the hot source (its ``subscriptions`` show when the
        operator subscribed and disposed upstream).
    """
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(list(messages))
    results = scheduler.start(lambda: source.pipe(op), disposed=disposed)
    return results.messages, source


def collect(
    stream: Observable[StreamEvent], timeout: float = 10.0
) -> tuple[list[StreamEvent], BaseException | None]:
    """Subscribe, wait until the stream completes or fails (at most ``timeout`` seconds).

    Returns:
        The events received and the error (``None`` after completion).

    Raises:
        AssertionError: The stream did not terminate in time.
    """
    events: list[StreamEvent] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    stream.subscribe(events.append, on_error, done.set)
    assert done.wait(timeout), "stream did not terminate"
    return events, (errors[0] if errors else None)


def check_grammar(events: Sequence[StreamEvent], *, complete: bool = True) -> None:
    """Assert the grammar of one stream: `StreamStart` first, seq 0..n, one stream id, tool calls nested.

    Args:
        events: The events of one subscription.
        complete: Also require exactly one `StreamEnd`, last, and every tool call closed.
    """
    assert events and events[0].type == "stream_start"
    kinds = [e.type for e in events]
    assert kinds.count("stream_start") == 1
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.stream_id for e in events}) == 1
    state: dict[int, str] = {}
    for e in events:
        if e.type == "tool_call_start":
            assert e.index not in state
            state[e.index] = "open"
        elif e.type == "tool_call_delta":
            assert state.get(e.index) == "open"
        elif e.type == "tool_call_end":
            assert state.get(e.index) == "open"
            state[e.index] = "closed"
    if complete:
        assert kinds[-1] == "stream_end" and kinds.count("stream_end") == 1
        assert all(v == "closed" for v in state.values())

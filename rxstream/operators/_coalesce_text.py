"""``coalesce_text``: merge bursts of adjacent text (or thinking) deltas into one delta."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxstream.events import StreamEvent, TextDelta, ThinkingDelta
from rxstream.operators._core import (
    Holding,
    check_count,
    check_scheduler,
    check_seconds,
    is_mergeable,
    resolve_scheduler,
    subscribe_holding,
    to_timedelta,
)

__all__ = ["coalesce_text"]


def coalesce_text(
    max_delay: float,
    max_chars: int | None = None,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Merge adjacent text deltas (and adjacent thinking deltas) into fewer, larger deltas.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. A window opens at the first held
    `TextDelta` (or `ThinkingDelta`) and closes ``max_delay`` seconds later, or as soon as it
    holds ``max_chars`` characters; the held deltas then leave as **one** delta. Text is never
    merged with thinking, and nothing is reordered: any other event (tool call, usage, end,
    reset, a thinking signature, a delta with ``provider_details`` such as a refusal) first
    flushes the held text and then passes through unchanged. Use it to cut per-event costs
    downstream (UI repaints, websocket frames) without dropping a character, which
    ``throttle_first``/``sample``/``debounce`` would.

    A window's deltas are merged into a copy of its **first** delta: same type, ``stream_id``
    and ``seq`` (the first merged delta's seq, so downstream seqs have gaps), ``text`` = the
    concatenation. A window holding a single delta emits that delta object unchanged.
    ``max_chars`` only closes windows: a single delta longer than it is not split.

    Marble (``max_delay`` = 4 ticks; ``a``-``d`` text deltas, ``T`` a tool call, ``A`` = a+b,
    ``C`` = c+d; a parenthesised group happens at one instant)::

        source:             S-a-b-----c-d-T-E|
        coalesce_text(4):   S-----A-------(CT)E|

    Args:
        max_delay: Seconds a window stays open after its first delta (> 0).
        max_chars: Close the window as soon as it holds at least this many characters
            (code points, >= 1); ``None``: no size limit.
        scheduler: Scheduler for the window timers. Default: the subscribe-time scheduler,
            else the shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``max_delay`` is not a finite number > 0 or
            ``max_chars`` is not an int >= 1.

    Emits:
        The same events with adjacent text/thinking runs merged. On source error or
        completion, the held delta is emitted first, then ``on_error`` (the error unchanged)
        or ``on_completed``. Never emits an empty window.

    Scheduler:
        Window timers run on the resolved scheduler (``scheduler`` argument → subscribe-time
        scheduler → ``TimeoutScheduler``); events are emitted on the source's thread or the
        timer's thread, serialized by a per-subscription lock.

    Example:
        >>> stream.pipe(rso.coalesce_text(0.05, max_chars=200)).subscribe(ws.send)  # doctest: +SKIP
    """
    delay = to_timedelta(check_seconds("max_delay", max_delay))
    limit = None if max_chars is None else check_count("max_chars", max_chars)
    explicit = check_scheduler(scheduler)

    def _coalesce_text(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(explicit, subscribe_scheduler)
            hold = Holding()
            timer = SerialDisposable()
            parts: list[str] = []
            first: TextDelta | ThinkingDelta | None = None
            held_chars = 0
            window = 0  # generation of the open window; a stale timer sees another value

            def flush() -> None:  # caller holds the lock
                nonlocal first, held_chars, window
                if first is None:
                    return
                event: StreamEvent = (
                    first if len(parts) == 1 else first.model_copy(update={"text": "".join(parts)})
                )
                first = None
                parts.clear()
                held_chars = 0
                window += 1
                timer.disposable = Disposable()  # cancel the window's timer
                observer.on_next(event)

            def on_timer(_: abc.SchedulerBase, state: Any = None) -> None:
                with hold.lock:
                    if not hold.stopped and state == window:
                        flush()

            lock = hold.lock
            hold_text = parts.append

            def on_next(event: StreamEvent) -> None:
                nonlocal first, held_chars
                with lock:
                    if hold.stopped:
                        return
                    if (
                        type(event) is TextDelta
                        and type(first) is TextDelta
                        and event.provider_details is None
                    ):
                        # Hot path: one more plain text delta for the open text window.
                        text = event.text
                        hold_text(text)
                        if limit is not None:
                            held_chars += len(text)
                            if held_chars >= limit:
                                flush()
                        return
                    if not is_mergeable(event):
                        flush()
                        observer.on_next(event)
                        return
                    if first is not None and type(first) is not type(event):
                        flush()
                    parts.append(event.text)
                    held_chars += len(event.text)
                    if first is None:
                        first = event
                        if limit is None or held_chars < limit:
                            timer.disposable = sched.schedule_relative(delay, on_timer, window)
                    if limit is not None and held_chars >= limit:
                        flush()

            return subscribe_holding(source, observer, subscribe_scheduler, hold, on_next, flush, timer)

        return Observable(subscribe)

    return _coalesce_text

"""``rate_limit``: deliver text deltas at most ``tokens_per_second``, dropping nothing."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxstream.events import StreamEvent, TextDelta
from rxstream.operators._core import check_rate, check_scheduler, resolve_scheduler, to_timedelta

__all__ = ["rate_limit"]


def rate_limit(
    tokens_per_second: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Pace `TextDelta` delivery to at most ``tokens_per_second`` (one delta = one token), losslessly.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Events wait in a FIFO queue; a
    text delta leaves no sooner than 1 / ``tokens_per_second`` seconds after the previous
    one, every other event (thinking, tool calls, usage, end...) leaves as soon as it
    reaches the head of the queue, so the order is unchanged. A delta arriving after a quiet
    period leaves at once. Completion is forwarded after the queue has drained at the pace
    (like ``ops.delay``); an **error** flushes the queue immediately and then passes, so a
    failure is never delayed. The pacing has no drift: a late timer is caught up by at most
    one period. Unlike ``ops.throttle_first``/``sample`` nothing is dropped; unlike
    ``ops.delay`` the spacing is enforced.

    Marble (``tokens_per_second`` = 0.5, i.e. 2 ticks per delta; ``a``-``c`` text deltas,
    ``U`` usage; a parenthesised group happens at one instant)::

        source:               -(abcU)|
        rate_limit(0.5):      -a-b-(cU|)

    Args:
        tokens_per_second: Maximum text deltas per second (> 0).
        scheduler: Scheduler for the pacing timer. Default: the subscribe-time scheduler,
            else the shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``tokens_per_second`` is not a finite number > 0.

    Emits:
        Every source event, in order. On source error the queued events are emitted first,
        then the error unchanged; completion follows the last queued event.

    Scheduler:
        The pacing timer runs on the resolved scheduler (``scheduler`` argument →
        subscribe-time scheduler → ``TimeoutScheduler``); emissions are serialized by a
        per-subscription lock.

    Example:
        >>> stream.pipe(rso.rate_limit(30)).subscribe(tts.feed)  # doctest: +SKIP
    """
    period = to_timedelta(1.0 / check_rate("tokens_per_second", tokens_per_second))
    explicit = check_scheduler(scheduler)

    def _rate_limit(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(explicit, subscribe_scheduler)
            lock = threading.RLock()
            timer = SerialDisposable()
            queue: deque[StreamEvent] = deque()
            next_time: datetime | None = None  # earliest time the next text delta may leave
            armed = False
            completed = False  # the source completed; forward it once the queue is empty
            stopped = False

            def pump() -> None:  # caller holds the lock
                nonlocal armed, next_time, stopped
                if armed:
                    return
                while queue and not stopped:
                    head = queue[0]
                    if type(head) is TextDelta:
                        now = sched.now
                        if next_time is not None and now < next_time:
                            armed = True
                            timer.disposable = sched.schedule_relative(next_time - now, on_timer)
                            return
                        # drift-free: keep the grid unless we were idle for more than a period
                        base = next_time if next_time is not None and now - next_time < period else now
                        next_time = base + period
                    observer.on_next(queue.popleft())
                if completed and not queue and not stopped:
                    stopped = True
                    observer.on_completed()

            def on_timer(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal armed
                with lock:
                    armed = False
                    if not stopped:
                        pump()

            def on_next(event: StreamEvent) -> None:
                with lock:
                    if stopped or completed:
                        return
                    queue.append(event)
                    pump()

            def on_error(error: Exception) -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    while queue and not stopped:
                        observer.on_next(queue.popleft())
                    if not stopped:
                        stopped = True
                        observer.on_error(error)

            def on_completed() -> None:
                nonlocal completed
                with lock:
                    if stopped or completed:
                        return
                    completed = True
                    pump()

            def dispose() -> None:
                nonlocal stopped
                stopped = True

            upstream = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return CompositeDisposable(Disposable(dispose), timer, upstream)

        return Observable(subscribe)

    return _rate_limit

"""``buffer_tokens``: group runs of text (or thinking) deltas into lists of ``n``."""

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
    resolve_scheduler,
    subscribe_holding,
    to_timedelta,
)

__all__ = ["buffer_tokens"]


def buffer_tokens(
    n: int,
    *,
    max_delay: float | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[StreamEvent]], Observable[list[StreamEvent]]]:
    """Group consecutive text deltas (or consecutive thinking deltas) into lists of ``n``.

    ``Observable[StreamEvent] -> Observable[list[StreamEvent]]``. The output is a partition
    of the input, in order: concatenating the lists gives back exactly the source events
    (same objects). A group holds deltas of one type only (`TextDelta` or `ThinkingDelta`)
    and is emitted when it reaches ``n`` deltas, when a delta of the other type or any other
    event arrives, when ``max_delay`` (if given) has passed since its first delta, or at
    completion/error. Every other event is emitted as its own one-item list, so consumers can
    handle "a list of deltas or one control event" uniformly. Unlike
    ``ops.buffer_with_count``/``buffer_with_time_or_count`` it never mixes control events into
    a text batch, never emits an empty list and never loses a held group on error.

    Marble (``n`` = 3; ``a``-``e`` text deltas, ``U`` usage; ``X`` = ``[a, b, c]``,
    ``Y`` = ``[d, e]``, ``Z`` = ``[U]``; a parenthesised group happens at one instant)::

        source:            -a-b-c-d-e-U-|
        buffer_tokens(3):  -----X-----(YZ)|

    Args:
        n: Deltas per full group (>= 1).
        max_delay: Optional seconds after a group's first delta at which the (partial)
            group is emitted anyway (> 0); ``None`` (default): only count, type changes,
            other events and termination close a group.
        scheduler: Scheduler for the ``max_delay`` timer (unused without ``max_delay``).
            Default: the subscribe-time scheduler, else the shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``n`` is not an int >= 1 or ``max_delay`` is
            not a finite number > 0.

    Emits:
        Non-empty lists. On source error or completion the held group is emitted first, then
        ``on_error`` (the error unchanged) or ``on_completed``.

    Scheduler:
        Without ``max_delay`` no scheduler is used (emits on the source's thread). With it,
        the timer runs on the resolved scheduler; emissions are serialized by a lock.

    Example:
        >>> stream.pipe(rso.buffer_tokens(8, max_delay=0.1)).subscribe(render_batch)  # doctest: +SKIP
    """
    size = check_count("n", n)
    delay = None if max_delay is None else to_timedelta(check_seconds("max_delay", max_delay))
    explicit = check_scheduler(scheduler)

    def _buffer_tokens(source: Observable[StreamEvent]) -> Observable[list[StreamEvent]]:
        def subscribe(
            observer: abc.ObserverBase[list[StreamEvent]],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            sched = None if delay is None else resolve_scheduler(explicit, subscribe_scheduler)
            hold = Holding()
            timer = SerialDisposable()
            group: list[StreamEvent] = []
            generation = 0

            def flush() -> None:  # caller holds the lock
                nonlocal group, generation
                if not group:
                    return
                out, group = group, []
                generation += 1
                if delay is not None:
                    timer.disposable = Disposable()
                observer.on_next(out)

            def on_timer(_: abc.SchedulerBase, state: Any = None) -> None:
                with hold.lock:
                    if not hold.stopped and state == generation:
                        flush()

            def on_next(event: StreamEvent) -> None:
                with hold.lock:
                    if hold.stopped:
                        return
                    kind = type(event)
                    if kind is not TextDelta and kind is not ThinkingDelta:
                        flush()
                        observer.on_next([event])
                        return
                    if group and type(group[0]) is not kind:
                        flush()
                    group.append(event)
                    if len(group) >= size:
                        flush()
                    elif len(group) == 1 and sched is not None and delay is not None:
                        timer.disposable = sched.schedule_relative(delay, on_timer, generation)

            return subscribe_holding(source, observer, subscribe_scheduler, hold, on_next, flush, timer)

        return Observable(subscribe)

    return _buffer_tokens

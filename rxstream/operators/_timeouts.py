"""Timeout operators that fail with typed errors carrying the partial response.

``first_token_timeout``, ``idle_timeout`` and ``total_timeout`` share one watchdog: a single
timer per subscription (the idle timer re-arms itself for the remaining time instead of
being replaced on every event), upstream disposed before the error is emitted (which closes
the HTTP connection), and the error built from the events that passed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable, SingleAssignmentDisposable

from rxstream.errors import FirstTokenTimeout, IdleTimeout, StreamTimeoutError, TotalTimeout
from rxstream.events import StreamEvent
from rxstream.operators._core import (
    check_scheduler,
    check_seconds,
    is_first_token,
    resolve_scheduler,
    scheduler_clock,
    to_timedelta,
)
from rxstream.response import ResponseAccumulator

__all__ = ["first_token_timeout", "idle_timeout", "total_timeout"]

_Kind = Literal["first_token", "idle", "total"]

_ZERO = timedelta(0)


def first_token_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Fail with `FirstTokenTimeout` if no content arrives within ``seconds`` of subscribing.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Content is the first
    `TextDelta`, `ThinkingDelta` or `ToolCallStart`; `StreamStart` and usage do not count
    (a provider that accepted the request but stalls is exactly what this catches). Once
    content arrived the timer is cancelled and the operator is a pass-through. Use it instead
    of ``ops.timeout``, which fails with a bare ``Exception('Timeout')``, measures the gap
    between *any* two events, and starts a timer thread per event.

    Marble (``seconds`` = 5 ticks; ``S`` stream start; ``#`` `FirstTokenTimeout` whose
    ``.partial`` holds what ``S`` said)::

        source:                    S-------t-|
        first_token_timeout(5):    S----#

    Args:
        seconds: Limit in seconds from subscription to the first content event (> 0).
        scheduler: Scheduler for the timer. Default: the subscribe-time scheduler, else the
            shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``seconds`` is not a finite number > 0.

    Emits:
        The source events unchanged. On timeout: disposes upstream first (closing the
        connection), then ``on_error(FirstTokenTimeout)`` with ``timeout=seconds`` and
        ``partial`` = the `Response` accumulated from the events that passed. Source errors
        and completion pass through unchanged.

    Scheduler:
        The timer runs on the resolved scheduler (``scheduler`` argument → subscribe-time
        scheduler → ``TimeoutScheduler``).

    Example:
        >>> stream.pipe(rso.first_token_timeout(10), rso.final()).run()  # doctest: +SKIP
    """
    return _watchdog("first_token", check_seconds("seconds", seconds), check_scheduler(scheduler))


def idle_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Fail with `IdleTimeout` when no event arrives for ``seconds`` (from subscription on).

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Any event resets the clock. The
    operator keeps **one** timer per subscription: each event only records the scheduler's
    time (``scheduler.now`` on virtual-time schedulers such as ``TestScheduler``; on
    real-time schedulers the monotonic clock their timers wait on, which is ten times
    cheaper); when the timer fires it compares the time since the last event with the limit
    and re-arms itself for the remainder (to the microsecond), or fails. ``ops.timeout(seconds)`` does
    the same job with a bare ``Exception('Timeout')``, no partial response and a new timer
    (a new thread on the default scheduler) for every event.

    Marble (``seconds`` = 3 ticks; ``#`` `IdleTimeout`)::

        source:              -a-b------c-|
        idle_timeout(3):     -a-b--#

    Args:
        seconds: Longest allowed silence in seconds (> 0).
        scheduler: Scheduler for the timer. Default: the subscribe-time scheduler, else the
            shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``seconds`` is not a finite number > 0.

    Emits:
        The source events unchanged. On timeout: disposes upstream first (closing the
        connection), then ``on_error(IdleTimeout)`` with ``timeout=seconds`` and ``partial``
        = the `Response` accumulated from the events that passed. Source errors and
        completion pass through unchanged.

    Scheduler:
        The timer runs on the resolved scheduler (``scheduler`` argument → subscribe-time
        scheduler → ``TimeoutScheduler``).

    Example:
        >>> stream.pipe(rso.idle_timeout(30), rso.final()).run()  # doctest: +SKIP
    """
    return _watchdog("idle", check_seconds("seconds", seconds), check_scheduler(scheduler))


def total_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Fail with `TotalTimeout` when the stream has not finished ``seconds`` after subscription.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. One timer per subscription, armed
    at subscribe time (``ops.timeout`` with an absolute time would fix the deadline when the
    pipeline is built, not per subscription, and fails with a bare exception).

    Marble (``seconds`` = 6 ticks; ``#`` `TotalTimeout`)::

        source:              -a-b-c-d-e-|
        total_timeout(6):    -a-b-c#

    Args:
        seconds: Deadline in seconds from subscription (> 0).
        scheduler: Scheduler for the timer. Default: the subscribe-time scheduler, else the
            shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``seconds`` is not a finite number > 0.

    Emits:
        The source events unchanged. On timeout: disposes upstream first (closing the
        connection), then ``on_error(TotalTimeout)`` with ``timeout=seconds`` and ``partial``
        = the `Response` accumulated from the events that passed. Source errors and
        completion pass through unchanged.

    Scheduler:
        The timer runs on the resolved scheduler (``scheduler`` argument → subscribe-time
        scheduler → ``TimeoutScheduler``).

    Example:
        >>> stream.pipe(rso.total_timeout(120), rso.final()).run()  # doctest: +SKIP
    """
    return _watchdog("total", check_seconds("seconds", seconds), check_scheduler(scheduler))


_ERRORS: dict[str, tuple[type[StreamTimeoutError], str]] = {
    "first_token": (FirstTokenTimeout, "no first token within {:g} s"),
    "idle": (IdleTimeout, "no event for {:g} s"),
    "total": (TotalTimeout, "stream not finished within {:g} s"),
}


def _make_error(kind: _Kind, seconds: float, acc: ResponseAccumulator) -> StreamTimeoutError:
    partial = acc.snapshot()
    error_type, message = _ERRORS[kind]
    return error_type(message.format(seconds), timeout=seconds, partial=partial, provider=partial.provider)


def _watchdog(
    kind: _Kind, seconds: float, explicit: abc.SchedulerBase | None
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    limit = to_timedelta(seconds)

    def _timeout(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(explicit, subscribe_scheduler)
            clock = scheduler_clock(sched)  # seconds on the scheduler's time (cheap on real time)
            lock = threading.RLock()
            timer = SerialDisposable()
            upstream = SingleAssignmentDisposable()
            acc = ResponseAccumulator()
            add = acc.add
            forward = observer.on_next
            armed = True  # the watchdog still watches (first token: no content yet)
            stopped = False
            last = clock()  # idle: time of the latest event (or of subscription)

            def on_timer(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal stopped
                with lock:
                    if stopped or not armed:
                        return
                    if kind == "idle":
                        # One timer per subscription: events only record ``last``; the timer
                        # re-arms itself for the rest of the limit (rounded to the µs, the
                        # schedulers' resolution) until a silence reaches the limit.
                        remaining = limit - to_timedelta(clock() - last)
                        if remaining > _ZERO:
                            timer.disposable = sched.schedule_relative(remaining, on_timer)
                            return
                    stopped = True
                    error = _make_error(kind, seconds, acc)
                upstream.dispose()  # outside the lock: closing the connection may block
                with lock:
                    observer.on_error(error)

            def on_next_idle(event: StreamEvent) -> None:
                nonlocal last
                with lock:
                    if stopped:
                        return
                    add(event)
                    last = clock()
                    forward(event)

            def on_next_total(event: StreamEvent) -> None:
                with lock:
                    if stopped:
                        return
                    add(event)
                    forward(event)

            def on_next_first_token(event: StreamEvent) -> None:
                nonlocal armed
                with lock:
                    if stopped:
                        return
                    if armed:
                        add(event)
                        if is_first_token(event):
                            armed = False
                            timer.dispose()
                    forward(event)

            def on_error(error: Exception) -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    stopped = True
                    timer.dispose()
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    stopped = True
                    timer.dispose()
                    observer.on_completed()

            def dispose() -> None:
                nonlocal stopped
                stopped = True

            on_next = {"idle": on_next_idle, "total": on_next_total, "first_token": on_next_first_token}[kind]
            timer.disposable = sched.schedule_relative(limit, on_timer)
            upstream.disposable = source.subscribe(
                on_next, on_error, on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(Disposable(dispose), timer, upstream)

        return Observable(subscribe)

    return _timeout

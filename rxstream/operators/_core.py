"""Shared plumbing of the operators: argument checks, scheduler resolution, event kinds.

Private: free to change. Every time-based operator resolves its scheduler with
`resolve_scheduler` and reads time only from ``scheduler.now`` (a `datetime`), doing its
arithmetic on `datetime`/`timedelta` so that marble tests on ``TestScheduler`` are exact to
the microsecond.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TypeGuard, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import (
    CurrentThreadScheduler,
    ImmediateScheduler,
    TimeoutScheduler,
    TrampolineScheduler,
)
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

from rxstream._sdk_internals import scheduler_loop
from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent, TextDelta, ThinkingDelta, ToolCallStart

_T = TypeVar("_T")
_R = TypeVar("_R")

__all__ = [
    "MAX_SECONDS",
    "Holding",
    "check_count",
    "check_rate",
    "check_scheduler",
    "check_seconds",
    "is_first_token",
    "is_mergeable",
    "resolve_scheduler",
    "subscribe_holding",
    "to_timedelta",
]


MAX_SECONDS = 7 * 24 * 3600.0
"""Longest duration an operator accepts, in seconds (7 days).

Longer timers are a mistake rather than a policy, and reactivex's schedulers cannot
represent due times far in the future (``OverflowError: timestamp out of range`` on a
timer thread, which then never fires)."""


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Validate a duration in seconds: finite, > 0 (>= 0 with ``allow_zero``), at most `MAX_SECONDS`.

    Raises:
        ConfigurationError: if ``value`` is not a finite int/float in range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigurationError(f"{name} must be a finite number {bound}, got {value!r}")
    if seconds > MAX_SECONDS:
        raise ConfigurationError(f"{name} must be at most {MAX_SECONDS:.0f} s (7 days), got {value!r}")
    return seconds


def check_rate(name: str, value: object) -> float:
    """Validate a rate (per second): a finite real number > 0.

    Raises:
        ConfigurationError: if ``value`` is not a finite int/float > 0.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{name} must be a number per second, got {type(value).__name__}")
    rate = float(value)
    if not math.isfinite(rate) or rate <= 0:
        raise ConfigurationError(f"{name} must be a finite number > 0, got {value!r}")
    return rate


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """Validate an integer count >= ``minimum`` (``bool`` is rejected).

    Raises:
        ConfigurationError: if ``value`` is not an int >= ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def check_scheduler(scheduler: object) -> abc.SchedulerBase | None:
    """Validate an optional ``scheduler`` argument.

    Raises:
        ConfigurationError: if ``scheduler`` is neither ``None`` nor a reactivex scheduler.
    """
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise ConfigurationError(f"scheduler must be a reactivex scheduler, got {type(scheduler).__name__}")
    return scheduler


def to_timedelta(seconds: float) -> timedelta:
    """Convert seconds to a `timedelta` (microsecond resolution, like every reactivex scheduler)."""
    return timedelta(seconds=seconds)


_BLOCKING = (ImmediateScheduler, CurrentThreadScheduler, TrampolineScheduler)


def resolve_scheduler(
    explicit: abc.SchedulerBase | None, subscribe_time: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """Pick the scheduler for an operator's timers.

    Order: the operator's ``scheduler`` argument → the subscribe-time scheduler → the shared
    `TimeoutScheduler`. A subscribe-time scheduler that would run timers by sleeping on the
    calling thread (immediate / current-thread / trampoline) is skipped for the default,
    because that thread is the source's reader. A plain `AsyncIOScheduler` is upgraded to
    `AsyncIOThreadSafeScheduler` on the same loop: sources emit from reader threads, and a
    timer armed from such a thread must reach the loop thread-safely.
    """
    chosen: abc.SchedulerBase
    if explicit is not None:
        chosen = explicit
    elif subscribe_time is not None and not isinstance(subscribe_time, _BLOCKING):
        chosen = subscribe_time
    else:
        return TimeoutScheduler.singleton()
    if isinstance(chosen, AsyncIOScheduler) and not isinstance(chosen, AsyncIOThreadSafeScheduler):
        return AsyncIOThreadSafeScheduler(scheduler_loop(chosen))
    return chosen


def is_mergeable(event: StreamEvent) -> TypeGuard[TextDelta | ThinkingDelta]:
    """True for plain text/thinking deltas that may be merged or split without losing data.

    Deltas carrying a thinking ``signature`` or ``provider_details`` (e.g. a refusal) are
    not mergeable: they pass through unchanged.
    """
    if type(event) is TextDelta:
        return event.provider_details is None
    if type(event) is ThinkingDelta:
        return event.signature is None and event.provider_details is None
    return False


def is_first_token(event: StreamEvent) -> bool:
    """True for the events that count as the "first token": text, thinking, tool-call start."""
    return type(event) in (TextDelta, ThinkingDelta, ToolCallStart)


class Holding:
    """Per-subscription ``lock`` and ``stopped`` flag of an operator that holds items.

    The operator's ``on_next``/timers take ``lock`` and check ``stopped``; `subscribe_holding`
    supplies the lossless terminal rule they share: on error or completion, flush what is
    held, then forward; disposal only sets ``stopped`` (no lock: it must not wait for a
    blocked emission).
    """

    __slots__ = ("lock", "stopped")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.stopped = False


def subscribe_holding(
    source: Observable[_T],
    observer: abc.ObserverBase[_R],
    subscribe_scheduler: abc.SchedulerBase | None,
    state: Holding,
    on_next: Callable[[_T], None],
    flush: Callable[[], None],
    *disposables: abc.DisposableBase,
) -> abc.DisposableBase:
    """Subscribe ``on_next`` to ``source`` with the flush-then-forward terminals of `Holding`.

    Returns:
        A disposable that stops the operator, then disposes ``disposables`` (e.g. its timer)
        and the upstream subscription.
    """

    def on_error(error: Exception) -> None:
        with state.lock:
            if state.stopped:
                return
            flush()
            state.stopped = True
            observer.on_error(error)

    def on_completed() -> None:
        with state.lock:
            if state.stopped:
                return
            flush()
            state.stopped = True
            observer.on_completed()

    def dispose() -> None:
        state.stopped = True

    upstream = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
    return CompositeDisposable(Disposable(dispose), *disposables, upstream)

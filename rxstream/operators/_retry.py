"""``retry_stream``: resubscribe a cold stream (a new request) after a retryable error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
import threading
from collections.abc import Callable
from typing import Any, Literal, Protocol

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import CurrentThreadScheduler, ImmediateScheduler, TrampolineScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

from rxstream._sdk_internals import scheduler_loop
from rxstream.errors import ConfigurationError, StreamCancelledError, StreamError
from rxstream.events import (
    StreamEvent,
    StreamReset,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from rxstream.operators._core import (
    check_count,
    check_scheduler,
    check_seconds,
    resolve_scheduler,
)
from rxstream.response import ResponseAccumulator

__all__ = ["RandomLike", "is_content", "resolve_timer_scheduler", "retry_stream"]

logger = logging.getLogger("rxstream")

_BLOCKING = (ImmediateScheduler, CurrentThreadScheduler, TrampolineScheduler)
_CONTENT = (TextDelta, ThinkingDelta, ToolCallStart, ToolCallDelta, ToolCallEnd)


class RandomLike(Protocol):
    """Anything with ``random() -> float`` in ``[0, 1)``, e.g. ``random.Random(seed)``."""

    def random(self) -> float:
        """Return the next float in ``[0, 1)``."""
        ...


def is_content(event: StreamEvent) -> bool:
    """Return whether ``event`` is content: text, thinking or a tool-call event."""
    return isinstance(event, _CONTENT)


def resolve_timer_scheduler(
    argument: abc.SchedulerBase | None, subscribe_scheduler: abc.SchedulerBase | None
) -> abc.SchedulerBase:
    """Pick the scheduler of ``retry_stream``'s timers.

    Like `rxstream.operators._core.resolve_scheduler` (argument → subscribe-time scheduler →
    `TimeoutScheduler`, a plain `AsyncIOScheduler` made thread-safe), except that when
    neither is given and the subscribing thread runs an asyncio loop, the timers run on that
    loop (`AsyncIOThreadSafeScheduler`): an async client's source must be resubscribed on
    its loop.
    """
    if argument is None and (subscribe_scheduler is None or isinstance(subscribe_scheduler, _BLOCKING)):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            return AsyncIOThreadSafeScheduler(loop)
    return resolve_scheduler(argument, subscribe_scheduler)


def retry_stream(
    max_attempts: int = 3,
    *,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    jitter: float = 0.2,
    on_partial: Literal["fail", "restart"] = "fail",
    max_retry_after: float = 60.0,
    scheduler: abc.SchedulerBase | None = None,
    random: RandomLike | None = None,
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Retry a cold stream after a retryable error: each attempt is a new subscription.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Only errors with
    ``retryable=True`` (`ProviderError` 408/409/429/5xx/529, `StreamInterruptedError`,
    `StreamTimeoutError`, ...) are retried; any other error passes through at once.

    The wait before attempt ``n + 1`` is ``min(max_backoff, backoff * 2 ** (n - 1))``
    shortened by up to ``jitter`` (a fraction; ``delay * (1 - jitter * random())``, as the
    Anthropic and OpenAI SDKs do), but never shorter than the error's ``retry_after``
    (the provider's ``retry-after`` header, seconds) when it has one. ``retry_after`` is
    honoured even above ``max_backoff``, up to ``max_retry_after``: a server asking for a
    longer wait (``retry-after: 3600``, ``inf``) gets no retry — its error is emitted at once,
    carrying the ``retry_after`` it asked for, so the caller decides.

    Content (text, thinking, tool-call events) cannot be taken back, so by default
    (``on_partial="fail"``) an attempt that already emitted content is not retried: its
    error is forwarded. With ``on_partial="restart"`` it is retried too, and the first
    event of the next attempt is preceded by one `StreamReset` (``attempt`` = the new
    attempt's number, ``discarded_text`` = the text emitted since the last reset,
    ``stream_id`` and ``seq`` continuing the discarded stream: last ``seq`` + 1), so that
    `rxstream.response.apply`, ``final()``, ``snapshots()`` and UIs start over. A reset is
    only emitted once the new attempt delivers an event; if every attempt fails first, the
    downstream keeps the old partial text and the error's ``.partial`` says so.

    Every attempt's `StreamStart` (and `UsageUpdate`) passes through: the new request has
    its own ``stream_id``/``request_id`` and `Response` takes them from the latest start.
    Within one attempt, ``seq`` runs 0, 1, 2, ... as the source numbered it.

    Marble (``S`` start, ``t`` text, ``E`` end, ``#`` retryable error, ``R`` reset)::

        attempt 1:  -S-#
        attempt 2:       <d1>-S-t-t-E|
        output:     -S--------S-t-t-E|              (error before content: retried)

        attempt 1:  -S-t-#                          on_partial="restart"
        attempt 2:         <d1>-S-t-E|
        output:     -S-t--------RS-t-E|             R = StreamReset(attempt=2, discarded_text="t")

        d1 = max(backoff * (1 - jitter * random()), error.retry_after)

    Args:
        max_attempts: Attempts in total, the first included (``1`` = never retry).
        backoff: Base wait before the first retry, in seconds; doubled per retry.
        max_backoff: Cap of the exponential wait, in seconds (``retry_after`` may exceed it).
        max_retry_after: Longest server-requested wait (``retry_after``, seconds) that is
            honoured; an error asking for more is emitted instead of retried. Default 60.
        jitter: Fraction (0..1) by which each wait is randomly shortened.
        on_partial: ``"fail"`` forwards an error that follows content; ``"restart"``
            retries it and emits a `StreamReset` first.
        scheduler: Scheduler of the backoff timers. Default: the subscribe-time scheduler
            (unless it is immediate/current-thread/trampoline, which would sleep on the
            reader's thread), else the asyncio loop running in the subscribing thread,
            else `reactivex.scheduler.TimeoutScheduler`. A plain `AsyncIOScheduler` is used
            through its thread-safe variant. Resubscription runs on this scheduler and
            passes the original subscribe-time scheduler on to the source.
        random: Source of jitter (``random()`` in ``[0, 1)``), e.g. ``random.Random(7)``
            for reproducible waits; default a private ``random.Random()``.

    Returns:
        An operator for ``pipe``; per subscription it tracks attempts independently.

    Raises:
        ConfigurationError: at creation, for ``max_attempts < 1``, negative or non-finite
            times, ``jitter`` outside ``[0, 1]``, an unknown ``on_partial``, or a
            ``scheduler``/``random`` of the wrong type.

    Emits:
        The source's events (plus `StreamReset` in restart mode). ``on_error``: the first
        non-retryable error, or the last error once attempts are exhausted (or, in
        ``"fail"`` mode, an error after content); a `StreamError` gets ``.partial`` set to
        the `Response` of everything this operator emitted. Nothing is held back.
        Disposal during a wait cancels the pending resubscription. If the wait runs on an
        asyncio loop that shuts down before it ends (``asyncio.run`` returned, or the loop
        is closed when the error arrives), `StreamCancelledError` (not retryable,
        ``.partial`` as above, ``__cause__`` = the error that was to be retried) is the
        one terminal, as for rxstream's async sources.

    Example:
        >>> final = stream.pipe(rso.retry_stream(4, on_partial="restart"), rso.final())  # doctest: +SKIP
    """
    check_count("max_attempts", max_attempts)
    base = check_seconds("backoff", backoff, allow_zero=True)
    cap = check_seconds("max_backoff", max_backoff, allow_zero=True)
    longest_wait = check_seconds("max_retry_after", max_retry_after, allow_zero=True)
    if isinstance(jitter, bool) or not isinstance(jitter, int | float) or not 0.0 <= jitter <= 1.0:
        raise ConfigurationError(f"jitter must be a fraction between 0 and 1, got {jitter!r}")
    if on_partial not in ("fail", "restart"):
        raise ConfigurationError(f"on_partial must be 'fail' or 'restart', got {on_partial!r}")
    check_scheduler(scheduler)
    if random is not None and not callable(getattr(random, "random", None)):
        raise ConfigurationError("random must have a random() method, e.g. random.Random(seed)")
    rng: RandomLike = random if random is not None else _random.Random()
    restart = on_partial == "restart"
    fraction = float(jitter)

    def delay_for(failures: int, error: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None if the server asked for too long."""
        delay = min(cap, base * 2.0 ** min(failures - 1, 62))
        delay *= 1.0 - fraction * rng.random()
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after > delay:
            if not retry_after <= longest_wait:  # also NaN and inf
                return None
            delay = float(retry_after)
        return delay

    def _retry_stream(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            timers = resolve_timer_scheduler(scheduler, subscribe_scheduler)
            loop = scheduler_loop(timers) if isinstance(timers, AsyncIOScheduler) else None
            lock = threading.Lock()
            serial = SerialDisposable()
            emitted = ResponseAccumulator()  # what downstream has seen (for .partial and resets)
            attempt = 0
            disposed = False
            first_of_attempt = True
            content_in_attempt = False
            content_since_reset = False
            last_event: StreamEvent | None = None  # the latest event emitted (for a reset's ids)
            add = emitted.add
            forward = observer.on_next

            def on_next(event: StreamEvent) -> None:
                nonlocal first_of_attempt, content_in_attempt, content_since_reset, last_event
                if disposed:
                    return
                if first_of_attempt:
                    first_of_attempt = False
                    if content_since_reset and last_event is not None:
                        reset = StreamReset(
                            stream_id=last_event.stream_id,
                            seq=last_event.seq + 1,
                            attempt=attempt,
                            discarded_text=emitted.text,
                        )
                        content_since_reset = False
                        add(reset)
                        forward(reset)
                # Content in this attempt implies content since the last reset: test once.
                if not content_in_attempt and isinstance(event, _CONTENT):
                    content_in_attempt = True
                    content_since_reset = True
                last_event = event
                add(event)
                forward(event)

            def on_error(error: Exception) -> None:
                if disposed:
                    return
                retryable = getattr(error, "retryable", False) is True
                delay = delay_for(attempt, error) if retryable else None
                if delay is None or attempt >= max_attempts or (content_in_attempt and not restart):
                    if retryable and delay is None:
                        logger.warning(
                            "rxstream: not retrying %s: the server asked to wait %s s (max_retry_after=%s)",
                            type(error).__name__,
                            getattr(error, "retry_after", None),
                            longest_wait,
                        )
                    if isinstance(error, StreamError):
                        error.with_partial(emitted.snapshot())
                    observer.on_error(error)
                    return
                logger.info(
                    "rxstream: retrying after %s (attempt %d of %d failed) in %.3f s",
                    type(error).__name__,
                    attempt,
                    max_attempts,
                    delay,
                )
                timer = SingleAssignmentDisposable()
                waiting: abc.DisposableBase = timer
                if loop is not None:  # the wait is a call_later: watch for the loop shutting down
                    guard = _LoopGuard(loop, lambda: loop_shut_down(error))
                    if not guard.arm():
                        loop_shut_down(error)
                        return
                    waiting = CompositeDisposable(timer, Disposable(guard.release))
                with lock:
                    if not disposed:
                        serial.disposable = waiting  # the next attempt (or disposal) releases it
                        waiting = Disposable()
                waiting.dispose()  # disposed meanwhile: release the guard, if any
                if disposed:
                    return
                # Outside the lock: a synchronous scheduler may run the next attempt right here.
                try:
                    timer.disposable = timers.schedule_relative(delay, scheduled_attempt)
                except RuntimeError:
                    if loop is None or not loop.is_closed():
                        raise
                    loop_shut_down(error)  # closed between the guard's check and the call_later

            def loop_shut_down(cause: Exception) -> None:
                """The asyncio loop of the backoff timer ended before it fired: one terminal."""
                nonlocal disposed
                with lock:
                    if disposed:
                        return
                    disposed = True
                serial.dispose()
                cancelled = StreamCancelledError(
                    f"retry_stream: the asyncio event loop shut down while waiting to retry "
                    f"(attempt {attempt + 1} of {max_attempts}); the last error was {type(cause).__name__}",
                    partial=emitted.snapshot(),
                )
                cancelled.__cause__ = cause
                observer.on_error(cancelled)

            def scheduled_attempt(_: abc.SchedulerBase, __: Any = None) -> None:
                start_attempt()

            def on_completed() -> None:
                if not disposed:
                    observer.on_completed()

            def start_attempt() -> None:
                nonlocal attempt, first_of_attempt, content_in_attempt
                holder = SingleAssignmentDisposable()
                with lock:
                    if disposed:
                        return
                    attempt += 1
                    first_of_attempt = True
                    content_in_attempt = False
                    serial.disposable = holder
                holder.disposable = source.subscribe(
                    on_next, on_error, on_completed, scheduler=subscribe_scheduler
                )

            def dispose() -> None:
                nonlocal disposed
                with lock:
                    disposed = True
                serial.dispose()

            start_attempt()
            return Disposable(dispose)

        return Observable(subscribe)

    return _retry_stream


class _LoopGuard:
    """Notices an asyncio loop shutting down while a backoff timer waits on it.

    A ``call_later`` handle is silently dropped when its loop closes, so on its own a retry
    waiting for its next attempt would never deliver a terminal. The guard is a task on the
    same loop awaiting a future that `release` resolves (the timer fired, or disposal);
    ``asyncio.run`` cancels every pending task at shutdown, and a cancellation that was not
    a release calls ``on_shutdown`` — as rxstream's async sources do when their reading
    task is cancelled (`rxstream.providers._source`).
    """

    __slots__ = ("_future", "_loop", "_on_shutdown", "_released", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_shutdown: Callable[[], None]) -> None:
        self._loop = loop
        self._on_shutdown = on_shutdown
        self._future: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None  # a strong reference: asyncio keeps weak ones
        self._released = False

    def arm(self) -> bool:
        """Start watching (any thread); False if the loop is already closed."""
        if self._loop.is_closed():
            return False
        if _running_loop() is self._loop:
            self._start()
            return True
        try:
            self._loop.call_soon_threadsafe(self._start)
        except RuntimeError:  # closed since the check
            return False
        return True

    def _start(self) -> None:  # on the loop
        if self._released:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._future = future
        self._task = self._loop.create_task(self._watch(future))
        if self._released:  # released from another thread while this ran
            future.set_result(None)

    async def _watch(self, future: asyncio.Future[None]) -> None:
        try:
            await future
        except asyncio.CancelledError:
            if not self._released:
                self._on_shutdown()
            raise

    def release(self) -> None:
        """The wait ended (timer fired or disposal): let the watcher end quietly (any thread)."""
        self._released = True
        future = self._future
        if future is None:
            return
        if _running_loop() is self._loop:
            if not future.done():
                future.set_result(None)
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nothing waits any more
            self._loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

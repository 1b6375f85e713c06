"""The cold Observable shell shared by every provider source.

A provider supplies a *session*: a generator (sync clients) or async generator (async
clients) that opens one request, reads the body and yields normalized `StreamEvent`s, and
raises a `StreamError` when something goes wrong. This module turns it into a cold
``Observable[StreamEvent]``:

* nothing runs until ``subscribe``; each subscription runs the session once (one request);
* sync sessions run on a scheduler (argument → subscribe-time scheduler → a shared
  `reactivex.scheduler.ThreadPoolScheduler`); async sessions run as a task on the asyncio loop
  (the `AsyncIOScheduler`'s loop, or the loop running at subscribe time);
* disposal cancels: for sync sessions the registered abort callbacks run at once on the
  disposing thread (they shut the socket down so a blocked read returns) and the reading
  thread then closes the SDK response; for async sessions the reading task is cancelled;
* every emitted error carries ``.partial``: the `Response` accumulated from the events
  emitted before it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import NewThreadScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxstream._demand import (
    DemandHook,
    LoopObserver,
    current_demand,
    pick_loop,
    wait_for_demand,
    would_block_loop,
)
from rxstream._sdk_internals import scheduler_loop
from rxstream.errors import ConfigurationError, StreamCancelledError, StreamError, StreamInterruptedError
from rxstream.events import StreamEvent
from rxstream.providers._readers import ReaderScheduler
from rxstream.response import ResponseAccumulator

__all__ = ["AsyncSession", "Control", "SyncSession", "default_scheduler", "session_observable"]

logger = logging.getLogger("rxstream")


class Control:
    """Per-subscription cancellation state handed to a session.

    A session registers abort callbacks (``on_abort``) that must be safe to call from any
    thread and must unblock a read in progress (e.g. ``socket.shutdown``). When the session
    is done with its connection (the body was read, or it is about to hand the connection
    back to the client's pool) it calls `release`: from then on nothing is aborted, so a
    disposal that arrives after completion (reactivex disposes every subscription after
    ``on_completed``/``on_error``) can never touch a connection that another request may
    already be using. Abort callbacks run under the same lock as `release`, so a release
    waits for an abort in progress.
    """

    __slots__ = ("_aborts", "_lock", "cancelled", "released", "stream_id")

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.cancelled = False
        self.released = False
        self._aborts: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def on_abort(self, callback: Callable[[], None]) -> None:
        """Register ``callback`` to run on cancellation (at once if already cancelled)."""
        with self._lock:
            if self.released:
                return
            if not self.cancelled:
                self._aborts.append(callback)
                return
            _safe_call(callback)

    def release(self) -> None:
        """The session no longer owns its connection: drop every abort callback (idempotent)."""
        with self._lock:
            self.released = True
            self._aborts = []

    def cancel(self) -> None:
        """Mark cancelled and run the abort callbacks (idempotent, any thread)."""
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            callbacks, self._aborts = self._aborts, []
            for callback in callbacks:
                _safe_call(callback)


def _safe_call(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # an abort must never fail the disposal
        logger.debug("rxstream: abort callback failed", exc_info=True)


SyncSession = Callable[[Control], Iterator[StreamEvent]]
AsyncSession = Callable[[Control], AsyncIterator[StreamEvent]]

_default_scheduler: ReaderScheduler | None = None
_default_lock = threading.Lock()


def default_scheduler() -> ReaderScheduler:
    """The shared `ReaderScheduler` that sync sources read on when no scheduler is given.

    It has no worker cap (a thread per concurrently reading stream, idle threads reused and
    retired after 30 s): a stream blocked on the network or held by a paused consumer never
    delays another stream's start.
    """
    global _default_scheduler
    with _default_lock:
        if _default_scheduler is None:
            _default_scheduler = ReaderScheduler()
        return _default_scheduler


def new_stream_id() -> str:
    """Return a fresh stream id (``"rxs_"`` + 16 hex characters)."""
    return "rxs_" + uuid.uuid4().hex[:16]


def session_observable(
    *,
    sync_session: SyncSession | None = None,
    async_session: AsyncSession | None = None,
    scheduler: abc.SchedulerBase | None = None,
    provider: str,
) -> Observable[StreamEvent]:
    """Wrap a session as a cold ``Observable[StreamEvent]`` (see the module docstring)."""
    if (sync_session is None) == (async_session is None):
        raise ConfigurationError("give exactly one of sync_session or async_session")

    def subscribe(
        observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        control = Control(new_stream_id())
        if sync_session is not None:
            sched = scheduler or subscribe_scheduler or default_scheduler()
            if sched is subscribe_scheduler and type(sched) is NewThreadScheduler:
                # reactivex's `Observable.run()` subscribes with its NewThreadScheduler: a new
                # thread and event loop per call (~180 µs to start reading, measured). It only
                # asks for "another thread", which a reader-pool thread is (~40 µs). An explicit
                # ``scheduler=NewThreadScheduler()`` argument is honoured.
                sched = default_scheduler()
            target = observer
            hop: LoopObserver[StreamEvent] | None = None
            if isinstance(sched, AsyncIOScheduler):
                # The asyncio loop must never block on a socket read: read on the pool instead,
                # and hand the notifications to the loop thread-safely (`await stream` with a
                # sync client: a future resolved from the reader thread would not wake the loop).
                hop_loop = scheduler_loop(sched)
                hop = LoopObserver(observer, hop_loop, hooks=current_demand(), on_failure=control.cancel)
                target = hop
                sched = default_scheduler()

            def action(_: abc.SchedulerBase, __: Any = None) -> None:
                _run_sync(sync_session, control, target, provider)

            scheduled = sched.schedule(action)

            def dispose() -> None:
                control.cancel()
                if hop is not None:
                    hop.close()
                scheduled.dispose()

            return Disposable(dispose)
        assert async_session is not None
        loop = pick_loop(scheduler or subscribe_scheduler)
        if loop is None:
            observer.on_error(
                ConfigurationError(
                    "an async client needs a running asyncio loop: subscribe from a coroutine "
                    "(e.g. `await stream.pipe(rso.final())`) or pass scheduler=AsyncIOScheduler(loop)"
                )
            )
            return Disposable()
        if would_block_loop(loop, subscribe_scheduler):
            observer.on_error(
                ConfigurationError(
                    "an async client reads on the running asyncio loop, which a blocking call "
                    "(`.run()`, `rxs.to_iterator`) on that loop would deadlock: use "
                    "`await stream.pipe(rso.final())` or `async for` over `rxs.to_async_iterator(stream)`"
                )
            )
            return Disposable()
        return _start_async(async_session, control, observer, provider, loop, current_demand())

    return reactivex.create(subscribe)


def _run_sync(
    session: SyncSession, control: Control, observer: abc.ObserverBase[StreamEvent], provider: str
) -> None:
    acc = ResponseAccumulator()
    add = acc.add
    on_next = observer.on_next
    iterator = session(control)
    error: BaseException | None = None
    try:
        for event in iterator:
            if control.cancelled:
                break
            add(event)
            on_next(event)
    except StreamError as exc:
        error = exc.with_partial(acc.snapshot())
    except Exception as exc:  # an observer raised in on_next, or a session bug
        error = _wrap_unexpected(exc, acc, control, provider)
    finally:
        try:
            iterator.close()  # type: ignore[attr-defined]
        except Exception:
            logger.debug("rxstream: closing the session failed", exc_info=True)
        control.release()
    if not control.cancelled:
        _terminate(observer, error, provider)


def _terminate(observer: abc.ObserverBase[StreamEvent], error: BaseException | None, provider: str) -> None:
    """Send the one terminal notification; a subscriber raising in it is logged, never lost."""
    try:
        if error is not None:
            observer.on_error(error)  # type: ignore[arg-type]
        else:
            observer.on_completed()
    except Exception as exc:
        # Nobody else can see this: it happened on our reader thread / task, after the stream ended.
        logger.error(
            "rxstream: a %s subscriber raised in %s: %s: %s",
            provider,
            "on_error" if error is not None else "on_completed",
            type(exc).__name__,
            exc,
        )


def _wrap_unexpected(
    exc: Exception, acc: ResponseAccumulator, control: Control, provider: str
) -> BaseException:
    if control.cancelled:
        return exc
    if isinstance(exc, OSError):
        err = StreamInterruptedError(f"{provider} stream failed: {type(exc).__name__}", provider=provider)
        err.__cause__ = exc
        return err.with_partial(acc.snapshot())
    return exc


def _start_async(
    session: AsyncSession,
    control: Control,
    observer: abc.ObserverBase[StreamEvent],
    provider: str,
    loop: asyncio.AbstractEventLoop,
    hooks: tuple[DemandHook, ...] = (),
) -> abc.DisposableBase:
    run = _AsyncRun(session, control, observer, provider, loop, hooks)
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        run.start()
    else:
        loop.call_soon_threadsafe(run.start)
    return Disposable(run.dispose)


class _AsyncRun:
    """One async subscription: the reading task and its disposal (one object per stream).

    A class with slots rather than five closures: 1,000 concurrent async streams each hold
    one of these, and the closures' cells cost ~1 KiB per stream.
    """

    __slots__ = ("control", "hooks", "loop", "observer", "provider", "session", "task")

    def __init__(
        self,
        session: AsyncSession,
        control: Control,
        observer: abc.ObserverBase[StreamEvent],
        provider: str,
        loop: asyncio.AbstractEventLoop,
        hooks: tuple[DemandHook, ...],
    ) -> None:
        self.session = session
        self.control = control
        self.observer = observer
        self.provider = provider
        self.loop = loop
        self.hooks = hooks
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        control, observer, provider, hooks = self.control, self.observer, self.provider, self.hooks
        acc = ResponseAccumulator()
        iterator = self.session(control)
        error: BaseException | None = None
        try:
            async for event in iterator:
                if control.cancelled:
                    break
                acc.add(event)
                observer.on_next(event)
                if hooks:  # a consumer downstream has no room: wait (backpressure)
                    await wait_for_demand(hooks)
        except asyncio.CancelledError:
            if not control.cancelled:
                # Not our disposal: the loop is shutting down (asyncio.run returned, or the task
                # was cancelled by someone else). The subscriber still gets its one terminal.
                control.cancelled = True
                _terminate(
                    observer,
                    StreamCancelledError(
                        f"{provider}: the asyncio task reading the stream was cancelled "
                        "(its event loop is shutting down?)",
                        partial=acc.snapshot(),
                    ),
                    provider,
                )
            raise
        except StreamError as exc:
            error = exc.with_partial(acc.snapshot())
        except Exception as exc:
            error = _wrap_unexpected(exc, acc, control, provider)
        finally:
            try:
                await iterator.aclose()  # type: ignore[attr-defined]
            except BaseException:
                logger.debug("rxstream: closing the async session failed", exc_info=True)
            control.release()
        if not control.cancelled:
            _terminate(observer, error, provider)

    def start(self) -> None:
        if not self.control.cancelled:
            self.task = self.loop.create_task(self.run())

    def cancel(self) -> None:
        self.control.cancel()
        if self.task is not None:
            self.task.cancel()

    def cancel_from_elsewhere(self) -> None:
        # Off the loop thread: shut the socket down now (the abort callbacks are thread-safe),
        # then let the loop cancel the task. If the loop is closed, the abort is all we can do.
        self.control.cancel()
        loop = self.loop
        if loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self.cancel)
        except RuntimeError:  # closed between the check and the call
            logger.debug("rxstream: the stream's event loop closed during disposal")

    def dispose(self) -> None:
        if _on_loop_thread(self.loop):
            self.cancel()
        else:
            self.cancel_from_elsewhere()


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

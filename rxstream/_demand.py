"""Demand: how a consumer makes a source's reader wait (backpressure), and loop hand-off.

Two small protocols shared by the sources (`rxstream.providers._source`), the asyncio
bridge (`rxstream.aio`) and `rxstream.operators.pausable`:

* **Demand hooks.** A consumer that cannot block the thread it is called on (an asyncio
  loop) installs a hook with `demand_scope` around its ``subscribe`` call. A source that
  reads on an asyncio loop captures `current_demand` at subscribe time (subscriptions run
  synchronously down an operator chain, so the context variable reaches it) and, after each
  ``on_next``, awaits `wait_for_demand`: each hook returns ``None`` when the consumer has
  room, or an awaitable that resolves when it has room again (or gave up). The reading task
  then awaits instead of reading, the bytes stay in the kernel and the server's writes
  block: TCP backpressure without a thread. A source that reads on a plain thread needs no
  hook: the consumer blocks that thread in ``on_next``.
* **Blocking consumers.** `blocking_consumer_scope` marks a subscription whose caller will
  block its own thread until the stream ends (`rxstream.to_iterator`); together with the
  `reactivex.scheduler.NewThreadScheduler` that ``Observable.run()`` subscribes with, it lets an
  async source refuse at once (``ConfigurationError``) a consumer that would deadlock the
  loop it reads on.
* **Loop hand-off.** `LoopObserver` forwards notifications emitted on a reader thread to an
  asyncio loop through ``loop.call_soon_threadsafe`` (the only thread-safe entry into a
  loop), in batches, holding the reader thread when too many are in flight.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from reactivex import abc
from reactivex.scheduler import NewThreadScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxstream._sdk_internals import scheduler_loop

__all__ = [
    "DemandHook",
    "LoopObserver",
    "blocking_consumer_scope",
    "current_demand",
    "demand_scope",
    "pick_loop",
    "release",
    "wait_for_demand",
    "would_block_loop",
]

_T = TypeVar("_T")

DemandHook = Callable[[], Awaitable[None] | None]
"""``hook() -> None`` (room: go on) or an awaitable that resolves when there is room again."""

_DEMAND: contextvars.ContextVar[tuple[DemandHook, ...]] = contextvars.ContextVar(
    "rxstream_demand", default=()
)
_BLOCKING: contextvars.ContextVar[bool] = contextvars.ContextVar("rxstream_blocking", default=False)


@contextlib.contextmanager
def demand_scope(hook: DemandHook) -> Iterator[None]:
    """Install ``hook`` (after any outer ones) for the subscriptions made inside the block."""
    token = _DEMAND.set((*_DEMAND.get(), hook))
    try:
        yield
    finally:
        _DEMAND.reset(token)


def current_demand() -> tuple[DemandHook, ...]:
    """The demand hooks of the subscription being made (outermost consumer first)."""
    return _DEMAND.get()


async def wait_for_demand(hooks: tuple[DemandHook, ...]) -> None:
    """Await until every hook reports room (call after each ``on_next`` on the loop)."""
    for hook in hooks:
        while (pending := hook()) is not None:
            await pending


@contextlib.contextmanager
def blocking_consumer_scope() -> Iterator[None]:
    """Mark the subscriptions made inside the block as consumed by a blocking caller."""
    token = _BLOCKING.set(True)
    try:
        yield
    finally:
        _BLOCKING.reset(token)


def pick_loop(*schedulers: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop to run on: the first ``AsyncIOScheduler``'s, else the running loop, else None."""
    for scheduler in schedulers:
        if isinstance(scheduler, AsyncIOScheduler):
            return scheduler_loop(scheduler)
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def would_block_loop(loop: asyncio.AbstractEventLoop, subscribe_scheduler: abc.SchedulerBase | None) -> bool:
    """Whether reading on ``loop`` would deadlock: the caller runs ``loop`` and will block it.

    True when this thread is running ``loop`` and the subscription comes from a blocking
    consumer: `rxstream.to_iterator`, or ``Observable.run()`` (which subscribes with a
    `NewThreadScheduler` and then waits on a `threading.Event`).
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return False
    if running is not loop:
        return False
    return _BLOCKING.get() or isinstance(subscribe_scheduler, NewThreadScheduler)


def release(waiters: list[asyncio.Future[None]]) -> None:
    """Resolve and clear demand futures, each on its own loop (safe from any thread)."""
    pending, waiters[:] = list(waiters), []
    for future in pending:
        _resolve(future)


def _resolve(future: asyncio.Future[None]) -> None:
    loop = future.get_loop()
    try:
        on_loop = asyncio.get_running_loop() is loop
    except RuntimeError:
        on_loop = False
    if on_loop:
        if not future.done():
            future.set_result(None)
        return
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_set_if_pending, future)


def _set_if_pending(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LoopObserver(abc.ObserverBase[_T]):
    """Forward notifications from reader threads to ``observer`` on ``loop``.

    Items are queued and delivered in batches by one ``call_soon_threadsafe`` callback, in
    order. When ``max_in_flight`` items wait for the loop, the reader thread blocks until
    the loop has delivered some (or `close` is called): memory stays bounded and the
    stall reaches the socket. Delivery also honours ``hooks`` (see `wait_for_demand`): while a
    downstream consumer has no room, the batch pauses and the reader thread fills the queue
    and then blocks.

    If the downstream ``on_next`` raises, ``on_failure`` is called (it should stop the reader)
    and the exception is delivered to ``observer.on_error``.
    """

    def __init__(
        self,
        observer: abc.ObserverBase[_T],
        loop: asyncio.AbstractEventLoop,
        *,
        hooks: tuple[DemandHook, ...] = (),
        on_failure: Callable[[], None] = lambda: None,
        max_in_flight: int = 1024,
    ) -> None:
        self._observer = observer
        self._loop = loop
        self._hooks = hooks
        self._on_failure = on_failure
        self._max = max_in_flight
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[tuple[int, Any]] = collections.deque()
        self._scheduled = False
        self._closed = False

    # -- reader thread ----------------------------------------------------------------

    def on_next(self, value: _T) -> None:
        self._put(0, value)

    def on_error(self, error: Exception) -> None:
        self._put(1, error)

    def on_completed(self) -> None:
        self._put(2, None)

    def _put(self, kind: int, value: Any) -> None:
        with self._cond:
            while kind == 0 and len(self._queue) >= self._max and not self._closed:
                self._cond.wait()
            if self._closed:
                return
            self._queue.append((kind, value))
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.close()

    def close(self) -> None:
        """Stop delivering, drop what is queued and wake a blocked reader (any thread)."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    # -- loop thread ------------------------------------------------------------------

    def _deliver(self) -> None:
        while True:
            for hook in self._hooks:
                pending = hook()
                if pending is not None:
                    asyncio.ensure_future(pending).add_done_callback(lambda _: self._deliver())
                    return
            with self._cond:
                if self._closed or not self._queue:
                    self._scheduled = False
                    return
                kind, value = self._queue.popleft()
                self._cond.notify_all()
            if kind == 0:
                try:
                    self._observer.on_next(value)
                except Exception as exc:
                    self.close()
                    self._on_failure()
                    self._observer.on_error(exc)
                    return
            elif kind == 1:
                self.close()
                self._observer.on_error(value)
                return
            else:
                self.close()
                self._observer.on_completed()
                return

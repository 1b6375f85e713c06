"""The asyncio and iteration bridge: ``async for`` / ``for`` over any Observable, and back.

* `to_async_iterator(observable)`: ``async for event in ...`` with bounded buffering and real
  backpressure (the source's reader waits while the consumer is behind).
* `to_iterator(observable)`: the same for plain scripts (``for event in ...``).
* `from_async_iterable(factory)`: a user's async generator as a cold Observable.

Leaving a loop early (``break``, ``return``, an exception in the body), cancelling the
consuming task, ``aclose()`` / ``close()`` or garbage collection of the iterator disposes the
subscription, which closes the HTTP connection of an rxstream source.

Backpressure, measured on the emulator in ``tests/test_aio.py``: when ``max_buffered`` items
wait for the consumer, a sync client's reading thread blocks in ``on_next`` and an async
client's reading task awaits (the demand hook of `rxstream._demand`), so the socket is not
read, the kernel's receive window fills and the server's writes block. Sources that can do
neither (a hot ``Subject``, ``reactivex.from_iterable`` emitting on the consumer's own
thread) are buffered beyond ``max_buffered``: their items already exist in memory.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxstream._demand import (
    blocking_consumer_scope,
    current_demand,
    demand_scope,
    pick_loop,
    release,
    wait_for_demand,
    would_block_loop,
)
from rxstream.errors import ConfigurationError

__all__ = ["from_async_iterable", "to_async_iterator", "to_iterator"]

_T = TypeVar("_T")


def _check_source(observable: object, max_buffered: object) -> None:
    if not isinstance(observable, Observable):
        raise ConfigurationError(f"expected a reactivex Observable, got {type(observable).__name__}")
    if isinstance(max_buffered, bool) or not isinstance(max_buffered, int) or max_buffered < 1:
        raise ConfigurationError(f"max_buffered must be an int >= 1, got {max_buffered!r}")


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _Channel(Generic[_T]):
    """One subscription's bounded buffer between its producer and one consumer.

    The producer side (``on_next`` ...) may be called from any thread; the consumer side
    (`take` / `wait_async`) from the consumer's thread only. The channel never refers to the
    iterator that owns it, so the iterator can be garbage-collected while the source runs.
    """

    def __init__(self, max_buffered: int) -> None:
        self.max = max_buffered
        self.low = max_buffered // 2  # producers resume once the buffer drained to this
        self.lock = threading.Lock()
        # Made on first use: only a sync consumer (`to_iterator`) waits for items and only a
        # producer thread facing a full buffer waits for room; an `async for` over an async
        # client needs neither (two Conditions are ~2 KiB per stream).
        self._not_empty: threading.Condition | None = None
        self._not_full: threading.Condition | None = None
        self.queue: collections.deque[_T] = collections.deque()
        self.done = False  # the source ended (completion or error)
        self.error: Exception | None = None
        self.closed = False  # the consumer is gone
        self.consumer_thread = threading.get_ident()
        self.consumer_future: asyncio.Future[None] | None = None
        self.demand_waiters: list[asyncio.Future[None]] = []
        self.subscription: abc.DisposableBase = Disposable()

    # -- producer side (any thread) -----------------------------------------------------

    def on_next(self, item: _T) -> None:
        with self.lock:
            if (
                len(self.queue) >= self.max
                and threading.get_ident() != self.consumer_thread
                and not _on_a_loop()  # a loop's task waits through `demand`, never here
            ):
                if self._not_full is None:
                    self._not_full = threading.Condition(self.lock)
                while len(self.queue) >= self.max and not self.closed:
                    self._not_full.wait()
            if self.closed or self.done:
                return
            self.queue.append(item)
            if self._not_empty is not None:
                self._not_empty.notify()
            waiting = self.consumer_future
            self.consumer_future = None
        if waiting is not None:
            release([waiting])

    def on_error(self, error: Exception) -> None:
        self._end(error)

    def on_completed(self) -> None:
        self._end(None)

    def _end(self, error: Exception | None) -> None:
        with self.lock:
            if self.closed or self.done:
                return
            self.done = True
            self.error = error
            if self._not_empty is not None:
                self._not_empty.notify()
            waiting = self.consumer_future
            self.consumer_future = None
        if waiting is not None:
            release([waiting])

    def demand(self) -> asyncio.Future[None] | None:
        """The demand hook: None while there is room, else a future resolved once drained."""
        with self.lock:
            if self.closed or len(self.queue) < self.max:
                return None
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.demand_waiters.append(future)
            return future

    # -- consumer side ------------------------------------------------------------------

    def wait_not_empty(self) -> None:
        """Block until an item or the end arrives (lock held by the caller; sync consumer only)."""
        if self._not_empty is None:
            self._not_empty = threading.Condition(self.lock)
        self._not_empty.wait()

    def take(self) -> tuple[bool, _T | None]:
        """Pop the next item (lock held by the caller): ``(True, item)`` or ``(False, None)``."""
        if not self.queue:
            return False, None
        item = self.queue.popleft()
        if len(self.queue) <= self.low:
            if self._not_full is not None:
                self._not_full.notify_all()
            if self.demand_waiters:
                release(self.demand_waiters)
        return True, item

    def finish(self) -> None:
        """The source ended and the buffer is empty (lock held): raise its error, once."""
        error, self.error = self.error, None
        self.closed = True
        # The source ended (its observer detached itself): drop the subscription, which refers
        # back to this channel through the observer, so the pair is freed by reference
        # counting instead of waiting for the cyclic garbage collector (~2 KiB per stream).
        self.subscription = Disposable()
        if error is not None:
            raise error

    def close(self) -> None:
        """The consumer is gone: drop the buffer, wake producers, dispose (idempotent)."""
        with self.lock:
            self.closed = True
            self.queue.clear()
            if self._not_full is not None:
                self._not_full.notify_all()
            waiters = list(self.demand_waiters)
            self.demand_waiters.clear()
            subscription, self.subscription = self.subscription, Disposable()
        release(waiters)
        subscription.dispose()


class _AsyncIterator(Generic[_T]):
    """The object `to_async_iterator` returns (``AsyncIterator[T]``, also ``async with``)."""

    def __init__(self, observable: Observable[_T], max_buffered: int) -> None:
        self._observable = observable
        self._max = max_buffered
        self._channel: _Channel[_T] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __aiter__(self) -> _AsyncIterator[_T]:
        return self

    def _subscribe(self) -> _Channel[_T]:
        self._loop = asyncio.get_running_loop()
        channel: _Channel[_T] = _Channel(self._max)
        self._channel = channel
        with demand_scope(channel.demand):
            channel.subscription = self._observable.subscribe(
                channel.on_next, channel.on_error, channel.on_completed
            )
        return channel

    async def __anext__(self) -> _T:
        channel = self._channel if self._channel is not None else self._subscribe()
        while True:
            with channel.lock:
                ok, item = channel.take()
                if ok:
                    return item  # type: ignore[return-value]
                if channel.closed:
                    raise StopAsyncIteration
                if channel.done:
                    channel.finish()
                    raise StopAsyncIteration
                assert self._loop is not None
                waiter: asyncio.Future[None] = self._loop.create_future()
                channel.consumer_future = waiter
            try:
                await waiter
            except BaseException:  # cancelled: the consumer is gone
                channel.close()
                raise

    async def aclose(self) -> None:
        """Dispose the subscription (closes the connection); later iteration ends at once."""
        self._close()

    def _close(self) -> None:
        channel = self._channel
        if channel is None:
            self._channel = _closed_channel()
            return
        channel.close()

    async def __aenter__(self) -> _AsyncIterator[_T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close()

    def __del__(self) -> None:
        channel = self._channel
        if channel is None or channel.closed:
            return
        loop = self._loop
        try:
            on_loop = loop is not None and asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop or loop is None or loop.is_closed():
            channel.close()
            return
        try:
            loop.call_soon_threadsafe(channel.close)
        except RuntimeError:  # closed meanwhile
            channel.close()


def _closed_channel() -> _Channel[Any]:
    channel: _Channel[Any] = _Channel(1)
    channel.closed = True
    return channel


class _Iterator(Generic[_T]):
    """The object `to_iterator` returns (``Iterator[T]``, also a context manager)."""

    def __init__(self, observable: Observable[_T], max_buffered: int) -> None:
        self._observable = observable
        self._max = max_buffered
        self._channel: _Channel[_T] | None = None

    def __iter__(self) -> _Iterator[_T]:
        return self

    def _subscribe(self) -> _Channel[_T]:
        channel: _Channel[_T] = _Channel(self._max)
        self._channel = channel
        with blocking_consumer_scope(), demand_scope(channel.demand):
            channel.subscription = self._observable.subscribe(
                channel.on_next, channel.on_error, channel.on_completed
            )
        return channel

    def __next__(self) -> _T:
        channel = self._channel if self._channel is not None else self._subscribe()
        try:
            with channel.lock:
                while True:
                    ok, item = channel.take()
                    if ok:
                        return item  # type: ignore[return-value]
                    if channel.closed:
                        raise StopIteration
                    if channel.done:
                        channel.finish()
                        raise StopIteration
                    channel.wait_not_empty()
        except BaseException as exc:
            if not isinstance(exc, Exception):  # KeyboardInterrupt while waiting: consumer gone
                channel.close()
            raise

    def close(self) -> None:
        """Dispose the subscription (closes the connection); later iteration ends at once."""
        if self._channel is None:
            self._channel = _closed_channel()
        else:
            self._channel.close()

    def __enter__(self) -> _Iterator[_T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        channel = self._channel
        if channel is not None and not channel.closed:
            with contextlib.suppress(Exception):
                channel.close()


def to_async_iterator(observable: Observable[_T], *, max_buffered: int = 1024) -> AsyncIterator[_T]:
    """Iterate any Observable with ``async for``, with bounded buffering and backpressure.

    ``Observable[T] -> AsyncIterator[T]`` for rxstream's streams (``T = StreamEvent``) or any
    other Observable. Cold: nothing is subscribed until the first ``__anext__``; each returned
    iterator is one subscription (one request). Items arrive in order; the loop ends on
    completion, or raises the Observable's error (an rxstream `StreamError` with ``.partial``)
    after every item emitted before it.

    Items hop onto the consumer's loop thread-safely whether the source emits on the loop
    (async SDK clients) or on reader threads (sync clients, boto3). Backpressure: when
    ``max_buffered`` items wait, a reader thread blocks in ``on_next`` and an async source's
    reading task awaits (it resumes when half of the buffer has been consumed): the socket is
    not read and the server's writes block. A source that can do neither (a hot Subject, or
    one that emits on the consumer's own thread) is buffered beyond the bound.

    Leaving the loop early (``break``, ``return``, an exception in the body), cancelling the
    consuming task, ``await it.aclose()``, ``async with`` exit, or garbage collection of the
    iterator dispose the subscription (an rxstream source closes its connection). For a
    deterministic close when you keep a reference, use ``async with`` or
    ``contextlib.aclosing``.

    Args:
        observable: Any ``reactivex.Observable``.
        max_buffered: Items held for a slow consumer before the producer waits (``>= 1``).

    Returns:
        An async iterator (also an async context manager). Subscribed with no subscribe-time
        scheduler: async sources read on the running loop, sync sources on their pool.

    Raises:
        ConfigurationError: at call time, for a non-Observable or ``max_buffered < 1``.

    Example:
        >>> async for event in rxs.to_async_iterator(stream):  # doctest: +SKIP
        ...     if event.type == "text_delta":
        ...         print(event.text, end="")
    """
    _check_source(observable, max_buffered)
    return _AsyncIterator(observable, max_buffered)


def to_iterator(observable: Observable[_T], *, max_buffered: int = 1024) -> Iterator[_T]:
    """Iterate any Observable with a plain ``for`` loop (blocking), with backpressure.

    ``Observable[T] -> Iterator[T]``; the blocking twin of `to_async_iterator` for scripts.
    Subscribes on the first ``next()``; items arrive in order; the Observable's error is
    raised after the items before it. When ``max_buffered`` items wait, a sync source's
    reading thread blocks. ``break`` (the iterator is then garbage-collected), ``close()``,
    ``with`` exit or ``KeyboardInterrupt`` while waiting dispose the subscription.

    Async SDK clients read on an asyncio loop: from a thread that runs that loop the
    blocking iterator would deadlock it, so the source emits a `ConfigurationError` at once
    (raised by the first ``next()``). From another thread (the source built with
    ``scheduler=AsyncIOScheduler(loop)`` of a loop running elsewhere) it works.

    Args:
        observable: Any ``reactivex.Observable``.
        max_buffered: Items held before the producer waits (``>= 1``).

    Returns:
        An iterator (also a context manager).

    Raises:
        ConfigurationError: at call time, for a non-Observable or ``max_buffered < 1``.

    Example:
        >>> for event in rxs.to_iterator(stream):  # doctest: +SKIP
        ...     print(event.type)
    """
    _check_source(observable, max_buffered)
    return _Iterator(observable, max_buffered)


def from_async_iterable(
    factory: Callable[[], AsyncIterable[_T]], *, scheduler: abc.SchedulerBase | None = None
) -> Observable[_T]:
    """A cold Observable over a user's async iterable (e.g. an async generator).

    ``factory() -> AsyncIterable[T]`` is called on each subscription, inside a task on the
    asyncio loop (the ``scheduler`` argument's loop if it is an `AsyncIOScheduler`, else the
    subscribe-time `AsyncIOScheduler`'s, else the loop running at subscribe time). Items are
    emitted from that task in order; the iterable's exception goes to ``on_error``.
    Disposal cancels the task, which closes the generator (``aclose``) on the loop that runs
    it. Consumers downstream that install a demand hook (`to_async_iterator`, ``pausable``)
    make the task await instead of pulling further items.

    Args:
        factory: Zero-argument callable returning a fresh async iterable per subscription.
        scheduler: Optional `AsyncIOScheduler` naming the loop to run on.

    Returns:
        ``Observable[T]``.

    Raises:
        ConfigurationError: at call time, if ``factory`` is not callable. Emitted (not
            raised) when subscribed with no loop to run on, or from a blocking call on the
            loop itself (``.run()``, `to_iterator`).

    Example:
        >>> async def numbers():  # doctest: +SKIP
        ...     for i in range(3):
        ...         yield i
        >>> rxs.from_async_iterable(numbers)  # doctest: +SKIP
    """
    if not callable(factory):
        raise ConfigurationError(f"factory must be a callable returning an async iterable, got {factory!r}")
    if scheduler is not None and not isinstance(scheduler, AsyncIOScheduler):
        raise ConfigurationError("from_async_iterable runs on an asyncio loop: pass an AsyncIOScheduler")

    def subscribe(
        observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = pick_loop(scheduler or subscribe_scheduler)
        if loop is None:
            observer.on_error(
                ConfigurationError(
                    "from_async_iterable needs an asyncio loop: subscribe from a coroutine or "
                    "pass scheduler=AsyncIOScheduler(loop)"
                )
            )
            return Disposable()
        if would_block_loop(loop, subscribe_scheduler):
            observer.on_error(
                ConfigurationError(
                    "from_async_iterable runs on the asyncio loop that a blocking call (`.run()`, "
                    "`rxs.to_iterator`) would deadlock: use `async for` over `rxs.to_async_iterator`"
                )
            )
            return Disposable()
        return _run_on_loop(factory, observer, loop, current_demand())

    return reactivex.create(subscribe)


def _run_on_loop(
    factory: Callable[[], AsyncIterable[_T]],
    observer: abc.ObserverBase[_T],
    loop: asyncio.AbstractEventLoop,
    hooks: tuple[Any, ...],
) -> abc.DisposableBase:
    state = {"cancelled": False}
    task_box: list[asyncio.Task[None]] = []

    async def run() -> None:
        error: Exception | None = None
        iterator: AsyncIterator[_T] | None = None
        try:
            iterator = aiter(factory())
            async for item in iterator:
                if state["cancelled"]:
                    break
                observer.on_next(item)
                if hooks:
                    await wait_for_demand(hooks)
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise
        except Exception as exc:
            error = exc
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        if state["cancelled"]:
            return
        if error is not None:
            observer.on_error(error)
        else:
            observer.on_completed()

    def start() -> None:
        if not state["cancelled"]:
            task_box.append(loop.create_task(run()))

    def cancel() -> None:
        state["cancelled"] = True
        if task_box:
            task_box[0].cancel()

    def on_loop() -> bool:
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    if on_loop():
        start()
    else:
        loop.call_soon_threadsafe(start)

    def dispose() -> None:
        if on_loop():
            cancel()
        else:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs any more
                loop.call_soon_threadsafe(cancel)

    return Disposable(dispose)

"""``pausable``: hold a stream's events while a valve is closed, with a bounded buffer."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable

from rxstream._demand import demand_scope, release
from rxstream.errors import ConfigurationError, PausableBufferOverflow
from rxstream.response import ResponseAccumulator

__all__ = ["PausableBufferOverflow", "pausable"]

_T = TypeVar("_T")


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def pausable(
    valve: Observable[bool], *, max_buffered: int = 10_000
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Hold events while ``valve``'s latest value is False; release them in order on True.

    ``Observable[T] -> Observable[T]`` (used with ``Observable[StreamEvent]``). Nothing is
    dropped: held events are released in order, then the source's completion or error.
    The valve is subscribed first, so a `reactivex.subject.BehaviorSubject`'s current
    value applies from the start; before the valve's first value the stream is open.

    Backpressure: when ``max_buffered`` events are held, the producer's ``on_next`` blocks
    (a `threading.Condition`) until the valve opens and the buffer drains below the bound,
    or the subscription is disposed. A sync rxstream source reads the socket on its own
    thread and calls ``on_next`` from it, so while it is blocked it stops reading, the
    kernel's receive window fills and the provider's writes block: backpressure reaches
    the TCP connection and memory stays bounded.

    On an asyncio loop blocking is not allowed (an async client's source calls ``on_next``
    from its reading task). rxstream's async sources and `rxstream.from_async_iterable`
    honour a demand hook (`rxstream._demand`): when the bound is reached their reading task
    awaits until the buffer drains, so they are held exactly like sync sources. Only a
    producer on a loop that cannot wait (a user's hot ``Subject``, a plain
    ``reactivex.create``) overflows: when the bound is reached while paused, the operator
    disposes the upstream and, once the valve opens, emits the held events followed by
    `PausableBufferOverflow` (a non-retryable `StreamError`).

    Marble (valve ``T``/``F``; ``x`` = a, b, c emitted in order at the same tick,
    ``y`` = e then completion)::

        valve:       F-------T----F----T
        source:      -a-b-c-----d---e-|
        pausable():  --------x--d------y

    Args:
        valve: ``True`` opens, ``False`` closes; repeated values are harmless. Completion of
            the valve keeps its last state; an error of the valve releases the held events
            and is then forwarded (the source is disposed).
        max_buffered: Most events held at once (events, ``>= 1``); beyond it the producer
            blocks (see above).

    Returns:
        An operator for ``pipe``; each subscription has its own buffer and valve subscription.

    Raises:
        ConfigurationError: at creation, if ``valve`` is not an Observable or
            ``max_buffered`` is not an int ``>= 1``.

    Emits:
        The source's items, in order, never while the valve is closed. ``on_completed`` /
        ``on_error`` of the source: held while closed, forwarded after every held item once
        open (lossless). Released items are delivered on the thread that opens the valve
        until the buffer is empty, then on the producer's thread again. Disposal drops the
        buffer, disposes the source (closing the connection) and the valve subscription,
        and wakes a blocked producer. No scheduler is used: there is no time in it.

    Example:
        >>> valve = BehaviorSubject(True)  # doctest: +SKIP
        >>> stream.pipe(rso.pausable(valve)).subscribe(print)  # doctest: +SKIP
        >>> valve.on_next(False)  # pause; valve.on_next(True) resumes  # doctest: +SKIP
    """
    if not isinstance(valve, Observable):
        raise ConfigurationError(f"valve must be an Observable[bool], got {type(valve).__name__}")
    if isinstance(max_buffered, bool) or not isinstance(max_buffered, int) or max_buffered < 1:
        raise ConfigurationError(f"max_buffered must be an int >= 1, got {max_buffered!r}")

    def _pausable(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            state = _Pausable(observer, max_buffered)
            valve_subscription = SingleAssignmentDisposable()
            source_subscription = SingleAssignmentDisposable()
            state.upstream = source_subscription
            state.valve_subscription = valve_subscription
            valve_subscription.disposable = valve.subscribe(
                state.on_valve, state.on_valve_error, scheduler=scheduler
            )
            with demand_scope(state.demand):
                source_subscription.disposable = source.subscribe(
                    state.on_next, state.on_error, state.on_completed, scheduler=scheduler
                )
            return Disposable(state.dispose)

        return Observable(subscribe)

    return _pausable


class _Pausable(Generic[_T]):
    """Per-subscription state of `pausable`: a queue drained by one emitter at a time.

    Hot path: while the valve is open and nothing is held, ``on_next`` claims the emitter
    role under the lock, delivers the item itself and releases the role without the lock,
    then checks whether work arrived meanwhile (one lock acquisition, no queue, no
    notification). Producers blocked on a full buffer are counted in ``waiting``, so the
    drain notifies the condition only when somebody waits.
    """

    __slots__ = (
        "cond",
        "demand_waiters",
        "disposed",
        "done",
        "emitted",
        "emitting",
        "lock",
        "max_buffered",
        "observer",
        "open",
        "queue",
        "terminal",
        "upstream",
        "valve_subscription",
        "waiting",
    )

    def __init__(self, observer: abc.ObserverBase[_T], max_buffered: int) -> None:
        self.observer = observer
        self.max_buffered = max_buffered
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.waiting = 0  # producers blocked in cond.wait()
        self.queue: collections.deque[_T] = collections.deque()
        self.open = True
        self.emitting = False
        self.disposed = False
        self.done = False  # a terminal notification was delivered
        self.terminal: Callable[[], None] | None = None
        self.upstream: abc.DisposableBase = Disposable()
        self.emitted = ResponseAccumulator()  # for the overflow error's .partial; ignores non-events
        self.valve_subscription: abc.DisposableBase = Disposable()
        self.demand_waiters: list[asyncio.Future[None]] = []

    # -- producer side ------------------------------------------------------------------

    def on_next(self, item: _T) -> None:
        lock = self.lock
        with lock:
            fast = (
                self.open
                and not self.emitting
                and not self.queue
                and self.terminal is None
                and not self.disposed
            )
            if fast:
                self.emitting = True
        if not fast:
            self._on_next_slow(item)
            return
        try:
            self.emitted.add(item)  # type: ignore[arg-type]
            self.observer.on_next(item)
        finally:
            # Release the emitter role without the lock, then look again: whoever queued an
            # item or set a terminal meanwhile either saw ``emitting`` still True (and left
            # the work to this thread: it is seen here) or saw it False and claimed it. So
            # other threads only ever set ``emitting`` to True when they read it False.
            self.emitting = False
        if self.queue or self.terminal is not None:
            with lock:
                if self.emitting:
                    return  # another thread claimed the role and drains
                self.emitting = True
            self._drain()

    def _on_next_slow(self, item: _T) -> None:
        overflow = False
        with self.cond:
            while not self.disposed and self.terminal is None and len(self.queue) >= self.max_buffered:
                if self.open and not self.emitting:
                    break  # nobody drains: this thread will
                if _on_event_loop():  # never block a loop
                    if self.open:
                        break  # another thread is draining right now: exceed the bound briefly
                    overflow = True
                    break
                self.waiting += 1
                try:
                    self.cond.wait()
                finally:
                    self.waiting -= 1
            if self.disposed or self.terminal is not None:
                return
            if overflow:
                self.terminal = self._overflow_terminal()
            else:
                self.queue.append(item)
            if self.emitting or not self.open:
                claimed = False
            else:
                self.emitting = claimed = True
        if overflow:
            self.upstream.dispose()
        if claimed:
            self._drain()

    def demand(self) -> asyncio.Future[None] | None:
        """Demand hook (`rxstream._demand`): an async source's reading task awaits a full buffer."""
        with self.cond:
            if self.disposed or self.terminal is not None or len(self.queue) < self.max_buffered:
                return None
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.demand_waiters.append(future)
            return future

    def _overflow_terminal(self) -> Callable[[], None]:
        error = PausableBufferOverflow(self.max_buffered)
        return lambda: self.observer.on_error(error.with_partial(self.emitted.snapshot()))

    def on_error(self, error: Exception) -> None:
        self._terminate(lambda: self.observer.on_error(error))

    def on_completed(self) -> None:
        self._terminate(self.observer.on_completed)

    def _terminate(self, emit: Callable[[], None]) -> None:
        with self.cond:
            if self.disposed or self.terminal is not None:
                return
            self.terminal = emit
            self.cond.notify_all()
            if self.emitting or not self.open:
                return
            self.emitting = True
        self._drain()

    # -- valve side ---------------------------------------------------------------------

    def on_valve(self, value: bool) -> None:
        with self.cond:
            if self.disposed or self.done:
                return
            self.open = bool(value)
            self.cond.notify_all()
            if not self.open or self.emitting or (not self.queue and self.terminal is None):
                return
            self.emitting = True
        self._drain()

    def on_valve_error(self, error: Exception) -> None:
        with self.cond:
            if self.disposed or self.done:
                return
            self.open = True  # release what is held (lossless), then the valve's error
            if self.terminal is None:
                self.terminal = lambda: self.observer.on_error(error)
            self.cond.notify_all()
            claimed = not self.emitting
            if claimed:  # never write True over the producer's lock-free release (see on_next)
                self.emitting = True
        self.upstream.dispose()
        if claimed:
            self._drain()

    # -- delivery -----------------------------------------------------------------------

    def _drain(self) -> None:
        """Deliver queued items while open; only the thread that set ``emitting`` runs this."""
        try:
            while True:
                with self.lock:
                    if self.disposed or not self.open:
                        self.emitting = False
                        return
                    if self.queue:
                        item = self.queue.popleft()
                        terminal = None
                        if self.waiting:
                            self.cond.notify_all()  # room in the buffer: wake a blocked producer
                        if self.demand_waiters:
                            release(self.demand_waiters)
                    elif self.terminal is not None:
                        terminal = self.terminal
                        self.done = True
                        self.disposed = True
                    else:
                        self.emitting = False
                        return
                if terminal is not None:
                    self.valve_subscription.dispose()
                    terminal()
                    return
                self.emitted.add(item)  # type: ignore[arg-type]
                self.observer.on_next(item)
        except BaseException:
            with self.cond:
                self.emitting = False
            raise

    def dispose(self) -> None:
        with self.cond:
            self.disposed = True
            self.queue.clear()
            self.cond.notify_all()  # wake a producer blocked on a full buffer
            release(self.demand_waiters)
        # Wake first, then dispose: a source may wait for its reading thread on disposal.
        self.upstream.dispose()
        self.valve_subscription.dispose()

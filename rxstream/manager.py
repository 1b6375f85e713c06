"""`StreamManager`: run many streams, pause/resume/cancel each, watch their status.

Each `StreamManager.start` subscribes once to a cold stream (one request) through
``pausable`` with a `BehaviorSubject` valve and fans the events out to the registered
`StreamHandler`s (each call isolated, see `rxstream.handlers`). The returned
`StreamHandle` controls that one stream::

    manager = StreamManager()
    manager.register_handler(LoggingHandler())
    handle = manager.start(rxs.from_anthropic(client, ...), metadata={"user": "u1"})
    handle.pause()          # events are held; a sync source stops reading the socket
    handle.resume()         # held events are released in order
    response = handle.wait(timeout=60)      # or: response = await handle
    handle.cancel()         # disposal: the HTTP connection is closed

States: ``pending`` (subscribed, no event yet) → ``active`` ⇄ ``paused`` → one of
``completed``, ``failed`` or ``cancelled``. A stream whose source ended while paused stays
``paused`` until resumed: its end is delivered after the held events.

Thread-safe: every method may be called from any thread. Sync sources deliver on their
reading thread; async sources (``AsyncAnthropic``/``AsyncOpenAI`` clients) on the asyncio
loop; ``resume`` delivers the held events on the calling thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import threading
from collections.abc import Generator, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.subject import BehaviorSubject

from rxstream.errors import ConfigurationError, StreamCancelledError
from rxstream.events import StreamEvent
from rxstream.handlers import HandlerErrorCallback, HandlerObserver, StreamHandler
from rxstream.operators._core import check_count, check_scheduler
from rxstream.operators._pausable import pausable
from rxstream.operators._stats import StatsTracker, StreamStats
from rxstream.response import Response, ResponseAccumulator

__all__ = ["StreamCancelledError", "StreamHandle", "StreamManager", "StreamState", "StreamStatus"]

StreamState = Literal["pending", "active", "paused", "completed", "cancelled", "failed"]
"""Lifecycle state of a managed stream (see the module docstring)."""

_TERMINAL = frozenset({"completed", "cancelled", "failed"})


class StreamStatus(BaseModel):
    """A snapshot of one managed stream.

    Attributes:
        id: The handle id (``"stream-1"``, ``"stream-2"``, ... per manager).
        state: See `StreamState`.
        stats: Timing and throughput so far, measured on the source side of the pause valve:
            held events count, and ``elapsed`` stops when the source ends (``stats.done``
            once the handle is in a final state; ``stats.stream_id`` is the latest
            request's stream id).
        metadata: What was passed to `StreamManager.start`.
        error: Type name of the error of a ``failed`` stream.
        handler_errors: Handler callback calls that raised.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    state: StreamState
    stats: StreamStats
    metadata: dict[str, Any] = {}
    error: str | None = None
    handler_errors: int = 0


class StreamHandle:
    """Controls one stream started by `StreamManager.start`. Thread-safe.

    ``await handle`` (in a coroutine) is the asyncio twin of `wait`: it returns the final
    `Response` or raises the stream's error; cancelling the awaiting task does not cancel
    the stream.

    Attributes:
        id: Handle id, unique within its manager.
        metadata: What was passed to `StreamManager.start`.
    """

    def __init__(
        self,
        id: str,
        source: Observable[StreamEvent],
        *,
        metadata: Mapping[str, Any] | None,
        handlers: list[StreamHandler],
        scheduler: abc.SchedulerBase | None,
        max_buffered: int,
        on_handler_error: HandlerErrorCallback | None,
        paused: bool = False,
    ) -> None:
        self.id = id
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._source = source
        self._scheduler = scheduler
        self._clock: abc.SchedulerBase = scheduler if scheduler is not None else TimeoutScheduler.singleton()
        self._max_buffered = max_buffered
        self._dispatch = HandlerObserver(handlers, on_handler_error=on_handler_error)
        self._lock = threading.Lock()
        self._valve_lock = threading.RLock()  # keeps valve pushes in the order of the calls
        self._valve: BehaviorSubject[bool] = BehaviorSubject(not paused)
        self._subscription = SingleAssignmentDisposable()
        self._future: concurrent.futures.Future[Response] = concurrent.futures.Future()
        self._acc = ResponseAccumulator()
        self._stats = StatsTracker()
        self._state: StreamState = "pending"
        self._paused = paused
        self._received = False
        self._error_name: str | None = None
        self._started_at: datetime = self._clock.now
        self._ended_at: datetime | None = None  # the handle's end (terminal state)
        self._source_end: datetime | None = None  # the source's end (stats stop there)

    # -- lifecycle ----------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            self._started_at = self._clock.now
            self._stats.start(0.0)
        pipeline = self._source.pipe(
            ops.do_action(
                on_next=self._observe_source,
                on_error=lambda _: self._source_ended(),
                on_completed=self._source_ended,
            ),
            pausable(self._valve, max_buffered=self._max_buffered),
        )
        self._subscription.disposable = pipeline.subscribe(
            on_next=self._on_next,
            on_error=self._on_error,
            on_completed=self._on_completed,
            scheduler=self._scheduler,
        )

    def _seconds(self, now: datetime) -> float:
        return (now - self._started_at).total_seconds()

    def _observe_source(self, event: StreamEvent) -> None:
        with self._lock:
            self._stats.observe(event, self._seconds(self._clock.now))

    def _source_ended(self) -> None:
        with self._lock:
            if self._source_end is None:
                self._source_end = self._clock.now

    def _on_next(self, event: StreamEvent) -> None:
        with self._lock:
            if self._state in _TERMINAL:
                return
            self._received = True
            if self._state == "pending":
                self._state = "active"
            self._acc.add(event)
        self._dispatch.on_next(event)

    def _finish(self, state: StreamState, error_name: str | None = None) -> bool:
        with self._lock:
            if self._state in _TERMINAL:
                return False
            self._state = state
            self._error_name = error_name
            self._ended_at = self._clock.now
            return True

    def _on_error(self, error: Exception) -> None:
        if not self._finish("failed", type(error).__name__):
            return
        self._dispatch.on_error(error)
        self._future.set_exception(error)

    def _on_completed(self) -> None:
        if not self._finish("completed"):
            return
        self._dispatch.on_completed()
        with self._lock:
            response = self._acc.snapshot()
        self._future.set_result(response)

    # -- control ------------------------------------------------------------------------

    def pause(self) -> bool:
        """Hold further events (a sync source stops reading once the buffer is full).

        Returns:
            True if the stream was running and is now paused.
        """
        with self._valve_lock:
            with self._lock:
                if self._state in _TERMINAL or self._paused:
                    return False
                self._paused = True
            self._valve.on_next(False)
        return True

    def resume(self) -> bool:
        """Release the held events in order (on this thread) and let the stream flow.

        Returns:
            True if the stream was paused and is now resumed.
        """
        with self._valve_lock:
            with self._lock:
                if self._state in _TERMINAL or not self._paused:
                    return False
                self._paused = False
            self._valve.on_next(True)
        return True

    def cancel(self) -> bool:
        """Dispose the subscription: the request is cancelled and its connection closed.

        Works while paused (a producer blocked on the full buffer is released). Handlers get
        no further callback. `wait` raises `StreamCancelledError`.

        Returns:
            True if the stream was still running (it is now ``cancelled``).
        """
        if not self._finish("cancelled"):
            return False
        self._subscription.dispose()
        with self._lock:
            partial = self._acc.snapshot()
        self._future.set_exception(StreamCancelledError(partial=partial))
        return True

    # -- observation --------------------------------------------------------------------

    @property
    def state(self) -> StreamState:
        """The current `StreamState`."""
        with self._lock:
            return self._current_state()

    def _current_state(self) -> StreamState:
        if self._state in _TERMINAL:
            return self._state
        if self._paused:
            return "paused"
        return "active" if self._received else "pending"

    def done(self) -> bool:
        """Whether the stream completed, failed or was cancelled."""
        return self._future.done()

    @property
    def response(self) -> Response:
        """The `Response` of the events delivered so far."""
        with self._lock:
            return self._acc.snapshot()

    def status(self) -> StreamStatus:
        """Return a `StreamStatus` snapshot (state, stats, ids)."""
        with self._lock:
            state = self._current_state()
            ended = self._source_end or self._ended_at
            now = ended if ended is not None else self._clock.now
            stats = self._stats.snapshot(self._seconds(now), done=self._ended_at is not None)
            return StreamStatus(
                id=self.id,
                state=state,
                stats=stats,
                metadata=self.metadata,
                error=self._error_name,
                handler_errors=self._dispatch.handler_errors,
            )

    def wait(self, timeout: float | None = None) -> Response:
        """Block until the stream ends and return the final `Response`.

        Do not call it on the asyncio loop that runs the stream: use ``await handle``.

        Args:
            timeout: Seconds to wait; ``None`` waits indefinitely.

        Returns:
            The final `Response`.

        Raises:
            TimeoutError: the stream did not end within ``timeout`` (it keeps running).
            StreamCancelledError: the stream was cancelled.
            Exception: the stream's error (a `StreamError` carries ``.partial``).
        """
        return self._future.result(timeout)

    def __await__(self) -> Generator[Any, None, Response]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> Response:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()

        def transfer(_: concurrent.futures.Future[Response]) -> None:
            if waiter.done():
                return
            error = self._future.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(self._future.result())

        def done(_: concurrent.futures.Future[Response]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(transfer, self._future)

        self._future.add_done_callback(done)
        return await waiter

    def __repr__(self) -> str:
        return f"StreamHandle(id={self.id!r}, state={self.state!r})"


class StreamManager:
    """Start, control and observe many streams; thread-safe.

    Args:
        handlers: Handlers attached to every stream started from now on.
        scheduler: Default subscribe-time scheduler of started streams and the clock of their
            stats (``scheduler.now``); e.g. ``AsyncIOScheduler(loop)`` for async clients.
            Default: none (each source picks its own; stats use the wall clock).
        max_buffered: ``pausable`` bound per stream, in events (see `rxstream.operators._pausable`).
        on_handler_error: Called with every `HandlerError` of every stream.

    Raises:
        ConfigurationError: bad arguments.

    Example:
        >>> with StreamManager(handlers=[LoggingHandler()]) as manager:  # doctest: +SKIP
        ...     handle = manager.start(stream, metadata={"user": "u1"})
        ...     response = handle.wait()
    """

    def __init__(
        self,
        handlers: Iterable[StreamHandler] = (),
        *,
        scheduler: abc.SchedulerBase | None = None,
        max_buffered: int = 10_000,
        on_handler_error: HandlerErrorCallback | None = None,
    ) -> None:
        self._scheduler = check_scheduler(scheduler)
        self._max_buffered = check_count("max_buffered", max_buffered)
        self._on_handler_error = on_handler_error
        self._lock = threading.Lock()
        self._handlers: list[StreamHandler] = []
        self._handles: dict[str, StreamHandle] = {}
        self._ids = itertools.count(1)
        for handler in handlers:
            self.register_handler(handler)

    def register_handler(self, handler: StreamHandler) -> None:
        """Attach ``handler`` to every stream started after this call (idempotent).

        Raises:
            ConfigurationError: ``handler`` is not a `StreamHandler`.
        """
        if not isinstance(handler, StreamHandler):
            raise ConfigurationError(f"handler must be a StreamHandler, got {type(handler).__name__}")
        with self._lock:
            if not any(h is handler for h in self._handlers):
                self._handlers.append(handler)

    def unregister_handler(self, handler: StreamHandler) -> bool:
        """Stop attaching ``handler`` to new streams (running streams keep it).

        Returns:
            True if it was registered.
        """
        with self._lock:
            for i, h in enumerate(self._handlers):
                if h is handler:
                    del self._handlers[i]
                    return True
        return False

    @property
    def handlers(self) -> tuple[StreamHandler, ...]:
        """The registered handlers, in registration order."""
        with self._lock:
            return tuple(self._handlers)

    def start(
        self,
        source: Observable[StreamEvent],
        metadata: Mapping[str, Any] | None = None,
        *,
        handlers: Iterable[StreamHandler] = (),
        scheduler: abc.SchedulerBase | None = None,
        paused: bool = False,
    ) -> StreamHandle:
        """Subscribe to ``source`` (one request) and return its `StreamHandle`.

        Args:
            source: A cold ``Observable[StreamEvent]`` (optionally piped, e.g. through
                ``retry_stream``).
            metadata: Free-form data kept on the handle and in its `StreamStatus`.
            handlers: Extra handlers for this stream only (after the registered ones).
            scheduler: Subscribe-time scheduler for this stream (default: the manager's).
            paused: Start paused: the request is sent, but no event is delivered before
                `StreamHandle.resume`.

        Returns:
            The handle; events may already be flowing when it is returned.

        Raises:
            ConfigurationError: ``source`` is not an Observable or a handler is invalid.
        """
        if not isinstance(source, Observable):
            raise ConfigurationError(
                f"source must be an Observable[StreamEvent], got {type(source).__name__}"
            )
        extra = list(handlers)
        check_scheduler(scheduler)
        with self._lock:
            handle_id = f"stream-{next(self._ids)}"
            all_handlers = [*self._handlers, *extra]
        handle = StreamHandle(
            handle_id,
            source,
            metadata=metadata,
            handlers=all_handlers,
            scheduler=scheduler if scheduler is not None else self._scheduler,
            max_buffered=self._max_buffered,
            on_handler_error=self._on_handler_error,
            paused=paused,
        )
        with self._lock:
            self._handles[handle_id] = handle
        handle._start()
        return handle

    def get(self, handle_id: str) -> StreamHandle | None:
        """The handle with this id, if the manager still tracks it."""
        with self._lock:
            return self._handles.get(handle_id)

    def handles(self) -> list[StreamHandle]:
        """Every tracked handle, oldest first."""
        with self._lock:
            return list(self._handles.values())

    def status(self) -> list[StreamStatus]:
        """The `StreamStatus` of every tracked stream, oldest first."""
        return [h.status() for h in self.handles()]

    def forget_finished(self) -> int:
        """Stop tracking streams that ended; returns how many were dropped."""
        with self._lock:
            finished = [k for k, h in self._handles.items() if h.done()]
            for key in finished:
                del self._handles[key]
        return len(finished)

    def cancel_all(self) -> int:
        """Cancel every running stream; returns how many were cancelled."""
        return sum(h.cancel() for h in self.handles())

    def __enter__(self) -> StreamManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel_all()

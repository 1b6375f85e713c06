"""``take_until_cancelled``: complete (and close the connection) when a cancel signal fires."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rxstream._demand import pick_loop
from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent
from rxstream.operators._core import check_scheduler, check_seconds

__all__ = ["CancelSignal", "take_until_cancelled"]

_T = TypeVar("_T")

CancelSignal: TypeAlias = abc.ObservableBase[Any] | asyncio.Event | threading.Event
"""What `take_until_cancelled` watches: an Observable, an `asyncio.Event` or a `threading.Event`."""


def take_until_cancelled(
    signal: CancelSignal,
    *,
    poll_interval: float = 0.25,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Forward the stream until ``signal`` fires, then complete and dispose upstream.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Disposing upstream closes the
    provider stream and its HTTP connection, so a "Stop" button stops the billing too. Built
    on ``ops.take_until``, plus a per-subscription lock that serializes the source's
    notifications with the signal's (``ops.take_until`` in reactivex 6.1 does not: a signal
    firing on another thread could call ``on_completed`` while ``on_next`` is running).
    ``signal`` may be:

    * an ``Observable`` (e.g. a ``Subject``): its first item cancels; its error is forwarded
      as the stream's error; its completion without an item cancels nothing;
    * an `asyncio.Event`: waited for on the loop of the ``scheduler`` argument or the
      subscribe-time scheduler (an ``AsyncIOScheduler``), else on the loop running at
      subscribe time (else ``on_error(ConfigurationError)``); set it from that loop;
    * a `threading.Event`: waited for by a helper daemon thread (``Event.wait`` with a
      timeout, so it reacts at once when set and notices disposal within
      ``poll_interval`` seconds).

    An Event that is already set when subscribing completes the stream without subscribing
    upstream (no request is sent).

    Marble (``c`` the signal firing)::

        source:                     -a-b-c-d-e-|
        signal:                     ------c
        take_until_cancelled(sig):  -a-b--|

    Args:
        signal: The cancel signal (see above).
        poll_interval: For a `threading.Event`: seconds between two checks of the helper
            thread for disposal (> 0). It bounds how long the thread lingers after the stream
            ended, not how fast cancellation reacts.
        scheduler: For an `asyncio.Event`: an ``AsyncIOScheduler`` whose loop the event
            belongs to. Otherwise unused.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``signal`` is not one of the supported types or
            ``poll_interval`` is not a finite number > 0.

    Emits:
        The source events until the signal fires, then ``on_completed`` (upstream disposed
        first). Source errors and completion pass through unchanged; nothing is held.

    Scheduler:
        None of its own: events are emitted on the source's thread; the completion on the
        thread that fired the signal (the helper thread for a `threading.Event`, the loop's
        thread for an `asyncio.Event`).

    Example:
        >>> stop = threading.Event()  # doctest: +SKIP
        >>> stream.pipe(rso.take_until_cancelled(stop)).subscribe(render)  # doctest: +SKIP
        >>> stop.set()  # doctest: +SKIP
    """
    explicit = check_scheduler(scheduler)
    poll = check_seconds("poll_interval", poll_interval)
    event: asyncio.Event | threading.Event | None = None
    watcher: Observable[Any]
    if isinstance(signal, asyncio.Event):
        event = signal
        watcher = _asyncio_event_signal(signal, explicit)
    elif isinstance(signal, threading.Event):
        event = signal
        watcher = _thread_event_signal(signal, poll)
    elif isinstance(signal, Observable):
        watcher = signal
    elif isinstance(signal, abc.ObservableBase):
        foreign: abc.ObservableBase[Any] = signal

        def subscribe_foreign(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            return foreign.subscribe(observer, scheduler=scheduler)

        watcher = Observable(subscribe_foreign)
    else:
        raise ConfigurationError(
            "signal must be an Observable, an asyncio.Event or a threading.Event, "
            f"got {type(signal).__name__}"
        )

    def _take_until_cancelled(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            if event is not None and event.is_set():
                observer.on_completed()
                return Disposable()
            lock = threading.RLock()
            gated = _serialized(source, lock)
            stop = _serialized(watcher, lock)
            return gated.pipe(ops.take_until(stop)).subscribe(observer, scheduler=subscribe_scheduler)

        return Observable(subscribe)

    return _take_until_cancelled


def _serialized(source: Observable[_T], lock: threading.RLock) -> Observable[_T]:
    """Forward ``source``'s notifications while holding ``lock`` (one lock per subscription)."""

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def on_next(value: _T) -> None:
            with lock:
                observer.on_next(value)

        def on_error(error: Exception) -> None:
            with lock:
                observer.on_error(error)

        def on_completed() -> None:
            with lock:
                observer.on_completed()

        return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

    return Observable(subscribe)


def _thread_event_signal(event: threading.Event, poll: float) -> Observable[None]:
    """One item when ``event`` is set, observed by a helper daemon thread."""

    def subscribe(
        observer: abc.ObserverBase[None], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        disposed = threading.Event()

        def watch() -> None:
            while not disposed.is_set():
                if event.wait(poll):
                    if not disposed.is_set():
                        observer.on_next(None)
                    return

        threading.Thread(target=watch, name="rxstream-cancel-watch", daemon=True).start()
        return Disposable(disposed.set)

    return Observable(subscribe)


def _asyncio_event_signal(event: asyncio.Event, explicit: abc.SchedulerBase | None) -> Observable[None]:
    """One item when ``event`` is set, awaited on its loop (thread-safe from any thread)."""

    def subscribe(
        observer: abc.ObserverBase[None], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = pick_loop(explicit, scheduler)
        if loop is None or loop.is_closed():
            observer.on_error(
                ConfigurationError(
                    "take_until_cancelled(asyncio.Event) needs the event's loop: subscribe from a "
                    "coroutine or pass scheduler=AsyncIOScheduler(loop)"
                )
            )
            return Disposable()
        future = asyncio.run_coroutine_threadsafe(event.wait(), loop)

        def done(f: concurrent.futures.Future[Any]) -> None:
            if not f.cancelled() and f.exception() is None:
                observer.on_next(None)

        def cancel() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing left to cancel
                future.cancel()

        future.add_done_callback(done)
        return Disposable(cancel)

    return Observable(subscribe)

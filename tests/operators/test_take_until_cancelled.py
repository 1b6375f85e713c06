"""Tests of ``take_until_cancelled`` with an Observable, a threading.Event and an asyncio.Event."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import StreamEvent
from rxstream.operators import take_until_cancelled
from rxstream.testing.kit import text_delta as t

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


def marble(
    source_messages: list[Any], signal_messages: list[Any], disposed: int = 1000
) -> tuple[Any, Any, Any]:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(source_messages)
    signal = scheduler.create_hot_observable(signal_messages)
    results = scheduler.start(lambda: source.pipe(take_until_cancelled(signal)), disposed=disposed)
    return results.messages, source, signal


class CountingSource:
    """A cold source that counts subscriptions and disposals."""

    def __init__(self) -> None:
        self.subscribed = 0
        self.disposed = threading.Event()
        self.observer: abc.ObserverBase[StreamEvent] | None = None

    def observable(self) -> reactivex.Observable[StreamEvent]:
        def subscribe(observer: abc.ObserverBase[StreamEvent], scheduler: Any = None) -> abc.DisposableBase:
            self.subscribed += 1
            self.observer = observer
            return Disposable(self.disposed.set)

        return reactivex.create(subscribe)


# --------------------------------------------------------------------------- Observable signal


def test_an_observable_signal_completes_the_stream_and_disposes_upstream() -> None:
    messages, source, signal = marble(
        [on_next(210, t(1)), on_next(220, t(2)), on_next(230, t(3)), on_completed(240)],
        [on_next(225, "stop")],
    )
    assert messages == [on_next(210, t(1)), on_next(220, t(2)), on_completed(225)]
    assert source.subscriptions == [Subscription(200, 225)]
    assert signal.subscriptions == [Subscription(200, 225)]


def test_a_signal_that_completes_without_an_item_cancels_nothing() -> None:
    messages, _, _ = marble([on_next(210, t(1)), on_completed(240)], [on_completed(205)])
    assert messages == [on_next(210, t(1)), on_completed(240)]


def test_a_signal_error_becomes_the_stream_error() -> None:
    error = RuntimeError("signal broke")
    messages, source, _ = marble([on_next(210, t(1)), on_completed(240)], [on_error(215, error)])
    assert messages == [on_next(210, t(1)), on_error(215, error)]
    assert source.subscriptions == [Subscription(200, 215)]


def test_source_errors_and_completion_pass_and_release_the_signal() -> None:
    error = StreamInterruptedError("dropped")
    messages, _, signal = marble([on_next(210, t(1)), on_error(220, error)], [on_next(300, "stop")])
    assert messages == [on_next(210, t(1)), on_error(220, error)]
    assert signal.subscriptions == [Subscription(200, 220)]


def test_dispose_mid_stream_releases_source_and_signal() -> None:
    messages, source, signal = marble(
        [on_next(440, t(1)), on_next(460, t(2))], [on_next(500, "stop")], disposed=450
    )
    assert messages == [on_next(440, t(1))]
    assert source.subscriptions == [Subscription(200, 450)]
    assert signal.subscriptions == [Subscription(200, 450)]


def test_each_subscription_watches_the_signal_on_its_own() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(5, t(1)), on_next(15, t(2)), on_completed(20))
    signal = scheduler.create_hot_observable(on_next(212, "stop"))
    guarded = source.pipe(take_until_cancelled(signal))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: guarded.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(213, lambda *_: guarded.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [on_next(205, t(1)), on_completed(212)]
    assert second.messages == [on_next(218, t(1)), on_next(228, t(2)), on_completed(233)]


def test_a_subject_fired_from_another_thread_never_overlaps_on_next() -> None:
    subject: Subject[StreamEvent] = Subject()
    cancel: Subject[None] = Subject()
    busy = threading.Lock()
    overlaps: list[str] = []
    done = threading.Event()

    def on_next_(_: StreamEvent) -> None:
        if not busy.acquire(blocking=False):
            overlaps.append("on_next")
            return
        time.sleep(0.0005)
        busy.release()

    def on_completed_() -> None:
        if not busy.acquire(blocking=False):
            overlaps.append("on_completed")
        done.set()

    subject.pipe(take_until_cancelled(cancel)).subscribe(on_next_, on_completed=on_completed_)

    def produce() -> None:
        for i in range(2000):
            if done.is_set():
                return
            subject.on_next(t(i))

    reader = threading.Thread(target=produce)
    reader.start()
    time.sleep(0.01)
    cancel.on_next(None)
    reader.join(5)
    assert done.is_set()
    assert overlaps == []


# --------------------------------------------------------------------------- threading.Event


def test_a_threading_event_cancels_from_any_thread() -> None:
    stop = threading.Event()
    counting = CountingSource()
    received: list[StreamEvent] = []
    completed = threading.Event()
    counting.observable().pipe(take_until_cancelled(stop, poll_interval=0.05)).subscribe(
        received.append, on_completed=completed.set
    )
    assert counting.observer is not None
    counting.observer.on_next(t(1))
    threading.Timer(0.02, stop.set).start()
    assert completed.wait(5)
    assert counting.disposed.is_set()
    assert received == [t(1)]


def test_an_already_set_event_completes_without_sending_the_request() -> None:
    stop = threading.Event()
    stop.set()
    counting = CountingSource()
    completed = threading.Event()
    counting.observable().pipe(take_until_cancelled(stop)).subscribe(on_completed=completed.set)
    assert completed.is_set()
    assert counting.subscribed == 0


def test_the_helper_thread_ends_after_disposal() -> None:
    stop = threading.Event()
    subscription = (
        CountingSource().observable().pipe(take_until_cancelled(stop, poll_interval=0.02)).subscribe()
    )
    assert any(th.name == "rxstream-cancel-watch" for th in threading.enumerate())
    subscription.dispose()
    deadline = time.monotonic() + 5
    while any(th.name == "rxstream-cancel-watch" for th in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)


# --------------------------------------------------------------------------- asyncio.Event


@pytest.mark.asyncio
async def test_an_asyncio_event_cancels_on_its_loop() -> None:
    stop = asyncio.Event()
    counting = CountingSource()
    completed = asyncio.Event()
    received: list[StreamEvent] = []
    counting.observable().pipe(take_until_cancelled(stop)).subscribe(
        received.append, on_completed=completed.set
    )
    assert counting.observer is not None
    counting.observer.on_next(t(1))
    await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(completed.wait(), 5)
    assert counting.disposed.is_set()
    assert received == [t(1)]


@pytest.mark.asyncio
async def test_an_asyncio_event_disposal_cancels_the_waiter() -> None:
    stop = asyncio.Event()
    subscription = CountingSource().observable().pipe(take_until_cancelled(stop)).subscribe()
    await asyncio.sleep(0.01)
    subscription.dispose()
    await asyncio.sleep(0.01)
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert pending == []


def test_an_asyncio_event_without_a_loop_fails_through_on_error() -> None:
    errors: list[Exception] = []
    CountingSource().observable().pipe(take_until_cancelled(asyncio.Event())).subscribe(
        on_error=errors.append
    )
    assert isinstance(errors[0], ConfigurationError)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("signal", "kwargs"),
    [
        (42, {}),
        (None, {}),
        (asyncio.Future, {}),
        (threading.Event(), {"poll_interval": 0}),
        (reactivex.never(), {"scheduler": "loop"}),
    ],
)
def test_invalid_arguments_raise_at_creation(signal: Any, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        take_until_cancelled(signal, **kwargs)


def test_works_as_a_plain_pipe_step() -> None:
    events = [t(i) for i in range(3)]
    assert (
        reactivex.from_iterable(events).pipe(take_until_cancelled(reactivex.never()), ops.to_list()).run()
        == events
    )

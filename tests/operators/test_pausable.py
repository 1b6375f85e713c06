"""Tests of ``pausable``: marble tests on TestScheduler plus threads and an asyncio loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.notification import OnError, OnNext
from reactivex.subject import BehaviorSubject, Subject
from reactivex.testing import ReactiveTest, TestScheduler

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import StreamEvent, TextDelta
from rxstream.operators._pausable import PausableBufferOverflow, pausable

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


def values(messages: list[Any]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def test_open_by_default_passes_everything_through() -> None:
    scheduler = TestScheduler()
    valve: Observable[bool] = scheduler.create_hot_observable()
    source = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(30))
    results = scheduler.start(lambda: source.pipe(pausable(valve)))
    assert results.messages == [on_next(210, "a"), on_next(220, "b"), on_completed(230)]


def test_closed_valve_holds_events_and_opening_releases_them_in_order() -> None:
    scheduler = TestScheduler()
    valve = scheduler.create_hot_observable(
        on_next(215, False), on_next(260, True), on_next(275, False), on_next(300, True)
    )
    source = scheduler.create_cold_observable(
        on_next(10, "a"),
        on_next(20, "b"),
        on_next(30, "c"),
        on_next(70, "d"),
        on_next(80, "e"),
        on_completed(90),
    )
    results = scheduler.start(lambda: source.pipe(pausable(valve)))
    assert results.messages == [
        on_next(210, "a"),
        on_next(260, "b"),
        on_next(260, "c"),
        on_next(270, "d"),
        on_next(300, "e"),
        on_completed(300),
    ]
    assert source.subscriptions == [subscribe(200, 290)]


def test_behavior_subject_current_value_applies_at_subscribe() -> None:
    scheduler = TestScheduler()
    valve: BehaviorSubject[bool] = BehaviorSubject(False)
    source = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"))
    scheduler.schedule_absolute(250, lambda *_: valve.on_next(True))
    results = scheduler.start(lambda: source.pipe(pausable(valve)))
    assert results.messages == [on_next(250, "a"), on_next(250, "b")]


def test_completion_while_paused_is_forwarded_after_the_held_events() -> None:
    scheduler = TestScheduler()
    valve = scheduler.create_hot_observable(on_next(205, False), on_next(400, True))
    source = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_completed(30))
    results = scheduler.start(lambda: source.pipe(pausable(valve)))
    assert results.messages == [on_next(400, "a"), on_next(400, "b"), on_completed(400)]
    assert valve.subscriptions == [subscribe(200, 400)]


def test_error_while_paused_is_forwarded_after_the_held_events() -> None:
    scheduler = TestScheduler()
    error = StreamInterruptedError("dropped")
    valve = scheduler.create_hot_observable(on_next(205, False), on_next(400, True))
    source = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_error(30, error))
    results = scheduler.start(lambda: source.pipe(pausable(valve)))
    assert results.messages == [on_next(400, "a"), on_next(400, "b"), on_error(400, error)]


def test_dispose_while_paused_closes_the_upstream_and_the_valve() -> None:
    scheduler = TestScheduler()
    valve = scheduler.create_hot_observable(on_next(205, False), on_next(600, True))
    source = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_next(500, "c"))
    results = scheduler.start(lambda: source.pipe(pausable(valve)), disposed=300)
    assert results.messages == []
    assert source.subscriptions == [subscribe(200, 300)]
    assert valve.subscriptions == [subscribe(200, 300)]


def test_a_valve_error_releases_the_held_events_then_fails_and_disposes_the_source() -> None:
    scheduler = TestScheduler()
    error = RuntimeError("valve broke")
    valve = scheduler.create_hot_observable(on_next(205, False), on_error(250, error))
    source = scheduler.create_cold_observable(on_next(10, "a"), on_next(20, "b"), on_next(100, "c"))
    results = scheduler.start(lambda: source.pipe(pausable(valve)))
    assert results.messages == [on_next(250, "a"), on_next(250, "b"), on_error(250, error)]
    assert source.subscriptions == [subscribe(200, 250)]


def test_valve_completion_keeps_the_last_state() -> None:
    scheduler = TestScheduler()
    valve = scheduler.create_hot_observable(on_next(205, False), on_completed(210))
    source = scheduler.create_cold_observable(on_next(10, "a"), on_completed(20))
    results = scheduler.start(lambda: source.pipe(pausable(valve)))
    assert results.messages == []


def test_each_subscription_has_its_own_buffer() -> None:
    scheduler = TestScheduler()
    valve: BehaviorSubject[bool] = BehaviorSubject(True)
    scheduler.schedule_absolute(150, lambda *_: valve.on_next(False))
    scheduler.schedule_absolute(300, lambda *_: valve.on_next(True))
    source = scheduler.create_cold_observable(on_next(10, "a"), on_completed(20))
    stream = source.pipe(pausable(valve))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(100, lambda *_: stream.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(200, lambda *_: stream.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [on_next(110, "a"), on_completed(120)]
    assert second.messages == [on_next(300, "a"), on_completed(300)]


def test_downstream_closing_the_valve_stops_delivery_at_once() -> None:
    valve: BehaviorSubject[bool] = BehaviorSubject(False)
    source: Subject[int] = Subject()
    got: list[int] = []

    def on_item(x: int) -> None:
        got.append(x)
        if x == 2:
            valve.on_next(False)  # re-entrant pause from inside on_next

    source.pipe(pausable(valve)).subscribe(on_item)
    for i in range(5):
        source.on_next(i)
    valve.on_next(True)
    assert got == [0, 1, 2]
    valve.on_next(True)
    assert got == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("valve", "max_buffered"),
    [
        (None, 10),
        ([True], 10),
        (reactivex.of(True), 0),
        (reactivex.of(True), True),
        (reactivex.of(True), 1.5),
    ],
)
def test_invalid_arguments_raise_at_creation(valve: Any, max_buffered: Any) -> None:
    with pytest.raises(ConfigurationError):
        pausable(valve, max_buffered=max_buffered)


class ThreadSource:
    """A cold source that, like a sync rxstream source, emits from its own reading thread."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.returned = 0  # on_next calls that returned
        self.cancelled = threading.Event()
        self.finished = threading.Event()

    def observable(self) -> Observable[int]:
        def subscribe(
            observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def run() -> None:
                try:
                    for i in range(self.count):
                        if self.cancelled.is_set():
                            return
                        observer.on_next(i)
                        self.returned += 1
                    observer.on_completed()
                finally:
                    self.finished.set()

            threading.Thread(target=run, daemon=True).start()
            return Disposable(self.cancelled.set)

        return reactivex.create(subscribe)


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_a_full_buffer_blocks_the_producer_until_the_valve_opens() -> None:
    source = ThreadSource(100)
    valve: BehaviorSubject[bool] = BehaviorSubject(False)
    got: list[int] = []
    done = threading.Event()
    source.observable().pipe(pausable(valve, max_buffered=5)).subscribe(got.append, on_completed=done.set)
    wait_until(lambda: source.returned == 5)
    time.sleep(0.05)
    assert source.returned == 5  # the 6th on_next is blocked: the reader stops reading
    assert not source.finished.is_set()
    valve.on_next(True)
    assert done.wait(5)
    assert got == list(range(100))


def test_disposal_releases_a_blocked_producer() -> None:
    source = ThreadSource(100)
    valve: BehaviorSubject[bool] = BehaviorSubject(False)
    got: list[int] = []
    subscription = source.observable().pipe(pausable(valve, max_buffered=3)).subscribe(got.append)
    wait_until(lambda: source.returned == 3)
    time.sleep(0.02)
    assert not source.finished.is_set()
    subscription.dispose()
    assert source.finished.wait(2), "the blocked producer was not released by disposal"
    assert source.cancelled.is_set()  # disposal reached the source
    assert got == []
    valve.on_next(True)
    assert got == []


def test_pause_and_resume_from_another_thread_lose_nothing() -> None:
    source = ThreadSource(5000)
    valve: BehaviorSubject[bool] = BehaviorSubject(True)
    got: list[int] = []
    done = threading.Event()
    source.observable().pipe(pausable(valve, max_buffered=16)).subscribe(got.append, on_completed=done.set)
    while not done.is_set():
        valve.on_next(False)
        time.sleep(0.001)
        valve.on_next(True)
    assert got == list(range(5000))


def test_on_an_asyncio_loop_overflow_fails_instead_of_blocking() -> None:
    async def main() -> tuple[list[Any], list[Exception], bool]:
        valve: BehaviorSubject[bool] = BehaviorSubject(False)
        got: list[Any] = []
        errors: list[Exception] = []
        disposed = [False]

        def subscribe(observer: abc.ObserverBase[StreamEvent], scheduler: Any = None) -> abc.DisposableBase:
            for i in range(20):  # emits on the loop thread, like an async client's reading task
                if disposed[0]:
                    break
                observer.on_next(TextDelta(stream_id="s", seq=i, text=str(i % 10)))
            return Disposable(lambda: disposed.__setitem__(0, True))

        source: Observable[StreamEvent] = reactivex.create(subscribe)
        source.pipe(pausable(valve, max_buffered=5)).subscribe(got.append, errors.append)
        await asyncio.sleep(0)
        assert got == [] and errors == []
        valve.on_next(True)
        return got, errors, disposed[0]

    got, errors, disposed = asyncio.run(main())
    assert [e.seq for e in got] == [0, 1, 2, 3, 4]
    assert len(errors) == 1 and isinstance(errors[0], PausableBufferOverflow)
    assert errors[0].partial.text == "01234"
    assert not errors[0].retryable
    assert disposed


def test_error_notification_object_is_the_source_error() -> None:
    scheduler = TestScheduler()
    error = StreamInterruptedError("x")
    source = scheduler.create_cold_observable(on_error(10, error))
    results = scheduler.start(lambda: source.pipe(pausable(reactivex.never())))
    assert isinstance(results.messages[0].value, OnError)
    assert results.messages[0].value.exception is error


def test_deliveries_never_overlap_and_keep_order_while_the_valve_flips() -> None:
    """The producer's fast path and the valve thread's drain never deliver at the same time."""
    source = ThreadSource(20_000)
    valve: BehaviorSubject[bool] = BehaviorSubject(True)
    got: list[int] = []
    overlaps = [0]
    busy = threading.Lock()
    done = threading.Event()

    def deliver(item: int) -> None:
        if not busy.acquire(blocking=False):
            overlaps[0] += 1
            return
        try:
            got.append(item)
        finally:
            busy.release()

    source.observable().pipe(pausable(valve, max_buffered=8)).subscribe(deliver, on_completed=done.set)
    flips = 0
    while not done.is_set():
        valve.on_next(flips % 2 == 1)
        flips += 1
    valve.on_next(True)
    assert done.wait(5)
    assert overlaps[0] == 0
    assert got == list(range(20_000))


def test_a_valve_error_raised_by_the_subscriber_during_a_delivery_still_ends_the_stream() -> None:
    """The valve fails inside ``on_next`` (the producer holds the emitter role): one terminal."""
    source: Subject[str] = Subject()
    valve: BehaviorSubject[bool] = BehaviorSubject(True)
    got: list[str] = []
    failures: list[Exception] = []
    boom = RuntimeError("valve failed")

    def deliver(item: str) -> None:
        got.append(item)
        if item == "a":
            valve.on_error(boom)

    source.pipe(pausable(valve)).subscribe(deliver, failures.append)
    source.on_next("a")
    source.on_next("b")  # the source was disposed by the valve's error: not delivered
    assert got == ["a"]
    assert failures == [boom]
    assert not source.observers  # disposal reached the source

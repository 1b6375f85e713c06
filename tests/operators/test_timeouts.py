"""Marble tests of ``first_token_timeout``, ``idle_timeout`` and ``total_timeout`` (1 tick = 1 s)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.notification import OnError, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import (
    ConfigurationError,
    FirstTokenTimeout,
    IdleTimeout,
    StreamInterruptedError,
    StreamTimeoutError,
    TotalTimeout,
)
from rxstream.events import (
    StreamEvent,
    StreamStart,
    ThinkingDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from rxstream.operators import first_token_timeout, idle_timeout, total_timeout
from rxstream.testing.kit import run
from rxstream.testing.kit import stream_end as end
from rxstream.testing.kit import text_delta as t

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

START = StreamStart(stream_id="s", seq=0, provider="anthropic", model="m")


def values(messages: list[Any]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def error_of(messages: list[Any]) -> tuple[float, Exception]:
    last = messages[-1]
    assert isinstance(last.value, OnError)
    return last.time, last.value.exception


# --------------------------------------------------------------------------- first_token_timeout


def test_first_token_timeout_fires_with_the_partial_and_disposes_upstream_first() -> None:
    messages, source = run(
        [on_next(201, START), on_next(202, UsageUpdate(stream_id="s", seq=1, usage=Usage(input_tokens=7)))],
        first_token_timeout(5),
    )
    time, error = error_of(messages)
    assert time == 205
    assert isinstance(error, FirstTokenTimeout) and isinstance(error, StreamTimeoutError)
    assert error.timeout == 5
    assert error.retryable
    assert error.provider == "anthropic"
    assert error.partial.provider == "anthropic" and error.partial.usage.input_tokens == 7
    assert source.subscriptions == [Subscription(200, 205)]
    assert len(values(messages)) == 2


@pytest.mark.parametrize(
    "first",
    [
        t(1, "a"),
        ThinkingDelta(stream_id="s", seq=1, text="hm"),
        ToolCallStart(stream_id="s", seq=1, index=0, id="c", name="f"),
    ],
)
def test_any_content_event_disarms_the_first_token_timer(first: StreamEvent) -> None:
    messages, _ = run(
        [on_next(201, START), on_next(204, first), on_next(220, end(2)), on_completed(221)],
        first_token_timeout(5),
    )
    assert messages == [on_next(201, START), on_next(204, first), on_next(220, end(2)), on_completed(221)]


def test_first_token_timeout_passes_source_errors_unchanged() -> None:
    error = StreamInterruptedError("dropped")
    messages, _ = run([on_next(201, START), on_error(203, error)], first_token_timeout(5))
    assert messages == [on_next(201, START), on_error(203, error)]


def test_first_token_timeout_dispose_mid_stream() -> None:
    messages, source = run([on_next(201, START)], first_token_timeout(300), disposed=250)
    assert messages == [on_next(201, START)]
    assert source.subscriptions == [Subscription(200, 250)]


def test_first_token_timeout_times_each_subscription_from_its_own_start() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, START), on_next(4, t(1, "a")), on_completed(5))
    guarded = source.pipe(first_token_timeout(3))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: guarded.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(210, lambda *_: guarded.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert error_of(first.messages)[0] == 203
    assert error_of(second.messages)[0] == 213
    assert source.subscriptions == [Subscription(200, 203), Subscription(210, 213)]


# --------------------------------------------------------------------------- idle_timeout


def test_idle_timeout_fires_after_the_last_event() -> None:
    messages, source = run(
        [on_next(201, START), on_next(202, t(1, "a")), on_next(204, t(2, "b")), on_next(230, t(3, "late"))],
        idle_timeout(3),
    )
    time, error = error_of(messages)
    assert time == 207
    assert isinstance(error, IdleTimeout)
    assert error.timeout == 3
    assert error.partial.text == "ab"
    assert source.subscriptions == [Subscription(200, 207)]


def test_idle_timeout_counts_from_subscription() -> None:
    messages, _ = run([on_next(210, START)], idle_timeout(4))
    assert error_of(messages)[0] == 204


def test_idle_timeout_uses_one_rearming_timer_not_one_per_event() -> None:
    class CountingScheduler(TestScheduler):
        timers = 0

        def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
            CountingScheduler.timers += 1
            return super().schedule_relative(duetime, action, state)

    scheduler = CountingScheduler()
    events = [on_next(201 + i, t(i, "x")) for i in range(100)]
    source = scheduler.create_hot_observable([*events, on_completed(400)])
    results = scheduler.start(lambda: source.pipe(idle_timeout(10)))
    assert len(values(results.messages)) == 100
    assert error_of(results.messages)[0] == 310
    # 1 initial timer + one re-arm per 10 s of activity (about 10), never 100
    assert CountingScheduler.timers <= 13


def test_idle_timeout_completion_and_errors_pass() -> None:
    messages, _ = run([on_next(201, START), on_completed(203)], idle_timeout(5))
    assert messages == [on_next(201, START), on_completed(203)]
    error = StreamInterruptedError("dropped")
    messages, _ = run([on_next(201, START), on_error(203, error)], idle_timeout(5))
    assert messages == [on_next(201, START), on_error(203, error)]


def test_idle_timeout_dispose_mid_stream() -> None:
    messages, source = run(
        [on_next(201 + 2 * i, t(i, "x")) for i in range(200)], idle_timeout(5), disposed=450
    )
    assert [m.time for m in messages] == list(range(201, 450, 2))
    assert source.subscriptions == [Subscription(200, 450)]


def test_idle_timeout_each_subscription_has_its_own_clock() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(2, START), on_next(9, t(1, "a")), on_completed(10))
    guarded = source.pipe(idle_timeout(5))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: guarded.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(204, lambda *_: guarded.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert error_of(first.messages)[0] == 207
    assert error_of(second.messages)[0] == 211


# --------------------------------------------------------------------------- total_timeout


def test_total_timeout_fires_at_the_deadline_with_the_partial() -> None:
    messages, source = run([on_next(201 + i, t(i, str(i))) for i in range(9)], total_timeout(6))
    time, error = error_of(messages)
    assert time == 206
    assert isinstance(error, TotalTimeout)
    assert error.partial.text == "012345"  # the event at 206 came before the timer
    assert error.timeout == 6
    assert source.subscriptions == [Subscription(200, 206)]


def test_total_timeout_does_not_fire_after_completion() -> None:
    messages, _ = run([on_next(201, START), on_next(202, end(1)), on_completed(203)], total_timeout(6))
    assert messages == [on_next(201, START), on_next(202, end(1)), on_completed(203)]


def test_total_timeout_passes_source_errors() -> None:
    error = StreamInterruptedError("dropped")
    messages, _ = run([on_error(203, error)], total_timeout(6))
    assert messages == [on_error(203, error)]


def test_total_timeout_dispose_mid_stream() -> None:
    messages, source = run([on_next(440, START)], total_timeout(500), disposed=450)
    assert messages == [on_next(440, START)]
    assert source.subscriptions == [Subscription(200, 450)]


def test_total_timeout_each_subscription_has_its_own_deadline() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, START), on_next(8, end(1)), on_completed(9))
    guarded = source.pipe(total_timeout(5))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: guarded.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(202, lambda *_: guarded.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert error_of(first.messages)[0] == 205
    assert error_of(second.messages)[0] == 207


# --------------------------------------------------------------------------- all three


@pytest.mark.parametrize("factory", [first_token_timeout, idle_timeout, total_timeout])
@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), 1e10, 8 * 24 * 3600, "3", True, None])
def test_invalid_arguments_raise_at_creation(factory: Any, seconds: Any) -> None:
    with pytest.raises(ConfigurationError):
        factory(seconds)


@pytest.mark.parametrize("factory", [first_token_timeout, idle_timeout, total_timeout])
def test_real_threads_a_reader_thread_and_a_timer_thread(factory: Any) -> None:
    subject: Subject[StreamEvent] = Subject()
    errors: list[Exception] = []
    done = threading.Event()
    disposed = threading.Event()
    source = subject.pipe(ops.finally_action(disposed.set))

    def on_error_(error: Exception) -> None:
        errors.append(error)
        done.set()

    source.pipe(factory(0.05)).subscribe(on_error=on_error_)
    subject.on_next(START)
    assert done.wait(5)
    assert disposed.is_set()
    assert isinstance(errors[0], StreamTimeoutError) and errors[0].partial.provider == "anthropic"


def test_a_fast_stream_on_the_default_scheduler_is_untouched() -> None:
    events: list[StreamEvent] = [START, t(1, "a"), end(2)]
    out = (
        reactivex.from_iterable(events)
        .pipe(first_token_timeout(5), idle_timeout(5), total_timeout(5), ops.to_list())
        .run()
    )
    assert out == events

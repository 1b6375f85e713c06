"""Marble tests of ``throttle_snapshots`` on TestScheduler (1 tick = 1 second)."""

from __future__ import annotations

from functools import reduce
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta
from rxstream.operators import final, throttle_snapshots
from rxstream.response import Response, apply
from rxstream.testing.kit import run

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

EVENTS: list[StreamEvent] = [
    StreamStart(stream_id="s", seq=0, provider="anthropic", model="m"),
    TextDelta(stream_id="s", seq=1, text="Hel"),
    TextDelta(stream_id="s", seq=2, text="lo"),
    TextDelta(stream_id="s", seq=3, text="!"),
    StreamEnd(stream_id="s", seq=4, stop_reason="end_turn"),
]


def snap(n: int) -> Response:
    """The snapshot after the first ``n`` events."""
    return reduce(apply, EVENTS[:n], Response())


def test_leading_then_trailing_latest_then_idle_again() -> None:
    messages, _ = run(
        [
            on_next(210, EVENTS[0]),
            on_next(211, EVENTS[1]),
            on_next(212, EVENTS[2]),
            on_next(225, EVENTS[3]),
            on_completed(226),
        ],
        throttle_snapshots(5),
    )
    # 210 leading; 215 trailing with the latest (3 events); 220 window closes quietly;
    # 225 leading again; completion: nothing stale
    assert messages == [
        on_next(210, snap(1)),
        on_next(215, snap(3)),
        on_next(225, snap(4)),
        on_completed(226),
    ]


def test_a_continuous_stream_gives_one_snapshot_per_interval() -> None:
    messages, _ = run(
        [on_next(210 + i, e) for i, e in enumerate(EVENTS)] + [on_completed(240)], throttle_snapshots(2)
    )
    assert [m.time for m in messages] == [210, 212, 214, 240]
    assert messages[-2].value.value == snap(5)


def test_completion_emits_the_stale_final_snapshot_first() -> None:
    messages, _ = run(
        [on_next(210, EVENTS[0]), on_next(211, EVENTS[1]), on_next(212, EVENTS[4]), on_completed(213)],
        throttle_snapshots(100),
    )
    assert messages == [
        on_next(210, snap(1)),
        on_next(213, reduce(apply, [EVENTS[0], EVENTS[1], EVENTS[4]], Response())),
        on_completed(213),
    ]
    assert messages[1].value.value.complete


def test_an_empty_source_emits_no_snapshot() -> None:
    messages, _ = run([on_completed(210)], throttle_snapshots(1))
    assert messages == [on_completed(210)]


def test_error_emits_the_stale_snapshot_first() -> None:
    error = StreamInterruptedError("dropped", partial=snap(2))
    messages, _ = run(
        [on_next(210, EVENTS[0]), on_next(211, EVENTS[1]), on_error(212, error)], throttle_snapshots(100)
    )
    assert messages == [on_next(210, snap(1)), on_next(212, snap(2)), on_error(212, error)]


def test_the_last_value_equals_final() -> None:
    expected = reactivex.from_iterable(EVENTS).pipe(final()).run()
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        [on_next(201 + i, e) for i, e in enumerate(EVENTS)] + [on_completed(300)]
    )
    results = scheduler.start(lambda: source.pipe(throttle_snapshots(10)))
    last: Any = results.messages[-2].value
    assert last.value == expected


def test_dispose_mid_stream() -> None:
    messages, source = run(
        [on_next(440, EVENTS[0]), on_next(441, EVENTS[1]), on_next(460, EVENTS[2])],
        throttle_snapshots(20),
        disposed=450,
    )
    assert messages == [on_next(440, snap(1))]
    assert source.subscriptions == [Subscription(200, 450)]


def test_each_subscription_accumulates_its_own_response() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, EVENTS[0]), on_next(2, EVENTS[1]), on_completed(3))
    throttled = source.pipe(throttle_snapshots(10))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: throttled.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(202, lambda *_: throttled.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [on_next(201, snap(1)), on_next(203, snap(2)), on_completed(203)]
    assert second.messages == [on_next(203, snap(1)), on_next(205, snap(2)), on_completed(205)]


def test_works_on_the_default_timeout_scheduler() -> None:
    out = reactivex.from_iterable(EVENTS).pipe(throttle_snapshots(0.01), ops.to_list()).run()
    assert out == [snap(1), snap(5)]


@pytest.mark.parametrize("interval", [0, -1, float("nan"), None, "1", True])
def test_invalid_arguments_raise_at_creation(interval: Any) -> None:
    with pytest.raises(ConfigurationError):
        throttle_snapshots(interval)

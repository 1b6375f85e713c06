"""Marble tests of ``rate_limit`` on TestScheduler (1 tick = 1 second)."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import (
    StreamEnd,
    StreamEvent,
    ThinkingDelta,
)
from rxstream.operators import rate_limit
from rxstream.testing.kit import run
from rxstream.testing.kit import text_delta as t
from rxstream.testing.kit import tool_call_start as tool
from rxstream.testing.kit import usage_update as usage

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


def test_a_burst_is_spread_and_completion_waits_for_the_queue() -> None:
    a, b, c, u = t(1, "a"), t(2, "b"), t(3, "c"), usage(4)
    messages, _ = run(
        [on_next(210, a), on_next(210, b), on_next(210, c), on_next(210, u), on_completed(211)],
        rate_limit(0.5),
    )
    assert messages == [on_next(210, a), on_next(212, b), on_next(214, c), on_next(214, u), on_completed(214)]


def test_other_events_keep_their_place_and_are_not_paced() -> None:
    a, call, think, b = t(1, "a"), tool(2), ThinkingDelta(stream_id="s", seq=3, text="x"), t(4, "b")
    messages, _ = run(
        [on_next(210, a), on_next(210, call), on_next(210, think), on_next(210, b)], rate_limit(1)
    )
    assert messages == [on_next(210, a), on_next(210, call), on_next(210, think), on_next(211, b)]


def test_a_slow_source_is_not_delayed() -> None:
    a, b, c = t(1, "a"), t(2, "b"), t(3, "c")
    messages, _ = run([on_next(210, a), on_next(215, b), on_next(230, c)], rate_limit(0.25))
    assert messages == [on_next(210, a), on_next(215, b), on_next(230, c)]


def test_pacing_keeps_its_grid() -> None:
    deltas = [t(i, str(i)) for i in range(5)]
    messages, _ = run(
        [
            on_next(210, deltas[0]),
            on_next(211, deltas[1]),
            on_next(211, deltas[2]),
            on_next(216, deltas[3]),
            on_next(216, deltas[4]),
        ],
        rate_limit(0.5),
    )
    assert [m.time for m in messages] == [210, 212, 214, 216, 218]


def test_error_flushes_the_queue_immediately_then_fails() -> None:
    a, b, c = t(1, "a"), t(2, "b"), t(3, "c")
    error = StreamInterruptedError("dropped")
    messages, _ = run(
        [on_next(210, a), on_next(210, b), on_next(210, c), on_error(211, error)], rate_limit(0.1)
    )
    assert messages == [on_next(210, a), on_next(211, b), on_next(211, c), on_error(211, error)]


def test_dispose_mid_stream_drops_the_queue_and_unsubscribes() -> None:
    deltas = [t(i, str(i)) for i in range(4)]
    messages, source = run(
        [on_next(440, d) for d in deltas] + [on_next(460, t(9, "x"))], rate_limit(0.25), disposed=450
    )
    assert messages == [on_next(440, deltas[0]), on_next(444, deltas[1]), on_next(448, deltas[2])]
    assert source.subscriptions == [Subscription(200, 450)]


def test_each_subscription_is_paced_on_its_own() -> None:
    scheduler = TestScheduler()
    a, b = t(1, "a"), t(2, "b")
    source = scheduler.create_cold_observable(on_next(1, a), on_next(1, b), on_completed(2))
    paced = source.pipe(rate_limit(0.2))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: paced.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(201, lambda *_: paced.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [on_next(201, a), on_next(206, b), on_completed(206)]
    assert second.messages == [on_next(202, a), on_next(207, b), on_completed(207)]


def test_works_on_the_default_timeout_scheduler() -> None:
    events: list[StreamEvent] = [t(i, "x") for i in range(5)]
    events.append(StreamEnd(stream_id="s", seq=5, stop_reason="end_turn"))
    assert reactivex.from_iterable(events).pipe(rate_limit(500), ops.to_list()).run() == events


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan"), "5", True, None])
def test_invalid_arguments_raise_at_creation(rate: Any) -> None:
    with pytest.raises(ConfigurationError):
        rate_limit(rate)

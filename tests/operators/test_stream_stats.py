"""Tests of ``StatsTracker`` (pure) and ``stream_stats`` (marble, 1 tick = 1 second)."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from pydantic import ValidationError
from reactivex.notification import OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import (
    StreamEnd,
    StreamEvent,
    StreamStart,
    ThinkingDelta,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from rxstream.operators import StatsTracker, StreamStats, stream_stats
from rxstream.testing.kit import run
from rxstream.testing.kit import text_delta as t

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed

START = StreamStart(stream_id="s", seq=0, provider="openai", model="m")


# --------------------------------------------------------------------------- StatsTracker


def test_stream_stats_has_exactly_the_agreed_fields_and_is_frozen() -> None:
    assert list(StreamStats.model_fields) == [
        "stream_id",
        "time_to_first_token",
        "elapsed",
        "output_tokens",
        "tokens_per_second",
        "chars",
        "deltas",
        "inter_token_latency_p50",
        "inter_token_latency_p95",
        "done",
    ]
    stats = StatsTracker().snapshot(0.0)
    with pytest.raises(ValidationError):
        stats.elapsed = 1.0  # type: ignore[misc]


def test_tracker_before_any_event() -> None:
    tracker = StatsTracker()
    tracker.start(10.0)
    assert tracker.snapshot(12.5) == StreamStats(
        stream_id=None,
        time_to_first_token=None,
        elapsed=2.5,
        output_tokens=0,
        tokens_per_second=None,
        chars=0,
        deltas=0,
        inter_token_latency_p50=None,
        inter_token_latency_p95=None,
        done=False,
    )


def test_tracker_counts_content_deltas_and_their_gaps() -> None:
    tracker = StatsTracker()
    tracker.start(0.0)
    tracker.observe(START, 0.25)
    tracker.observe(ThinkingDelta(stream_id="s", seq=1, text="hmm"), 1.0)
    tracker.observe(
        ThinkingDelta(stream_id="s", seq=2, text="", signature="sig"), 1.05
    )  # no text: not a delta
    tracker.observe(t(3, ""), 1.07)  # empty: not a delta
    tracker.observe(t(4, "Hi"), 1.1)
    tracker.observe(t(5, " there"), 1.3)
    tracker.observe(t(6, "!"), 1.6)
    tracker.observe(t(7, "?"), 2.0)
    stats = tracker.snapshot(3.0, done=True)
    assert stats.time_to_first_token == 1.0
    assert stats.elapsed == 3.0
    assert stats.deltas == 5
    assert stats.chars == 3 + 2 + 6 + 1 + 1
    assert stats.output_tokens == 5  # no usage yet: the delta count
    assert stats.tokens_per_second == pytest.approx(5 / 2.0)
    # gaps 0.1, 0.2, 0.3, 0.4 -> linear interpolation
    assert stats.inter_token_latency_p50 == pytest.approx(0.25)
    assert stats.inter_token_latency_p95 == pytest.approx(0.385)
    assert stats.done


def test_tracker_prefers_usage_but_never_reports_fewer_tokens_than_deltas() -> None:
    tracker = StatsTracker()
    tracker.start(0.0)
    tracker.observe(
        UsageUpdate(stream_id="s", seq=1, usage=Usage(output_tokens=1)), 0.1
    )  # stale early report
    for i in range(4):
        tracker.observe(t(2 + i, "x"), 1.0 + i)
    assert tracker.snapshot(5.0).output_tokens == 4
    tracker.observe(
        StreamEnd(stream_id="s", seq=9, stop_reason="end_turn", usage=Usage(output_tokens=42)), 5.0
    )
    assert tracker.snapshot(5.0).output_tokens == 42


def test_tracker_a_tool_call_is_a_first_token_and_the_latest_stream_id_wins() -> None:
    tracker = StatsTracker()
    tracker.start(0.0)
    tracker.observe(ToolCallStart(stream_id="a", seq=1, index=0, id="c", name="f"), 2.0)
    tracker.observe(t(1, "x", sid="b"), 3.0)
    stats = tracker.snapshot(3.0)
    assert stats.time_to_first_token == 2.0
    assert stats.stream_id == "b"


def test_tracker_starts_its_clock_at_the_first_event_when_not_started() -> None:
    tracker = StatsTracker()
    tracker.observe(t(1, "x"), 5.0)
    assert tracker.snapshot(7.0).elapsed == 2.0


def test_tracker_reservoir_stays_bounded_and_reproducible() -> None:
    def percentiles(seed: int) -> tuple[float | None, float | None]:
        tracker = StatsTracker(reservoir_size=50, seed=seed)
        now = 0.0
        for i in range(5000):
            now += 0.01 if i % 10 else 0.1
            tracker.observe(t(i, "x"), now)
        stats = tracker.snapshot(now)
        assert len(tracker._gaps) == 50
        return stats.inter_token_latency_p50, stats.inter_token_latency_p95

    p50, p95 = percentiles(0)
    assert p50 == pytest.approx(0.01)
    assert p95 is not None and 0.009 <= p95 <= 0.101
    assert percentiles(0) == (p50, p95)


def test_tracker_rejects_a_bad_reservoir_size() -> None:
    with pytest.raises(ConfigurationError):
        StatsTracker(reservoir_size=0)


# --------------------------------------------------------------------------- stream_stats


def test_ticks_and_a_final_done_snapshot() -> None:
    messages, _ = run(
        [
            on_next(201, START),
            on_next(202, t(1, "ab")),
            on_next(203, t(2, "c")),
            on_next(206, t(3, "de")),
            on_completed(210),
        ],
        stream_stats(4),
    )
    assert [m.time for m in messages] == [204, 208, 210, 210]
    tick, second, final = (m.value.value for m in messages[:3])
    assert tick == StreamStats(
        stream_id="s",
        time_to_first_token=2.0,
        elapsed=4.0,
        output_tokens=2,
        tokens_per_second=1.0,
        chars=3,
        deltas=2,
        inter_token_latency_p50=1.0,
        inter_token_latency_p95=1.0,
        done=False,
    )
    assert second.deltas == 3 and second.elapsed == 8.0 and not second.done
    assert final.done and final.elapsed == 10.0 and final.chars == 5
    assert final.inter_token_latency_p50 == pytest.approx(2.0)


def test_without_interval_only_the_final_snapshot() -> None:
    messages, _ = run([on_next(201, START), on_next(203, t(1, "x")), on_completed(207)], stream_stats())
    assert len(messages) == 2
    final = messages[0].value.value
    assert (final.time_to_first_token, final.elapsed, final.done) == (3.0, 7.0, True)


def test_error_emits_the_final_snapshot_first() -> None:
    error = StreamInterruptedError("dropped")
    messages, _ = run([on_next(201, START), on_next(202, t(1, "x")), on_error(205, error)], stream_stats(100))
    assert len(messages) == 2
    assert messages[0].time == 205 and messages[0].value.value.done and messages[0].value.value.deltas == 1
    assert messages[1] == on_error(205, error)


def test_dispose_mid_stream_stops_the_ticks() -> None:
    messages, source = run([on_next(201, START), on_next(460, t(1, "x"))], stream_stats(100), disposed=450)
    assert [m.time for m in messages] == [300, 400]
    assert source.subscriptions == [Subscription(200, 450)]


def test_each_subscription_measures_from_its_own_start() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(2, t(1, "x")), on_completed(5))
    measured = source.pipe(stream_stats())
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: measured.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(230, lambda *_: measured.subscribe(second, scheduler=scheduler))
    scheduler.start()
    for observer in (first, second):
        stats = [m.value.value for m in observer.messages if isinstance(m.value, OnNext)]
        assert [(s.time_to_first_token, s.elapsed, s.deltas) for s in stats] == [(2.0, 5.0, 1)]


def test_works_on_the_default_scheduler() -> None:
    events: list[StreamEvent] = [START, t(1, "a"), t(2, "b")]
    stats = reactivex.from_iterable(events).pipe(stream_stats(60)).run()
    assert stats.done and stats.deltas == 2 and stats.elapsed >= 0


@pytest.mark.parametrize("interval", [0, -1, float("nan"), "1", True])
def test_invalid_arguments_raise_at_creation(interval: Any) -> None:
    with pytest.raises(ConfigurationError):
        stream_stats(interval)

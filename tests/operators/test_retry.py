"""Marble tests of ``retry_stream`` on TestScheduler (1 second of backoff = 1 tick)."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.notification import OnError, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    StreamCancelledError,
    StreamDecodeError,
    StreamInterruptedError,
)
from rxstream.events import StreamEnd, StreamEvent, StreamReset, StreamStart, TextDelta, Usage, UsageUpdate
from rxstream.operators._basic import final, snapshots
from rxstream.operators._retry import is_content, retry_stream
from rxstream.response import Response

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


def start(sid: str, seq: int = 0) -> StreamStart:
    return StreamStart(stream_id=sid, seq=seq, provider="anthropic", model="m", request_id=f"req_{sid}")


def text(sid: str, seq: int, value: str) -> TextDelta:
    return TextDelta(stream_id=sid, seq=seq, text=value)


def end(sid: str, seq: int) -> StreamEnd:
    return StreamEnd(stream_id=sid, seq=seq, stop_reason="end_turn", usage=Usage(output_tokens=3))


def overloaded(retry_after: float | None = None) -> ProviderError:
    return ProviderError(
        "anthropic returned HTTP 529 (overloaded_error)", status_code=529, retry_after=retry_after
    )


class Fixed:
    """A RandomLike that always returns the same value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def values(messages: list[Any]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def errors(messages: list[Any]) -> list[tuple[float, Exception]]:
    return [(m.time, m.value.exception) for m in messages if isinstance(m.value, OnError)]


def sequential_cold(
    scheduler: TestScheduler, *attempts: list[Any]
) -> tuple[Observable[StreamEvent], list[Any]]:
    """A cold source whose n-th subscription plays ``attempts[n]`` (each a cold observable)."""
    colds = [scheduler.create_cold_observable(*a) for a in attempts]
    count = [0]

    def factory(_: Any) -> Observable[StreamEvent]:
        i = min(count[0], len(colds) - 1)
        count[0] += 1
        return colds[i]

    return reactivex.defer(factory), colds


def test_passes_a_successful_stream_through_unchanged() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        on_next(10, start("a")), on_next(20, text("a", 1, "Hi")), on_next(30, end("a", 2)), on_completed(40)
    )
    results = scheduler.start(lambda: source.pipe(retry_stream(backoff=5)))
    assert results.messages == [
        on_next(210, start("a")),
        on_next(220, text("a", 1, "Hi")),
        on_next(230, end("a", 2)),
        on_completed(240),
    ]
    assert source.subscriptions == [subscribe(200, 240)]


def test_retries_an_error_before_content_after_the_backoff_in_virtual_time() -> None:
    scheduler = TestScheduler()
    source, (first, second) = sequential_cold(
        scheduler,
        [on_next(10, start("a")), on_error(20, overloaded())],
        [
            on_next(10, start("b")),
            on_next(20, text("b", 1, "Hi")),
            on_next(30, end("b", 2)),
            on_completed(40),
        ],
    )
    results = scheduler.start(lambda: source.pipe(retry_stream(backoff=50, max_backoff=1000, jitter=0)))
    # attempt 1 fails at 220; attempt 2 starts at 270 and replays from there.
    assert results.messages == [
        on_next(210, start("a")),
        on_next(280, start("b")),  # the new request's StreamStart passes through
        on_next(290, text("b", 1, "Hi")),
        on_next(300, end("b", 2)),
        on_completed(310),
    ]
    assert first.subscriptions == [subscribe(200, 220)]
    assert second.subscriptions == [subscribe(270, 310)]


def test_backoff_doubles_is_capped_and_the_last_error_is_forwarded_with_partial() -> None:
    scheduler = TestScheduler()
    errs = [overloaded(), StreamInterruptedError("dropped"), overloaded()]
    source, colds = sequential_cold(
        scheduler,
        [on_next(5, start("a")), on_error(10, errs[0])],
        [on_next(5, start("b")), on_error(10, errs[1])],
        [on_next(5, start("c")), on_error(10, errs[2])],
    )
    results = scheduler.start(lambda: source.pipe(retry_stream(3, backoff=40, max_backoff=60, jitter=0)))
    # 210 fail → wait 40 → 250 start, 260 fail → wait min(80, 60) → 320 start, 330 fail: forwarded.
    assert [c.subscriptions for c in colds] == [
        [subscribe(200, 210)],
        [subscribe(250, 260)],
        [subscribe(320, 330)],
    ]
    assert errors(results.messages) == [(330, errs[2])]
    partial = errs[2].partial
    assert isinstance(partial, Response)
    assert partial.request_id == "req_c"  # what downstream saw: the latest StreamStart
    assert values(results.messages) == [start("a"), start("b"), start("c")]


def test_jitter_shortens_the_wait_by_a_random_fraction() -> None:
    scheduler = TestScheduler()
    source, (_, second) = sequential_cold(
        scheduler, [on_error(10, overloaded())], [on_next(1, start("b")), on_completed(2)]
    )
    scheduler.start(
        lambda: source.pipe(retry_stream(backoff=100, max_backoff=1000, jitter=0.2, random=Fixed(0.5)))
    )
    assert second.subscriptions == [subscribe(300, 302)]  # 100 * (1 - 0.2 * 0.5) = 90 after 210


def test_seeded_random_gives_reproducible_waits() -> None:
    def run() -> list[Subscription]:
        scheduler = TestScheduler()
        source, (_, second) = sequential_cold(
            scheduler, [on_error(10, overloaded())], [on_next(1, start("b")), on_completed(2)]
        )
        scheduler.start(
            lambda: source.pipe(
                retry_stream(backoff=100, max_backoff=1000, jitter=0.5, random=random.Random(7))
            )
        )
        return list(second.subscriptions)

    first, again = run(), run()
    assert first == again
    assert 260 <= first[0].subscribe <= 310


def test_retry_after_is_respected_even_above_max_backoff() -> None:
    scheduler = TestScheduler()
    source, (_, second) = sequential_cold(
        scheduler, [on_error(10, overloaded(retry_after=300))], [on_next(1, start("b")), on_completed(2)]
    )
    scheduler.start(
        lambda: source.pipe(retry_stream(backoff=5, max_backoff=10, jitter=0, max_retry_after=600)),
        disposed=2000,
    )
    assert second.subscriptions == [subscribe(510, 512)]


@pytest.mark.parametrize("asked", [3600.0, 1e10, float("inf")])
def test_a_retry_after_beyond_max_retry_after_is_emitted_at_once(asked: float) -> None:
    """Issue 7, defect 3: ``retry-after: inf`` killed the timer thread; 3600 waited an hour silently."""
    scheduler = TestScheduler()
    source, (_, second) = sequential_cold(
        scheduler, [on_error(10, overloaded(retry_after=asked))], [on_next(1, start("b")), on_completed(2)]
    )
    result = scheduler.start(lambda: source.pipe(retry_stream(max_retry_after=60)))
    assert second.subscriptions == []
    [(at, error)] = errors(result.messages)
    assert at == 210
    assert isinstance(error, ProviderError) and error.retry_after == asked


def test_a_retry_after_within_max_retry_after_is_honoured() -> None:
    scheduler = TestScheduler()
    source, (_, second) = sequential_cold(
        scheduler, [on_error(10, overloaded(retry_after=60))], [on_next(1, start("b")), on_completed(2)]
    )
    scheduler.start(lambda: source.pipe(retry_stream(jitter=0, max_retry_after=60)))
    assert second.subscriptions == [subscribe(270, 272)]


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    scheduler = TestScheduler()
    source, (_, second) = sequential_cold(
        scheduler, [on_error(10, overloaded(retry_after=1))], [on_next(1, start("b")), on_completed(2)]
    )
    scheduler.start(lambda: source.pipe(retry_stream(backoff=50, max_backoff=1000, jitter=0)))
    assert second.subscriptions == [subscribe(260, 262)]


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("bad request", status_code=400),
        StreamDecodeError("bad frame"),
        ValueError("not an rxstream error"),
    ],
)
def test_non_retryable_errors_pass_through_at_once(error: Exception) -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(10, start("a")), on_error(20, error))
    results = scheduler.start(lambda: source.pipe(retry_stream(backoff=50)))
    assert errors(results.messages) == [(220, error)]
    assert source.subscriptions == [subscribe(200, 220)]


def test_fail_mode_forwards_an_error_after_content_with_the_partial_text() -> None:
    scheduler = TestScheduler()
    error = StreamInterruptedError("dropped")
    source = scheduler.create_cold_observable(
        on_next(10, start("a")), on_next(20, text("a", 1, "Hel")), on_error(30, error)
    )
    results = scheduler.start(lambda: source.pipe(retry_stream(backoff=50)))
    assert errors(results.messages) == [(230, error)]
    assert error.partial.text == "Hel"
    assert source.subscriptions == [subscribe(200, 230)]


def test_usage_before_content_is_not_content() -> None:
    usage = UsageUpdate(stream_id="a", seq=1, usage=Usage(input_tokens=3))
    assert not is_content(usage)
    assert not is_content(start("a"))
    assert is_content(text("a", 1, "x"))
    scheduler = TestScheduler()
    source, (_, second) = sequential_cold(
        scheduler,
        [on_next(1, start("a")), on_next(2, usage), on_error(3, overloaded())],
        [on_next(1, start("b")), on_completed(2)],
    )
    scheduler.start(lambda: source.pipe(retry_stream(backoff=10, jitter=0)))
    assert second.subscriptions == [subscribe(213, 215)]


def restart_source(scheduler: TestScheduler) -> tuple[Observable[StreamEvent], list[Any]]:
    return sequential_cold(
        scheduler,
        [
            on_next(10, start("a")),
            on_next(20, text("a", 1, "Hel")),
            on_next(30, text("a", 2, "lo w")),
            on_error(40, StreamInterruptedError("dropped")),
        ],
        [
            on_next(10, start("b")),
            on_next(20, text("b", 1, "Hello")),
            on_next(30, text("b", 2, " world")),
            on_next(40, end("b", 3)),
            on_completed(50),
        ],
    )


def test_restart_emits_exactly_one_reset_before_the_new_attempt() -> None:
    scheduler = TestScheduler()
    source, _ = restart_source(scheduler)
    results = scheduler.start(
        lambda: source.pipe(retry_stream(backoff=50, max_backoff=1000, jitter=0, on_partial="restart"))
    )
    reset = StreamReset(stream_id="a", seq=3, attempt=2, discarded_text="Hello w")
    assert results.messages == [
        on_next(210, start("a")),
        on_next(220, text("a", 1, "Hel")),
        on_next(230, text("a", 2, "lo w")),
        on_next(300, reset),  # emitted together with the new attempt's first event (240 + 50 + 10)
        on_next(300, start("b")),
        on_next(310, text("b", 1, "Hello")),
        on_next(320, text("b", 2, " world")),
        on_next(330, end("b", 3)),
        on_completed(340),
    ]
    assert [v for v in values(results.messages) if isinstance(v, StreamReset)] == [reset]


def test_restart_final_and_snapshots_have_no_duplicated_text() -> None:
    scheduler = TestScheduler()
    source, _ = restart_source(scheduler)
    results = scheduler.start(
        lambda: source.pipe(
            retry_stream(backoff=50, max_backoff=1000, jitter=0, on_partial="restart"), final()
        )
    )
    (response,) = values(results.messages)
    assert response.text == "Hello world"
    assert response.request_id == "req_b"
    assert response.complete

    scheduler = TestScheduler()
    source, _ = restart_source(scheduler)
    results = scheduler.start(
        lambda: source.pipe(
            retry_stream(backoff=50, max_backoff=1000, jitter=0, on_partial="restart"), snapshots()
        )
    )
    texts = [s.text for s in values(results.messages)]
    assert texts == ["", "Hel", "Hello w", "", "", "Hello", "Hello world", "Hello world"]


def test_restart_without_content_emits_no_reset() -> None:
    scheduler = TestScheduler()
    source, _ = sequential_cold(
        scheduler,
        [on_next(10, start("a")), on_error(20, overloaded())],
        [on_next(10, start("b")), on_completed(20)],
    )
    results = scheduler.start(lambda: source.pipe(retry_stream(backoff=5, on_partial="restart")))
    assert not any(isinstance(v, StreamReset) for v in values(results.messages))


def test_restart_keeps_the_old_text_when_every_retry_fails_before_any_event() -> None:
    scheduler = TestScheduler()
    last = overloaded()
    source, _ = sequential_cold(
        scheduler,
        [
            on_next(10, start("a")),
            on_next(20, text("a", 1, "Hel")),
            on_error(30, StreamInterruptedError("x")),
        ],
        [on_error(10, last)],
    )
    results = scheduler.start(lambda: source.pipe(retry_stream(3, backoff=5, jitter=0, on_partial="restart")))
    assert not any(isinstance(v, StreamReset) for v in values(results.messages))
    # 230 fail, wait 5 → 235 start, 245 fail, wait 10 → 255 start, 265 fail: forwarded.
    assert errors(results.messages) == [(265, last)]
    assert last.partial.text == "Hel"


def test_dispose_during_the_backoff_wait_cancels_the_pending_resubscription() -> None:
    scheduler = TestScheduler()
    source, (first, second) = sequential_cold(
        scheduler, [on_error(10, overloaded())], [on_next(1, start("b")), on_completed(2)]
    )
    results = scheduler.start(
        lambda: source.pipe(retry_stream(backoff=100, max_backoff=1000, jitter=0)), disposed=250
    )
    assert results.messages == []
    assert first.subscriptions == [subscribe(200, 210)]
    assert second.subscriptions == []


def test_dispose_mid_stream_reaches_the_source() -> None:
    scheduler = TestScheduler()
    first: StreamEvent = start("a")
    later: StreamEvent = text("a", 1, "x")
    source = scheduler.create_cold_observable(on_next(10, first), on_next(100, later))
    results = scheduler.start(lambda: source.pipe(retry_stream()), disposed=250)
    assert results.messages == [on_next(210, start("a"))]
    assert source.subscriptions == [subscribe(200, 250)]


def test_each_subscription_counts_its_own_attempts() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(10, start("a")), on_error(20, overloaded()))
    stream = source.pipe(retry_stream(2, backoff=30, jitter=0))
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    stream.subscribe(first, scheduler=scheduler)
    scheduler.advance_to(100)
    stream.subscribe(second, scheduler=scheduler)
    scheduler.start()
    assert source.subscriptions == [
        subscribe(0, 20),
        subscribe(50, 70),
        subscribe(100, 120),
        subscribe(150, 170),
    ]
    assert [t for t, _ in errors(first.messages)] == [70]
    assert [t for t, _ in errors(second.messages)] == [170]


def test_max_attempts_one_never_retries() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_error(10, overloaded()))
    results = scheduler.start(lambda: source.pipe(retry_stream(1)))
    assert len(errors(results.messages)) == 1
    assert source.subscriptions == [subscribe(200, 210)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": True},
        {"max_attempts": 2.0},
        {"backoff": -1},
        {"backoff": float("nan")},
        {"max_backoff": float("inf")},
        {"max_backoff": 1e10},
        {"max_retry_after": float("inf")},
        {"max_retry_after": -1},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"on_partial": "retry"},
        {"scheduler": object()},
        {"random": object()},
    ],
)
def test_invalid_arguments_raise_at_creation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        retry_stream(**kwargs)


def test_retries_on_a_real_thread_scheduler() -> None:
    calls = [0]

    def factory(_: Any) -> Observable[StreamEvent]:
        calls[0] += 1
        if calls[0] < 3:
            return reactivex.concat(reactivex.of(start(f"s{calls[0]}")), reactivex.throw(overloaded()))
        return reactivex.of(start("ok"), text("ok", 1, "done"), end("ok", 2))

    threads: set[str] = set()
    stream = reactivex.defer(factory).pipe(
        retry_stream(backoff=0.01, jitter=0),
        ops.do_action(lambda _: threads.add(threading.current_thread().name)),
        final(),
    )
    response = stream.run()
    assert response.text == "done"
    assert response.request_id == "req_ok"
    assert calls[0] == 3
    assert threading.current_thread().name not in threads - {"MainThread"}


def test_subscribed_from_a_coroutine_the_retry_runs_on_that_loop() -> None:
    loops: list[asyncio.AbstractEventLoop | None] = []

    def factory(_: Any) -> Observable[StreamEvent]:
        try:
            loops.append(asyncio.get_running_loop())
        except RuntimeError:
            loops.append(None)
        if len(loops) == 1:
            return reactivex.throw(overloaded())
        return reactivex.of(start("ok"), end("ok", 1))

    async def main() -> Response:
        return await reactivex.defer(factory).pipe(retry_stream(backoff=0.01, jitter=0), final())

    asyncio.run(main())
    assert len(loops) == 2
    assert loops[1] is not None and loops[1] is loops[0]  # an async source finds its loop again


def test_a_synchronous_timer_scheduler_does_not_cancel_the_next_attempt() -> None:
    from reactivex.scheduler import ImmediateScheduler

    calls = [0]

    def factory(_: Any) -> Observable[StreamEvent]:
        calls[0] += 1
        if calls[0] == 1:
            return reactivex.throw(overloaded())
        return reactivex.of(start("ok"), end("ok", 1))

    stream = reactivex.defer(factory).pipe(retry_stream(backoff=0, scheduler=ImmediateScheduler()), final())
    assert stream.run().request_id == "req_ok"


def _record(stream: Observable[StreamEvent]) -> tuple[list[StreamEvent], list[Exception], list[bool]]:
    items: list[StreamEvent] = []
    failures: list[Exception] = []
    completions: list[bool] = []
    stream.subscribe(items.append, failures.append, lambda: completions.append(True))
    return items, failures, completions


def test_loop_shutdown_during_the_backoff_emits_one_stream_cancelled_error() -> None:
    """asyncio.run returns while the backoff timer is pending: one terminal, with .partial."""
    subscriptions = [0]

    def factory(_: Any) -> Observable[StreamEvent]:
        subscriptions[0] += 1
        return reactivex.concat(reactivex.of(start("s1")), reactivex.throw(overloaded()))

    async def main() -> tuple[list[StreamEvent], list[Exception], list[bool]]:
        # Subscribed on the loop: the backoff is a call_later on it, 60 s away.
        return _record(reactivex.defer(factory).pipe(retry_stream(3, backoff=60, jitter=0)))

    items, failures, completions = asyncio.run(main())
    assert subscriptions[0] == 1  # the retry never ran
    assert items == [start("s1")]
    assert completions == []
    assert len(failures) == 1
    error = failures[0]
    assert isinstance(error, StreamCancelledError)
    assert error.retryable is False
    assert error.partial is not None and error.partial.request_id == "req_s1"
    assert isinstance(error.__cause__, ProviderError)  # the error whose retry was abandoned


def test_an_error_after_the_loop_closed_still_gets_one_terminal() -> None:
    """The retry's loop is closed when a (thread) source fails: no call_later is possible."""
    source: Subject[StreamEvent] = Subject()

    async def main() -> tuple[list[StreamEvent], list[Exception], list[bool]]:
        return _record(source.pipe(retry_stream(3, backoff=0.01, jitter=0)))

    items, failures, completions = asyncio.run(main())
    source.on_next(start("s1"))
    source.on_error(overloaded())
    assert items == [start("s1")]
    assert completions == []
    assert len(failures) == 1 and isinstance(failures[0], StreamCancelledError)
    assert failures[0].partial is not None and failures[0].partial.request_id == "req_s1"


def test_the_backoff_guard_leaves_nothing_behind_when_the_retry_succeeds() -> None:
    calls = [0]

    def factory(_: Any) -> Observable[StreamEvent]:
        calls[0] += 1
        if calls[0] == 1:
            return reactivex.concat(reactivex.of(start("s1")), reactivex.throw(overloaded()))
        return reactivex.of(start("ok"), end("ok", 1))

    async def main() -> tuple[Response, set[asyncio.Task[Any]]]:
        response = await reactivex.defer(factory).pipe(retry_stream(backoff=0.01, jitter=0), final())
        return response, asyncio.all_tasks() - {asyncio.current_task()}

    response, leftover = asyncio.run(main())
    assert response.request_id == "req_ok"
    assert leftover == set()


def test_loop_shutdown_during_a_backoff_started_by_a_reader_thread() -> None:
    """The source fails on another thread (a sync reader) while the loop runs, then the loop ends."""
    source: Subject[StreamEvent] = Subject()

    def reader() -> None:
        source.on_next(start("s1"))
        source.on_error(overloaded())

    async def main() -> tuple[list[StreamEvent], list[Exception], list[bool]]:
        recorded = _record(source.pipe(retry_stream(3, backoff=60, jitter=0)))
        await asyncio.to_thread(reader)
        return recorded

    items, failures, completions = asyncio.run(main())
    assert items == [start("s1")]
    assert completions == []
    assert len(failures) == 1 and isinstance(failures[0], StreamCancelledError)


def test_disposal_during_a_loop_backoff_emits_nothing_and_leaves_no_task() -> None:
    source: Subject[StreamEvent] = Subject()

    async def main() -> tuple[list[Exception], set[asyncio.Task[Any]]]:
        failures: list[Exception] = []
        subscription = source.pipe(retry_stream(3, backoff=60, jitter=0)).subscribe(on_error=failures.append)
        source.on_error(overloaded())
        subscription.dispose()
        await asyncio.sleep(0)  # one loop iteration: the released guard task finishes
        return failures, asyncio.all_tasks() - {asyncio.current_task()}

    failures, leftover = asyncio.run(main())
    assert failures == []
    assert leftover == set()

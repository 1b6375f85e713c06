"""Tests of rxstream.manager.StreamManager: control, states, concurrency, and end-to-end runs
through the official Anthropic SDK against the provider emulator."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import TimeoutScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.testing import ReactiveTest, TestScheduler

from rxstream.errors import ConfigurationError, HandlerError, ProviderError, StreamInterruptedError
from rxstream.events import StreamEnd, StreamEvent, StreamReset, StreamStart, TextDelta, Usage
from rxstream.handlers import CollectHandler, StreamHandler
from rxstream.manager import StreamCancelledError, StreamManager
from rxstream.operators._retry import retry_stream

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


def make_events(sid: str, n: int) -> list[StreamEvent]:
    return [
        StreamStart(stream_id=sid, seq=0, provider="anthropic", model="m"),
        *[TextDelta(stream_id=sid, seq=i + 1, text=f"{sid}:{i};") for i in range(n)],
        StreamEnd(stream_id=sid, seq=n + 1, stop_reason="end_turn", usage=Usage(output_tokens=n)),
    ]


def cold(
    scheduler: TestScheduler, evs: list[StreamEvent], step: int = 10, error: Exception | None = None
) -> Any:
    messages = [on_next(step * (i + 1), e) for i, e in enumerate(evs)]
    end = step * (len(evs) + 1)
    messages.append(on_error(end, error) if error is not None else on_completed(end))
    return scheduler.create_cold_observable(*messages)


def timed(evs: list[StreamEvent], period: float, scheduler: abc.SchedulerBase) -> Observable[StreamEvent]:
    """A real cold source: one event per ``period`` seconds on ``scheduler``."""
    ticks: Observable[int] = reactivex.interval(period, scheduler=scheduler)

    def pick(i: int) -> StreamEvent:
        return evs[i]

    return ticks.pipe(ops.take(len(evs)), ops.map(pick))


# -- lifecycle on virtual time ---------------------------------------------------------------


def test_states_pause_resume_and_completion_on_virtual_time() -> None:
    scheduler = TestScheduler()
    evs = make_events("a", 5)
    source = cold(scheduler, evs)
    collect = CollectHandler()
    manager = StreamManager(scheduler=scheduler)
    handle = manager.start(source, {"user": "u1"}, handlers=[collect])
    assert handle.status().state == "pending"
    scheduler.advance_to(25)
    assert handle.status().state == "active"
    assert len(collect.events) == 2
    assert handle.pause()
    assert not handle.pause()  # already paused
    scheduler.advance_to(100)
    status = handle.status()
    assert status.state == "paused"
    assert len(collect.events) == 2  # held
    assert status.stats.deltas == 5  # the source side kept going: the buffer holds them
    assert status.metadata == {"user": "u1"}
    assert handle.resume()
    assert collect.events == evs  # released in order on the resuming thread
    assert handle.status().state == "completed"
    assert handle.wait(0).text == "".join(f"a:{i};" for i in range(5))
    final = handle.status()
    assert final.stats.done
    assert final.stats.elapsed == 80.0  # the source completed at 80 (before the resume at 100)
    scheduler.advance_to(500)
    assert handle.status().stats.elapsed == 80.0
    assert not handle.resume() and not handle.pause() and not handle.cancel()


def test_completion_while_paused_waits_for_resume() -> None:
    scheduler = TestScheduler()
    handle = StreamManager(scheduler=scheduler).start(cold(scheduler, make_events("a", 2)))
    handle.pause()
    scheduler.advance_to(1000)
    assert handle.status().state == "paused"
    assert not handle.done()
    handle.resume()
    assert handle.status().state == "completed"


def test_cancel_while_paused_disposes_the_source() -> None:
    scheduler = TestScheduler()
    source = cold(scheduler, make_events("a", 10))
    handle = StreamManager(scheduler=scheduler).start(source)
    scheduler.advance_to(30)
    handle.pause()
    scheduler.advance_to(60)
    assert handle.cancel()
    assert not handle.cancel()
    assert source.subscriptions == [subscribe(0, 60)]
    assert handle.status().state == "cancelled"
    with pytest.raises(StreamCancelledError) as info:
        handle.wait(0)
    assert info.value.partial.text == "a:0;a:1;"  # what was delivered before the pause
    assert not info.value.retryable


def test_failed_stream_raises_its_error_from_wait() -> None:
    scheduler = TestScheduler()
    error = ProviderError("overloaded", status_code=529)
    collect = CollectHandler()
    handle = StreamManager(scheduler=scheduler).start(
        cold(scheduler, make_events("a", 2), error=error), handlers=[collect]
    )
    scheduler.start()
    status = handle.status()
    assert status.state == "failed"
    assert status.error == "ProviderError"
    with pytest.raises(ProviderError) as info:
        handle.wait(0)
    assert info.value is error and collect.error is error


def test_wait_times_out_without_ending_the_stream() -> None:
    scheduler = TestScheduler()
    handle = StreamManager(scheduler=scheduler).start(cold(scheduler, make_events("a", 2)))
    with pytest.raises(TimeoutError):
        handle.wait(0.01)
    assert handle.status().state == "pending"
    handle.cancel()


def test_handlers_registration_applies_to_later_streams_and_errors_are_counted() -> None:
    class Raising(StreamHandler):
        def on_token_received(self, token: str, index: int) -> None:
            raise ValueError(token)

    reported: list[HandlerError] = []
    raising, collect = Raising(), CollectHandler()
    manager = StreamManager([raising], on_handler_error=reported.append)
    manager.register_handler(collect)
    manager.register_handler(collect)  # idempotent
    assert manager.handlers == (raising, collect)
    first = manager.start(reactivex.from_iterable(make_events("a", 3)))
    assert first.wait(1).text == "a:0;a:1;a:2;"
    assert first.status().handler_errors == 3 and len(reported) == 3
    assert collect.response is not None and collect.response.text == "a:0;a:1;a:2;"
    assert manager.unregister_handler(raising)
    assert not manager.unregister_handler(raising)
    second = manager.start(reactivex.from_iterable(make_events("b", 1)))
    second.wait(1)
    assert second.status().handler_errors == 0
    assert [s.id for s in manager.status()] == [first.id, second.id]
    assert manager.forget_finished() == 2 and manager.status() == []


def test_invalid_arguments() -> None:
    with pytest.raises(ConfigurationError):
        StreamManager(max_buffered=0)
    with pytest.raises(ConfigurationError):
        StreamManager(scheduler=object())  # type: ignore[arg-type]
    manager = StreamManager()
    with pytest.raises(ConfigurationError):
        manager.register_handler(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        manager.start([])  # type: ignore[arg-type]


def test_context_manager_cancels_running_streams() -> None:
    scheduler = TestScheduler()
    with StreamManager(scheduler=scheduler) as manager:
        handle = manager.start(cold(scheduler, make_events("a", 3)))
    assert handle.status().state == "cancelled"


def test_cancel_releases_a_producer_blocked_while_paused() -> None:
    released = threading.Event()
    emitted = [0]

    def subscribe_source(observer: abc.ObserverBase[StreamEvent], _: Any = None) -> abc.DisposableBase:
        cancelled = threading.Event()

        def run() -> None:
            for event in make_events("a", 100):
                if cancelled.is_set():
                    break
                observer.on_next(event)
                emitted[0] += 1
            released.set()

        threading.Thread(target=run, daemon=True).start()
        return Disposable(cancelled.set)

    manager = StreamManager(max_buffered=5)
    handle = manager.start(reactivex.create(subscribe_source), paused=True)
    assert handle.status().state == "paused"
    deadline = time.monotonic() + 5
    while handle.status().stats.deltas < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    assert not released.is_set()  # blocked on the full buffer
    assert emitted[0] <= 7
    handle.cancel()
    assert released.wait(2)


# -- 50 concurrent streams with random pause/resume/cancel ------------------------------------

Action = tuple[int, str]  # (milliseconds after start, "pause" | "resume" | "cancel")
schedules = st.lists(
    st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["pause", "resume", "cancel"])), max_size=4),
    min_size=50,
    max_size=50,
)
N_EVENTS = 20


def check_outcome(handle: Any, collect: CollectHandler, expected: list[StreamEvent], cancelled: bool) -> None:
    status = handle.status()
    if cancelled:
        assert status.state == "cancelled"
        assert collect.events == expected[: len(collect.events)]  # a prefix: nothing lost or duplicated
        with pytest.raises(StreamCancelledError):
            handle.wait(0)
    else:
        assert status.state == "completed", status
        assert collect.events == expected
        assert handle.wait(0).text == "".join(e.text for e in expected if isinstance(e, TextDelta))
    assert status.stats.done


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=schedules)
def test_fifty_concurrent_streams_on_threads(plan: list[list[Action]]) -> None:
    scheduler = TimeoutScheduler.singleton()
    manager = StreamManager(max_buffered=4)  # small: producers really block
    runs = []
    for k, actions in enumerate(plan):
        expected = make_events(f"s{k}", N_EVENTS)
        collect = CollectHandler()
        handle = manager.start(timed(expected, 0.002, scheduler), handlers=[collect])
        runs.append((handle, collect, expected, sorted(actions)))
    cancelled: set[int] = set()
    timeline = sorted((ms, k, action) for k, (_, _, _, actions) in enumerate(runs) for ms, action in actions)
    t0 = time.monotonic()
    for ms, k, action in timeline:
        delay = t0 + ms / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        handle = runs[k][0]
        if action == "cancel":
            if handle.cancel():
                cancelled.add(k)
        else:
            getattr(handle, action)()
    for handle, *_ in runs:
        handle.resume()
    for handle, *_ in runs:
        with contextlib.suppress(StreamCancelledError):
            handle.wait(10)
    for k, (handle, collect, expected, _) in enumerate(runs):
        check_outcome(handle, collect, expected, k in cancelled)
    assert len(manager.status()) == 50


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=schedules)
def test_fifty_concurrent_streams_on_asyncio(plan: list[list[Action]]) -> None:
    async def main() -> None:
        scheduler = AsyncIOScheduler(asyncio.get_running_loop())
        manager = StreamManager(scheduler=scheduler)
        runs = []
        for k, actions in enumerate(plan):
            expected = make_events(f"s{k}", N_EVENTS)
            collect = CollectHandler()
            handle = manager.start(timed(expected, 0.002, scheduler), handlers=[collect])
            runs.append((handle, collect, expected, actions))
        cancelled: set[int] = set()

        async def drive(k: int) -> None:
            handle, _, _, actions = runs[k]
            elapsed = 0
            for ms, action in sorted(actions):
                await asyncio.sleep((ms - elapsed) / 1000)
                elapsed = ms
                if action == "cancel":
                    if handle.cancel():
                        cancelled.add(k)
                else:
                    getattr(handle, action)()
            handle.resume()
            with contextlib.suppress(StreamCancelledError):
                await handle

        await asyncio.wait_for(asyncio.gather(*(drive(k) for k in range(len(runs)))), 10)
        for k, (handle, collect, expected, _) in enumerate(runs):
            check_outcome(handle, collect, expected, k in cancelled)

    asyncio.run(main())


@pytest.mark.asyncio
async def test_await_handle_returns_the_response_or_raises() -> None:
    scheduler = AsyncIOScheduler(asyncio.get_running_loop())
    manager = StreamManager(scheduler=scheduler)
    ok = manager.start(timed(make_events("a", 3), 0.001, scheduler))
    assert (await ok).text == "a:0;a:1;a:2;"
    error = StreamInterruptedError("dropped")
    failing = manager.start(
        reactivex.concat(timed(make_events("b", 1), 0.001, scheduler), reactivex.throw(error))
    )
    with pytest.raises(StreamInterruptedError):
        await failing
    slow = manager.start(timed(make_events("c", 50), 0.01, scheduler))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.ensure_future(_await(slow)), 0.02)
    assert slow.status().state == "active"  # giving up waiting does not cancel the stream
    slow.cancel()


async def _await(handle: Any) -> Any:
    return await handle


# -- end to end: the official Anthropic SDK against the provider emulator ---------------------


def _testing() -> Any:
    return pytest.importorskip("rxstream.testing")


@pytest.fixture
def client(emulator: Any) -> Iterator[Any]:
    anthropic = pytest.importorskip("anthropic")
    with anthropic.Anthropic(api_key="sk-test", base_url=emulator.anthropic_base_url, max_retries=0) as c:
        yield c


def _stream(client: Any) -> Observable[StreamEvent]:
    from rxstream import from_anthropic

    # Room for the long scripted answers: the emulator cuts a reply at max_tokens, as the API does.
    return from_anthropic(client, model="m", max_tokens=100_000, messages=[{"role": "user", "content": "hi"}])


def test_e2e_529_then_success_respects_retry_after(emulator: Any, client: Any) -> None:
    testing = _testing()
    emulator.enqueue(
        testing.ResponseScript(fault=testing.Fault(kind="http_error", status=529, retry_after=0.5)),
        testing.ResponseScript(text="Hello after the storm"),
    )
    handle = StreamManager().start(_stream(client).pipe(retry_stream(3, backoff=0.01)))
    response = handle.wait(10)
    assert response.text == "Hello after the storm"
    first, second = emulator.requests
    assert second.received_at - first.received_at >= 0.5


def test_e2e_drop_after_content_restarts_with_one_reset(emulator: Any, client: Any) -> None:
    testing = _testing()
    text = "one two three four five six"
    emulator.enqueue(
        testing.ResponseScript(text=text, fault=testing.Fault(kind="drop", after_events=6)),
        testing.ResponseScript(text=text),
    )
    collect = CollectHandler()
    handle = StreamManager().start(
        _stream(client).pipe(retry_stream(3, backoff=0.01, on_partial="restart")), handlers=[collect]
    )
    response = handle.wait(10)
    resets = [e for e in collect.events if isinstance(e, StreamReset)]
    assert len(resets) == 1 and resets[0].attempt == 2 and resets[0].discarded_text
    assert text.startswith(resets[0].discarded_text)
    assert response.text == text  # no duplicated text
    assert len(emulator.requests) == 2


def test_e2e_pause_blocks_the_provider_writes_and_loses_nothing(emulator: Any, client: Any) -> None:
    testing = _testing()
    words = " ".join(f"w{i}" for i in range(40_000))  # ~5 MB of SSE: more than the socket buffers
    emulator.enqueue(testing.ResponseScript(text=words))
    collect = CollectHandler()
    handle = StreamManager(max_buffered=64).start(_stream(client), handlers=[collect])
    handle.pause()
    # Wait until the socket buffers are full and the writer stops (timing varies with load).
    # A stall means: the writer has started (a loaded machine may take a while to get there)
    # and then wrote nothing for a whole interval.
    deadline = time.monotonic() + 20
    written = -1
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = emulator.connections[-1].events_written if emulator.connections else 0
        if now > 0 and now == written:
            break
        written = now
    time.sleep(1.0)
    conn = emulator.connections[-1]
    assert conn.events_written == written  # the provider's writes are blocked
    assert written < 40_000
    assert not conn.completed
    assert handle.status().stats.deltas <= 64 + 1  # memory bounded: the buffer plus the blocked event
    assert collect.events == []
    handle.resume()
    response = handle.wait(30)
    assert response.text == words
    assert emulator.connections[-1].completed


def test_e2e_cancel_while_paused_closes_the_connection(emulator: Any, client: Any) -> None:
    testing = _testing()
    emulator.enqueue(testing.ResponseScript(text=" ".join(["word"] * 40_000)))
    handle = StreamManager(max_buffered=16).start(_stream(client))
    handle.pause()
    deadline = time.monotonic() + 5
    while handle.status().stats.deltas < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert handle.status().state == "paused"
    assert handle.cancel()
    record = emulator.wait_for_disconnect(timeout=5)
    assert record.client_disconnected and not record.completed


def test_e2e_async_client_await_handle(emulator: Any) -> None:
    testing = _testing()
    anthropic = pytest.importorskip("anthropic")
    from rxstream import from_anthropic

    emulator.enqueue(testing.ResponseScript(text="async hello", event_delay=0.001))

    async def main() -> str:
        client = anthropic.AsyncAnthropic(
            api_key="sk-test", base_url=emulator.anthropic_base_url, max_retries=0
        )
        manager = StreamManager(scheduler=AsyncIOScheduler(asyncio.get_running_loop()))
        stream = from_anthropic(client, model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
        handle = manager.start(stream)
        handle.pause()
        await asyncio.sleep(0.05)
        handle.resume()
        response = await handle
        await client.close()
        return response.text

    assert asyncio.run(main()) == "async hello"

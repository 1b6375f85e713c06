"""The asyncio bridge: to_async_iterator, to_iterator, from_async_iterable, await and .run().

Everything runs through the official SDKs against `rxstream.testing.ProviderEmulator` on
127.0.0.1; nothing of rxstream is mocked. Disconnects are read from the emulator's records.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import openai
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import BehaviorSubject, Subject

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import ConfigurationError, ProviderError, StreamError
from rxstream.events import StreamEvent
from rxstream.testing import Fault, ProviderEmulator, ResponseScript

API_KEY = "sk-secret-test-key-0123456789"
TEXT = "one two three four five six seven eight nine ten"
STALL = ResponseScript(text=TEXT, fault=Fault(kind="stall", after_events=4))


def sync_client(emu: ProviderEmulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=API_KEY, base_url=emu.anthropic_base_url, max_retries=0)


def async_client(emu: ProviderEmulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emu.anthropic_base_url, max_retries=0)


def stream_of(client: Any) -> reactivex.Observable[StreamEvent]:
    return rxs.from_anthropic(
        client, model="m", max_tokens=100_000, messages=[{"role": "user", "content": "hi"}]
    )


@pytest.fixture
def sync_anthropic(emulator: ProviderEmulator) -> Iterator[anthropic.Anthropic]:
    client = sync_client(emulator)
    yield client
    client.close()


@pytest.fixture
async def async_anthropic(emulator: ProviderEmulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = async_client(emulator)
    yield client
    await client.close()


async def disconnected(emu: ProviderEmulator, index: int = -1, timeout: float = 1.0) -> None:
    record = await asyncio.to_thread(emu.wait_for_disconnect, index, timeout)
    assert record.client_disconnected and not record.completed


async def close(client: Any) -> None:
    """Close a sync or an async SDK client."""
    closed = client.close()
    if asyncio.iscoroutine(closed):
        await closed


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


async def no_other_tasks(deadline: float = 2.0) -> None:
    end = time.monotonic() + deadline
    while other_tasks():
        assert time.monotonic() < end, f"tasks left behind: {other_tasks()}"
        await asyncio.sleep(0.01)


# --- the two defects ----------------------------------------------------------------------------


async def test_await_with_a_sync_client_wakes_an_idle_loop(
    emulator: ProviderEmulator, sync_anthropic: anthropic.Anthropic
) -> None:
    # Before the fix the future was resolved from the reader thread and nothing woke the
    # loop until wait_for's own timer fired (10 s later).
    emulator.enqueue(ResponseScript(text=TEXT))
    started = time.monotonic()
    response = await asyncio.wait_for(stream_of(sync_anthropic).pipe(rso.final()), 10)
    assert response.text == TEXT
    assert time.monotonic() - started < 5


async def test_await_with_a_sync_client_raises_the_typed_error_promptly(
    emulator: ProviderEmulator, sync_anthropic: anthropic.Anthropic
) -> None:
    emulator.enqueue(ResponseScript(fault=Fault(kind="http_error", status=529)))
    started = time.monotonic()
    with pytest.raises(ProviderError):
        await asyncio.wait_for(stream_of(sync_anthropic).pipe(rso.final()), 10)
    assert time.monotonic() - started < 5


async def test_run_with_an_async_client_inside_a_loop_is_a_configuration_error(
    emulator: ProviderEmulator, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(ConfigurationError, match="deadlock"):
        stream_of(async_anthropic).pipe(rso.final()).run()
    with pytest.raises(ConfigurationError, match="deadlock"):
        next(rxs.to_iterator(stream_of(async_anthropic)))
    assert emulator.requests == []
    await no_other_tasks()


def test_run_with_an_async_client_outside_a_loop_is_a_configuration_error(emulator: ProviderEmulator) -> None:
    client = async_client(emulator)
    with pytest.raises(ConfigurationError, match="running asyncio loop"):
        stream_of(client).pipe(rso.final()).run()
    asyncio.run(client.close())


def test_to_iterator_from_another_thread_reads_an_async_client_on_its_loop(
    emulator: ProviderEmulator,
) -> None:
    emulator.enqueue(ResponseScript(text=TEXT))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        client = async_client(emulator)
        stream = rxs.from_anthropic(
            client,
            model="m",
            max_tokens=100_000,
            messages=[{"role": "user", "content": "hi"}],
            scheduler=AsyncIOScheduler(loop),
        )
        events = list(rxs.to_iterator(stream))
        assert "".join(e.text for e in events if e.type == "text_delta") == TEXT
        asyncio.run_coroutine_threadsafe(client.close(), loop).result(5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


# --- to_async_iterator --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_async_for_delivers_every_event_in_order(emulator: ProviderEmulator, kind: str) -> None:
    emulator.enqueue(ResponseScript(text=TEXT, event_delay=0.001))
    client: Any = sync_client(emulator) if kind == "sync" else async_client(emulator)
    events = [e async for e in rxs.to_async_iterator(stream_of(client))]
    assert [e.seq for e in events] == list(range(len(events)))
    assert events[0].type == "stream_start" and events[-1].type == "stream_end"
    assert "".join(e.text for e in events if e.type == "text_delta") == TEXT
    await close(client)
    await no_other_tasks()


async def test_async_for_raises_the_typed_error_with_partial(
    emulator: ProviderEmulator, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    emulator.enqueue(ResponseScript(text=TEXT, fault=Fault(kind="error_event", after_events=5)))
    got: list[StreamEvent] = []
    with pytest.raises(StreamError) as info:
        async for event in rxs.to_async_iterator(stream_of(async_anthropic)):
            got.append(event)
    assert info.value.partial is not None
    text = "".join(e.text for e in got if e.type == "text_delta")
    assert text and info.value.partial.text == text


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_break_closes_the_connection(emulator: ProviderEmulator, kind: str) -> None:
    emulator.enqueue(STALL)
    client: Any = sync_client(emulator) if kind == "sync" else async_client(emulator)
    async for event in rxs.to_async_iterator(stream_of(client)):
        if event.type == "text_delta":
            break
    await disconnected(emulator)
    await close(client)
    await no_other_tasks()


async def test_exception_in_the_body_closes_the_connection(
    emulator: ProviderEmulator, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    emulator.enqueue(STALL)
    with pytest.raises(KeyError):
        async for event in rxs.to_async_iterator(stream_of(async_anthropic)):
            if event.type == "text_delta":
                raise KeyError("boom")
    await disconnected(emulator)
    await no_other_tasks()


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_cancelling_the_consuming_task_closes_the_connection(
    emulator: ProviderEmulator, kind: str
) -> None:
    emulator.enqueue(STALL)
    client: Any = sync_client(emulator) if kind == "sync" else async_client(emulator)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in rxs.to_async_iterator(stream_of(client)):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await disconnected(emulator)
    await close(client)
    await no_other_tasks()


async def test_aclose_and_async_with_dispose(
    emulator: ProviderEmulator, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    emulator.enqueue(STALL, STALL)
    iterator = rxs.to_async_iterator(stream_of(async_anthropic))
    await anext(iterator)
    await iterator.aclose()  # type: ignore[attr-defined]
    await disconnected(emulator, 0)
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)
    async with rxs.to_async_iterator(stream_of(async_anthropic)) as events:  # type: ignore[attr-defined]
        await anext(events)
    await disconnected(emulator, 1)


async def test_never_iterated_sends_nothing_and_leaks_nothing(
    emulator: ProviderEmulator, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    iterator = rxs.to_async_iterator(stream_of(async_anthropic))
    del iterator
    gc.collect()
    assert emulator.requests == []
    assert other_tasks() == set()


async def test_any_observable_and_a_hot_subject() -> None:
    assert [x async for x in rxs.to_async_iterator(reactivex.of(1, 2, 3), max_buffered=1)] == [1, 2, 3]
    subject: Subject[int] = Subject()
    iterator = rxs.to_async_iterator(subject, max_buffered=2)

    async def collect() -> list[int]:
        return [x async for x in iterator]

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)  # let it subscribe
    for i in range(10):  # a hot source cannot wait: buffered beyond the bound, never lost
        subject.on_next(i)
    subject.on_completed()
    assert await asyncio.wait_for(task, 5) == list(range(10))
    with pytest.raises(ValueError, match="bad"):
        async for _ in rxs.to_async_iterator(reactivex.throw(ValueError("bad"))):
            pass


def test_misuse_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        rxs.to_async_iterator([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rxs.to_async_iterator(reactivex.of(1), max_buffered=0)
    with pytest.raises(ConfigurationError):
        rxs.to_iterator(reactivex.of(1), max_buffered=True)
    with pytest.raises(ConfigurationError):
        rxs.from_async_iterable(42)  # type: ignore[arg-type]


# --- to_iterator --------------------------------------------------------------------------------


def test_to_iterator_order_error_and_break(
    emulator: ProviderEmulator, sync_anthropic: anthropic.Anthropic
) -> None:
    emulator.enqueue(
        ResponseScript(text=TEXT),
        ResponseScript(text=TEXT, fault=Fault(kind="error_event", after_events=3)),
        STALL,
    )
    events = list(rxs.to_iterator(stream_of(sync_anthropic), max_buffered=2))
    assert [e.seq for e in events] == list(range(len(events)))
    assert "".join(e.text for e in events if e.type == "text_delta") == TEXT
    with pytest.raises(StreamError) as info:
        for _ in rxs.to_iterator(stream_of(sync_anthropic)):
            pass
    assert info.value.partial is not None
    for event in rxs.to_iterator(stream_of(sync_anthropic)):
        if event.type == "text_delta":
            break
    record = emulator.wait_for_disconnect(2, 1.0)
    assert record.client_disconnected
    with rxs.to_iterator(reactivex.of(1, 2, 3)) as numbers:  # type: ignore[attr-defined]
        assert next(numbers) == 1
    assert list(numbers) == []


# --- from_async_iterable -----------------------------------------------------------------------


async def test_from_async_iterable_is_cold_and_cancellation_closes_the_generator() -> None:
    calls: list[str] = []
    closed = asyncio.Event()

    async def numbers() -> AsyncIterator[int]:
        calls.append("start")
        try:
            for i in range(1_000_000):
                yield i
                await asyncio.sleep(0)
        finally:
            closed.set()

    source = rxs.from_async_iterable(numbers)
    assert calls == []
    got = await source.pipe(ops.take(3), ops.to_list())
    assert got == [0, 1, 2] and calls == ["start"]
    await asyncio.wait_for(closed.wait(), 1)
    closed.clear()
    async for i in rxs.to_async_iterator(source):
        if i == 5:
            break
    await asyncio.wait_for(closed.wait(), 1)
    assert calls == ["start", "start"]
    await no_other_tasks()


async def test_from_async_iterable_forwards_the_error_and_waits_for_demand() -> None:
    produced: list[int] = []

    async def failing() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("gen failed")

    with pytest.raises(RuntimeError, match="gen failed"):
        async for _ in rxs.to_async_iterator(rxs.from_async_iterable(failing)):
            pass

    async def fast() -> AsyncIterator[int]:
        for i in range(100):
            produced.append(i)
            yield i

    iterator = rxs.to_async_iterator(rxs.from_async_iterable(fast), max_buffered=4)
    assert await anext(iterator) == 0
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(produced) <= 6  # the generator waits while 4 items are buffered
    rest = [x async for x in iterator]
    assert rest == list(range(1, 100))


def test_from_async_iterable_without_a_loop_is_a_configuration_error() -> None:
    async def nothing() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(ConfigurationError):
        rxs.from_async_iterable(nothing).run()


# --- resources ------------------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_two_hundred_sequential_async_streams_leave_nothing_behind(emulator: ProviderEmulator) -> None:
    client = async_client(emulator)
    emulator.enqueue(ResponseScript(text=TEXT))
    _ = [e async for e in rxs.to_async_iterator(stream_of(client))]  # warm the pool
    await asyncio.to_thread(emulator.wait_for_disconnect, 0, 5)
    threads, fds = threading.active_count(), open_fds()
    for i in range(200):
        emulator.enqueue(STALL if i % 2 else ResponseScript(text=TEXT))
        async for event in rxs.to_async_iterator(stream_of(client)):
            if i % 2 and event.type == "text_delta":
                break  # the stalled ones are left early: their connection is closed
    end = time.monotonic() + 5  # polled on the loop: to_thread would add executor threads
    while not all(c.ended for c in emulator.connections[1:]):
        assert time.monotonic() < end, "a connection did not end"
        await asyncio.sleep(0.01)
    assert len(emulator.connections) == 201
    assert sum(c.client_disconnected for c in emulator.connections) == 100
    await no_other_tasks()
    await client.close()
    end = time.monotonic() + 5
    while open_fds() > fds:
        assert time.monotonic() < end, f"file descriptors: {fds} before, {open_fds()} after"
        await asyncio.sleep(0.01)
    assert threading.active_count() <= threads


# --- backpressure ---------------------------------------------------------------------------------

WORD = "w" * 2000
BIG = ResponseScript(text=" ".join([WORD] * 20_000))


async def sample_writes(emu: ProviderEmulator, seconds: float) -> list[int]:
    """The emulator's ``events_written`` every 0.1 s for ``seconds`` (the consumer's sleep)."""
    samples = []
    for _ in range(round(seconds / 0.1)):
        await asyncio.sleep(0.1)
        samples.append(emu.connections[-1].events_written)
    return samples


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_backpressure_stalls_the_server_and_loses_nothing(
    emulator: ProviderEmulator, kind: str
) -> None:
    emulator.enqueue(BIG)
    client: Any = sync_client(emulator) if kind == "sync" else async_client(emulator)
    seqs: list[int] = []
    texts: list[str] = []
    written: list[int] = []
    rss: list[int] = []
    async for event in rxs.to_async_iterator(stream_of(client), max_buffered=256):
        seqs.append(event.seq)
        if event.type == "text_delta":
            texts.append(event.text)
        if len(seqs) == 100:  # the consumer falls asleep for 2 s
            rss.append(rss_kib())
            written.extend(await sample_writes(emulator, 2.0))
            rss.append(rss_kib())
    total = emulator.connections[-1].events_written
    print(f"{kind}: written while asleep {written[0]}..{written[-1]} of {total}; RSS {rss} KiB")
    assert len(set(written[-5:])) == 1 and written[-1] < total  # the server's writes were blocked
    assert rss[1] - rss[0] < 16 * 1024  # bounded: the 20,000 events are ~40 MB on the wire
    assert seqs == list(range(len(seqs)))
    assert "".join(texts) == BIG.text
    await close(client)


async def test_pausable_holds_an_async_source_instead_of_overflowing(
    emulator: ProviderEmulator, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    emulator.enqueue(BIG)
    valve = BehaviorSubject(False)
    got: list[StreamEvent] = []
    done = asyncio.Event()
    failures: list[Exception] = []

    def on_error(error: Exception) -> None:
        failures.append(error)
        done.set()

    stream_of(async_anthropic).pipe(rso.pausable(valve, max_buffered=64)).subscribe(
        got.append, on_error, done.set
    )
    end = time.monotonic() + 5
    while not emulator.connections or emulator.connections[-1].events_written < 10:
        assert time.monotonic() < end
        await asyncio.sleep(0.01)
    written = await sample_writes(emulator, 2.0)
    assert len(set(written[-5:])) == 1 and written[-1] < 20_000  # held: the writes stopped
    assert got == []
    valve.on_next(True)
    await asyncio.wait_for(done.wait(), 30)
    assert failures == []
    assert "".join(e.text for e in got if e.type == "text_delta") == BIG.text


async def test_openai_async_client_also_backpressures(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text=" ".join([WORD] * 10_000)))
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=emulator.openai_base_url, max_retries=0)
    stream = rxs.from_openai(client, model="m", messages=[{"role": "user", "content": "hi"}])
    count = 0
    async for _ in rxs.to_async_iterator(stream, max_buffered=16):
        count += 1
        if count == 10:
            written = await sample_writes(emulator, 1.5)
            assert len(set(written[-5:])) == 1 and written[-1] < 10_000
    assert count > 10_000
    await client.close()


async def test_a_finished_async_for_leaves_no_cyclic_garbage(
    emulator: ProviderEmulator, async_anthropic: anthropic.AsyncAnthropic
) -> None:
    """1,000 concurrent streams: garbage left for the cycle collector inflates the peak RSS.

    The iterator's channel referred to its subscription, which referred back to the channel
    through the observer: 13 objects (~2 KiB) per stream waited for the cycle collector.
    """

    async def one() -> None:
        async for _ in rxs.to_async_iterator(stream_of(async_anthropic)):
            pass

    await one()  # warm-up: imports, the connection pool
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            await one()
        gc.collect()
        garbage = [type(o).__qualname__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert garbage == []

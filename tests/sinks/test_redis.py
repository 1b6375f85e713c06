"""Tests of ``rso.publish_to_redis`` / ``rxs.from_redis`` against a real redis-server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
import reactivex
import redis
import redis.asyncio as aioredis
from reactivex import operators as ops

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    PublishError,
    StreamCancelledError,
    StreamInterruptedError,
    StreamNotFoundError,
)
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta, Usage
from rxstream.response import Response
from rxstream.testing import ProviderEmulator, ResponseScript
from rxstream.testing.redis_server import RedisServer

SECRET = "sk-ant-api03-SECRET-0123456789abcdef"
WORKER = Path(__file__).with_name("redis_worker.py")


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    yield c
    c.close()


def events(n: int, sid: str = "s") -> list[StreamEvent]:
    out: list[StreamEvent] = [StreamStart(stream_id=sid, seq=0, provider="anthropic", model="m")]
    out += [TextDelta(stream_id=sid, seq=i, text=f"w{i} ") for i in range(1, n + 1)]
    out.append(StreamEnd(stream_id=sid, seq=n + 1, stop_reason="end_turn", usage=Usage(output_tokens=n)))
    return out


def publish(client: redis.Redis, key: str, items: list[StreamEvent], **kwargs: Any) -> list[StreamEvent]:
    publisher = rso.publish_to_redis(client, key, **kwargs)
    out = list(reactivex.from_iterable(items).pipe(publisher, ops.to_list()).run())
    assert publisher.join(10)
    return out


def read_all(client: Any, key: str, **kwargs: Any) -> list[StreamEvent]:
    return list(rxs.from_redis(client, key, **kwargs).pipe(ops.to_list()).run())


def test_round_trip_entry_format_ttl_and_trimming(client: redis.Redis) -> None:
    items = events(5)
    assert publish(client, "k", items, ttl=100) == items  # passes through unchanged
    entries = client.xrange("k") or []
    assert len(entries) == 8
    assert entries[1][1] == {b"seq": b"1", b"event": items[1].model_dump_json().encode()}
    assert entries[-1][1] == {b"end": b"completed"}
    assert 0 < client.ttl("k") <= 100
    assert read_all(client, "k") == items
    publish(client, "trimmed", events(1000), maxlen=1)
    assert client.xlen("trimmed") < 1000  # MAXLEN ~ trims at node boundaries


def test_resume_after_seq_has_no_duplicates_and_no_gaps(client: redis.Redis) -> None:
    items = events(20)
    publish(client, "k", items)
    for after in (0, 7, 20, 21):
        assert read_all(client, "k", after_seq=after) == [e for e in items if e.seq > after]


def test_live_tail_and_many_consumers_each_get_the_whole_stream(client: redis.Redis) -> None:
    script = ResponseScript(text=" ".join(f"word{i}" for i in range(30)), event_delay=0.01)
    results: list[list[StreamEvent]] = []
    lock = threading.Lock()
    done = threading.Event()
    consumers = 8

    def collect(items: list[StreamEvent]) -> None:
        with lock:
            results.append(items)
            if len(results) == consumers:
                done.set()

    subs = [
        rxs.from_redis(client, "live", block=20).pipe(ops.to_list()).subscribe(collect)
        for _ in range(consumers)
    ]
    with (
        ProviderEmulator(script) as emu,
        anthropic.Anthropic(api_key=SECRET, base_url=emu.anthropic_base_url) as sdk,
    ):
        stream = rxs.from_anthropic(
            sdk, model="m", max_tokens=99, messages=[{"role": "user", "content": "x"}]
        )
        publisher = rso.publish_to_redis(client, "live")
        produced = list(stream.pipe(publisher, ops.to_list()).run())
        assert publisher.join(10)
    assert done.wait(20)
    for sub in subs:
        sub.dispose()
    assert all(r == produced for r in results)
    dump = repr(client.xrange("live"))
    assert "SECRET" not in dump


def test_error_terminal_reaches_the_consumer_as_the_same_class_with_partial(client: redis.Redis) -> None:
    partial = Response(provider="anthropic", text="w1 ")
    error = ProviderError(
        f"overloaded {SECRET}", status_code=529, error_type="overloaded_error", partial=partial
    )
    publisher = rso.publish_to_redis(client, "e")
    with pytest.raises(ProviderError):
        reactivex.concat(reactivex.from_iterable(events(1)[:2]), reactivex.throw(error)).pipe(publisher).run()
    assert publisher.join(10)
    assert "SECRET" not in repr(client.xrange("e"))
    with pytest.raises(ProviderError) as caught:
        read_all(client, "e")
    assert caught.value.status_code == 529 and caught.value.partial == partial


def test_disposed_producer_gives_consumers_a_cancelled_error(client: redis.Redis) -> None:
    subject: reactivex.subject.Subject[StreamEvent] = reactivex.subject.Subject()
    publisher = rso.publish_to_redis(client, "d")
    sub = subject.pipe(publisher).subscribe()
    subject.on_next(events(1)[0])
    sub.dispose()
    assert publisher.join(10)
    with pytest.raises(StreamCancelledError):
        read_all(client, "d")


def test_missing_key_waits_up_to_block_then_errors_clearly(client: redis.Redis) -> None:
    started = time.monotonic()
    with pytest.raises(StreamNotFoundError, match=r"no stream appeared within 0\.3 s") as caught:
        read_all(client, "nothing-here", block=0.3)
    assert 0.3 <= time.monotonic() - started < 5
    assert caught.value.key == "nothing-here"


def test_disposal_stops_the_blocking_read_within_a_second(client: redis.Redis) -> None:
    sub = rxs.from_redis(client, "never", block=None).subscribe()
    deadline = time.monotonic() + 5
    while not any(t.name == "rxstream-redis-read:never" for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (reader,) = [t for t in threading.enumerate() if t.name == "rxstream-redis-read:never"]
    started = time.monotonic()
    sub.dispose()
    reader.join(5)
    assert not reader.is_alive()
    assert time.monotonic() - started <= 1.0


def test_redis_going_away_mid_stream(redis_server: RedisServer, client: redis.Redis) -> None:
    script = ResponseScript(text=" ".join(f"word{i}" for i in range(40)), event_delay=0.02)
    reported: list[PublishError] = []
    on_channel: list[PublishError] = []
    consumer_error: list[Exception] = []
    consumer_done = threading.Event()
    seen = threading.Event()

    def consumer_next(event: StreamEvent) -> None:
        if event.seq >= 5:
            seen.set()

    def consumer_fail(exc: Exception) -> None:
        consumer_error.append(exc)
        consumer_done.set()

    consumer = rxs.from_redis(client, "gone", block=20).subscribe(consumer_next, consumer_fail)
    publisher = rso.publish_to_redis(client, "gone", on_publish_error=reported.append)
    publisher.errors.subscribe(on_channel.append)

    def kill_when_seen(event: StreamEvent) -> None:
        if event.seq == 10:
            assert seen.wait(10)
            redis_server.stop()

    with (
        ProviderEmulator(script) as emu,
        anthropic.Anthropic(api_key=SECRET, base_url=emu.anthropic_base_url) as sdk,
    ):
        stream = rxs.from_anthropic(
            sdk, model="m", max_tokens=99, messages=[{"role": "user", "content": "x"}]
        )
        response = stream.pipe(ops.do_action(kill_when_seen), publisher, rso.final()).run()
    assert response.text == script.text  # the local stream kept flowing
    assert publisher.join(10)
    assert len(reported) == 1 and on_channel == reported
    assert isinstance(reported[0], PublishError) and reported[0].key == "gone"
    assert consumer_done.wait(10)
    consumer.dispose()
    (error,) = consumer_error
    assert isinstance(error, StreamInterruptedError) and "after_seq=" in str(error)
    assert error.partial.text


async def test_asyncio_client_publish_and_consume(redis_server: RedisServer) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        items = events(10)
        received: asyncio.Future[list[StreamEvent]] = asyncio.get_running_loop().create_future()
        got: list[StreamEvent] = []

        def done() -> None:
            received.set_result(got)

        consumer = rxs.from_redis(client, "a", block=10).subscribe(got.append, received.set_exception, done)
        publisher = rso.publish_to_redis(client, "a")
        reactivex.from_iterable(items).pipe(publisher).subscribe()
        await publisher.wait_closed()
        assert await asyncio.wait_for(received, 10) == items
        consumer.dispose()
        resumed: list[StreamEvent] = []
        finished = asyncio.Event()
        rxs.from_redis(client, "a", after_seq=4).subscribe(resumed.append, on_completed=finished.set)
        await asyncio.wait_for(finished.wait(), 10)
        assert resumed == items[5:]
        # disposal cancels a blocked asyncio reader at once
        before = asyncio.all_tasks()
        waiting = rxs.from_redis(client, "never", block=None).subscribe()
        (reader,) = asyncio.all_tasks() - before
        await asyncio.sleep(0.05)
        assert not reader.done()
        waiting.dispose()
        await asyncio.wait_for(asyncio.wait({reader}), 1.0)
        assert reader.cancelled()
    finally:
        await client.aclose()


async def test_asyncio_publisher_reports_a_lost_server_and_keeps_the_local_stream(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        reported: list[PublishError] = []
        publisher = rso.publish_to_redis(client, "a", on_publish_error=reported.append)
        subject: reactivex.subject.Subject[StreamEvent] = reactivex.subject.Subject()
        local: list[StreamEvent] = []
        subject.pipe(publisher).subscribe(local.append)
        items = events(6)
        for event in items[:3]:
            subject.on_next(event)
        while await client.xlen("a") < 3:  # the writer task caught up
            await asyncio.sleep(0.01)
        redis_server.stop()
        for event in items[3:]:
            subject.on_next(event)
        subject.on_completed()
        await asyncio.wait_for(publisher.wait_closed(), 10)
        assert local == items
        assert len(reported) == 1 and reported[0].seq == 3 and reported[0].partial.text == "w1 w2 "
    finally:
        await client.aclose()


def test_bad_arguments_raise_at_call_time(client: redis.Redis) -> None:
    with pytest.raises(ConfigurationError):
        rso.publish_to_redis(object(), "k")
    with pytest.raises(ConfigurationError):
        rso.publish_to_redis(client, "")
    with pytest.raises(ConfigurationError):
        rso.publish_to_redis(client, "k", maxlen=0)
    with pytest.raises(ConfigurationError):
        rxs.from_redis(client, "k", block=-1)
    with pytest.raises(ConfigurationError):
        rxs.from_redis(client, "k", after_seq="3")  # type: ignore[arg-type]


def test_split_deployment_consumer_killed_mid_answer_resumes_with_its_last_seq(
    redis_server: RedisServer,
) -> None:
    text = " ".join(f"token{i}" for i in range(60))
    producer = subprocess.Popen(
        [sys.executable, str(WORKER), "produce", redis_server.url, "split", text],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = subprocess.Popen(
        [sys.executable, str(WORKER), "consume", redis_server.url, "split"], stdout=subprocess.PIPE, text=True
    )
    assert first.stdout is not None
    lines: list[dict[str, Any]] = []
    for raw in first.stdout:
        lines.append(json.loads(raw))
        if len(lines) == 12:
            first.kill()  # mid-answer: the producer is still streaming
            break
    first.wait(10)
    first.stdout.close()
    last_seq = lines[-1]["seq"]
    second = subprocess.run(
        [sys.executable, str(WORKER), "consume", redis_server.url, "split", str(last_seq)],
        capture_output=True,
        text=True,
        timeout=50,
        check=True,
    )
    rest = [json.loads(line) for line in second.stdout.splitlines()]
    assert rest[-1] == {"end": "completed"}
    seqs = [line["seq"] for line in lines + rest[:-1]]
    assert seqs == list(range(len(seqs)))  # no duplicate, no gap
    assert "".join(line["text"] or "" for line in lines + rest[:-1]) == text
    out, _ = producer.communicate(timeout=50)
    assert json.loads(out.splitlines()[-1]) == {"published": text}

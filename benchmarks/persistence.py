"""Telemetry, cassette and Redis costs: ``python benchmarks/persistence.py [--quick]``.

* per-event cost (µs/event added over a bare subscription, median of 5 runs) of
  ``rso.traced()`` with the OpenTelemetry no-op API and with the SDK (BatchSpanProcessor on a
  discarding exporter + a MeterProvider), of ``rso.record`` to a file, of
  ``rso.publish_to_redis`` (the pipelined background writer: the cost seen by the stream, and
  until the last entry is written) against one synchronous ``XADD`` round trip per event,
  and of ``rxs.from_redis`` reading a published key;
* Redis fan-out: 1 producer → 100 consumers of one key on loopback (sync clients, a thread
  per consumer): events/s delivered and end-to-end latency p50/p99 (publish → consumer).

Needs the ``otel`` and ``redis`` extras, ``opentelemetry-sdk`` and a ``redis-server``
executable (started on a free port by `rxstream.testing.redis_server.RedisServer`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import reactivex
import redis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from reactivex import Observable
from reactivex import operators as ops
from reactivex.scheduler import CurrentThreadScheduler

import rxstream as rxs
from rxstream import operators as rso
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta, Usage
from rxstream.testing.redis_server import RedisServer


class _Discard(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def make_events(n: int, sid: str = "rxs_bench") -> list[StreamEvent]:
    events: list[StreamEvent] = [StreamStart(stream_id=sid, seq=0, provider="anthropic", model="m")]
    events += [TextDelta(stream_id=sid, seq=i, text=f" w{i % 97}") for i in range(1, n - 1)]
    events.append(StreamEnd(stream_id=sid, seq=n - 1, stop_reason="end_turn", usage=Usage(output_tokens=n)))
    return events


def run_through(
    events: list[StreamEvent], operator: Callable[[Observable[Any]], Observable[Any]] | None
) -> float:
    source: Observable[StreamEvent] = reactivex.from_iterable(events)
    stream = source.pipe(operator) if operator is not None else source
    done = threading.Event()
    t0 = time.perf_counter()
    stream.subscribe(lambda _: None, lambda e: done.set(), done.set, scheduler=CurrentThreadScheduler())
    done.wait(300)
    return time.perf_counter() - t0


def per_event_costs(server: RedisServer, n: int, repeat: int) -> list[dict[str, Any]]:
    events = make_events(n)
    client = redis.Redis.from_url(server.url)
    tmp = Path(tempfile.mkdtemp(prefix="rxstream-bench-"))
    base = statistics.median(run_through(events, None) for _ in range(repeat))
    rows: list[dict[str, Any]] = [{"what": "(bare subscription)", "us": base / n * 1e6}]

    def add(name: str, times: list[float]) -> None:
        rows.append({"what": name, "us": (statistics.median(times) - base) / n * 1e6})

    add(
        "traced() — OpenTelemetry API only (no-op)",
        [run_through(events, rso.traced()) for _ in range(repeat)],
    )
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    add(
        "traced() — SDK, BatchSpanProcessor + MeterProvider",
        [
            run_through(events, rso.traced(tracer_provider=tracer_provider, meter_provider=meter_provider))
            for _ in range(repeat)
        ],
    )
    tracer_provider.shutdown()
    meter_provider.shutdown()
    add("record(file)", [run_through(events, rso.record(tmp / f"c{i}.jsonl")) for i in range(repeat)])

    # publish_to_redis: what the stream pays (enqueue) and the time until Redis has everything
    seen: list[float] = []
    written: list[float] = []
    for i in range(repeat):
        publisher = rso.publish_to_redis(client, f"bench:pub:{i}", maxlen=None)
        t0 = time.perf_counter()
        seen.append(run_through(events, publisher))
        publisher.join(300)
        written.append(time.perf_counter() - t0)
    add("publish_to_redis — cost seen by the stream (pipelined writer)", seen)
    add("publish_to_redis — until the last entry is in Redis", written)

    def xadd_each(key: str) -> Callable[[Observable[Any]], Observable[Any]]:
        def write(event: StreamEvent) -> None:
            client.xadd(key, {"seq": str(event.seq), "event": event.model_dump_json()})

        return ops.do_action(write)

    per_event = [run_through(events, xadd_each(f"bench:each:{i}")) for i in range(repeat)]
    add("one synchronous XADD round trip per event (the alternative)", per_event)

    reads = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = rxs.from_redis(client, "bench:pub:0").pipe(ops.count()).run()
        reads.append(time.perf_counter() - t0)
        assert got == n, got
    rows.append(
        {
            "what": "from_redis — reading a published key (total per event)",
            "us": statistics.median(reads) / n * 1e6,
        }
    )
    client.close()
    return rows


def fan_out(server: RedisServer, consumers: int, events_total: int, rate: float) -> dict[str, Any]:
    client = redis.Redis.from_url(server.url, max_connections=consumers + 8)
    key = f"bench:fanout:{consumers}:{events_total}:{rate:g}"
    sent: dict[int, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    finished = threading.Barrier(consumers + 1)
    received = [0]

    def on_next(event: StreamEvent) -> None:
        now = time.perf_counter()
        with lock:
            latencies.append(now - sent[event.seq])
            received[0] += 1

    def arrive(_: Exception | None = None) -> None:
        finished.wait()

    subs = [
        rxs.from_redis(client, key, block=60).subscribe(on_next, arrive, arrive) for _ in range(consumers)
    ]
    events = make_events(events_total, sid="rxs_fanout")
    period = 1.0 / rate

    def paced(observer: Any, scheduler: Any = None) -> Any:
        def produce() -> None:
            start = time.perf_counter()
            for i, event in enumerate(events):
                delay = start + i * period - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sent[event.seq] = time.perf_counter()
                observer.on_next(event)
            observer.on_completed()

        threading.Thread(target=produce, daemon=True).start()
        return reactivex.disposable.Disposable()

    publisher = rso.publish_to_redis(client, key, maxlen=None)
    t0 = time.perf_counter()
    reactivex.create(paced).pipe(publisher).subscribe()
    finished.wait(600)
    elapsed = time.perf_counter() - t0
    for sub in subs:
        sub.dispose()
    publisher.join(30)
    client.close()
    ordered = sorted(latencies)
    return {
        "consumers": consumers,
        "events_per_consumer": events_total,
        "producer_rate": rate,
        "delivered_events_per_s": received[0] / elapsed,
        "latency_p50_ms": ordered[len(ordered) // 2] * 1e3,
        "latency_p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
        "delivered": received[0],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = parser.parse_args(argv)
    n, repeat = (2_000, 1) if args.quick else (20_000, 5)
    # (consumers, events, producer events/s): an LLM-like rate, then one that saturates the readers
    runs = [(10, 200, 500.0)] if args.quick else [(100, 500, 100.0), (100, 2_000, 500.0)]
    with RedisServer() as server:
        rows = per_event_costs(server, n, repeat)
        fans = [fan_out(server, consumers, total, rate) for consumers, total, rate in runs]
    print(f"| per event ({n:,} in-memory events, median of {repeat}) | µs/event |")
    print("|---|---:|")
    for row in rows:
        print(f"| {row['what']} | {row['us']:.2f} |")
    for fan in fans:
        print()
        print(
            f"Fan-out: 1 producer at {fan['producer_rate']:.0f} events/s → {fan['consumers']} consumers "
            f"x {fan['events_per_consumer']:,} events: "
            f"{fan['delivered_events_per_s']:,.0f} events/s delivered, "
            f"latency p50 {fan['latency_p50_ms']:.2f} ms, p99 {fan['latency_p99_ms']:.2f} ms "
            f"({fan['delivered']:,} deliveries)."
        )
    return {"per_event": rows, "fan_out": fans}


if __name__ == "__main__":
    main()

"""Operator, handler and pause costs (run by ``python benchmarks/run.py``; or on its own).

* each operator alone: µs/event added over a bare subscription, on 50,000 in-memory events
  (45,000 one-word text deltas among stream start/usage/end and tool calls), read on the
  current thread; median of 5 runs;
* chains of 5 operators (``python benchmarks/operators.py --chains``): µs/event in total
  (bare subscription included) on the same events, contenders interleaved (bare, chain 1,
  chain 2, ... per round), median of ``--repeat`` rounds (default 9): CPU time of the
  reading thread (robust to other load on the machine) and wall time, plus the median of the
  per-round CPU differences to the bare subscription;
* callback overhead per `StreamHandler` attached with `rxstream.handlers.attach`;
* memory held by a paused stream at its bound (`pausable(max_buffered=N)`), measured with
  tracemalloc while the producer is blocked.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.scheduler import CurrentThreadScheduler
from reactivex.subject import BehaviorSubject, Subject

from rxstream import operators as rso
from rxstream.events import (
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)
from rxstream.handlers import StreamHandler, attach


def make_events(n: int = 50_000) -> list[StreamEvent]:
    sid = "rxs_bench"
    events: list[StreamEvent] = [StreamStart(stream_id=sid, seq=0, provider="anthropic", model="m")]
    seq = 1
    for i in range(n - 10):
        events.append(TextDelta(stream_id=sid, seq=seq, text=f" w{i % 97}"))
        seq += 1
        if i % 10_000 == 5_000:
            events.append(ToolCallStart(stream_id=sid, seq=seq, index=i, id=f"t{i}", name="f"))
            events.append(ToolCallDelta(stream_id=sid, seq=seq + 1, index=i, arguments_delta="{}"))
            events.append(
                ToolCallEnd(stream_id=sid, seq=seq + 2, index=i, id=f"t{i}", name="f", arguments={})
            )
            seq += 3
    events.append(UsageUpdate(stream_id=sid, seq=seq, usage={"input_tokens": 1, "output_tokens": n}))  # type: ignore[arg-type]
    events.append(StreamEnd(stream_id=sid, seq=seq + 1, stop_reason="end_turn"))
    return events


def run_through(
    events: list[StreamEvent], operator: Callable[[Observable[Any]], Observable[Any]] | None
) -> float:
    source: Observable[StreamEvent] = reactivex.from_iterable(events)
    stream = source.pipe(operator) if operator is not None else source
    done = threading.Event()
    t0 = time.perf_counter()
    stream.subscribe(lambda _: None, lambda e: done.set(), done.set, scheduler=CurrentThreadScheduler())
    done.wait(120)
    return time.perf_counter() - t0


OPERATORS: dict[str, Callable[[], Callable[[Observable[Any]], Observable[Any]]]] = {
    "text()": rso.text,
    "final()": rso.final,
    "coalesce_text(0.05)": lambda: rso.coalesce_text(0.05),
    "buffer_tokens(16)": lambda: rso.buffer_tokens(16),
    "throttle_snapshots(0.1)": lambda: rso.throttle_snapshots(0.1),
    "stream_stats()": rso.stream_stats,
    "first_token_timeout(30)": lambda: rso.first_token_timeout(30),
    "idle_timeout(30)": lambda: rso.idle_timeout(30),
    "total_timeout(300)": lambda: rso.total_timeout(300),
    "retry_stream()": rso.retry_stream,
    "pausable(open valve)": lambda: rso.pausable(BehaviorSubject(True)),
    "take_until_cancelled(Subject)": lambda: rso.take_until_cancelled(Subject()),
    "ops.map (stock, for scale)": lambda: ops.map(lambda e: e),
}


def _chains() -> dict[str, Callable[[], list[Callable[[Observable[Any]], Observable[Any]]]]]:
    """Realistic chains of 5 operators, as ``pipe`` would apply them (source first)."""
    return {
        "pausable → idle_timeout → retry_stream → coalesce_text → stream_stats": lambda: [
            rso.pausable(BehaviorSubject(True)),
            rso.idle_timeout(30),
            rso.retry_stream(),
            rso.coalesce_text(0.05),
            rso.stream_stats(),
        ],
        "first_token_timeout → idle_timeout → total_timeout → retry_stream → final": lambda: [
            rso.first_token_timeout(30),
            rso.idle_timeout(30),
            rso.total_timeout(300),
            rso.retry_stream(),
            rso.final(),
        ],
        "take_until_cancelled → idle_timeout → retry_stream → coalesce_text → text": lambda: [
            rso.take_until_cancelled(Subject()),
            rso.idle_timeout(30),
            rso.retry_stream(),
            rso.coalesce_text(0.05),
            rso.text(),
        ],
        "first_token_timeout → retry_stream → pausable → take_until_cancelled → throttle_snapshots": lambda: [
            rso.first_token_timeout(30),
            rso.retry_stream(),
            rso.pausable(BehaviorSubject(True)),
            rso.take_until_cancelled(Subject()),
            rso.throttle_snapshots(0.1),
        ],
        "idle_timeout → retry_stream → pausable → take_until_cancelled → stream_stats": lambda: [
            rso.idle_timeout(30),
            rso.retry_stream(),
            rso.pausable(BehaviorSubject(True)),
            rso.take_until_cancelled(Subject()),
            rso.stream_stats(),
        ],
    }


def _timed_run(
    events: list[StreamEvent], steps: list[Callable[[Observable[Any]], Observable[Any]]]
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the reading thread) for one subscription through ``steps``."""
    source: Observable[Any] = reactivex.from_iterable(events)
    stream = source.pipe(*steps) if steps else source
    done = threading.Event()
    c0 = time.thread_time()
    t0 = time.perf_counter()
    stream.subscribe(lambda _: None, lambda e: done.set(), done.set, scheduler=CurrentThreadScheduler())
    done.wait(120)
    return time.perf_counter() - t0, time.thread_time() - c0


def chain_costs(repeat: int = 9) -> list[dict[str, Any]]:
    """Chains of 5 operators against the bare subscription, interleaved round by round.

    Each row: median wall µs/event, median CPU µs/event of the reading thread (the events
    are read synchronously on it, so this is the chain's cost without the time the thread
    waited for a core on a loaded machine), and the median of the per-round CPU differences
    to the bare subscription.
    """
    events = make_events()
    n = len(events)
    contenders: dict[str, Callable[[], list[Callable[[Observable[Any]], Observable[Any]]]]] = {
        "(bare subscription)": list
    }
    contenders.update(_chains())
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    _timed_run(events, [])  # warm-up
    for _ in range(repeat):
        for name, build in contenders.items():
            w, c = _timed_run(events, build())
            wall[name].append(w)
            cpu[name].append(c)
    bare = cpu["(bare subscription)"]
    per_event = 1e6 / n
    return [
        {
            "chain": name,
            "us_per_event_wall": statistics.median(wall[name]) * per_event,
            "us_per_event": statistics.median(cpu[name]) * per_event,
            "us_per_event_added": statistics.median(v - b for v, b in zip(cpu[name], bare, strict=True))
            * per_event,
        }
        for name in contenders
    ]


def print_chains(rows: list[dict[str, Any]]) -> None:
    print(
        "| chain of 5 (50k in-memory events, interleaved rounds) | CPU µs/event | CPU µs/event added "
        "| wall µs/event |"
    )
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['chain']} | {row['us_per_event']:.2f} | {row['us_per_event_added']:.2f} "
            f"| {row['us_per_event_wall']:.2f} |"
        )


def operator_costs(repeat: int = 5) -> list[dict[str, Any]]:
    events = make_events()
    n = len(events)
    base = statistics.median(run_through(events, None) for _ in range(repeat))
    rows = []
    for name, factory in OPERATORS.items():
        times = [run_through(events, factory()) for _ in range(repeat)]
        rows.append({"operator": name, "us_per_event_added": (statistics.median(times) - base) / n * 1e6})
    rows.insert(0, {"operator": "(bare subscription)", "us_per_event_added": base / n * 1e6})
    return rows


class _Counting(StreamHandler):
    def __init__(self) -> None:
        self.tokens = 0

    def on_token_received(self, token: str, index: int) -> None:
        self.tokens += 1


def handler_costs(repeat: int = 5) -> list[dict[str, Any]]:
    events = make_events()
    n = len(events)
    rows = []
    for count in (1, 2, 4, 8):
        times = []
        for _ in range(repeat):
            handlers = [_Counting() for _ in range(count)]
            t0 = time.perf_counter()
            attachment = attach(
                reactivex.from_iterable(events), *handlers, scheduler=CurrentThreadScheduler()
            )
            times.append(time.perf_counter() - t0)
            assert attachment.finished and all(h.tokens > 0 for h in handlers)
        rows.append({"handlers": count, "us_per_event": statistics.median(times) / n * 1e6})
    return rows


def paused_memory(max_buffered: int = 10_000) -> dict[str, Any]:
    """Bytes traced while a producer thread is blocked on a closed valve at the bound."""
    total = max_buffered * 3

    def fresh_events() -> Any:  # built as the source reads, like a real stream's events
        yield StreamStart(stream_id="rxs_mem", seq=0, provider="anthropic")
        for i in range(1, total - 1):
            yield TextDelta(stream_id="rxs_mem", seq=i, text=f" word{i % 97}")
        yield StreamEnd(stream_id="rxs_mem", seq=total - 1, stop_reason="end_turn")

    valve: BehaviorSubject[bool] = BehaviorSubject(False)
    received: list[Any] = []
    done = threading.Event()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    source: Observable[StreamEvent] = reactivex.from_iterable(
        fresh_events(), scheduler=reactivex.scheduler.NewThreadScheduler()
    )
    source.pipe(rso.pausable(valve, max_buffered=max_buffered)).subscribe(
        received.append, lambda e: done.set(), done.set
    )
    time.sleep(1.0)  # the producer fills the buffer, then blocks
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    valve.on_next(True)
    done.wait(30)
    return {
        "max_buffered": max_buffered,
        "events_in_stream": total,
        "held_bytes": held,
        "bytes_per_held_event": held / max_buffered,
        "delivered_after_resume": len(received),
    }


def print_tables(
    op_rows: list[dict[str, Any]], handler_rows: list[dict[str, Any]], memory: dict[str, Any]
) -> None:
    print("| operator (alone, 50k in-memory events) | µs/event added |")
    print("|---|---:|")
    for row in op_rows:
        print(f"| {row['operator']} | {row['us_per_event_added']:.2f} |")
    print()
    print("| handlers attached (one subscription) | µs/event total |")
    print("|---:|---:|")
    for row in handler_rows:
        print(f"| {row['handlers']} | {row['us_per_event']:.2f} |")
    print()
    print(
        f"Paused at the bound: {memory['max_buffered']} events held ≈ {memory['held_bytes'] / 1e6:.1f} MB "
        f"({memory['bytes_per_held_event']:.0f} B/event); after resume {memory['delivered_after_resume']} of "
        f"{memory['events_in_stream']} events delivered."
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chains", action="store_true", help="only the chains of 5 operators")
    parser.add_argument("--repeat", type=int, default=9, help="interleaved rounds for the chains")
    args = parser.parse_args([] if argv is None else argv)
    chain_rows = chain_costs(args.repeat)
    print_chains(chain_rows)
    print()
    if args.chains:
        return {"chains": chain_rows}
    op_rows = operator_costs()
    handler_rows = handler_costs()
    memory = paused_memory()
    print_tables(op_rows, handler_rows, memory)
    return {"chains": chain_rows, "operators": op_rows, "handlers": handler_rows, "paused_memory": memory}


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

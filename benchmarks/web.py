"""Web and notebook sink costs: ``python benchmarks/web.py`` (about 30 s).

* ``to_sse`` per event, both protocols, over 20,000 in-memory events (one-word text deltas
  between stream start/usage/end), fully consumed on an asyncio loop; vs writing the same
  events' SSE JSON by hand (``model_dump_json`` / ``json.dumps`` of the AI SDK chunk) in a
  plain loop. Median of 5 runs, µs/event.
* ``rxs.notebook.display_stream`` at 100 text events/s for 5 s with ``interval=0.1``
  (outside a kernel: IPython's display writes to a discarded stdout): display updates per
  second actually sent, and CPU time of the process as % of one core, minus the same source
  without a display.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import statistics
import time

import reactivex
from reactivex import operators as ops

import rxstream as rxs
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta, Usage, UsageUpdate

N = 20_000


def make_events(n: int = N) -> list[StreamEvent]:
    events: list[StreamEvent] = [StreamStart(stream_id="s", seq=0, provider="anthropic", model="m")]
    events += [TextDelta(stream_id="s", seq=i, text=f" w{i % 97}") for i in range(1, n - 1)]
    events.append(UsageUpdate(stream_id="s", seq=n - 1, usage=Usage(input_tokens=1, output_tokens=n)))
    events.append(StreamEnd(stream_id="s", seq=n, stop_reason="end_turn"))
    return events


def by_hand_rxstream(events: list[StreamEvent]) -> int:
    size = 0
    for e in events:
        size += len(f"event: {e.type}\ndata: {e.model_dump_json()}\n\n".encode())
    return size


def by_hand_ai_sdk(events: list[StreamEvent]) -> int:
    size = 0
    for e in events:
        if isinstance(e, TextDelta):
            chunk = {"type": "text-delta", "id": "text-0", "delta": e.text}
            size += len(f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode())
    return size


async def consume(events: list[StreamEvent], protocol: rxs.web.Protocol) -> int:
    size = 0
    async for frame in rxs.web.to_sse(reactivex.from_iterable(events), protocol=protocol, ping=15.0):
        size += len(frame)
    return size


def median_us(run: object, events: list[StreamEvent], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(events) * 1e6


def sse_table() -> None:
    events = make_events()
    rows = [
        ("rxstream", lambda: asyncio.run(consume(events, "rxstream")), lambda: by_hand_rxstream(events)),
        ("ai-sdk", lambda: asyncio.run(consume(events, "ai-sdk")), lambda: by_hand_ai_sdk(events)),
    ]
    print("| protocol | to_sse µs/event | by hand µs/event | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, ours, hand in rows:
        a, b = median_us(ours, events), median_us(hand, events)
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f} |")


def notebook_cpu(seconds: float = 5.0, rate: float = 100.0) -> None:
    count = int(seconds * rate)

    def source() -> reactivex.Observable[StreamEvent]:
        ticks = reactivex.interval(1.0 / rate).pipe(ops.take(count))
        return ticks.pipe(ops.map(lambda i: TextDelta(stream_id="s", seq=i + 1, text=f" word{i}")))

    async def run(with_display: bool) -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        updates = 0
        if with_display:
            from IPython.core.interactiveshell import InteractiveShell

            InteractiveShell.instance()  # display() needs a shell; its publisher prints to stdout
            with contextlib.redirect_stdout(io.StringIO()):
                shown = rxs.notebook.display_stream(source(), interval=0.1)
                await shown.wait()
            updates = shown.updates
        else:
            done = asyncio.Event()
            source().subscribe(on_completed=lambda: loop.call_soon_threadsafe(done.set))
            await done.wait()
        wall = time.perf_counter() - wall0
        return (time.process_time() - cpu0) / wall * 100, round(updates / wall, 1)  # type: ignore[return-value]

    base, _ = asyncio.run(run(False))
    shown, per_second = asyncio.run(run(True))
    print(f"\nnotebook display at {rate:.0f} events/s, interval=0.1 s, {seconds:.0f} s")
    print("| updates/s sent | CPU % of one core (display) | CPU % (source alone) | net CPU % |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {per_second} | {shown:.1f} | {base:.1f} | {shown - base:.1f} |")


if __name__ == "__main__":
    sse_table()
    notebook_cpu()

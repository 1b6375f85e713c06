"""Structured-output and MCP-sink costs: ``python benchmarks/structured.py [--quick]``.

* ``rso.structured(Model)`` cost per text delta on JSON answers of 2 kB, 20 kB and 200 kB
  (4-character deltas, in memory, current thread), minus a bare subscription; compared with
  the naive approach (re-validate the whole text with pydantic's partial validation after
  every delta) where that finishes in reasonable time. Median of N runs.
* ``rxs.mcp.stream_to_context`` on a 2,000-token fast stream (emulator, official Anthropic
  SDK, FastMCP in-memory client with a progress handler, ``interval=0.25``): notifications
  sent, notifications per second, and process CPU seconds for the call, against reading the
  same stream with ``rxs.to_async_iterator`` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from typing import Any

import reactivex
from fastmcp import Client, Context, FastMCP  # module level: FastMCP resolves `ctx: Context`
from pydantic import BaseModel, TypeAdapter, ValidationError

from rxstream import operators as rso
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta


class Item(BaseModel):
    name: str = ""
    qty: int = 0
    note: str = ""


class Catalogue(BaseModel):
    title: str = ""
    items: list[Item] = []


def catalogue_json(size: int) -> str:
    items: list[Item] = []
    text = ""
    while len(text) < size:
        i = len(items)
        items.append(Item(name=f"item {i}", qty=i, note="lorem ipsum dolor sit amet " * 2))
        text = Catalogue(title="bench", items=items).model_dump_json()
    return text


def events_for(text: str, piece: int = 4) -> list[StreamEvent]:
    events: list[StreamEvent] = [StreamStart(stream_id="b", seq=0, provider="anthropic")]
    events += [
        TextDelta(stream_id="b", seq=i + 1, text=text[i : i + piece]) for i in range(0, len(text), piece)
    ]
    events.append(StreamEnd(stream_id="b", seq=len(events), stop_reason="end_turn"))
    return events


def timed(fn: Any, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def naive(events: list[StreamEvent]) -> None:
    adapter = TypeAdapter(Catalogue)
    parts: list[str] = []
    for event in events:
        if isinstance(event, TextDelta):
            parts.append(event.text)
            with contextlib.suppress(ValidationError):
                adapter.validate_json("".join(parts), experimental_allow_partial="trailing-strings")


def bench_structured(sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        events = events_for(catalogue_json(size))
        deltas = len(events) - 2

        def bare(events: list[StreamEvent] = events) -> None:
            reactivex.from_iterable(events).subscribe(lambda _: None)

        operator = rso.structured(Catalogue)  # built once: the TypeAdapter is not what we measure

        def ours(events: list[StreamEvent] = events, operator: Any = operator) -> None:
            out: list[Any] = []
            reactivex.from_iterable(events).pipe(operator).subscribe(out.append)
            assert isinstance(out[-1], rso.FinalOutput)

        base = timed(bare, repeat)
        cost = (timed(ours, repeat) - base) / deltas * 1e6
        naive_cost = (
            (timed(lambda events=events: naive(events), max(1, repeat // 2)) / deltas * 1e6)
            if size <= 20_000
            else None
        )
        rows.append(
            {"size_bytes": size, "deltas": deltas, "us_per_delta": cost, "naive_us_per_delta": naive_cost}
        )
    return rows


async def bench_mcp(tokens: int, repeat: int) -> dict[str, Any]:
    import anthropic

    import rxstream as rxs
    from rxstream.aio import to_async_iterator
    from rxstream.mcp import stream_to_context
    from rxstream.testing import ProviderEmulator, ResponseScript

    text = " ".join(f"tok{i}" for i in range(tokens))
    results: dict[str, list[float]] = {
        "notifications": [],
        "rate": [],
        "cpu_mcp": [],
        "cpu_plain": [],
        "wall": [],
    }
    with ProviderEmulator() as emu:
        client = anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="sk-bench")

        def stream() -> Any:
            return rxs.from_anthropic(
                client, model="m", max_tokens=10_000, messages=[{"role": "user", "content": "x"}]
            )

        server = FastMCP("bench")

        @server.tool
        async def ask(ctx: Context) -> str:
            return (await stream_to_context(stream(), ctx, interval=0.25)).text

        count = 0

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            nonlocal count
            count += 1

        async with Client(server, progress_handler=on_progress) as mcp:
            for _ in range(repeat):
                emu.enqueue(ResponseScript(text=text), ResponseScript(text=text))
                count = 0
                cpu, wall = time.process_time(), time.perf_counter()
                result = await mcp.call_tool("ask", {})
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                assert result.data == text
                results["notifications"].append(count)
                results["rate"].append(count / wall)
                results["cpu_mcp"].append(cpu)
                results["wall"].append(wall)
                cpu = time.process_time()
                async for _ in to_async_iterator(stream()):
                    pass
                results["cpu_plain"].append(time.process_time() - cpu)
        client.close()
    return {key: statistics.median(values) for key, values in results.items()} | {"tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    sizes = [2_000, 20_000] if args.quick else [2_000, 20_000, 200_000]
    print("| JSON answer | deltas | structured µs/delta | naive re-validate µs/delta |")
    print("|---:|---:|---:|---:|")
    for row in bench_structured(sizes, repeat):
        naive_cost = "n/a" if row["naive_us_per_delta"] is None else f"{row['naive_us_per_delta']:.1f}"
        size = f"{row['size_bytes'] // 1000} kB"
        print(f"| {size} | {row['deltas']:,} | {row['us_per_delta']:.2f} | {naive_cost} |")
    mcp = asyncio.run(bench_mcp(200 if args.quick else 2_000, repeat))
    print()
    print("| tokens | notifications | per second | wall s | CPU s (MCP) | CPU s (plain) |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {mcp['tokens']:,} | {mcp['notifications']:.0f} | {mcp['rate']:.1f} | {mcp['wall']:.2f} "
        f"| {mcp['cpu_mcp']:.2f} | {mcp['cpu_plain']:.2f} |"
    )


if __name__ == "__main__":
    main()

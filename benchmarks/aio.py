"""asyncio bridge and race benchmark. One command: ``python benchmarks/aio.py`` (``--quick``).

1. ``async for`` over ``rxs.to_async_iterator(rxs.from_anthropic(AsyncAnthropic(...)))`` vs a
   raw ``async for`` over the async SDK's own stream (``messages.create(stream=True)``), same
   emulator script, same run, alternating; median seconds and µs/event, and the ratio. Also
   the bridge alone: ``to_async_iterator`` over an in-memory Observable (µs/item).
2. N concurrent slow async streams (50 events 20 ms apart) in one process, emulator in a
   separate process: wall time (vs one stream), threads, and peak RSS growth per stream for
   rxstream vs the raw async SDK (each in a fresh subprocess). Then the same N with a sync
   client: threads used and RSS per stream.
3. race_first_token: time from the winner's first token to each loser's disconnect (the
   emulator's record), median and max over repeated races of 3 sources.

Figures are machine-dependent; only same-run comparisons mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import anthropic
import reactivex

import rxstream as rxs
from rxstream.testing import ProviderEmulator, ResponseScript

KEY = "sk-bench"


# --- 1. async for: bridge vs raw SDK ---------------------------------------------------------------


async def _rx_once(client: anthropic.AsyncAnthropic) -> int:
    stream = rxs.from_anthropic(
        client, model="m", max_tokens=100_000, messages=[{"role": "user", "content": "x"}]
    )
    count = 0
    async for _ in rxs.to_async_iterator(stream):
        count += 1
    return count


async def _raw_once(client: anthropic.AsyncAnthropic) -> int:
    count = 0
    stream = await client.messages.create(
        model="m", max_tokens=100_000, messages=[{"role": "user", "content": "x"}], stream=True
    )
    async for _ in stream:
        count += 1
    return count


def bench_async_for(words: int, repeat: int) -> dict[str, Any]:
    script = ResponseScript(text=" ".join(f"w{i % 97}" for i in range(words)))
    with ProviderEmulator(script) as emu:

        async def run() -> dict[str, Any]:
            client = anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.anthropic_base_url, max_retries=0)
            await _rx_once(client)
            await _raw_once(client)  # warm both paths
            rx_times, raw_times = [], []
            events = 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                events = await _rx_once(client)
                rx_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await _raw_once(client)
                raw_times.append(time.perf_counter() - t0)
            await client.close()
            rx, raw = statistics.median(rx_times), statistics.median(raw_times)
            return {
                "events": events,
                "rxstream_s": rx,
                "raw_sdk_s": raw,
                "rxstream_us_per_event": rx / events * 1e6,
                "raw_us_per_event": raw / events * 1e6,
                "ratio": rx / raw,
            }

        return asyncio.run(run())


def bench_bridge_alone(items: int, repeat: int) -> float:
    data = list(range(items))

    async def run() -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            async for _ in rxs.to_async_iterator(reactivex.from_iterable(data)):
                pass
            times.append(time.perf_counter() - t0)
        return statistics.median(times) / items * 1e6

    return asyncio.run(run())


# --- 2. many concurrent streams ----------------------------------------------------------------

_EMULATOR = """
import sys, time
from rxstream.testing import ProviderEmulator, ResponseScript
script = ResponseScript(text=" ".join(["w"] * 48), event_delay=0.02)
with ProviderEmulator(script) as emu:
    print(emu.anthropic_base_url, flush=True)
    sys.stdin.read()
"""

_CLIENT = """
import asyncio, json, resource, sys, threading, time
import anthropic, httpx2
import rxstream as rxs
mode, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
params = dict(model="m", max_tokens=100_000, messages=[{"role": "user", "content": "x"}])

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

peak = [0]
def watch(stop):
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib())
        time.sleep(0.02)

limits = httpx2.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
timeout = httpx2.Timeout(300.0)  # a loaded one-process emulator may take seconds to accept 1,000 connections
if mode == "sync":
    client = anthropic.Anthropic(api_key="k", base_url=url, max_retries=0, timeout=timeout,
                                 http_client=anthropic.DefaultHttpxClient(limits=limits))
else:
    client = anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0, timeout=timeout,
                                      http_client=anthropic.DefaultAsyncHttpxClient(limits=limits))

async def one_rx():
    c = 0
    async for _ in rxs.to_async_iterator(rxs.from_anthropic(client, **params)):
        c += 1
    return c

async def one_raw():
    c = 0
    async for _ in await client.messages.create(stream=True, **params):
        c += 1
    return c

async def main():
    one = one_raw if mode == "raw" else one_rx
    await one()  # warm-up: imports, pool
    base = rss_kib()
    stop = threading.Event(); t = threading.Thread(target=watch, args=(stop,), daemon=True); t.start()
    threads = [0]
    async def sample():
        while True:
            threads[0] = max(threads[0], threading.active_count()); await asyncio.sleep(0.05)
    s = asyncio.create_task(sample())
    t0 = time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(n)))
    wall = time.perf_counter() - t0
    s.cancel(); stop.set(); t.join()
    t1 = time.perf_counter(); await one(); single = time.perf_counter() - t1
    print(json.dumps({"mode": mode, "n": n, "completed": sum(1 for c in counts if c > 50), "wall_s": wall,
                      "single_s": single, "peak_threads": threads[0],
                      "rss_growth_kib_per_stream": (max(peak[0], rss_kib()) - base) / n}))

asyncio.run(main())
"""


def bench_concurrent(n: int) -> list[dict[str, Any]]:
    emu = subprocess.Popen(
        [sys.executable, "-c", _EMULATOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert emu.stdout is not None
        url = emu.stdout.readline().strip()
        results = []
        for mode in ("raw", "rxstream", "sync"):
            out = subprocess.run(
                [sys.executable, "-c", _CLIENT, mode, str(n), url],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if out.returncode != 0:
                results.append({"mode": mode, "error": out.stderr.strip().splitlines()[-1:]})
            else:
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        return results
    finally:
        if emu.stdin is not None:
            emu.stdin.close()
        try:
            emu.wait(15)
        except subprocess.TimeoutExpired:
            emu.kill()


# --- 3. race loser disconnect latency ----------------------------------------------------------------


def bench_race(trials: int) -> dict[str, Any]:
    scripts = {
        "fast": ResponseScript(model="fast", text="fast answer", first_event_delay=0.05),
        "slow1": ResponseScript(model="slow1", text="slow", first_event_delay=5),
        "slow2": ResponseScript(model="slow2", text="slow", first_event_delay=5),
    }
    latencies: list[float] = []
    with ProviderEmulator(responder=lambda _p, body: scripts[body["model"]]) as emu:
        client = anthropic.Anthropic(api_key=KEY, base_url=emu.anthropic_base_url, max_retries=0)
        for _ in range(trials):
            start = len(emu.connections)
            first: list[float] = []
            done = threading.Event()

            def on_next(event: Any, first: list[float] = first) -> None:
                if event.type == "text_delta" and not first:
                    first.append(time.monotonic())

            sources = {
                name: rxs.from_anthropic(
                    client, model=name, max_tokens=1024, messages=[{"role": "user", "content": "hi"}]
                )
                for name in scripts
            }
            rxs.race_first_token(sources).subscribe(on_next, lambda _e, d=done: d.set(), done.set)
            done.wait(10)
            deadline = time.monotonic() + 5  # a loser disposed before its request went out has no record
            while not all(r.ended for r in emu.connections[start:]) and time.monotonic() < deadline:
                time.sleep(0.005)
            for record in emu.connections[start:]:
                if record.client_disconnected and record.disconnected_at is not None:
                    latencies.append(record.disconnected_at - first[0])
        client.close()
    return {
        "losers": len(latencies),
        "median_ms": statistics.median(latencies) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--streams", type=int, default=None, help="concurrent streams (default 1000)")
    parser.add_argument("--only", default=None, help="comma-separated sections to run")
    args = parser.parse_args()
    words, repeat, streams, trials = (2_000, 3, 100, 5) if args.quick else (20_000, 7, 1_000, 30)
    streams = args.streams or streams
    sections = {
        "async_for": lambda: bench_async_for(words, repeat),
        "bridge_alone_us_per_item": lambda: bench_bridge_alone(100_000 if not args.quick else 10_000, repeat),
        "race": lambda: bench_race(trials),
        "concurrent": lambda: bench_concurrent(streams),
    }
    only = set(args.only.split(",")) if args.only else set(sections)
    for name, run in sections.items():  # one JSON line per section, as soon as it is measured
        if name not in only:
            continue
        print(json.dumps({name: run()}), flush=True)
    print(json.dumps({"bench_peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()

"""rxstream against the decode floor: where the per-event time goes, per wire format.

One command: ``python benchmarks/floor.py`` (``--quick`` for short streams, ``--repeat N``).

Two measurements on the same recorded bodies, contenders interleaved (one of each per round,
after a warm-up round), medians of same-round ratios:

* **CPU path** (no socket, no thread), all five formats: body bytes in 64 KiB pieces →
  decode (`SSEDecoder` / `decode_frames`) → ``jiter`` per event (the floor) against the same
  → the rxstream normaliser → `ResponseAccumulator` (what a source does per event).
* **Socket path**, Anthropic text, through a replay server in its own process: the floor
  (httpx2 body bytes → SSE → ``jiter``), the same decode on the Anthropic SDK's own raw
  response (``with_streaming_response``), and rxstream's
  ``from_anthropic(...).pipe(rso.final()).run()`` on the default thread pool and on the
  calling thread.

``--profile`` prints the cProfile of the CPU path of Anthropic text instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import jiter
import run as harness
from reactivex.scheduler import CurrentThreadScheduler

import rxstream as rxs
from rxstream import operators as rso
from rxstream.providers._eventstream import decode_frames
from rxstream.providers._sse import SSEDecoder
from rxstream.providers.anthropic import AnthropicNormaliser
from rxstream.providers.bedrock import BedrockConverseNormaliser, BedrockInvokeNormaliser
from rxstream.providers.openai_chat import OpenAIChatNormaliser
from rxstream.providers.openai_responses import OpenAIResponsesNormaliser
from rxstream.response import ResponseAccumulator

ROOT = Path(__file__).resolve().parent
NORMALISERS: dict[str, Callable[[], Any]] = {
    "anthropic-text": lambda: AnthropicNormaliser("s"),
    "openai-text": lambda: OpenAIChatNormaliser("s"),
    "responses-text": lambda: OpenAIResponsesNormaliser("s"),
    "bedrock-converse-text": lambda: BedrockConverseNormaliser("s"),
    "bedrock-invoke-text": lambda: BedrockInvokeNormaliser("s"),
}


def floor_sse(pieces: Iterable[bytes]) -> int:
    decoder, n = SSEDecoder(), 0
    for piece in pieces:
        for sse in decoder.feed(piece):
            if sse.data[:1] == b"{":
                jiter.from_json(sse.data)
            n += 1
    return n


def floor_frames(pieces: list[bytes], invoke: bool) -> int:
    n = 0
    for event in decode_frames(pieces):
        if invoke:
            jiter.from_json(event["chunk"]["bytes"])
        n += 1
    return n


def ours_sse(pieces: list[bytes], norm: Any) -> Any:
    decoder, acc = SSEDecoder(), ResponseAccumulator()
    add, feed = acc.add, norm.feed_sse
    for piece in pieces:
        for sse in decoder.feed(piece):
            for event in feed(sse.event, sse.data):
                add(event)
    for event in norm.finish():
        add(event)
    return acc.snapshot()


def ours_frames(pieces: list[bytes], norm: Any) -> Any:
    acc = ResponseAccumulator()
    add, feed = acc.add, norm.feed
    for frame in decode_frames(pieces):
        for event in feed(frame):
            add(event)
    for event in norm.finish():
        add(event)
    return acc.snapshot()


def cpu_contenders(name: str, body: bytes) -> dict[str, Callable[[], Any]]:
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    make = NORMALISERS[name]
    if name.startswith("bedrock"):
        invoke = name == "bedrock-invoke-text"
        return {
            "floor": lambda: floor_frames(pieces, invoke),
            "rxstream": lambda: ours_frames(pieces, make()),
        }
    return {"floor": lambda: floor_sse(pieces), "rxstream": lambda: ours_sse(pieces, make())}


def interleave(contenders: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    for fn in contenders.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeat):
        for k, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return times


def socket_contenders(
    s: harness.Scenario, base: str, http: httpx2.Client, client: anthropic.Anthropic
) -> dict[str, Callable[[], Any]]:
    params = s.params()  # the replay server routes by path and model (named after the scenario)
    body = s.spec.http_body(params)

    def floor() -> int:
        with http.stream("POST", base + s.path, json=body) as response:
            return floor_sse(response.iter_bytes())

    def sdk_floor() -> int:
        with client.messages.with_streaming_response.create(stream=True, **params) as response:
            return floor_sse(response.http_response.iter_bytes())

    return {
        "floor": floor,
        "sdk raw response + same decode": sdk_floor,
        "rxstream final() (thread pool)": lambda: (
            rxs.from_anthropic(client, **params).pipe(rso.final()).run()
        ),
        "rxstream final() (calling thread)": lambda: (
            rxs.from_anthropic(client, scheduler=CurrentThreadScheduler(), **params).pipe(rso.final()).run()
        ),
    }


def report(title: str, times: dict[str, list[float]], events: int) -> None:
    print(f"\n{title}\n")
    print("| contender | µs per wire event | / floor (same-round median) |")
    print("|---|---:|---:|")
    for name, series in times.items():
        ratio = statistics.median(t / f for t, f in zip(series, times["floor"], strict=True))
        print(f"| {name} | {statistics.median(series) / events * 1e6:.2f} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short streams, for a smoke run")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (median)")
    parser.add_argument("--profile", action="store_true", help="cProfile the Anthropic CPU path")
    args = parser.parse_args()
    scenarios = [s for s in harness.scenarios(args.quick) if s.name in NORMALISERS]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("recording bodies through the emulator ...", file=sys.stderr)
        harness.record(scenarios, root)
        if args.profile:
            body = (root / "anthropic-text.bin").read_bytes()
            ours = cpu_contenders("anthropic-text", body)["rxstream"]
            profiler = cProfile.Profile()
            profiler.runcall(ours)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(16)
            return
        for s in scenarios:
            times = interleave(cpu_contenders(s.name, (root / f"{s.name}.bin").read_bytes()), args.repeat)
            report(f"CPU path, {s.name} ({s.events} wire events)", times, s.events)
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "_replay_server.py"), str(root)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            base = f"http://127.0.0.1:{int(server.stdout.readline())}"
            text = next(s for s in scenarios if s.name == "anthropic-text")
            with (
                httpx2.Client(timeout=600) as http,
                anthropic.Anthropic(api_key="sk-bench", base_url=base, max_retries=0) as client,
            ):
                times = interleave(socket_contenders(text, base, http, client), args.repeat)
            report(f"Socket path, anthropic-text ({text.events} wire events)", times, text.events)
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
            if server.stdout is not None:
                server.stdout.close()


if __name__ == "__main__":
    main()

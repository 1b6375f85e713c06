"""Tool-loop overhead beyond the model streams: ``python benchmarks/tool_loop.py``.

Setup: 10 Anthropic model turns of ``--words`` one-word text deltas are rendered once by the
emulator; turns 1-9 each ask for K no-op tool calls, turn 10 answers. A replay server in a
separate process (no GIL contention, bodies written in 64 KiB pieces) answers a request with
turn ``n`` when it carries ``n * K`` tool results. A sync Anthropic client.

* (A) ``tool_loop(..., max_iterations=10)`` over those 10 turns, subscribe → completion;
* (B) the same 10 requests (the exact bodies the loop sent, replayed) as ten separate
  ``from_anthropic(...).pipe(final()).run()`` calls, on the same response bytes.

Overhead per iteration = (A - B) / 10, measured with K = 1 and K = 4 no-op tools per turn;
per tool call = the growth of that overhead from K = 1 to K = 4, per extra call. Both
async and sync no-op tools are measured (sync tools hop to a worker thread). Medians of
``--repeat`` alternating runs. The two CPU cores of the test machine are shared, so read
the ratios more than the absolute figures.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import uvicorn
from reactivex import operators as ops

import rxstream as rxs
from rxstream import operators as rso
from rxstream.testing import ProviderEmulator, ResponseScript, ScriptedToolCall


@rxs.tool
async def noop_async(i: int) -> str:
    """Does nothing."""
    return "ok"


@rxs.tool
def noop_sync(i: int) -> str:
    """Does nothing."""
    return "ok"


def scripts(words: int, calls: int, tool_name: str) -> list[ResponseScript]:
    text = " ".join(f"w{i}" for i in range(words))
    turns = [
        ResponseScript(
            text=text,
            tool_calls=[
                ScriptedToolCall(id=f"toolu_{t}_{c}", name=tool_name, arguments=f'{{"i": {c}}}')
                for c in range(calls)
            ],
            stop_reason="tool_use",
        )
        for t in range(9)
    ]
    return [*turns, ResponseScript(text=text)]


def time_loop(client: Any, tool: rxs.Tool) -> tuple[float, int]:
    done = threading.Event()
    count = [0]

    def on_next(_: object) -> None:
        count[0] += 1

    stream = rxs.tool_loop(
        rxs.from_anthropic,
        client,
        tools=[tool],
        max_iterations=10,
        model="m",
        max_tokens=4096,
        messages=[{"role": "user", "content": "go"}],
    )
    start = time.perf_counter()
    stream.subscribe(on_next, lambda e: done.set(), done.set)
    assert done.wait(120)
    return time.perf_counter() - start, count[0]


def time_separate(client: Any, bodies: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for body in bodies:
        rxs.from_anthropic(client, **body).pipe(rso.final()).run()
    return time.perf_counter() - start


def record(turns: list[ResponseScript], root: Path) -> None:
    """The exact response bytes of each turn, rendered by the emulator."""
    with ProviderEmulator() as emu, httpx2.Client(timeout=600) as http:
        for i, turn in enumerate(turns):
            emu.enqueue(turn)
            request = {
                "model": "m",
                "max_tokens": 64000,
                "messages": [{"role": "user", "content": "x"}],
                "stream": True,
            }
            (root / f"{i}.bin").write_bytes(
                http.post(emu.anthropic_base_url + "/v1/messages", json=request).content
            )


def serve(root: Path, calls: int) -> None:
    """Replay server: turn n for a request carrying n * calls tool results."""
    bodies = [p.read_bytes() for p in sorted(root.glob("*.bin"), key=lambda p: int(p.stem))]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = bytearray()
        more = True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        body = bodies[min(bytes(raw).count(b'"tool_use_id"') // calls, len(bodies) - 1)]
        headers = [(b"content-type", b"text/event-stream"), (b"request-id", b"req_bench")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(0, len(body), 65536):
            await send({"type": "http.response.body", "body": body[i : i + 65536], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue up until uvicorn accepts them
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="error", access_log=False, lifespan="off", timeout_keep_alive=600)
    uvicorn.Server(config).run(sockets=[sock])


def measure(words: int, calls: int, tool: rxs.Tool, repeat: int) -> dict[str, float]:
    turns = scripts(words, calls, tool.name)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        record(turns, root)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(root), "--calls", str(calls)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            base = f"http://127.0.0.1:{port}"
            client = anthropic.Anthropic(api_key="bench", base_url=base, max_retries=0)
            bodies = capture_bodies(client, tool)
            time_loop(client, tool)  # warm-up
            turn_events = sum(len(rxs.from_anthropic(client, **b).pipe(ops.to_list()).run()) for b in bodies)
            loop_times, sep_times = [], []
            n_events = 0
            for _ in range(repeat):
                t, n_events = time_loop(client, tool)
                loop_times.append(t)
                sep_times.append(time_separate(client, bodies))
            client.close()
        finally:
            server.terminate()
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            if server.stdout is not None:
                server.stdout.close()
    a, b = statistics.median(loop_times), statistics.median(sep_times)
    return {
        "loop_s": a,
        "separate_s": b,
        "overhead_per_iteration_us": (a - b) / 10 * 1e6,
        "overhead_min_us": (min(loop_times) - min(sep_times)) / 10 * 1e6,
        "loop_events_per_s": n_events / a,
        "separate_events_per_s": turn_events / b,
        "events": n_events,
    }


def capture_bodies(client: Any, tool: rxs.Tool) -> list[dict[str, Any]]:
    """The 10 request parameter sets the loop sends (read from the loop's own history)."""
    stream = rxs.tool_loop(
        rxs.from_anthropic,
        client,
        tools=[tool],
        max_iterations=10,
        model="m",
        max_tokens=4096,
        messages=[{"role": "user", "content": "go"}],
    )
    events = stream.pipe(ops.to_list()).run()
    history: list[Any] = []
    bodies = []
    tools = [{"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}]
    for e in events:
        details = e.provider_details or {}
        if e.type == "iteration_start":
            if e.iteration == 1:
                history = list(details["messages"])
            bodies.append({"model": "m", "max_tokens": 4096, "messages": list(history), "tools": tools})
        elif e.type == "iteration_end":
            history.extend(details["messages"])
    assert len(bodies) == 10, len(bodies)
    return bodies


def relay_cost(n: int = 50_000, repeat: int = 5) -> float:
    """µs per model-turn event spent in the loop's relay (restamp seq/stream_id + accumulate)."""
    from reactivex.observer import Observer

    from rxstream.events import TextDelta
    from rxstream.tools.loop import _LoopRun

    events = [TextDelta(stream_id="s", seq=i, text=f" w{i}") for i in range(n)]
    times = []
    for _ in range(repeat):
        settings: Any = types.SimpleNamespace(history=[])  # emit uses no other setting
        run = _LoopRun(settings, Observer(), None)
        start = time.perf_counter()
        for e in events:
            run.emit(e)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=2000, help="text deltas per turn")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve), args.calls)
        return
    print(f"10-iteration loop, {args.words} text deltas per turn, median of {args.repeat}\n")
    print(
        "| tools | K calls/turn | loop (ms) | 10 separate runs (ms) | overhead µs/iteration "
        "| loop events/s | separate events/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    results: dict[tuple[str, int], dict[str, float]] = {}
    for tool in (noop_async, noop_sync):
        for calls in (1, 4):
            r = measure(args.words, calls, tool, args.repeat)
            results[(tool.name, calls)] = r
            print(
                f"| {tool.name} | {calls} | {r['loop_s'] * 1e3:.1f} | {r['separate_s'] * 1e3:.1f} "
                f"| {r['overhead_per_iteration_us']:.0f}; {r['overhead_min_us']:.0f} "
                f"| {r['loop_events_per_s']:,.0f} "
                f"| {r['separate_events_per_s']:,.0f} |"
            )
    print()
    print(f"relay per model-turn event (restamp + accumulate, in-process): {relay_cost():.2f} µs")
    for name in (noop_async.name, noop_sync.name):
        one, four = results[(name, 1)], results[(name, 4)]
        per_call = (four["overhead_per_iteration_us"] - one["overhead_per_iteration_us"]) * 10 / (9 * 3)
        per_call_min = (four["overhead_min_us"] - one["overhead_min_us"]) * 10 / (9 * 3)
        print(f"{name}: ~{per_call:.0f} µs (median), ~{per_call_min:.0f} µs (min) per extra tool call")


if __name__ == "__main__":
    main()

"""Soak benchmark: thousands of streams over all five providers, with faults and disposals.

One command: ``python benchmarks/soak.py --streams 2000`` (``--concurrent M``, ``--in-flight K``,
``--fault-rate``, ``--dispose-rate``, ``--seed``).

Against one `ProviderEmulator`, with one long-lived official SDK client per provider and mode
(sync and async clients; Bedrock is sync-only in boto3), it runs ``--streams`` streams one
after the other, then ``--concurrent`` more with up to ``--in-flight`` open at once. Each
stream draws (seeded) a provider and mode round-robin, a scripted fault with probability
``--fault-rate`` (the emulator's `Fault`: an in-stream error event, a dropped connection, a
short stall, an HTTP 429/529) and a disposal with probability ``--dispose-rate`` (after a
random number of events, from the reader's ``on_next``, or from another thread while the
request is opening).

Checked per stream (an *invariant violation* otherwise): a stream not disposed gets exactly one
terminal within ``--deadline`` seconds and no event after it; the terminal is ``on_completed``
or a typed `StreamError` whose ``.partial.text`` equals the delivered text; a disposed stream
gets no terminal after its disposal; the emulator sees the connection end. A stream with no
fault and no disposal must complete with exactly the scripted text: anything else is a
*failure without fault* (must be 0). Errors whose class does not match the scripted fault are
counted as *misclassified*.

Printed: a table per provider/mode, the threads, fds, sockets and RSS before (after a warm-up)
and after (clients still open, then closed), and the emulator's asyncio "socket.send() raised
exception" warnings. Exits 1 when there is a failure without fault or a violation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anthropic
import boto3
import openai
from botocore.config import Config
from reactivex import Observable, abc
from reactivex.scheduler.eventloop import AsyncIOScheduler

import rxstream as rxs
from rxstream.errors import ProviderError, StreamError, StreamInterruptedError
from rxstream.events import StreamEvent
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall

TARGETS = [
    ("anthropic", "sync"),
    ("anthropic", "async"),
    ("openai", "sync"),
    ("openai", "async"),
    ("openai-responses", "sync"),
    ("openai-responses", "async"),
    ("bedrock", "sync"),
    ("bedrock-invoke", "sync"),
]
WORDS = ["alpha", "beta", "gamma", "délta", "雪", "👋", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
MARKER = re.compile(r"soak-(\d+)")


@dataclass
class Plan:
    index: int
    provider: str
    mode: str
    script: ResponseScript
    dispose_after: int | None  # events; -1 = while the request is opening


@dataclass
class Result:
    plan: Plan
    events: list[StreamEvent] = field(default_factory=list)
    terminals: list[tuple[str, BaseException | None]] = field(default_factory=list)
    late_events: int = 0
    disposed: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    failed_without_fault: bool = False
    misclassified: bool = False
    error: str = ""


def make_plan(index: int, rng: random.Random, fault_rate: float, dispose_rate: float) -> Plan:
    provider, mode = TARGETS[index % len(TARGETS)]
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
    tools = []
    if rng.random() < 0.2:
        tools = [ScriptedToolCall(id=f"call_{index}", name="lookup", arguments=json.dumps({"q": text[:20]}))]
    n_events = len(text.split()) + 4
    fault = None
    if rng.random() < fault_rate:
        kind = rng.choice(["error_event", "drop", "stall", "http_error"])
        after = rng.randint(0, n_events)
        if kind == "http_error":
            fault = Fault(kind="http_error", status=rng.choice([429, 500, 529]), retry_after=0)
        elif kind == "stall":
            fault = Fault(kind="stall", after_events=after, stall_seconds=rng.choice([0.01, 0.05]))
        else:
            fault = Fault(kind=kind, after_events=after)
    dispose_after = None
    if rng.random() < dispose_rate:
        dispose_after = rng.choice([-1, *range(0, n_events)])
    script = ResponseScript(
        text=text,
        tool_calls=tools,
        stop_reason="tool_use" if tools else "end_turn",
        chunking=rng.choice(["words", "chars"]),
        chunk_size=rng.randint(1, 4),
        headers_delay=0.02 if dispose_after == -1 else 0.0,
        write_split_seed=rng.randint(0, 10**6) if rng.random() < 0.3 else None,
        fault=fault,
    )
    return Plan(index, provider, mode, script, dispose_after)


# -- clients and sources ----------------------------------------------------------------------


class Clients:
    def __init__(self, emu: ProviderEmulator, loop: asyncio.AbstractEventLoop) -> None:
        self.emu = emu
        self.loop = loop
        self.sync: dict[str, Any] = {
            "anthropic": anthropic.Anthropic(
                api_key="sk-soak", base_url=emu.anthropic_base_url, max_retries=0
            ),
            "openai": openai.OpenAI(api_key="sk-soak", base_url=emu.openai_base_url, max_retries=0),
        }
        self.sync["openai-responses"] = self.sync["openai"]
        bedrock = boto3.client(
            "bedrock-runtime",
            endpoint_url=emu.bedrock_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="soak",
            aws_secret_access_key="soak",
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=64),
        )
        self.sync["bedrock"] = self.sync["bedrock-invoke"] = bedrock
        self.async_: dict[str, Any] = {
            "anthropic": anthropic.AsyncAnthropic(
                api_key="sk-soak", base_url=emu.anthropic_base_url, max_retries=0
            ),
            "openai": openai.AsyncOpenAI(api_key="sk-soak", base_url=emu.openai_base_url, max_retries=0),
        }
        self.async_["openai-responses"] = self.async_["openai"]

    def source(self, plan: Plan) -> Observable[StreamEvent]:
        client = (self.sync if plan.mode == "sync" else self.async_)[plan.provider]
        marker = f"soak-{plan.index}"
        if plan.provider == "anthropic":
            messages: Any = [{"role": "user", "content": marker}]
            return rxs.from_anthropic(client, model="m", max_tokens=256, messages=messages)
        if plan.provider == "openai":
            return rxs.from_openai(client, model="m", messages=[{"role": "user", "content": marker}])
        if plan.provider == "openai-responses":
            return rxs.from_openai_responses(client, model="m", input=marker)
        if plan.provider == "bedrock":
            messages = [{"role": "user", "content": [{"text": marker}]}]
            return rxs.from_bedrock(client, modelId="m", messages=messages)
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": [marker]}
        return rxs.from_bedrock_invoke(client, modelId="m", body=json.dumps(body))

    def close(self) -> None:
        for client in {id(c): c for c in self.sync.values()}.values():
            client.close()
        for client in {id(c): c for c in self.async_.values()}.values():
            asyncio.run_coroutine_threadsafe(client.close(), self.loop).result(10)


# -- one stream ------------------------------------------------------------------------------------


def run_stream(plan: Plan, clients: Clients, deadline: float) -> Result:
    result = Result(plan)
    done = threading.Event()
    box: list[abc.DisposableBase] = []
    subscribed = threading.Event()
    lock = threading.Lock()
    started = time.perf_counter()

    def dispose() -> None:
        with lock:
            if result.disposed:
                return
            result.disposed = True
        subscribed.wait()  # subscribe() may not have returned yet on the subscribing thread
        box[0].dispose()
        done.set()

    def on_next(event: StreamEvent) -> None:
        if result.terminals or result.disposed:
            result.late_events += 1
        result.events.append(event)
        if plan.dispose_after is not None and len(result.events) == plan.dispose_after + 1:
            dispose()

    def on_error(error: Exception) -> None:
        result.terminals.append(("error", error))
        done.set()

    def on_completed() -> None:
        result.terminals.append(("completed", None))
        done.set()

    stream = clients.source(plan)
    scheduler = AsyncIOScheduler(clients.loop) if plan.mode == "async" else None
    box.append(stream.subscribe(on_next, on_error, on_completed, scheduler=scheduler))
    subscribed.set()
    if plan.dispose_after == -1:
        threading.Thread(target=dispose, name="soak-dispose").start()
    if not done.wait(deadline):
        result.problems.append(f"no terminal within {deadline}s")
        box[0].dispose()
    result.seconds = time.perf_counter() - started
    return result


def check(result: Result) -> None:
    """Record the broken invariants, then drop the events and errors (memory stays flat)."""
    _check(result)
    error = result.terminals[0][1] if result.terminals else None
    result.error = f"{type(error).__name__}: {error}" if error is not None else ""
    result.terminals = [(kind, None) for kind, _ in result.terminals]
    result.events.clear()


def checked(result: Result) -> Result:
    check(result)
    return result


def _check(result: Result) -> None:
    plan = result.plan
    text = "".join(e.text for e in result.events if e.type == "text_delta")
    if result.late_events:
        result.problems.append(f"{result.late_events} events after the terminal or disposal")
    if not result.disposed:
        if len(result.terminals) != 1 and not result.problems:
            result.problems.append(f"{len(result.terminals)} terminals")
        if result.terminals:
            kind, error = result.terminals[0]
            if kind == "error":
                if not isinstance(error, StreamError):
                    result.problems.append(f"untyped error {type(error).__name__}: {error}")
                elif error.partial.text != text:
                    result.problems.append("partial text differs from the delivered text")
                fault = plan.script.fault
                if fault is None:
                    result.failed_without_fault = True
                else:
                    expected = StreamInterruptedError if fault.kind == "drop" else ProviderError
                    if fault.kind == "stall" or not isinstance(error, expected):
                        result.misclassified = True
            elif _expects_full_text(plan) and text != plan.script.text:
                result.problems.append("completed with the wrong text")
    elif len(result.terminals) > 1:
        result.problems.append(f"{len(result.terminals)} terminals after disposal")


def _expects_full_text(plan: Plan) -> bool:
    fault = plan.script.fault
    return fault is None or fault.kind == "stall"


def wait_connections_ended(emu: ProviderEmulator, deadline: float) -> int:
    """Connections the emulator still streams after ``deadline`` seconds (should be 0)."""
    end = time.monotonic() + deadline
    while True:
        running = sum(1 for c in emu.connections if not c.ended)
        if running == 0 or time.monotonic() > end:
            return running
        time.sleep(0.05)


# -- resources ----------------------------------------------------------------------------------------


def resources() -> dict[str, float]:
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        with contextlib.suppress(OSError):
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    rss = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return {"threads": threading.active_count(), "fds": len(fds), "sockets": sockets, "rss_mb": rss}


def settled(before: dict[str, float], timeout: float = 3.0) -> dict[str, float]:
    """Resources once the emulator (same process) has closed its ends of the closed connections.

    Polls until the socket count is back to ``before`` or has not changed for 0.5 s.
    """
    gc.collect()  # boto3's close() leaves its pooled urllib3 connections to the GC
    end = time.monotonic() + timeout
    last, since = resources(), time.monotonic()
    while time.monotonic() < end and last["sockets"] > before["sockets"] and time.monotonic() - since < 0.5:
        time.sleep(0.05)
        now = resources()
        if now["sockets"] != last["sockets"]:
            since = time.monotonic()
        last = now
    return last


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


# -- main -------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=2000, help="sequential streams")
    parser.add_argument("--concurrent", type=int, default=None, help="concurrent streams (default streams/4)")
    parser.add_argument("--in-flight", type=int, default=16, help="concurrent streams open at once")
    parser.add_argument("--fault-rate", type=float, default=0.25)
    parser.add_argument("--dispose-rate", type=float, default=0.1)
    parser.add_argument("--deadline", type=float, default=20.0, help="seconds a stream may take")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    concurrent = args.streams // 4 if args.concurrent is None else args.concurrent
    rng = random.Random(args.seed)
    plans = [make_plan(i, rng, args.fault_rate, args.dispose_rate) for i in range(args.streams + concurrent)]
    by_index = {p.index: p for p in plans}

    def responder(provider: str, body: dict[str, Any]) -> ResponseScript:
        match = MARKER.search(json.dumps(body))
        return by_index[int(match[1])].script if match else ResponseScript(text="warm up")

    warnings = _Count()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(warnings)
    asyncio_logger.propagate = False
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, name="soak-loop", daemon=True)
    loop_thread.start()
    results: list[Result] = []
    with ProviderEmulator(responder=responder) as emu:
        clients = Clients(emu, loop)
        warm = [Plan(-1, p, m, ResponseScript(text="warm up"), None) for p, m in TARGETS]
        for plan in warm:
            plan.index = 10**9  # no marker match: the responder's warm-up script
            run_stream(plan, clients, args.deadline)
        gc.collect()
        before = resources()
        started = time.perf_counter()
        for plan in plans[: args.streams]:
            results.append(checked(run_stream(plan, clients, args.deadline)))
        sequential_s = time.perf_counter() - started
        started = time.perf_counter()
        with ThreadPoolExecutor(args.in_flight, thread_name_prefix="soak-driver") as pool:
            results += list(
                pool.map(lambda p: checked(run_stream(p, clients, args.deadline)), plans[args.streams :])
            )
        concurrent_s = time.perf_counter() - started
        still_streaming = wait_connections_ended(emu, args.deadline)
        gc.collect()
        after_open = resources()
        clients.close()
        after_closed = settled(before)
    loop.call_soon_threadsafe(loop.stop)
    loop_thread.join(10)
    loop.close()
    report(results, args, concurrent, sequential_s, concurrent_s, before, after_open, after_closed)
    print(f"emulator connections still streaming after the run: {still_streaming}")
    print(f'emulator asyncio warnings ("socket.send() raised exception." etc.): {warnings.count}')
    bad = sum(r.failed_without_fault or bool(r.problems) for r in results)
    return 1 if bad or still_streaming else 0


def report(
    results: list[Result],
    args: argparse.Namespace,
    concurrent: int,
    sequential_s: float,
    concurrent_s: float,
    before: dict[str, float],
    after_open: dict[str, float],
    after_closed: dict[str, float],
) -> None:
    print(
        f"soak: {args.streams} sequential ({sequential_s:.1f} s) + {concurrent} concurrent "
        f"(in flight {args.in_flight}, {concurrent_s:.1f} s); fault rate {args.fault_rate}, "
        f"dispose rate {args.dispose_rate}, seed {args.seed}\n"
    )
    rows: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for result in results:
        rows[(result.plan.provider, result.plan.mode)].append(result)
    header = (
        "| provider | mode | streams | completed | faulted | disposed | failed w/o fault "
        "| violations | misclassified | median ms |"
    )
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (provider, mode), group in sorted(rows.items()):
        completed = sum(1 for r in group if r.terminals and r.terminals[0][0] == "completed")
        print(
            f"| {provider} | {mode} | {len(group)} | {completed} "
            f"| {sum(r.plan.script.fault is not None for r in group)} | {sum(r.disposed for r in group)} "
            f"| {sum(r.failed_without_fault for r in group)} | {sum(bool(r.problems) for r in group)} "
            f"| {sum(r.misclassified for r in group)} "
            f"| {statistics.median(r.seconds for r in group) * 1000:.1f} |"
        )
    print("\n| resource | before | after (clients open) | after (clients closed) |")
    print("|---|---:|---:|---:|")
    for key in before:
        print(f"| {key} | {before[key]:.0f} | {after_open[key]:.0f} | {after_closed[key]:.0f} |")
    failures = [r for r in results if r.failed_without_fault or r.problems]
    kinds = Counter((r.plan.provider, r.plan.mode, "; ".join(r.problems) or _error_name(r)) for r in failures)
    if kinds:
        print("\nfailures (provider, mode, what): count")
        for (provider, mode, what), n in kinds.most_common(20):
            print(f"  {provider} {mode}: {what[:160]}: {n}")


def _error_name(result: Result) -> str:
    return f"no fault scripted, got {result.error}"[:200]


if __name__ == "__main__":
    sys.exit(main())

"""rxstream throughput benchmark: rxstream vs the raw SDK and the decode floor, same bytes, same run.

One command: ``python benchmarks/run.py`` (``--quick`` for a smoke run, ``--repeat N``).

For each wire format the emulator renders one long stream once; a replay server in a
separate process then serves exactly those bytes to every contender:

* (f) ``floor``: the physical floor of any typed-event library on this transport: httpx2
  body bytes → SSE decode (`rxstream.providers._sse.SSEDecoder`) → ``jiter`` per event, on
  one keep-alive connection (Bedrock: body bytes → event-stream frames → ``jiter``, the
  Invoke chunk's inner JSON included);
* (a) ``raw``: iterate the SDK's own stream (``create(stream=True)``; boto3's event stream);
* (b) ``helper``: the SDK's accumulating helper (``messages.stream().get_final_message()``,
  ``chat.completions.stream().get_final_completion()``, ``responses.stream()``);
* (c) ``rxstream``: ``from_X(...).pipe(rso.final()).run()`` — typed events + accumulation;
* ``chain``: (c) with ``coalesce_text`` + ``stream_stats`` + a handler (text scenarios).

Contenders are interleaved (f a b c chain, f a b c chain, ... for ``--repeat`` rounds, after
one warm-up round), so a change of machine load hits all of them alike. Reported: median
µs/event per contender, and the **median of the per-round ratios** c/a, c/b, c/f and f/a
(below 1.0 = the numerator is faster), plus the time to first event of (c) minus (a)
(median of 30 short streams, each pair back to back). Machines are noisy: only medians and
same-run ratios are meaningful. Results are printed as a Markdown table and written to
``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from rxstream import operators as rso
from rxstream.providers import ProviderName, ProviderSpec, get_spec
from rxstream.testing import ProviderEmulator, ResponseScript, ScriptedToolCall

ROOT = Path(__file__).resolve().parent


@dataclass
class Scenario:
    name: str
    provider: ProviderName
    script: ResponseScript
    events: int = 0  # wire events in the body (filled after recording)
    content_type: str = ""  # of the recorded body (filled after recording)

    @property
    def spec(self) -> ProviderSpec:
        return get_spec(self.provider)

    @property
    def model(self) -> str:
        # The replay server tells scenarios apart by path and model (Bedrock: the model id is
        # in the path), so each scenario asks for a model named after itself.
        return f"bench-{self.name}"

    @property
    def path(self) -> str:
        return self.spec.route.format(modelId=self.model)

    def params(self) -> dict[str, Any]:
        """The source's parameters, from the registry (no output limit in the way)."""
        params = self.spec.request("x", model=self.model, max_tokens=1_000_000)
        return {**params, **RAW_EXTRA.get(self.provider, {})}


# What the raw SDK call needs on top of the registry's request (rxstream adds it itself).
RAW_EXTRA: dict[str, dict[str, Any]] = {"openai": {"stream_options": {"include_usage": True}}}


def scenarios(quick: bool) -> list[Scenario]:
    n_anthropic = 10_000 if quick else 100_000
    n_openai = 2_000 if quick else 20_000
    n_five = 10_000 if quick else 100_000
    text = lambda n: " ".join(f"w{i % 97}" for i in range(n))  # noqa: E731
    big_args = json.dumps({"document": "x" * (20_000 if quick else 200_000)})
    tool = ScriptedToolCall(id="toolu_bench", name="store", arguments=big_args, fragment_size=32)
    tool_script = ResponseScript(
        tool_calls=[tool.model_copy(update={"id": "call_bench"})], stop_reason="tool_use"
    )
    out = [
        Scenario("anthropic-text", "anthropic", ResponseScript(text=text(n_anthropic))),
        Scenario("openai-text", "openai", ResponseScript(text=text(n_openai))),
        Scenario(
            "anthropic-tool-200k", "anthropic", ResponseScript(tool_calls=[tool], stop_reason="tool_use")
        ),
        Scenario("responses-text", "openai-responses", ResponseScript(text=text(n_five))),
        Scenario("bedrock-converse-text", "bedrock", ResponseScript(text=text(n_five))),
        Scenario("bedrock-invoke-text", "bedrock-invoke", ResponseScript(text=text(n_five))),
        Scenario("responses-tool-200k", "openai-responses", tool_script),
    ]
    if not quick:
        out.append(Scenario("openai-tool-200k", "openai", tool_script))
    return out


def record(scenarios_: list[Scenario], root: Path) -> None:
    """Render each scenario once through the emulator and store the exact body bytes."""
    routes: dict[str, dict[str, str]] = {}
    with ProviderEmulator() as emu, httpx2.Client(timeout=600) as http:
        for s in scenarios_:
            emu.enqueue(s.script)
            reply = http.post(emu.url + s.path, json=s.spec.http_body(s.params()))
            assert reply.status_code == 200, reply.text
            (root / f"{s.name}.bin").write_bytes(reply.content)
            s.content_type = reply.headers["content-type"]
            routes[f"{s.path}|{s.model}"] = {"file": f"{s.name}.bin", "content_type": s.content_type}
            s.events = emu.connections[-1].events_written
    (root / "routes.json").write_text(json.dumps(routes))


# The baselines: each SDK's own raw stream and its accumulating helper (None: no helper).
RAW: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    "anthropic": lambda c, p: c.messages.create(stream=True, **p),
    "openai": lambda c, p: c.chat.completions.create(stream=True, **p),
    "openai-responses": lambda c, p: c.responses.create(stream=True, **p),
    "bedrock": lambda c, p: c.converse_stream(**p)["stream"],
    "bedrock-invoke": lambda c, p: c.invoke_model_with_response_stream(**p)["body"],
}


def _helper_run(stream: Callable[..., Any], final: str) -> Callable[[dict[str, Any]], Any]:
    def run(params: dict[str, Any]) -> Any:
        with stream(**params) as st:
            return getattr(st, final)()

    return run


HELPERS: dict[str, Callable[[Any], Callable[[dict[str, Any]], Any]]] = {
    "anthropic": lambda c: _helper_run(c.messages.stream, "get_final_message"),
    "openai": lambda c: _helper_run(c.chat.completions.stream, "get_final_completion"),
    "openai-responses": lambda c: _helper_run(c.responses.stream, "get_final_response"),
}


class Contenders:
    """Builds the three contenders of one scenario against the replay server."""

    def __init__(self, s: Scenario, base: str) -> None:
        self.s = s
        self.base = base
        spec = s.spec
        self.client = spec.client(base + spec.base_path, max_retries=2, **spec.client_options_emulated)
        self.http = httpx2.Client(timeout=600)

    def close(self) -> None:
        self.client.close()
        self.http.close()

    def _params(self) -> dict[str, Any]:
        return self.s.params()

    def raw(self) -> Callable[..., int]:
        def run(on_first: Callable[[], None] | None = None, stop_after_first: bool = False) -> int:
            n = 0
            it = RAW[self.s.provider](self.client, self._params())
            for _ in it:
                if n == 0 and on_first is not None:
                    on_first()
                    if stop_after_first:
                        it.close()
                        return 1
                n += 1
            return n

        return run

    def helper(self) -> Callable[[], Any] | None:
        make = HELPERS.get(self.s.provider)
        if make is None:
            return None
        run = make(self.client)
        return lambda: run(self._params())

    def stream(self) -> Any:
        return self.s.spec.stream(self.client, self._params())

    def chain(self) -> Callable[[], Any]:
        """from_X -> coalesce_text -> (stream_stats, a StreamHandler) on one request."""
        from reactivex import operators as ops

        from rxstream.handlers import StreamHandler, attach

        class Done(StreamHandler):
            def __init__(self) -> None:
                self.done = threading.Event()
                self.tokens = 0

            def on_token_received(self, token: str, index: int) -> None:
                self.tokens += 1

            def on_stream_complete(self, response: Any) -> None:
                self.done.set()

            def on_stream_error(self, error: BaseException) -> None:
                self.done.set()

        def run() -> Any:
            published = self.stream().pipe(rso.coalesce_text(0.05), ops.publish())
            stats: list[Any] = []
            published.pipe(rso.stream_stats()).subscribe(stats.append)
            handler = Done()
            attach(published, handler)
            published.connect()
            handler.done.wait(600)
            return stats

        return run

    def floor(self) -> Callable[[], int]:
        """The decode floor: body bytes → frames → jiter per event, one keep-alive connection."""
        import jiter

        from rxstream.providers._sse import SSEDecoder

        url = self.base + self.s.path
        body = self.s.spec.http_body(self.s.params())
        http = self.http
        parse = jiter.from_json

        if "eventstream" in self.s.content_type:
            from rxstream.providers._eventstream import decode_frames

            def run_es() -> int:
                n = 0
                with http.stream("POST", url, json=body) as response:
                    for event in decode_frames(response.iter_bytes()):
                        if "chunk" in event:  # InvokeModel: the chunk holds the provider's JSON event
                            parse(event["chunk"]["bytes"])
                        n += 1
                return n

            return run_es

        def run_sse() -> int:
            n = 0
            decoder = SSEDecoder()
            with http.stream("POST", url, json=body) as response:
                for chunk in response.iter_bytes():
                    for sse in decoder.feed(chunk):
                        if sse.data[:1] == b"{":
                            parse(sse.data)
                        n += 1
            return n

        return run_sse

    def rxstream_final(self) -> Callable[[], Any]:
        # The plain user path: read on the default thread pool, block in `.run()`.
        return lambda: self.stream().pipe(rso.final()).run()


def interleaved(contenders: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """Time each contender once per round, in turn (A B C A B C ...); one warm-up round first.

    Returns:
        Seconds per run of each contender, one entry per round (round order kept, so
        ``times["c"][i] / times["a"][i]`` is the same-round ratio).
    """
    for fn in contenders.values():
        fn()  # warm-up: connection, imports, caches
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def round_ratio(times: dict[str, list[float]], top: str, bottom: str) -> float | None:
    """Median over rounds of ``times[top][i] / times[bottom][i]`` (None if either is absent)."""
    if top not in times or bottom not in times:
        return None
    return statistics.median(t / b for t, b in zip(times[top], times[bottom], strict=True))


def first_event_overhead(c: Contenders, n: int) -> float:
    """Median (rxstream first-event latency - raw SDK first-event latency), seconds.

    Both stop after the first event and close the connection; rxstream runs on its default
    thread pool, as in an app (so the number includes the thread hand-off).
    """

    raw_times: list[float] = []
    rx_times: list[float] = []
    got: list[float] = []
    first: list[float] = []

    def mark_raw() -> None:
        got.append(time.perf_counter())

    def mark_rx(_: object) -> None:
        if not first:
            first.append(time.perf_counter())

    for _ in range(n):
        got.clear()
        first.clear()
        t0 = time.perf_counter()
        c.raw()(mark_raw, stop_after_first=True)
        raw_times.append(got[0] - t0)
        # Stop at the first event: dispose from inside on_next (closes the connection).
        arrived = threading.Event()

        def first_then_signal(event: object, arrived: threading.Event = arrived) -> None:
            mark_rx(event)
            arrived.set()

        t0 = time.perf_counter()
        subscription = c.stream().subscribe(first_then_signal, lambda e: None)
        arrived.wait(30)
        rx_times.append(first[0] - t0)
        subscription.dispose()
    return statistics.median(rx_times) - statistics.median(raw_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small streams, for a smoke run")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per contender (median)")
    parser.add_argument("--only", default=None, help="comma-separated scenario names")
    args = parser.parse_args()
    all_scenarios = scenarios(args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        all_scenarios = [s for s in all_scenarios if s.name in wanted]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("recording bodies through the emulator ...", file=sys.stderr)
        record(all_scenarios, root)
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "_replay_server.py"), str(root)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            base = f"http://127.0.0.1:{port}"
            for s in all_scenarios:
                print(f"running {s.name} ({s.events} wire events) ...", file=sys.stderr)
                c = Contenders(s, base)
                try:
                    contenders: dict[str, Callable[[], Any]] = {
                        "f": c.floor(),
                        "a": lambda c=c: c.raw()(None),  # type: ignore[misc]
                    }
                    helper_fn = c.helper()
                    if helper_fn is not None:
                        contenders["b"] = helper_fn
                    contenders["c"] = c.rxstream_final()
                    if s.name.endswith("-text"):
                        contenders["chain"] = c.chain()
                    times = interleaved(contenders, args.repeat)
                    ttfe = (
                        first_event_overhead(c, 10 if args.quick else 30)
                        if s.name.endswith("-text")
                        else None
                    )
                finally:
                    c.close()
                rows.append(make_row(s, times, ttfe, args.repeat))
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
    partial_json = partial_json_cost()
    print_table(rows, partial_json)
    result: dict[str, Any] = {"rows": rows, "partial_json": partial_json}
    if not args.only:
        import operators

        print()
        result["operators"] = operators.main()
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(result, indent=2))


def make_row(s: Scenario, times: dict[str, list[float]], ttfe: float | None, repeat: int) -> dict[str, Any]:
    """One result row: medians per contender and medians of same-round ratios."""
    n = s.events
    med = statistics.median

    def per_event(name: str) -> float | None:
        return med(times[name]) / n * 1e6 if name in times else None

    return {
        "scenario": s.name,
        "wire_events": n,
        "floor_us_per_event": per_event("f"),
        "raw_us_per_event": per_event("a"),
        "helper_us_per_event": per_event("b"),
        "rxstream_us_per_event": per_event("c"),
        "rxstream_events_per_s": n / med(times["c"]),
        "raw_events_per_s": n / med(times["a"]),
        "ratio_c_over_a": round_ratio(times, "c", "a"),
        "ratio_c_over_b": round_ratio(times, "c", "b"),
        "ratio_c_over_floor": round_ratio(times, "c", "f"),
        "ratio_floor_over_a": round_ratio(times, "f", "a"),
        "chain_us_per_event": per_event("chain"),
        "ratio_chain_over_a": round_ratio(times, "chain", "a"),
        "first_event_overhead_ms": ttfe * 1e3 if ttfe is not None else None,
        "runs": repeat,
        "interleaved": True,
    }


def partial_json_cost() -> list[dict[str, float]]:
    """µs per 32-character fragment of `ArgumentBuffer.append` at several argument sizes."""
    from rxstream.providers._tool_args import ArgumentBuffer

    results = []
    for size in (2_000, 20_000, 200_000):
        doc = json.dumps({"document": "x" * size})
        fragments = [doc[i : i + 32] for i in range(0, len(doc), 32)]
        runs = []
        for _ in range(5):
            buf = ArgumentBuffer()
            t0 = time.perf_counter()
            for fragment in fragments:
                buf.append(fragment)
            runs.append((time.perf_counter() - t0) / len(fragments) * 1e6)
        results.append({"argument_chars": float(size), "us_per_fragment": statistics.median(runs)})
    return results


def print_table(rows: list[dict[str, Any]], partial_json: list[dict[str, float]]) -> None:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    print(
        "| scenario | wire events | (f) floor µs/ev | (a) raw SDK µs/ev | (b) SDK helper µs/ev "
        "| (c) rxstream µs/ev | c/f | c/a | c/b | f/a | first-event overhead (c-a) | chain µs/ev "
        "| chain/a |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['wire_events']} | {f(r['floor_us_per_event'], '.2f')} | "
            f"{f(r['raw_us_per_event'], '.2f')} | "
            f"{f(r['helper_us_per_event'], '.2f')} | {f(r['rxstream_us_per_event'], '.2f')} | "
            f"{f(r['ratio_c_over_floor'], '.2f')} | "
            f"{f(r['ratio_c_over_a'], '.2f')} | {f(r['ratio_c_over_b'], '.2f')} | "
            f"{f(r['ratio_floor_over_a'], '.2f')} | "
            f"{f(r['first_event_overhead_ms'], '+.2f')} ms | {f(r['chain_us_per_event'], '.2f')} | "
            f"{f(r['ratio_chain_over_a'], '.2f')} |"
        )
    print()
    print("Ratios are medians of same-round ratios (contenders interleaved); c/f is rxstream over the floor.")
    print()
    print("| tool argument size (chars) | partial-JSON µs per 32-char fragment |")
    print("|---:|---:|")
    for p in partial_json:
        print(f"| {int(p['argument_chars'])} | {p['us_per_fragment']:.2f} |")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()

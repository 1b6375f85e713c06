"""Sync time to first event: rxstream vs the raw sync SDK, warm and fresh connections.

One command: ``python benchmarks/first_event.py`` (``--rounds N``, ``--only anthropic,openai``).

Same bytes for both contenders: the emulator renders each body once, a replay server in a
separate process (``_replay_server.py``, ``TCP_NODELAY`` set) serves them. For each provider
and each connection state, each round runs raw and rxstream once, in alternating order
(raw first in even rounds, rxstream first in odd ones: the request right after another one
measurably pays more), after 5 warm-up rounds; the figure is the **median of the per-round differences**
(rxstream - raw, milliseconds), next to the raw median:

* ``warm``: a short answer (10 text deltas) read to its end, so the next request reuses the
  keep-alive connection — what a chat app pays on every request after the first;
* ``fresh``: a long answer closed at its first event, so every request opens a new TCP
  connection (and a fast server's first read holds hundreds of events).

raw = ``create(stream=True)`` (boto3: ``converse_stream`` / ``invoke_model_with_response_stream``)
iterated on the calling thread until its first event; rxstream = ``from_X(...).subscribe(...)``
with the default scheduler (the reader-thread hand-off is included, as in an application),
timed from before ``from_X`` to the first ``on_next``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import run as R

from rxstream.providers import ProviderName
from rxstream.testing import ResponseScript

PROVIDERS: tuple[ProviderName, ...] = ("anthropic", "openai", "openai-responses", "bedrock", "bedrock-invoke")


def measure(scenario: R.Scenario, base: str, mode: str, rounds: int) -> tuple[float, float]:
    """(raw median ms, median of per-round rxstream - raw ms) for one provider and mode."""
    contenders = R.Contenders(scenario, base)
    params, client, spec = scenario.params(), contenders.client, scenario.spec
    stop_early = mode == "fresh"

    def raw() -> float:
        t0 = time.perf_counter()
        first = 0.0
        it = R.RAW[scenario.provider](client, params)
        for _ in it:
            if not first:
                first = time.perf_counter() - t0
                if stop_early:
                    it.close()
                    break
        return first

    def rx() -> float:
        box: list[float] = []
        done = threading.Event()

        def on_next(_: Any) -> None:
            if not box:
                box.append(time.perf_counter())
                if stop_early:
                    done.set()

        t0 = time.perf_counter()
        subscription = spec.stream(client, params).subscribe(on_next, lambda _e: done.set(), done.set)
        done.wait(30)
        subscription.dispose()
        return box[0] - t0

    try:
        for _ in range(5):
            raw()
            rx()
        raws: list[float] = []
        diffs: list[float] = []
        for i in range(rounds):
            if i % 2:  # alternate the order: the request right after another one pays more
                b = rx()
                a = raw()
            else:
                a = raw()
                b = rx()
            raws.append(a)
            diffs.append(b - a)
        return statistics.median(raws) * 1e3, statistics.median(diffs) * 1e3
    finally:
        contenders.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="raw/rxstream pairs per provider and mode")
    parser.add_argument("--only", default=None, help="comma-separated providers")
    args = parser.parse_args()
    providers = [p for p in PROVIDERS if args.only is None or p in args.only.split(",")]
    short = {p: R.Scenario(f"short-{p}", p, ResponseScript(text="hello there " * 5)) for p in providers}
    long_ = {
        p: R.Scenario(f"long-{p}", p, ResponseScript(text=" ".join(f"w{i % 97}" for i in range(5_000))))
        for p in providers
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("recording bodies through the emulator ...", file=sys.stderr)
        R.record([*short.values(), *long_.values()], root)
        server = subprocess.Popen(
            [sys.executable, str(R.ROOT / "_replay_server.py"), str(root)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            base = f"http://127.0.0.1:{int(server.stdout.readline())}"
            for p in providers:
                print(f"running {p} ...", file=sys.stderr)
                warm = measure(short[p], base, "warm", args.rounds)
                fresh = measure(long_[p], base, "fresh", args.rounds)
                rows.append((p, warm, fresh))
        finally:
            server.terminate()
            server.wait(10)
    print("| provider | warm: raw | warm: rxstream - raw | fresh: raw | fresh: rxstream - raw |")
    print("|---|---:|---:|---:|---:|")
    for p, (wr, wd), (fr, fd) in rows:
        print(f"| {p} | {wr:.2f} ms | {wd:+.2f} ms | {fr:.2f} ms | {fd:+.2f} ms |")


if __name__ == "__main__":
    main()

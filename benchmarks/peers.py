"""Peers benchmark: rxstream vs LangChain, LiteLLM and pydantic-ai on the same bytes, same run.

One command: ``python benchmarks/peers.py`` (``--quick`` for short streams, ``--repeat N``,
``--venv DIR`` for where the peers live).

The peers are never project dependencies: on first use the script creates its own venv
(default ``~/.cache/rxstream-bench/peers-venv``) and installs ``langchain-anthropic``,
``langchain-openai``, ``litellm`` and ``pydantic-ai-slim[anthropic,openai]`` into it with pip.

For Anthropic Messages and OpenAI Chat, the emulator renders one long text stream once; a
replay server in its own process (`benchmarks/_replay_server.py`) serves exactly those bytes
to every contender. Each contender runs in a long-lived worker process
(`benchmarks/_peer_worker.py`): the raw sync SDK and rxstream in the project venv, the raw
sync SDK again and the peers in the peers venv. Contenders are interleaved (one run of each
per round, after a warm-up round that also pays the imports), and the report gives, per
contender, the median µs per wire event and the median over rounds of its time divided by
the same round's raw sync SDK time (project venv), i.e. "times the raw SDK":

* LangChain ``ChatAnthropic/ChatOpenAI.stream(prompt)`` and ``astream_events(v2)``;
* LiteLLM ``completion(model="anthropic/…" | "openai/…", stream=True)``;
* pydantic-ai ``Agent(AnthropicModel | OpenAIChatModel).run_stream(...)`` with
  ``stream_text(delta=True, debounce_by=None)``;
* rxstream ``from_anthropic/from_openai(...).pipe(rso.final()).run()``.

Results print as a Markdown table and go to ``benchmarks/results/peers.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import run as harness

ROOT = Path(__file__).resolve().parent
PEERS = ["langchain-anthropic", "langchain-openai", "litellm", "pydantic-ai-slim[anthropic,openai]"]
DEFAULT_VENV = Path.home() / ".cache" / "rxstream-bench" / "peers-venv"
PROJECT = ("raw", "rxstream")
PEER_CONTENDERS = ("raw", "langchain-stream", "langchain-astream-events", "litellm", "pydantic-ai")


def ensure_venv(venv: Path) -> Path:
    """Create the peers venv and install the peers into it (once); return its python."""
    python = venv / "bin" / "python"
    marker = venv / "rxstream-peers.json"
    if python.exists() and marker.exists() and json.loads(marker.read_text()) == PEERS:
        return python
    print(f"creating the peers venv in {venv} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS], check=True)
    marker.write_text(json.dumps(PEERS))
    return python


class Worker:
    """A contender process speaking one JSON line per command."""

    def __init__(self, python: Path | str, base: str, label: str) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [str(python), str(ROOT / "_peer_worker.py"), base],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )

    def run(self, contender: str, scenario: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"contender": contender, "scenario": scenario}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            return {"error": f"{self.label} worker exited"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def record(quick: bool, root: Path) -> dict[str, int]:
    """Record the two text bodies (the replay server routes by path and model name)."""
    wanted = {"anthropic-text", "openai-text"}
    scenarios = [s for s in harness.scenarios(quick) if s.name in wanted]
    harness.record(scenarios, root)
    return {s.name: s.events for s in scenarios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short streams, for a smoke run")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (median)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="where the peers are installed")
    args = parser.parse_args()
    peer_python = ensure_venv(args.venv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("recording bodies through the emulator ...", file=sys.stderr)
        events = record(args.quick, root)
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "_replay_server.py"), str(root)], stdout=subprocess.PIPE, text=True
        )
        workers: list[Worker] = []
        try:
            assert server.stdout is not None
            base = f"http://127.0.0.1:{int(server.stdout.readline())}"
            project = Worker(sys.executable, base, "project")
            peers = Worker(peer_python, base, "peers")
            workers = [project, peers]
            for scenario, n in events.items():
                print(f"running {scenario} ({n} wire events) ...", file=sys.stderr)
                rows.extend(run_scenario(scenario, n, project, peers, args.repeat))
        finally:
            for worker in workers:
                worker.close()
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
            if server.stdout is not None:
                server.stdout.close()
    print_table(rows)
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / "peers.json").write_text(json.dumps({"rows": rows, "repeat": args.repeat}, indent=2))


def run_scenario(scenario: str, n: int, project: Worker, peers: Worker, repeat: int) -> list[dict[str, Any]]:
    """Interleave every contender of both workers for ``repeat`` rounds after a warm-up round."""
    plan = [(project, c, f"{c} (project venv)" if c == "raw" else c) for c in PROJECT]
    plan += [(peers, c, f"{c} (peers venv)" if c == "raw" else c) for c in PEER_CONTENDERS]
    errors: dict[str, str] = {}
    for worker, contender, label in plan:  # warm-up: imports, connections, caches
        answer = worker.run(contender, scenario)
        if "error" in answer:
            errors[label] = answer["error"]
            print(f"  {label}: {answer['error']}", file=sys.stderr)
        else:
            print(f"  {label}: {answer['items']} items per run", file=sys.stderr)
    times: dict[str, list[float]] = {label: [] for _, _, label in plan if label not in errors}
    for _ in range(repeat):
        for worker, contender, label in plan:
            if label in errors:
                continue
            answer = worker.run(contender, scenario)
            if "error" in answer:
                errors[label] = answer["error"]
                times.pop(label, None)
                continue
            times[label].append(answer["seconds"])
    raw = "raw (project venv)"
    rows = []
    for _, _, label in plan:
        if label in errors:
            rows.append({"scenario": scenario, "contender": label, "error": errors[label]})
            continue
        series = times[label]
        ratios = [t / r for t, r in zip(series, times[raw], strict=False)] if raw in times else []
        rows.append(
            {
                "scenario": scenario,
                "contender": label,
                "wire_events": n,
                "us_per_event": statistics.median(series) / n * 1e6,
                "x_raw_sdk": statistics.median(ratios) if ratios else None,
                "rounds": len(series),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| scenario | contender | µs per wire event | ratio to raw sync SDK (same-round median) |")
    print("|---|---|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['scenario']} | {r['contender']} | failed: {r['error'][:80]} | - |")
            continue
        ratio = "-" if r["x_raw_sdk"] is None else f"{r['x_raw_sdk']:.2f}"
        print(f"| {r['scenario']} | {r['contender']} | {r['us_per_event']:.2f} | {ratio} |")


if __name__ == "__main__":
    main()

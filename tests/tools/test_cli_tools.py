"""``rxstream run --tools demo`` on the embedded emulator, and the demo tools themselves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rxstream.cli._tools import calculator, clock
from rxstream.errors import ToolError


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("AWS_")}
    env.update({"COLUMNS": "120", "TERM": "dumb"})
    return subprocess.run(
        [sys.executable, "-m", "rxstream.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize("provider", ["emulator", "openai", "bedrock-invoke"])
def test_run_with_demo_tools(provider: str) -> None:
    result = run_cli("run", "What is 12*(3+4)?", "--tools", "demo", "--provider", provider)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "iteration 1" in out and "iteration 2" in out
    assert '→ calculator {"expression": "12*(3+4)"}' in out
    assert "← calculator result: 12*(3+4) = 84" in out and "← clock result:" in out
    assert "iteration 1: input" in out and "stop tool_use" in out
    assert "The tools answered: 12*(3+4) = 84" in out
    assert "2 iterations · 2 tool calls · input" in out and "stop end_turn" in out


def test_demo_tools() -> None:
    assert calculator("2 ** 10 / 4") == "2 ** 10 / 4 = 256"
    assert calculator("-1.5 * 2 + 7 % 4") == "-1.5 * 2 + 7 % 4 = 0"
    with pytest.raises(ToolError, match="unsupported"):
        calculator("__import__('os')")
    with pytest.raises(ToolError, match="not an arithmetic"):
        calculator("2 +")
    with pytest.raises(ToolError, match="exponent"):
        calculator("9 ** 999999")
    assert clock("UTC").endswith(" UTC")
    assert clock("Europe/Zurich").endswith(" Europe/Zurich")
    with pytest.raises(ToolError, match="unknown time zone"):
        clock("Mars/Olympus")


def test_run_with_demo_tools_as_json_lines() -> None:
    result = run_cli("run", "What is 2 + 2?", "--tools", "demo", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "iteration_start" and types[-1] == "iteration_end"
    assert types.count("iteration_start") == 2 and types.count("tool_result") == 2
    outputs = [e["output"] for e in events if e["type"] == "tool_result"]
    assert "2 + 2 = 4" in outputs
    assert [e["seq"] for e in events] == list(range(len(events)))

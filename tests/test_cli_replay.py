"""``rxstream run --record FILE`` and ``rxstream replay FILE`` in a subprocess, on the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rxstream.testing import ResponseScript


def run_cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("AWS_")}
    env.update({"COLUMNS": "100", "TERM": "dumb", **extra})
    return subprocess.run(
        [sys.executable, "-m", "rxstream.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_run_record_then_replay_and_a_corrupted_cassette(tmp_path: Path) -> None:
    cassette = tmp_path / "answer.jsonl"
    script = ResponseScript(text="Recorded once, replayed forever.", event_delay=0.01)
    recorded = run_cli(
        "run", "hi", "--record", str(cassette), RXSTREAM_EMULATOR_SCRIPT=script.model_dump_json()
    )
    assert recorded.returncode == 0, recorded.stderr
    lines = cassette.read_text().splitlines()
    assert json.loads(lines[0])["params"] == {
        "provider": "anthropic",  # no key: the anthropic wire format on the emulator
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
    }
    assert json.loads(lines[-1])["end"] == "completed"
    replayed = run_cli("replay", str(cassette), "--speed", "0")
    assert replayed.returncode == 0, replayed.stderr
    assert "Recorded once, replayed forever." in replayed.stdout
    assert "stop end_turn" in replayed.stderr  # piped: the stats line goes to stderr
    torn = tmp_path / "torn.jsonl"
    torn.write_text("\n".join(lines[:4]) + "\n" + lines[4][:10])
    broken = run_cli("replay", str(torn), "--speed", "0")
    assert broken.returncode == 1
    assert "CassetteError" in broken.stderr and "torn.jsonl:5" in broken.stderr.replace("\n", "")

"""``rxstream compare`` and ``rxstream run --race``, driven in a subprocess / pseudo-terminal."""

from __future__ import annotations

from test_cli import Pty, run_cli


def test_compare_default_tracks_show_live_columns_then_the_table() -> None:
    child = Pty("compare", "What is rxstream?", TERM="xterm")
    child.read_until("fast · emulator-fast")  # the live columns appear while streaming
    out = child.read_until("Similarity", timeout=30)
    assert child.wait() == 0
    out = child.buffer
    assert "two embedded-emulator tracks" in out
    assert "slow · emulator-slow" in out and "TTFT" in out
    assert "Comparison" in out and "end_turn" in out
    assert "Traceback" not in out


def test_compare_ctrl_c_exits_130_and_closes_every_connection() -> None:
    child = Pty("compare", "What is rxstream?", TERM="xterm")  # a terminal that redraws live
    child.read_until("fast · emulator-fast")  # the live columns are up; the slow track needs ~4 s
    child.send("\x03")
    out = child.read_until("connections closed")
    assert child.wait() == 130
    assert "cancelled" in child.buffer
    assert "(emulator: 2 of 2 connections closed, " in child.buffer
    assert "0 cut mid-stream" not in child.buffer  # at least the slow track was still streaming
    assert "Traceback" not in out and "Comparison" not in out


def test_compare_named_providers_on_the_emulator() -> None:
    result = run_cli(
        "compare", "hi", "--provider", "emulator", "--provider", "openai", "--provider", "emulator"
    )
    assert result.returncode == 0, result.stderr
    assert "emulator#2" in result.stdout and "openai" in result.stdout and "Comparison" in result.stdout


def test_run_race_prints_the_winner() -> None:
    result = run_cli("run", "What is reactive programming?", "--race", "emulator", "--race", "openai")
    assert result.returncode == 0, result.stderr
    assert "Observable" in result.stdout
    assert "winner: " in result.stdout and "closed: " in result.stdout
    assert "Traceback" not in result.stdout + result.stderr

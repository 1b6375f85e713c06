"""The `rxstream` command as a daily tool: pipes, JSON Lines, timeouts, clear errors, emulator."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from rxstream.cli import main
from rxstream.events import StreamEnd, StreamStart, TextDelta, Usage, stream_event_adapter
from rxstream.operators import StreamStats
from rxstream.providers import PROVIDER_NAMES, get_spec
from rxstream.testing import Fault, ProviderEmulator, ResponseScript

CLEAN = ("_API_KEY", "AWS_", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "RXSTREAM_")


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not any(k.endswith(c) or k.startswith(c) for c in CLEAN)}
    base.update({"COLUMNS": "40", "TERM": "dumb", "AWS_CONFIG_FILE": os.devnull, **extra})
    base["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return base


def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxstream.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(**extra),
    )


def script(s: ResponseScript) -> str:
    return s.model_dump_json()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for key in list(os.environ):
        if any(key.endswith(c) or key.startswith(c) for c in CLEAN):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    yield monkeypatch


# -- pipe mode -----------------------------------------------------------------------------------


def test_piped_output_streams_as_it_arrives() -> None:
    """Before: nothing reached a pipe until the end. Now the first words arrive while it runs."""
    slow = ResponseScript(text=" ".join(f"word{i}" for i in range(60)), event_delay=0.1)
    child = subprocess.Popen(
        [sys.executable, "-m", "rxstream.cli", "run", "go"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env(RXSTREAM_EMULATOR_SCRIPT=script(slow)),
    )
    assert child.stdout is not None
    seen = b""
    deadline = time.monotonic() + 40
    try:
        while b"word3" not in seen:
            ready, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no streamed output; got {seen!r}"
            seen += os.read(child.stdout.fileno(), 4096)
        assert child.poll() is None  # still streaming: the words were not held back until the end
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(30)
        child.stdout.close()
    assert child.returncode == 130


def test_piped_output_is_plain_unwrapped_text() -> None:
    """Before: hard-wrapped at the console width with trailing spaces, notice on stdout."""
    long = " ".join(["streaming"] * 40)
    result = cli("run", "x", RXSTREAM_EMULATOR_SCRIPT=script(ResponseScript(text=long)))
    assert result.returncode == 0, result.stderr
    assert result.stdout == long + "\n"
    assert "embedded emulator" in result.stderr and "tok/s" in result.stderr
    assert "\x1b[" not in result.stdout + result.stderr


def test_json_lines_are_the_typed_events() -> None:
    result = cli(
        "run",
        "x",
        "--json",
        "--provider",
        "openai",
        RXSTREAM_EMULATOR_SCRIPT=script(ResponseScript(text="a b")),
    )
    assert result.returncode == 0, result.stderr
    events = [stream_event_adapter.validate_json(line) for line in result.stdout.splitlines()]
    assert events[0].type == "stream_start" and events[-1].type == "stream_end"
    assert "".join(e.text for e in events if e.type == "text_delta") == "a b"


# -- options ---------------------------------------------------------------------------------------


def test_timeout_ends_a_stalled_stream() -> None:
    """Before: a stalled stream waited forever."""
    stalled = ResponseScript(text="one two three four", fault=Fault(kind="stall", after_events=4))
    started = time.monotonic()
    result = cli("run", "x", "--timeout", "0.5", RXSTREAM_EMULATOR_SCRIPT=script(stalled))
    assert result.returncode == 1
    assert "error:" in result.stderr and "0.5 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 50


def test_max_tokens_is_honoured_on_the_emulator() -> None:
    """Before: a 5-token limit still gave the full answer and end_turn."""
    result = cli("run", "x", "--max-tokens", "5")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 5
    assert "output 5 tok" in result.stderr and "stop max_tokens" in result.stderr


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
def test_system_max_tokens_and_base_url_for_every_provider(
    provider: str, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = get_spec(provider)
    for name in spec.credential_env[:1]:
        clean_env.setenv(name, "test-key")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    clean_env.setenv("AWS_REGION", "us-east-1")
    with ProviderEmulator(ResponseScript(text="ok")) as emu:
        args = ["run", "hi", "--provider", provider, "--system", "Be brief.", "--max-tokens", "77"]
        assert main([*args, "--model", "m", "--base-url", emu.base_url(provider)]) == 0
        body = emu.requests[-1].body
    assert capsys.readouterr().out == "ok\n"
    flat = json.dumps(body)
    assert "Be brief." in flat and "77" in flat


# -- errors ------------------------------------------------------------------------------------------


def test_base_url_without_key_is_an_error_not_the_emulator() -> None:
    result = cli("run", "hi", "--provider", "openai", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr and "embedded emulator" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bedrock_without_region_names_the_variable() -> None:
    result = cli("run", "hi", "--provider", "bedrock", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y")
    assert result.returncode == 2
    assert "AWS_REGION" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bedrock_unknown_profile_is_one_line() -> None:
    result = cli("run", "hi", "--provider", "bedrock", AWS_PROFILE="no-such-profile", AWS_REGION="us-east-1")
    assert result.returncode == 2
    assert "no-such-profile" in result.stderr and "AWS_PROFILE" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_connection_failure_names_host_and_cause(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("ANTHROPIC_API_KEY", "test-key")
    with ProviderEmulator() as emu:
        url = emu.url  # a port that was listening a moment ago and is closed now
    assert main(["run", "hi", "--provider", "anthropic", "--base-url", url]) == 1
    err = capsys.readouterr().err
    host = url.removeprefix("http://")
    assert f"cannot connect to {host}" in err and "Connection refused" in err


def test_http_error_shows_status_message_and_request_id() -> None:
    failing = ResponseScript(fault=Fault(kind="http_error", status=429, message="slow down"))
    result = cli("run", "hi", "--provider", "openai-responses", RXSTREAM_EMULATOR_SCRIPT=script(failing))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "HTTP 429" in line and "slow down" in line and "request id req_" in line


def test_empty_prompt_is_refused() -> None:
    result = cli("run", "   ")
    assert result.returncode == 2 and "empty" in result.stderr
    assert "embedded emulator" not in result.stderr  # nothing was sent


def test_version_and_help_list_environment_variables() -> None:
    from rxstream import __version__

    assert cli("--version").stdout.strip() == f"rxstream {__version__}"
    helptext = cli("run", "--help").stdout
    for name in (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "AWS_REGION",
        "RXSTREAM_EMULATOR_SCRIPT",
    ):
        assert name in helptext


# -- rxstream emulator -----------------------------------------------------------------------------


def test_emulator_runs_standalone_and_prints_base_urls(tmp_path: object) -> None:
    import anthropic

    child = subprocess.Popen(
        [sys.executable, "-m", "rxstream.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert child.stdout is not None and child.stderr is not None
    try:
        lines = [child.stdout.readline() for _ in range(7)]
        urls = dict(line.split()[:2] for line in lines[1:6])
        assert set(urls) == set(PROVIDER_NAMES)
        base = urls["anthropic"].removeprefix("ANTHROPIC_BASE_URL=")
        assert urls["openai"] == f"OPENAI_BASE_URL={base}/v1"
        with anthropic.Anthropic(api_key="any", base_url=base, max_retries=0) as client:
            message = client.messages.create(
                model="m", max_tokens=200, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join(
                e.delta.text
                for e in message
                if e.type == "content_block_delta" and e.delta.type == "text_delta"
            )
        assert "rxstream demo model" in text
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
        child.stdout.close()
        child.stderr.close()


# -- one tokens/s definition -------------------------------------------------------------------------


def test_live_line_and_summary_count_the_same_tokens() -> None:
    """Before: the live line counted coalesced deltas (25 tok/s) and the summary usage (37.6)."""
    from rxstream._live import live_views

    scheduler = TestScheduler()
    on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed
    # One tick is one second: 20 one-token deltas, one per 0.01 s (inside coalesce_text's 0.03 s window).
    msgs: list[Any] = [on_next(200, StreamStart(stream_id="s", seq=0, provider="anthropic"))]
    msgs += [
        on_next(
            200.01 + i * 0.01,  # type: ignore[arg-type]
            TextDelta(stream_id="s", seq=1 + i, text=f"t{i} "),
        )
        for i in range(20)
    ]
    msgs.append(
        on_next(201, StreamEnd(stream_id="s", seq=21, stop_reason="end_turn", usage=Usage(output_tokens=20)))
    )
    msgs.append(on_completed(201))
    source = scheduler.create_hot_observable(*msgs)
    views, connect = live_views(source, scheduler=scheduler)
    stats: list[StreamStats] = []
    views.subscribe(lambda v: stats.append(v) if isinstance(v, StreamStats) else None, scheduler=scheduler)
    scheduler.schedule_absolute(0.0, lambda *_: connect())
    scheduler.start()
    live = [s for s in stats if not s.done and s.output_tokens]
    final = stats[-1]
    assert final.done and final.output_tokens == 20
    assert live, "the live line saw no tokens"
    assert live[-1].deltas == live[-1].output_tokens == 20  # every delta counted, not coalesced batches

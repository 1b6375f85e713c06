"""Tests of ``rso.record`` / ``rxs.replay``: cassettes on virtual time, faults and the emulator."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, cast

import anthropic
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxstream as rxs
from rxstream import operators as rso
from rxstream.cassette import read_cassette
from rxstream.errors import CassetteError, ConfigurationError, IdleTimeout, ProviderError
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta, Usage
from rxstream.operators import StreamStats
from rxstream.response import Response
from rxstream.testing import Fault, ProviderEmulator, ResponseScript

SECRET = "sk-ant-api03-SECRET-0123456789abcdef"


def on_next(time: float, value: Any) -> Any:
    return ReactiveTest.on_next(cast(int, time), value)


def on_error(time: float, error: Exception) -> Any:
    return ReactiveTest.on_error(cast(int, time), error)


def on_completed(time: float) -> Any:
    return ReactiveTest.on_completed(cast(int, time))


def t(seq: int, text: str) -> TextDelta:
    return TextDelta(stream_id="s", seq=seq, text=text)


START = StreamStart(stream_id="s", seq=0, provider="anthropic", model="claude-x", response_id="msg_1")
END = StreamEnd(stream_id="s", seq=4, stop_reason="end_turn", usage=Usage(input_tokens=3, output_tokens=3))


def record_virtual(path: Path, messages: list[Any], **kwargs: Any) -> list[Any]:
    """Record a cold observable of ``messages`` on a TestScheduler subscribed at t=1."""
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(*messages)
    results = scheduler.start(
        lambda: source.pipe(rso.record(path, **kwargs)), created=cast(int, 0.5), subscribed=1, disposed=1000
    )
    return list(results.messages)


def replay_virtual(
    path: Path | io.StringIO, op: Any = None, *, speed: float = 1.0, disposed: int = 1000
) -> Any:
    scheduler = TestScheduler()
    stream = rxs.replay(path, speed=speed, scheduler=scheduler)
    piped = stream if op is None else stream.pipe(op)
    return scheduler.start(lambda: piped, created=cast(int, 0.5), subscribed=1, disposed=disposed).messages


MESSAGES = [
    on_next(0.1, START),
    on_next(0.42, t(1, "Hel")),
    on_next(0.5, t(2, "lo ")),
    on_next(0.9, t(3, "world")),
    on_next(1.0, END),
    on_completed(1.25),
]


def test_round_trip_on_virtual_time_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    live = record_virtual(path, MESSAGES, params={"model": "claude-x", "max_tokens": 5})
    assert [(round(m.time - 1, 6), m.value) for m in live] == [(m.time, m.value) for m in MESSAGES]
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["cassette"] == 1 and header["provider"] == "anthropic" and header["model"] == "claude-x"
    assert header["params"] == {"model": "claude-x", "max_tokens": 5}
    assert json.loads(lines[2]) == {"t": 0.42, "event": json.loads(t(1, "Hel").model_dump_json())}
    assert json.loads(lines[-1]) == {"t": 1.25, "end": "completed"}
    replayed = replay_virtual(path)
    assert [(round(m.time - 1, 6), m.value.kind) for m in replayed] == [
        (0.1, "N"),
        (0.42, "N"),
        (0.5, "N"),
        (0.9, "N"),
        (1.0, "N"),
        (1.25, "C"),
    ]
    assert [m.value.value for m in replayed[:-1]] == [m.value.value for m in MESSAGES[:-1]]


def test_recorded_ttft_of_042_gives_stream_stats_ttft_of_exactly_042(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    record_virtual(path, MESSAGES)
    (stats_msg, done) = replay_virtual(path, rso.stream_stats())
    stats = cast(StreamStats, stats_msg.value.value)
    assert stats.time_to_first_token == 0.42
    assert stats.elapsed == 1.25
    assert done.value.kind == "C"


def test_speed_zero_emits_at_once_and_speed_two_halves_the_times(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    record_virtual(path, MESSAGES)
    assert {m.time for m in replay_virtual(path, speed=0)} == {1}
    assert [round(m.time - 1, 6) for m in replay_virtual(path, speed=2)] == [
        0.05,
        0.21,
        0.25,
        0.45,
        0.5,
        0.625,
    ]


def test_error_terminal_replays_as_the_same_class_with_partial(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    partial = Response(provider="anthropic", text="Hel")
    error = ProviderError(
        "overloaded",
        status_code=529,
        error_type="overloaded_error",
        request_id="req_1",
        in_stream=True,
        partial=partial,
        provider="anthropic",
    )
    record_virtual(path, [on_next(0.1, START), on_next(0.42, t(1, "Hel")), on_error(0.7, error)])
    last = replay_virtual(path)[-1]
    assert last.time == 1.7
    replayed = last.value.exception
    assert type(replayed) is ProviderError
    assert str(replayed) == "overloaded"
    assert replayed.status_code == 529 and replayed.error_type == "overloaded_error"
    assert replayed.request_id == "req_1" and replayed.in_stream and replayed.retryable
    assert replayed.partial == partial


def test_truncated_and_corrupted_cassettes_emit_the_prefix_then_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    record_virtual(path, MESSAGES)
    text = path.read_text()
    torn = tmp_path / "torn.jsonl"
    torn.write_text(text[: text.index('"text":"lo ') + 4])  # a crash in the middle of line 4
    messages = replay_virtual(torn)
    assert [m.value.value for m in messages[:-1]] == [START, t(1, "Hel")]
    error = messages[-1].value.exception
    assert isinstance(error, CassetteError) and error.line == 4 and "torn.jsonl:4" in str(error)
    assert error.partial.text == "Hel"
    lines = text.splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join([*lines[:3], '{"t": 0.5, "event": {"type": "nonsense"}}\n', *lines[4:]]))
    messages = replay_virtual(bad)
    error = messages[-1].value.exception
    assert isinstance(error, CassetteError) and error.line == 4
    no_footer = tmp_path / "nofooter.jsonl"
    no_footer.write_text("".join(lines[:-1]))
    error = replay_virtual(no_footer)[-1].value.exception
    assert isinstance(error, CassetteError) and error.line == len(lines)


def test_a_process_killed_mid_stream_leaves_a_readable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "crash.jsonl"
    code = (
        "import os, reactivex\n"
        "from rxstream import operators as rso\n"
        "from rxstream.events import StreamStart, TextDelta\n"
        "def source(observer, scheduler=None):\n"
        "    observer.on_next(StreamStart(stream_id='s', seq=0, provider='anthropic'))\n"
        "    for i in range(1, 2000):\n"
        "        observer.on_next(TextDelta(stream_id='s', seq=i, text=f' w{i}'))\n"
        "    os._exit(9)  # a crash: no footer, no flush\n"
        f"reactivex.create(source).pipe(rso.record({str(path)!r})).subscribe()\n"
    )
    crashed = subprocess.run([sys.executable, "-c", code], check=False, timeout=50)
    assert crashed.returncode == 9
    cassette = read_cassette(path)
    assert cassette.header["provider"] == "anthropic"
    # The file's buffer was flushed a few times before the kill, never at the end: a strict,
    # non-trivial prefix of the 2,000 events, each exactly as sent.
    assert 1 < len(cassette.events) < 2000
    assert [e.seq for _, e in cassette.events] == list(range(len(cassette.events)))
    assert [getattr(e, "text", None) for _, e in cassette.events[1:]] == [
        f" w{i}" for i in range(1, len(cassette.events))
    ]
    messages = replay_virtual(path, speed=0)
    error = messages[-1].value.exception
    assert isinstance(error, CassetteError) and error.line == len(cassette.events) + 2
    assert [m.value.value for m in messages[:-1]] == [e for _, e in cassette.events]


def test_disposal_writes_a_disposed_footer_and_the_replay_then_stays_silent(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(0.1, START), on_next(0.2, t(1, "a")), on_completed(9))
    scheduler.start(lambda: source.pipe(rso.record(path)), created=cast(int, 0.5), subscribed=1, disposed=2)
    assert json.loads(path.read_text().splitlines()[-1]) == {"t": 1.0, "end": "disposed"}
    assert [m.value.kind for m in replay_virtual(path)] == ["N", "N"]
    # the replay's silence lets a downstream timeout fire as it did live
    last = replay_virtual(path, rso.idle_timeout(0.5))[-1]
    assert isinstance(last.value.exception, IdleTimeout) and round(last.time - 1, 6) == 0.7


def test_open_files_and_no_secret_in_the_cassette() -> None:
    buffer = io.StringIO()
    error = ProviderError(f"bad key {SECRET}", status_code=401)
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(0.1, START), on_error(0.2, error))
    params = {"model": "m", "api_key": SECRET, "extra_headers": {"x-api-key": SECRET}, "note": SECRET}
    scheduler.start(
        lambda: source.pipe(rso.record(buffer, params=params)), created=cast(int, 0.5), subscribed=1
    )
    content = buffer.getvalue()
    assert "SECRET" not in content
    assert json.loads(content.splitlines()[0])["params"] == {"model": "m", "note": "[redacted]"}
    assert not buffer.closed
    buffer.seek(0)
    last = replay_virtual(buffer)[-1]
    assert type(last.value.exception) is ProviderError


def test_bad_arguments_raise_at_call_time(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        rxs.replay(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigurationError):
        rxs.replay(io.StringIO(""), speed=-1)
    with pytest.raises(ConfigurationError):
        rxs.replay(io.StringIO(""), speed=1e-9)
    with pytest.raises(ConfigurationError):
        rxs.replay(io.StringIO(""), speed=float("nan"))
    with pytest.raises(ConfigurationError):
        rso.record(42)  # type: ignore[arg-type]


# --------------------------------------------------------------- live emulator vs replay


def _client(emu: ProviderEmulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=SECRET, base_url=emu.anthropic_base_url, max_retries=0)


def _live(client: anthropic.Anthropic) -> reactivex.Observable[StreamEvent]:
    return rxs.from_anthropic(
        client, model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )


def _collect(stream: reactivex.Observable[Any]) -> list[Any]:
    return list(stream.pipe(ops.to_list()).run())


def _fail(failures: list[Exception], done: threading.Event, error: Exception) -> None:
    failures.append(error)
    done.set()


def test_live_emulator_run_and_its_replay_give_the_same_outputs(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    script = ResponseScript(text="One two three four five six seven eight.", event_delay=0.01)
    with ProviderEmulator(script) as emu, _client(emu) as client:
        # the operators run live, on the wall clock, next to the recorder
        shared = _live(client).pipe(rso.record(path, params={"api_key": SECRET}), ops.publish())
        outputs: list[tuple[list[Any], list[Any], list[Any]]] = []
        failures: list[Exception] = []
        done = threading.Event()
        reactivex.zip(
            shared.pipe(ops.to_list()),
            shared.pipe(rso.coalesce_text(30.0), ops.to_list()),
            shared.pipe(rso.smooth_text(delay=0.001), rso.text(), ops.to_list()),
        ).subscribe(outputs.append, lambda e: _fail(failures, done, e), done.set)
        shared.connect()
        assert done.wait(30) and not failures
        ((live_events, live_coalesced, live_smoothed),) = outputs
    assert "SECRET" not in path.read_text()
    cassette = read_cassette(path)
    assert cassette.problem is None and cassette.end == "completed"
    assert [e for _, e in cassette.events] == live_events
    # replayed on virtual time through the same operators: the same outputs
    assert [m.value.value for m in replay_virtual(path)[:-1]] == live_events
    assert [m.value.value for m in replay_virtual(path, rso.coalesce_text(30.0))[:-1]] == live_coalesced
    assert [
        m.value.value
        for m in replay_virtual(path, reactivex.compose(rso.smooth_text(delay=0.001), rso.text()))[:-1]
    ] == (live_smoothed)
    stats = cast(StreamStats, replay_virtual(path, rso.stream_stats())[0].value.value)
    first_token = next(offset for offset, e in cassette.events if isinstance(e, TextDelta))
    assert stats.time_to_first_token == first_token
    live_stats = rxs.replay(path, speed=0).pipe(rso.stream_stats()).run()
    assert (stats.deltas, stats.chars, stats.output_tokens) == (
        live_stats.deltas,
        live_stats.chars,
        live_stats.output_tokens,
    )


def test_live_idle_timeout_and_its_replay_fail_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "stall.jsonl"
    script = ResponseScript(text="alpha beta gamma delta", fault=Fault(kind="stall", after_events=4))
    with ProviderEmulator(script) as emu, _client(emu) as client, pytest.raises(IdleTimeout) as live:
        _live(client).pipe(rso.record(path), rso.idle_timeout(2.0), rso.final()).run()
    replayed = replay_virtual(path, reactivex.compose(rso.idle_timeout(2.0), rso.final()))
    (message,) = replayed
    error = message.value.exception
    assert type(error) is IdleTimeout
    assert error.partial.text == live.value.partial.text
    assert error.partial.text  # the stall came after some text

"""``StreamConfig``: shipped profiles, overrides, files + environment, errors; ``apply_config`` chains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import pytest
import reactivex
from reactivex.testing import ReactiveTest, TestScheduler

import rxstream as rxs
from rxstream import operators as rso
from rxstream.config import SHIPPED_PROFILES, StreamConfig, StreamProfile
from rxstream.errors import ConfigurationError, FirstTokenTimeout, StreamInterruptedError
from rxstream.events import StreamEnd, StreamEvent, StreamStart, TextDelta
from rxstream.testing import ProviderEmulator, ResponseScript

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


def t(seq: int, text: str) -> TextDelta:
    return TextDelta(stream_id="s", seq=seq, text=text)


START = StreamStart(stream_id="s", seq=0, provider="anthropic")
END = StreamEnd(stream_id="s", seq=99, stop_reason="end_turn")


def run(messages: list[Any], op: Any) -> list[Any]:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(messages)
    return list(scheduler.start(lambda: source.pipe(op(scheduler)), disposed=1000).messages)


# ----------------------------------------------------------------------------- profiles


def test_every_shipped_profile_validates_and_builds_an_operator() -> None:
    config = StreamConfig()
    assert set(config.profiles) == set(SHIPPED_PROFILES) == {"interactive", "batch", "ui", "mcp"}
    for name in SHIPPED_PROFILES:
        profile = config.profile(name)
        assert profile == StreamProfile.model_validate(SHIPPED_PROFILES[name])
        assert profile.description
        events: reactivex.Observable[StreamEvent] = reactivex.from_iterable([START, t(1, "Hello"), END])
        assert callable(rso.apply_config(config, name))
        if profile.smooth is None and profile.coalesce is None:
            out = events.pipe(rso.apply_config(config, name)).pipe(rso.final()).run()
            assert out.text == "Hello"
    assert config.profile().description == config.profile("interactive").description


def test_file_values_merge_into_shipped_profiles_field_by_field(tmp_path: Path) -> None:
    file = tmp_path / "rxstream.toml"
    file.write_text(
        'default_profile = "custom"\n'
        "[profiles.interactive]\ntimeouts = { first_token = 5 }\n"
        "[profiles.custom]\ncoalesce = { max_delay = 0.2, max_chars = 80 }\n"
    )
    config = StreamConfig.load(file, env=False)
    interactive = config.profile("interactive")
    assert interactive.timeouts.first_token == 5
    assert interactive.timeouts.idle == SHIPPED_PROFILES["interactive"]["timeouts"]["idle"]
    assert interactive.coalesce is not None  # untouched shipped field kept
    custom = config.profile().coalesce
    assert custom is not None and custom.max_chars == 80
    assert config.profile().retry is None  # a new profile starts from StreamProfile defaults


def test_yaml_file_and_environment_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "rxstream.yaml"
    file.write_text("default_profile: batch\nprofiles:\n  mcp:\n    mcp: {interval: 0.5}\n")
    monkeypatch.setenv("RXSTREAM_PROFILES__MCP__TIMEOUTS__FIRST_TOKEN", "90")
    monkeypatch.setenv("RXSTREAM_DEFAULT_PROFILE", "ui")
    config = StreamConfig.load(file)
    assert config.default_profile == "ui"  # the environment wins over the file
    assert config.profile("mcp").mcp.interval == 0.5
    assert config.profile("mcp").timeouts.first_token == 90
    assert config.profile("mcp").timeouts.idle == 60  # shipped value kept
    monkeypatch.setenv("RXSTREAM_CONFIG", str(file))
    monkeypatch.delenv("RXSTREAM_DEFAULT_PROFILE")
    assert StreamConfig.load().default_profile == "batch"
    assert StreamConfig.load_default().default_profile == "batch"  # what `rxstream mcp`/`run` use


# ----------------------------------------------------------------------------- overrides


OVERRIDES = {
    "providers": {
        "anthropic": {
            "timeouts": {"first_token": 10},
            "models": {
                "claude-3-haiku*": {"stream": False},
                "claude-3-haiku-special": {"chunk_delay_ms": 20},
                "claude-opus*": {"profile": "batch", "timeouts": {"total": 99}},
            },
        },
        "openai": {"profile": "ui"},
    }
}


def test_overrides_resolve_provider_then_model_exact_before_pattern() -> None:
    config = StreamConfig.from_mapping(OVERRIDES)
    base = config.profile("interactive")
    assert config.for_model(None, None) == base
    assert config.for_model("bedrock", "x") == base
    haiku = config.for_model("anthropic", "claude-3-haiku-20240307")
    assert haiku.stream is False and haiku.timeouts.first_token == 10
    assert haiku.timeouts.idle == base.timeouts.idle  # nested settings merge field by field
    special = config.for_model("anthropic", "claude-3-haiku-special")
    assert special.stream is True and special.chunk_delay_ms == 20  # exact name wins over the pattern
    opus = config.for_model("anthropic", "claude-opus-4")
    assert opus.retry == config.profile("batch").retry  # the override names the profile
    assert (opus.timeouts.first_token, opus.timeouts.total) == (10, 99)
    assert config.for_model("openai", "gpt-4o").smooth == config.profile("ui").smooth
    assert config.for_model("openai", "gpt-4o", profile="batch").retry == config.profile("batch").retry


# ----------------------------------------------------------------------------- errors


def error_of(tmp_path: Path, name: str, content: str) -> str:
    file = tmp_path / name
    file.write_text(content)
    with pytest.raises(ConfigurationError) as info:
        StreamConfig.load(file, env=False)
    message = str(info.value)
    assert str(file) in message
    return message


def test_invalid_values_name_the_file_the_profile_and_the_field(tmp_path: Path) -> None:
    message = error_of(tmp_path, "a.toml", "[profiles.ui]\ncoalesce = { max_delay = -1 }\n")
    assert "profile 'ui'" in message and "coalesce.max_delay" in message and "greater than 0" in message
    message = error_of(tmp_path, "b.yaml", "profiles:\n  batch:\n    retry: {max_attempts: 0}\n")
    assert "profile 'batch'" in message and "retry.max_attempts" in message
    message = error_of(tmp_path, "c.toml", "[profiles.ui]\ncoalesce = { max_dealy = 1 }\n")
    assert "coalesce.max_dealy" in message and "Extra inputs" in message
    message = error_of(tmp_path, "d.toml", '[providers.openai.models."o1*"]\nstream = "maybe"\n')
    assert "provider 'openai'" in message and "models.o1*.stream" in message
    message = error_of(tmp_path, "e.toml", "[profiles.ui]\nsmooth = { delay = 1, chars_per_second = 5 }\n")
    assert "not both" in message
    message = error_of(tmp_path, "f.toml", 'default_profile = "nope"\n')
    assert "'nope' is not a profile" in message
    message = error_of(tmp_path, "g.toml", '[providers.openai]\nprofile = "fast"\n')
    assert "providers.openai.profile 'fast'" in message
    message = error_of(tmp_path, "h.toml", "[profiles.ui\n")
    assert "cannot be read" in message
    message = error_of(tmp_path, "i.yaml", "profiles: [unclosed\n")
    assert "cannot be read" in message


def test_missing_file_unknown_suffix_and_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        StreamConfig.load(tmp_path / "missing.toml")
    (tmp_path / "x.ini").write_text("")
    with pytest.raises(ConfigurationError, match=r"\.toml, \.yaml or \.yml"):
        StreamConfig.load(tmp_path / "x.ini")
    with pytest.raises(ConfigurationError, match="unknown profile 'fast'"):
        rso.apply_config(StreamConfig(), "fast")
    with pytest.raises(ConfigurationError, match="StreamConfig or StreamProfile"):
        rso.apply_config({"profiles": {}})  # type: ignore[arg-type]


def test_environment_errors_name_the_variable_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RXSTREAM_PROFILES__UI__STATS_INTERVAL", "-2")
    with pytest.raises(ConfigurationError, match=r"RXSTREAM_\* environment[\s\S]*profile 'ui'"):
        StreamConfig.load()


# ----------------------------------------------------------------------------- apply_config chains


def test_stream_false_holds_the_events_and_releases_them_at_once() -> None:
    config = StreamConfig.from_mapping({"providers": {"openai": {"models": {"o1*": {"stream": False}}}}})
    profile = config.for_model("openai", "o1-mini", "batch").model_copy(
        update={"timeouts": rxs.config.TimeoutSettings()}
    )
    messages = [
        on_next(210, START),
        on_next(220, t(1, "a")),
        on_next(230, t(2, "b")),
        on_next(240, END),
        on_completed(250),
    ]
    assert run(messages, lambda s: rso.apply_config(profile, scheduler=s)) == [
        on_next(250, START),
        on_next(250, t(1, "a")),
        on_next(250, t(2, "b")),
        on_next(250, END),
        on_completed(250),
    ]
    failure = StreamInterruptedError("dropped")
    no_retry = profile.model_copy(update={"retry": None})
    messages = [on_next(210, START), on_next(220, t(1, "a")), on_error(230, failure)]
    assert run(messages, lambda s: rso.apply_config(no_retry, scheduler=s)) == [
        on_next(230, START),
        on_next(230, t(1, "a")),
        on_error(230, failure),
    ]


def test_chunk_delay_ms_paces_words() -> None:
    profile = StreamProfile(chunk_delay_ms=2000)  # 2 s = 2 ticks on the TestScheduler
    messages = [on_next(210, t(1, "one two three")), on_completed(300)]
    out = run(messages, lambda s: rso.apply_config(profile, scheduler=s))
    texts = [(m.time, m.value.value.text) for m in out if m.value.kind == "N"]
    assert texts == [(210, "one "), (212, "two "), (300, "three")]  # the last word waits for the end


def test_profile_timeouts_and_coalescing_apply() -> None:
    profile = StreamProfile.model_validate({"timeouts": {"first_token": 5}, "coalesce": {"max_delay": 3}})
    out = run([on_next(201, START)], lambda s: rso.apply_config(profile, scheduler=s))
    assert out[0] == on_next(201, START)
    assert out[1].time == 205 and isinstance(out[1].value.exception, FirstTokenTimeout)
    messages = [
        on_next(201, START),
        on_next(202, t(1, "a")),
        on_next(203, t(2, "b")),
        on_next(210, END),
        on_completed(211),
    ]
    out = run(messages, lambda s: rso.apply_config(profile, scheduler=s))
    assert [(m.time, getattr(m.value.value, "text", None)) for m in out if m.value.kind == "N"] == [
        (201, None),
        (205, "ab"),
        (210, None),
    ]


def test_buffer_tokens_release_bursts_and_stay_events() -> None:
    profile = StreamProfile.model_validate({"buffer_tokens": {"n": 2}})
    messages = [on_next(201, t(1, "a")), on_next(202, t(2, "b")), on_next(203, t(3, "c")), on_completed(204)]
    out = run(messages, lambda s: rso.apply_config(profile, scheduler=s))
    assert out == [
        on_next(202, t(1, "a")),
        on_next(202, t(2, "b")),
        on_next(204, t(3, "c")),
        on_completed(204),
    ]


def test_pause_valve_uses_the_profile_bound() -> None:
    valve = reactivex.subject.BehaviorSubject(False)
    events: list[StreamEvent] = []
    source: reactivex.Observable[StreamEvent] = reactivex.from_iterable([START, t(1, "x"), END])
    source.pipe(rso.apply_config(StreamProfile(), valve=valve)).subscribe(events.append)
    assert events == []
    valve.on_next(True)
    assert [type(e) for e in events] == [StreamStart, TextDelta, StreamEnd]


def test_stream_false_end_to_end_through_the_sdk() -> None:
    config = StreamConfig.from_mapping(
        {"providers": {"anthropic": {"models": {"slow-*": {"stream": False}}}}}
    )
    with ProviderEmulator(ResponseScript(text="one two three four", event_delay=0.02)) as emu:
        client = anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="sk-test")
        try:
            stream = rxs.from_anthropic(
                client, model="slow-1", max_tokens=1000, messages=[{"role": "user", "content": "hi"}]
            )
            arrivals: list[float] = []
            import time

            def record(_: StreamEvent) -> None:
                arrivals.append(time.monotonic())

            stream.pipe(rso.apply_config(config, "batch", provider="anthropic", model="slow-1")).pipe(
                reactivex.operators.do_action(record), rso.final()
            ).run()
            assert len(arrivals) > 5
            assert arrivals[-1] - arrivals[0] < 0.015  # released together, not 20 ms apart
        finally:
            client.close()


# ---------------------------------------------------------------- rxstream run --profile/--config


def test_run_command_applies_the_profile_and_reports_bad_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rxstream.cli import main

    monkeypatch.setenv(
        "RXSTREAM_EMULATOR_SCRIPT", ResponseScript(text="held until the end").model_dump_json()
    )
    good = tmp_path / "good.toml"
    good.write_text("[providers.anthropic]\nstream = false\n")
    assert main(["run", "hi", "--profile", "batch", "--config", str(good)]) == 0
    assert "held until the end" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[profiles.batch]\nretry = { max_attempts = 0 }\n")
    assert main(["run", "hi", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "profile 'batch'" in err and "retry.max_attempts" in err
    assert main(["run", "hi", "--profile", "nope"]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err

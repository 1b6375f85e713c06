"""merge_streams / race_first_token / speculative / fallback / compare_streams.

Ordering and switching are marble tests on TestScheduler (subscription records prove the
losers and the draft were disposed at the right tick); end-to-end tests run the official
SDKs against the emulator and read its connection records.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import openai
import pytest
import reactivex
from reactivex.notification import OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable
from rich.console import Console

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import AllSourcesFailedError, ConfigurationError, ProviderError, StreamDecodeError
from rxstream.events import StreamEnd, StreamEvent, StreamReset, StreamStart, TextDelta, Usage
from rxstream.testing import Fault, ProviderEmulator, ResponseScript

USER_X = [{"role": "user", "content": "x"}]

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe
API_KEY = "sk-secret-test-key-0123456789"


def S(sid: str) -> StreamStart:
    return StreamStart(stream_id=sid, seq=0, provider="anthropic", model=f"model-{sid}")


def t(sid: str, seq: int, value: str) -> TextDelta:
    return TextDelta(stream_id=sid, seq=seq, text=value)


def E(sid: str, seq: int, out: int = 2) -> StreamEnd:
    return StreamEnd(
        stream_id=sid, seq=seq, stop_reason="end_turn", usage=Usage(input_tokens=5, output_tokens=out)
    )


def overloaded() -> ProviderError:
    return ProviderError("HTTP 529", status_code=529)


def values(messages: list[Any]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def error_of(messages: list[Any]) -> Exception:
    (error,) = [m.value.exception for m in messages if isinstance(m.value, OnError)]
    return error


# --- misuse -------------------------------------------------------------------------------------


def test_misuse_is_a_configuration_error() -> None:
    ok = reactivex.empty()
    bad_sources: list[Any] = [
        {},
        [],
        reactivex.empty(),
        "ab",
        {"a": 1},
        {1: ok},
        [("a", ok), ("a", ok)],
        [("a",)],
    ]
    for bad in bad_sources:
        with pytest.raises(ConfigurationError):
            rxs.merge_streams(bad)
        with pytest.raises(ConfigurationError):
            rxs.race_first_token(bad)
        with pytest.raises(ConfigurationError):
            rxs.compare_streams(bad)
    with pytest.raises(ConfigurationError):
        rxs.speculative(ok, 42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rxs.fallback(ok, ok, on_partial="retry")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rso.for_source("")


# --- merge_streams ------------------------------------------------------------------------------


def test_merge_keeps_each_order_and_tags_an_error_while_the_others_go_on() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(
        on_next(10, S("a")), on_next(30, t("a", 1, "x")), on_error(50, overloaded())
    )
    b = scheduler.create_cold_observable(
        on_next(20, S("b")), on_next(40, t("b", 1, "y")), on_next(60, E("b", 2)), on_completed(70)
    )
    results = scheduler.start(lambda: rxs.merge_streams({"A": a, "B": b}))
    items = values(results.messages)
    assert [(i.source, i.event.type if i.event else "error") for i in items] == [
        ("A", "stream_start"),
        ("B", "stream_start"),
        ("A", "text_delta"),
        ("B", "text_delta"),
        ("A", "error"),
        ("B", "stream_end"),
    ]
    assert isinstance(items[4].error, ProviderError)
    assert results.messages[-1] == on_completed(270)
    assert a.subscriptions == [subscribe(200, 250)] and b.subscriptions == [subscribe(200, 270)]


def test_merge_fail_fast_disposes_the_rest() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(10, S("a")), on_error(30, overloaded()))
    b = scheduler.create_cold_observable(on_next(20, S("b")), on_next(90, E("b", 1)), on_completed(100))
    results = scheduler.start(lambda: rxs.merge_streams([("A", a), ("B", b)], fail_fast=True))
    assert isinstance(error_of(results.messages), ProviderError)
    assert b.subscriptions == [subscribe(200, 230)]


def test_for_source_and_untag() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(
        on_next(10, S("a")), on_next(30, t("a", 1, "x")), on_error(50, overloaded())
    )
    b = scheduler.create_cold_observable(on_next(20, S("b")), on_next(40, E("b", 1)), on_completed(45))
    merged = rxs.merge_streams({"A": a, "B": b})
    only_b = scheduler.start(
        lambda: merged.pipe(rso.for_source("B")), created=0, subscribed=100, disposed=1000
    )
    assert values(only_b.messages) == [S("b"), E("b", 1)]
    assert only_b.messages[-1] == on_completed(150)
    scheduler2 = TestScheduler()
    a2 = scheduler2.create_cold_observable(on_next(10, S("a")), on_error(50, overloaded()))
    b2 = scheduler2.create_cold_observable(on_next(20, S("b")), on_next(90, E("b", 1)), on_completed(95))
    untagged = scheduler2.start(lambda: rxs.merge_streams({"A": a2, "B": b2}).pipe(rso.untag()))
    assert values(untagged.messages) == [S("a"), S("b")]
    assert isinstance(error_of(untagged.messages), ProviderError)
    assert b2.subscriptions == [subscribe(200, 250)]  # the projection's error disposed the merge


# --- race_first_token ---------------------------------------------------------------------------


def test_race_forwards_the_first_content_source_and_disposes_the_others_at_once() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(
        on_next(10, S("a")), on_next(60, t("a", 1, "slow")), on_completed(90)
    )
    b = scheduler.create_cold_observable(
        on_next(20, S("b")), on_next(40, t("b", 1, "fast")), on_next(50, E("b", 2)), on_completed(55)
    )
    c = scheduler.create_cold_observable(on_next(5, S("c")), on_error(30, overloaded()))
    results = scheduler.start(lambda: rxs.race_first_token({"A": a, "B": b, "C": c}))
    assert results.messages == [
        on_next(240, S("b")),
        on_next(240, t("b", 1, "fast")),
        on_next(250, E("b", 2)),
        on_completed(255),
    ]
    assert a.subscriptions == [subscribe(200, 240)]
    assert c.subscriptions == [subscribe(200, 230)]


def test_race_when_every_source_fails_before_content() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(on_next(10, S("a")), on_error(30, overloaded()))
    b = scheduler.create_cold_observable(on_error(20, StreamDecodeError("bad")))
    results = scheduler.start(lambda: rxs.race_first_token({"A": a, "B": b}))
    error = error_of(results.messages)
    assert isinstance(error, AllSourcesFailedError)
    assert list(error.errors) == ["B", "A"] and error.retryable
    assert results.messages[0].time == 230


def test_race_winner_error_is_forwarded_and_an_empty_answer_wins_only_last() -> None:
    scheduler = TestScheduler()
    a = scheduler.create_cold_observable(
        on_next(10, S("a")), on_next(20, t("a", 1, "x")), on_error(30, overloaded())
    )
    b = scheduler.create_cold_observable(on_next(5, S("b")), on_next(50, t("b", 1, "y")), on_completed(60))
    results = scheduler.start(lambda: rxs.race_first_token({"A": a, "B": b}))
    assert values(results.messages) == [S("a"), t("a", 1, "x")]
    assert isinstance(error_of(results.messages), ProviderError)
    scheduler2 = TestScheduler()
    empty = scheduler2.create_cold_observable(on_next(5, S("e")), on_next(6, E("e", 1)), on_completed(7))
    failing = scheduler2.create_cold_observable(on_error(20, overloaded()))
    results2 = scheduler2.start(lambda: rxs.race_first_token({"E": empty, "F": failing}))
    assert results2.messages == [on_next(220, S("e")), on_next(220, E("e", 1)), on_completed(220)]


# --- speculative --------------------------------------------------------------------------------


def test_speculative_switches_to_the_primary_with_one_reset() -> None:
    scheduler = TestScheduler()
    draft: ColdObservable[StreamEvent] = scheduler.create_cold_observable(
        on_next(5, S("d")),
        on_next(10, t("d", 1, "quick ")),
        on_next(20, t("d", 2, "guess")),
        on_next(90, E("d", 3)),
    )
    primary = scheduler.create_cold_observable(
        on_next(15, S("p")), on_next(40, t("p", 1, "real")), on_next(50, E("p", 2)), on_completed(60)
    )
    results = scheduler.start(lambda: rxs.speculative(draft, primary))
    assert results.messages == [
        on_next(205, S("d")),
        on_next(210, t("d", 1, "quick ")),
        on_next(220, t("d", 2, "guess")),
        on_next(240, StreamReset(stream_id="d", seq=3, attempt=2, discarded_text="quick guess")),
        on_next(240, S("p")),
        on_next(240, t("p", 1, "real")),
        on_next(250, E("p", 2)),
        on_completed(260),
    ]
    assert draft.subscriptions == [subscribe(200, 240)]
    scheduler2 = TestScheduler()
    draft2: ColdObservable[StreamEvent] = scheduler2.create_cold_observable(
        on_next(5, S("d")), on_next(10, t("d", 1, "quick"))
    )
    primary2 = scheduler2.create_cold_observable(
        on_next(15, S("p")), on_next(40, t("p", 1, "real")), on_completed(60)
    )
    final = scheduler2.start(lambda: rxs.speculative(draft2, primary2).pipe(rso.final()))
    assert values(final.messages)[0].text == "real"


def test_speculative_keeps_the_draft_when_the_primary_fails_before_content() -> None:
    scheduler = TestScheduler()
    draft = scheduler.create_cold_observable(
        on_next(5, S("d")), on_next(10, t("d", 1, "draft")), on_next(70, E("d", 2)), on_completed(80)
    )
    primary = scheduler.create_cold_observable(on_next(15, S("p")), on_error(30, overloaded()))
    seen: list[Exception] = []
    results = scheduler.start(lambda: rxs.speculative(draft, primary, on_primary_error=seen.append))
    assert values(results.messages) == [S("d"), t("d", 1, "draft"), E("d", 2)]
    assert results.messages[-1] == on_completed(280)
    assert len(seen) == 1 and isinstance(seen[0], ProviderError)


def test_speculative_keep_draft_lets_both_finish() -> None:
    scheduler = TestScheduler()
    draft = scheduler.create_cold_observable(
        on_next(5, S("d")), on_next(10, t("d", 1, "a")), on_completed(100)
    )
    primary = scheduler.create_cold_observable(
        on_next(15, S("p")), on_next(20, t("p", 1, "b")), on_next(30, E("p", 2)), on_completed(40)
    )
    results = scheduler.start(lambda: rxs.speculative(draft, primary, keep_draft=True))
    assert results.messages[-1] == on_completed(300)
    assert draft.subscriptions == [subscribe(200, 300)]
    assert [e.type for e in values(results.messages)] == [
        "stream_start",
        "text_delta",
        "stream_reset",
        "stream_start",
        "text_delta",
        "stream_end",
    ]


# --- fallback -----------------------------------------------------------------------------------


def test_fallback_moves_on_after_a_retryable_error_before_content() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, S("a")), on_error(20, overloaded()))
    second = scheduler.create_cold_observable(
        on_next(10, S("b")), on_next(20, t("b", 1, "ok")), on_completed(30)
    )
    results = scheduler.start(lambda: rxs.fallback(first, second))
    assert results.messages == [
        on_next(210, S("a")),
        on_next(230, S("b")),
        on_next(240, t("b", 1, "ok")),
        on_completed(250),
    ]
    assert second.subscriptions == [subscribe(220, 250)]


def test_fallback_after_content_fails_or_restarts() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(
        on_next(10, S("a")), on_next(15, t("a", 1, "par")), on_error(20, overloaded())
    )
    second = scheduler.create_cold_observable(
        on_next(10, S("b")), on_next(20, t("b", 1, "full")), on_completed(30)
    )
    failed = scheduler.start(lambda: rxs.fallback(first, second))
    assert isinstance(error_of(failed.messages), ProviderError) and second.subscriptions == []
    scheduler2 = TestScheduler()
    first = scheduler2.create_cold_observable(
        on_next(10, S("a")), on_next(15, t("a", 1, "par")), on_error(20, overloaded())
    )
    second = scheduler2.create_cold_observable(
        on_next(10, S("b")), on_next(20, t("b", 1, "full")), on_completed(30)
    )
    restarted = scheduler2.start(lambda: rxs.fallback(first, second, on_partial="restart"))
    assert values(restarted.messages)[2] == StreamReset(stream_id="a", seq=2, attempt=2, discarded_text="par")
    assert values(restarted.messages)[-1] == t("b", 1, "full")
    scheduler3 = TestScheduler()
    bad = scheduler3.create_cold_observable(on_error(10, StreamDecodeError("bad")))
    never = scheduler3.create_cold_observable(on_completed(10))
    results = scheduler3.start(lambda: rxs.fallback(bad, never))
    assert isinstance(error_of(results.messages), StreamDecodeError) and never.subscriptions == []


# --- compare_streams ----------------------------------------------------------------------------


def test_compare_streams_measures_each_source_on_the_scheduler_clock() -> None:
    scheduler = TestScheduler()  # one tick = 1 s of `scheduler.now` here
    a = scheduler.create_cold_observable(
        on_next(10, S("a")),
        on_next(20, t("a", 1, "the cat sat")),
        on_next(40, E("a", 2, out=4)),
        on_completed(40),
    )
    b = scheduler.create_cold_observable(
        on_next(5, S("b")),
        on_next(50, t("b", 1, "the cat sits")),
        on_next(70, E("b", 2, out=6)),
        on_completed(70),
    )
    c = scheduler.create_cold_observable(on_next(5, S("c")), on_error(8, overloaded()))
    results = scheduler.start(lambda: rxs.compare_streams({"A": a, "B": b, "C": c}, scheduler=scheduler))
    assert results.messages[-1] == on_completed(270)
    comparison = values(results.messages)[0]
    ra, rb, rc = comparison.results
    assert (ra.time_to_first_token, ra.total_time, ra.output_tokens) == (20.0, 40.0, 4)
    assert ra.tokens_per_second == pytest.approx(4 / 20)
    assert (rb.time_to_first_token, rb.total_time, rb.text, rb.model) == (
        50.0,
        70.0,
        "the cat sits",
        "model-b",
    )
    assert rc.error is not None and rc.error.startswith("ProviderError") and rc.text == ""
    ab = comparison.similarities[0]
    assert (ab.a, ab.b) == ("A", "B") and 0.8 < ab.ratio < 1.0
    records = comparison.to_records()
    assert [r["source"] for r in records] == ["A", "B", "C"] and records[0]["input_tokens"] == 5
    console = Console(record=True, width=140)
    console.print(comparison)
    rendered = console.export_text()
    assert "model-a" in rendered and "Similarity" in rendered
    assert "<table>" in comparison._repr_html_()
    markdown = comparison._repr_markdown_().splitlines()
    # header + rule + 3 sources, a blank line, header + rule + 3 pairs
    assert markdown[0].startswith("| source | model |") and len(markdown) == 2 + 3 + 1 + 2 + 3
    assert "model-b" in markdown[3] and "ProviderError" in markdown[4] and "| A | B |" in markdown[8]
    with pytest.raises(ConfigurationError, match="pip install pandas"):
        comparison.to_pandas()


# --- end to end on the emulator -----------------------------------------------------------------


def anthropic_stream(client: Any, **extra: Any) -> reactivex.Observable[StreamEvent]:
    return rxs.from_anthropic(
        client, model="m", max_tokens=100_000, messages=[{"role": "user", "content": "hi"}], **extra
    )


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_race_losers_disconnect_within_50_ms_of_the_winners_first_token(kind: str) -> None:
    scripts = {
        "fast": ResponseScript(model="fast", text="fast answer here", first_event_delay=0.2),
        "slow1": ResponseScript(model="slow1", text="slow", first_event_delay=5),
        "slow2": ResponseScript(model="slow2", text="slow", headers_delay=5),
    }
    with ProviderEmulator(responder=lambda _p, body: scripts[body["model"]]) as emu:
        client: Any
        if kind == "sync":
            client = anthropic.Anthropic(api_key=API_KEY, base_url=emu.anthropic_base_url, max_retries=0)
        else:
            client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emu.anthropic_base_url, max_retries=0)
        sources = {
            name: rxs.from_anthropic(
                client, model=name, max_tokens=100_000, messages=[{"role": "user", "content": "hi"}]
            )
            for name in ("slow1", "fast", "slow2")
        }
        first_token: list[float] = []
        texts: list[str] = []
        async for event in rxs.to_async_iterator(rxs.race_first_token(sources)):
            if event.type == "text_delta":
                first_token.append(time.monotonic())
                texts.append(event.text)
        assert "".join(texts) == "fast answer here"
        for _ in range(3):
            await asyncio.to_thread(emu.wait_for_disconnect, 0, 2)
        records = {r.path + str(i): r for i, r in enumerate(emu.connections)}
        losers = [r for r in records.values() if not r.completed]
        assert len(losers) == 2 and all(r.client_disconnected for r in losers)
        latency = [r.disconnected_at - first_token[0] for r in losers if r.disconnected_at is not None]
        shown = [f"{x * 1000:.1f} ms" for x in latency]
        print(f"{kind}: loser disconnect after the winner's first token: {shown}")
        assert len(latency) == 2 and max(latency) < 0.05
        if kind == "sync":
            client.close()
        else:
            await client.close()


def test_speculative_local_openai_draft_hands_over_to_the_cloud() -> None:
    # The recipe: a fast "local" OpenAI-compatible server drafts, a slower cloud model answers.
    local_script = ResponseScript(model="local", text=" ".join(["draft"] * 400), event_delay=0.01)
    cloud_script = ResponseScript(model="cloud", text="The considered cloud answer.", first_event_delay=1.0)
    with ProviderEmulator(
        responder=lambda provider, _b: local_script if provider == "openai" else cloud_script
    ) as emu:
        local = openai.OpenAI(api_key=API_KEY, base_url=emu.openai_base_url, max_retries=0)
        cloud = anthropic.Anthropic(api_key=API_KEY, base_url=emu.anthropic_base_url, max_retries=0)
        draft = rxs.from_openai(local, model="local", messages=[{"role": "user", "content": "hi"}])
        primary = anthropic_stream(cloud)
        events = list(rxs.to_iterator(rxs.speculative(draft, primary)))
        resets = [e for e in events if isinstance(e, StreamReset)]
        assert len(resets) == 1 and resets[0].discarded_text.startswith("draft")
        response = rxs.speculative(draft, primary).pipe(rso.final()).run()
        assert response.text == cloud_script.text and response.model == "cloud"
        for index, record in enumerate(emu.connections):
            if record.provider == "openai":
                emu.wait_for_disconnect(index, 2)
        drafts = [r for r in emu.connections if r.provider == "openai"]
        assert len(drafts) == 2 and all(r.client_disconnected and not r.completed for r in drafts)
        local.close()
        cloud.close()


def test_fallback_and_compare_end_to_end() -> None:
    with ProviderEmulator() as emu:
        client = anthropic.Anthropic(api_key=API_KEY, base_url=emu.anthropic_base_url, max_retries=0)
        emu.enqueue(
            ResponseScript(fault=Fault(kind="http_error", status=529)),
            ResponseScript(text="second wins"),
        )
        response = rxs.fallback(anthropic_stream(client), anthropic_stream(client)).pipe(rso.final()).run()
        assert response.text == "second wins"
        scripts = {
            "a": ResponseScript(model="a", text="Paris is the capital of France."),
            "b": ResponseScript(model="b", text="The capital of France is Paris.", event_delay=0.01),
        }
        with ProviderEmulator(responder=lambda _p, body: scripts[body["model"]]) as emu2:
            client2 = anthropic.Anthropic(api_key=API_KEY, base_url=emu2.anthropic_base_url, max_retries=0)
            comparison = rxs.compare_streams(
                {
                    name: rxs.from_anthropic(
                        client2, model=name, max_tokens=100_000, messages=[{"role": "user", "content": "hi"}]
                    )
                    for name in scripts
                }
            ).run()
            client2.close()
        ra, rb = comparison.results
        assert ra.text == scripts["a"].text and rb.model == "b" and rb.stop_reason == "end_turn"
        assert ra.time_to_first_token is not None and rb.total_time >= ra.time_to_first_token
        assert 0 < comparison.similarities[0].ratio < 1
        client.close()

"""Marble tests of ``coalesce_text`` on TestScheduler (1 tick = 1 second)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import (
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallStart,
)
from rxstream.operators import coalesce_text
from rxstream.testing.kit import run
from rxstream.testing.kit import stream_end as end
from rxstream.testing.kit import text_delta as t
from rxstream.testing.kit import thinking_delta as th
from rxstream.testing.kit import tool_call_start as tool
from rxstream.testing.kit import usage_update as usage

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


# --------------------------------------------------------------------------- coalesce_text


def test_a_burst_within_the_window_becomes_one_delta_with_the_first_seq() -> None:
    messages, _ = run(
        [
            on_next(210, t(1, "Hel")),
            on_next(211, t(2, "lo")),
            on_next(213, t(3, "!")),
            on_next(230, t(4, "x")),
        ],
        coalesce_text(5),
    )
    assert messages == [on_next(215, t(1, "Hello!")), on_next(235, t(4, "x"))]


def test_a_window_with_one_delta_emits_the_same_object() -> None:
    delta = t(1, "a")
    messages, _ = run([on_next(210, delta)], coalesce_text(5))
    assert messages[0].value.value is delta


def test_max_chars_closes_the_window_at_once() -> None:
    messages, _ = run(
        [on_next(210, t(1, "ab")), on_next(211, t(2, "cd")), on_next(212, t(3, "e")), on_completed(300)],
        coalesce_text(100, max_chars=4),
    )
    assert messages == [on_next(211, t(1, "abcd")), on_next(300, t(3, "e")), on_completed(300)]


def test_a_single_long_delta_is_not_split() -> None:
    messages, _ = run([on_next(210, t(1, "abcdefgh"))], coalesce_text(5, max_chars=3))
    assert messages == [on_next(210, t(1, "abcdefgh"))]


def test_text_and_thinking_are_never_merged() -> None:
    messages, _ = run(
        [
            on_next(210, th(1, "hmm")),
            on_next(211, th(2, "…")),
            on_next(212, t(3, "A")),
            on_next(213, t(4, "B")),
        ],
        coalesce_text(5),
    )
    assert messages == [on_next(212, th(1, "hmm…")), on_next(217, t(3, "AB"))]


def test_other_events_flush_the_held_text_first_and_keep_their_place() -> None:
    messages, _ = run(
        [
            on_next(210, t(1, "a")),
            on_next(211, t(2, "b")),
            on_next(212, tool(3)),
            on_next(213, t(4, "c")),
            on_next(214, usage(5)),
            on_next(215, end(6)),
            on_completed(216),
        ],
        coalesce_text(10),
    )
    assert messages == [
        on_next(212, t(1, "ab")),
        on_next(212, tool(3)),
        on_next(214, t(4, "c")),
        on_next(214, usage(5)),
        on_next(215, end(6)),
        on_completed(216),
    ]


def test_signed_and_provider_detail_deltas_are_not_merged() -> None:
    refusal = TextDelta(stream_id="s", seq=3, text="no", provider_details={"refusal": True})
    messages, _ = run(
        [
            on_next(210, th(1, "x")),
            on_next(211, th(2, "", signature="sig")),
            on_next(212, t(3, "a")),
            on_next(213, refusal),
            on_next(214, t(4, "b")),
        ],
        coalesce_text(5),
    )
    assert messages == [
        on_next(211, th(1, "x")),
        on_next(211, th(2, "", signature="sig")),
        on_next(213, t(3, "a")),
        on_next(213, refusal),
        on_next(219, t(4, "b")),
    ]


def test_completion_flushes_the_held_text_first() -> None:
    messages, _ = run(
        [on_next(210, t(1, "a")), on_next(211, t(2, "b")), on_completed(212)], coalesce_text(50)
    )
    assert messages == [on_next(212, t(1, "ab")), on_completed(212)]


def test_error_flushes_the_held_text_first_and_passes_the_error_unchanged() -> None:
    error = StreamInterruptedError("dropped")
    messages, _ = run(
        [on_next(210, t(1, "a")), on_next(211, t(2, "b")), on_error(212, error)], coalesce_text(50)
    )
    assert messages == [on_next(212, t(1, "ab")), on_error(212, error)]
    assert messages[1].value.exception is error


def test_dispose_mid_stream_unsubscribes_upstream_and_cancels_the_window() -> None:
    messages, source = run(
        [on_next(210, t(1, "a")), on_next(448, t(2, "b")), on_next(460, t(3, "c"))],
        coalesce_text(5),
        disposed=450,
    )
    assert messages == [on_next(215, t(1, "a"))]
    assert source.subscriptions == [Subscription(200, 450)]


def test_each_subscription_has_its_own_window() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, t(1, "a")), on_next(2, t(2, "b")), on_completed(20))
    coalesced = source.pipe(coalesce_text(5))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: coalesced.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(203, lambda *_: coalesced.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [on_next(206, t(1, "ab")), on_completed(220)]
    assert second.messages == [on_next(209, t(1, "ab")), on_completed(223)]


def test_the_scheduler_argument_wins_over_the_subscribe_time_scheduler() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(210, t(1, "a")), on_next(211, t(2, "b")))
    observer = scheduler.create_observer()
    scheduler.schedule_absolute(
        200, lambda *_: source.pipe(coalesce_text(3, scheduler=scheduler)).subscribe(observer)
    )
    scheduler.start()
    assert observer.messages == [on_next(213, t(1, "ab"))]


@pytest.mark.parametrize(
    ("max_delay", "max_chars"),
    [
        (0, None),
        (-1, None),
        (float("nan"), None),
        (float("inf"), None),
        ("1", None),
        (True, None),
        (1, 0),
        (1, -2),
        (1, 2.5),
        (1, True),
    ],
)
def test_invalid_arguments_raise_at_creation(max_delay: Any, max_chars: Any) -> None:
    with pytest.raises(ConfigurationError):
        coalesce_text(max_delay, max_chars)


def test_thread_safety_with_a_real_timer_loses_nothing() -> None:
    subject: Subject[StreamEvent] = Subject()
    received: list[StreamEvent] = []
    done = threading.Event()
    subject.pipe(coalesce_text(0.001)).subscribe(received.append, on_completed=done.set)
    expected = []
    for i in range(3000):
        value = f"{i},"
        expected.append(value)
        subject.on_next(t(i, value) if i % 500 else tool(i))
    subject.on_completed()
    assert done.wait(5)
    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == "".join(
        v for i, v in enumerate(expected) if i % 500
    )
    assert [e.seq for e in received if isinstance(e, ToolCallStart)] == list(range(0, 3000, 500))


# --------------------------------------------------------------------------- hypothesis

_kinds = st.sampled_from(["text", "think", "tool", "usage", "signed"])
_texts = st.text(alphabet=st.sampled_from(["a", "b", " ", "é", "👍", "\n"]), max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 4), _kinds, _texts), max_size=30),
    max_delay=st.integers(1, 6),
    max_chars=st.one_of(st.none(), st.integers(1, 8)),
    terminal=st.sampled_from(["completed", "error"]),
)
def test_property_text_and_event_order_are_preserved(
    steps: list[tuple[int, str, str]], max_delay: int, max_chars: int | None, terminal: str
) -> None:
    events: list[StreamEvent] = []
    messages: list[Any] = []
    time = 201
    for seq, (gap, kind, value) in enumerate(steps):
        time += gap
        event: StreamEvent
        if kind == "text":
            event = t(seq, value)
        elif kind == "think":
            event = th(seq, value)
        elif kind == "signed":
            event = th(seq, value, signature=f"sig{seq}")
        elif kind == "tool":
            event = tool(seq)
        else:
            event = usage(seq)
        events.append(event)
        messages.append(on_next(time, event))
    error = StreamInterruptedError("boom")
    messages.append(on_completed(time + 1) if terminal == "completed" else on_error(time + 1, error))

    out, _ = run(messages, coalesce_text(max_delay, max_chars), disposed=10_000)
    values = [m.value.value for m in out if isinstance(m.value, OnNext)]

    # Same runs: adjacent mergeable deltas of one type joined, every other event in place.
    # This checks at once: no text lost or duplicated, text never merged with thinking, and
    # no event moved across another.
    assert runs(values) == runs(events)
    # one terminal notification, last, at the source's time
    assert isinstance(out[-1].value, OnCompleted if terminal == "completed" else OnError)
    assert [m.time for m in out if not isinstance(m.value, OnNext)] == [time + 1]
    # merged deltas keep the first merged seq, so seqs still increase
    seqs = [v.seq for v in values]
    assert seqs == sorted(set(seqs))
    # windows are honoured: nothing is held longer than max_delay
    sent_at = {m.value.value.seq: m.time for m in out if isinstance(m.value, OnNext)}
    for message in messages[:-1]:
        if message.value.value.seq in sent_at:
            assert sent_at[message.value.value.seq] - message.time <= max_delay


def runs(events: list[Any]) -> list[Any]:
    result: list[Any] = []
    for e in events:
        mergeable = (type(e) is TextDelta and e.provider_details is None) or (
            type(e) is ThinkingDelta and e.signature is None
        )
        if mergeable and result and isinstance(result[-1], tuple) and result[-1][0] is type(e):
            result[-1] = (type(e), result[-1][1] + e.text)
        elif mergeable:
            result.append((type(e), e.text))
        else:
            result.append(e)
    return result

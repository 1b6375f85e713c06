"""Marble tests of ``smooth_text`` on TestScheduler (1 tick = 1 second)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.notification import OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import StreamEnd, StreamEvent, TextDelta
from rxstream.operators import smooth_text
from rxstream.operators._graphemes import graphemes
from rxstream.testing.kit import run
from rxstream.testing.kit import stream_end as end
from rxstream.testing.kit import text_delta as t
from rxstream.testing.kit import thinking_delta as th
from rxstream.testing.kit import tool_call_start as tool

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


def test_words_leave_one_per_delay_and_the_end_flushes_the_rest() -> None:
    messages, _ = run(
        [on_next(210, t(1, "Hi there you")), on_next(220, end(2)), on_completed(221)], smooth_text(delay=2)
    )
    assert messages == [
        on_next(210, t(1, "Hi ")),
        on_next(212, t(1, "there ")),
        on_next(220, t(1, "you")),
        on_next(220, end(2)),
        on_completed(221),
    ]


def test_chars_per_second_paces_by_chunk_length() -> None:
    messages, _ = run([on_next(210, t(1, "ab cdef g h"))], smooth_text(1))
    # "ab " (3 chars) leaves at once, then 3 s later "cdef " (5 chars), then 5 s later "g "
    assert messages == [on_next(210, t(1, "ab ")), on_next(213, t(1, "cdef ")), on_next(218, t(1, "g "))]


def test_default_pace_is_ten_milliseconds() -> None:
    messages, _ = run([on_next(210, t(1, "a b c"))], smooth_text())
    assert [m.time for m in messages] == [210, 210.01]


def test_zero_delay_rechunks_without_pacing() -> None:
    messages, _ = run([on_next(210, t(1, "a b c")), on_completed(211)], smooth_text(delay=0))
    assert messages == [
        on_next(210, t(1, "a ")),
        on_next(210, t(1, "b ")),
        on_next(211, t(1, "c")),
        on_completed(211),
    ]


def test_words_split_across_deltas_keep_the_seq_of_their_first_character() -> None:
    messages, _ = run(
        [
            on_next(210, t(1, "Hel")),
            on_next(211, t(2, "lo wor")),
            on_next(212, t(3, "ld ")),
            on_next(213, t(4, "!")),
        ],
        smooth_text(delay=0),
    )
    assert messages == [on_next(211, t(1, "Hello ")), on_next(213, t(2, "world "))]


def test_a_delta_that_is_exactly_one_chunk_is_emitted_unchanged() -> None:
    delta = t(1, "word\n")
    messages, _ = run([on_next(210, delta)], smooth_text(delay=1))
    assert messages[0].value.value is delta


def test_text_and_thinking_are_never_mixed() -> None:
    messages, _ = run(
        [on_next(210, th(1, "let me thi")), on_next(211, t(2, "Answer: yes")), on_completed(212)],
        smooth_text(delay=0),
    )
    assert messages == [
        on_next(210, th(1, "let ")),
        on_next(210, th(1, "me ")),
        on_next(211, th(1, "thi")),
        on_next(211, t(2, "Answer: ")),
        on_next(212, t(2, "yes")),
        on_completed(212),
    ]


def test_unspaced_cjk_flows_one_character_per_word() -> None:
    messages, _ = run([on_next(210, t(1, "漢字です。")), on_completed(230)], smooth_text(delay=1))
    texts = [(m.time, m.value.value.text) for m in messages if isinstance(m.value, OnNext)]
    assert texts == [(210, "漢"), (211, "字"), (212, "で"), (213, "す"), (230, "。")]


def test_grapheme_chunking_never_splits_an_emoji_sequence_across_deltas() -> None:
    family = "👨\u200d👩\u200d👧"
    messages, _ = run(
        [on_next(210, t(1, "a👨\u200d")), on_next(211, t(2, "👩\u200d👧")), on_next(212, t(3, "e\u0301!"))],
        smooth_text(delay=1, chunking="grapheme"),
    )
    texts = [m.value.value.text for m in messages]
    assert texts == ["a", family, "e\u0301"]
    assert [m.time for m in messages] == [210, 212, 213]  # the family waits for the next delta


def test_line_chunking() -> None:
    messages, _ = run(
        [on_next(210, t(1, "one\ntwo\n\nthr")), on_next(211, t(2, "ee\n")), on_completed(220)],
        smooth_text(delay=3, chunking="line"),
    )
    assert messages == [
        on_next(210, t(1, "one\n")),
        on_next(213, t(1, "two\n\n")),
        on_next(216, t(1, "three\n")),
        on_completed(220),
    ]


def test_other_events_flush_the_queue_and_the_tail_at_once_in_order() -> None:
    messages, _ = run(
        [on_next(210, t(1, "a b c d")), on_next(211, tool(2)), on_next(212, t(3, "e f"))],
        smooth_text(delay=10),
    )
    assert messages == [
        on_next(210, t(1, "a ")),
        on_next(211, t(1, "b ")),
        on_next(211, t(1, "c ")),
        on_next(211, t(1, "d")),
        on_next(211, tool(2)),
        on_next(212, t(3, "e ")),
    ]


def test_signed_thinking_is_not_rechunked_but_flushes_first() -> None:
    signed = th(2, "", signature="sig")
    messages, _ = run([on_next(210, th(1, "x y")), on_next(211, signed)], smooth_text(delay=0))
    assert messages == [on_next(210, th(1, "x ")), on_next(211, th(1, "y")), on_next(211, signed)]


def test_error_flushes_everything_first() -> None:
    error = StreamInterruptedError("dropped")
    messages, _ = run([on_next(210, t(1, "a b c")), on_error(211, error)], smooth_text(delay=10))
    assert messages == [
        on_next(210, t(1, "a ")),
        on_next(211, t(1, "b ")),
        on_next(211, t(1, "c")),
        on_error(211, error),
    ]


def test_dispose_mid_stream_stops_the_pacing_and_unsubscribes_upstream() -> None:
    messages, source = run(
        [on_next(440, t(1, "a b c d e")), on_next(460, end(2))], smooth_text(delay=4), disposed=450
    )
    assert messages == [on_next(440, t(1, "a ")), on_next(444, t(1, "b ")), on_next(448, t(1, "c "))]
    assert source.subscriptions == [Subscription(200, 450)]


def test_each_subscription_has_its_own_queue() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, t(1, "a b c")), on_completed(10))
    smoothed = source.pipe(smooth_text(delay=2))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: smoothed.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(202, lambda *_: smoothed.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [
        on_next(201, t(1, "a ")),
        on_next(203, t(1, "b ")),
        on_next(210, t(1, "c")),
        on_completed(210),
    ]
    assert second.messages == [
        on_next(203, t(1, "a ")),
        on_next(205, t(1, "b ")),
        on_next(212, t(1, "c")),
        on_completed(212),
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"chars_per_second": 10, "delay": 0.1},
        {"chars_per_second": 0},
        {"chars_per_second": -5},
        {"chars_per_second": float("inf")},
        {"delay": -0.1},
        {"delay": float("nan")},
        {"chunking": "sentence"},
        {"scheduler": "now"},
    ],
)
def test_invalid_arguments_raise_at_creation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        smooth_text(**kwargs)


_pieces = st.lists(
    st.text(
        alphabet=st.sampled_from(
            ["a", "b", " ", "\n", "\r", "漢", "e", "\u0301", "👍", "🏽", "\u200d", "🇫", "🇷"]
        )
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=_pieces, chunking=st.sampled_from(["word", "line", "grapheme"]), delay=st.sampled_from([0, 1, 3])
)
def test_property_text_is_preserved_and_chunks_never_split_a_grapheme(
    pieces: list[str], chunking: Any, delay: int
) -> None:
    messages: list[Any] = [on_next(210 + i, t(i, piece)) for i, piece in enumerate(pieces)]
    messages.append(on_next(210 + len(pieces), end(len(pieces))))
    messages.append(on_completed(211 + len(pieces)))
    out, _ = run(messages, smooth_text(delay=delay, chunking=chunking), disposed=100_000)
    values: list[StreamEvent] = [m.value.value for m in out if isinstance(m.value, OnNext)]
    chunks = [v.text for v in values if isinstance(v, TextDelta)]
    full = "".join(pieces)
    assert "".join(chunks) == full
    assert all(chunks), "no empty chunk"
    assert isinstance(values[-1], StreamEnd)
    boundaries = {0}
    offset = 0
    for cluster in graphemes(full):
        offset += len(cluster)
        boundaries.add(offset)
    offset = 0
    for chunk in chunks:
        offset += len(chunk)
        assert offset in boundaries, (chunks, full)
    seqs = [v.seq for v in values]
    assert seqs == sorted(seqs)


def test_real_threads_lose_nothing() -> None:
    subject: Subject[StreamEvent] = Subject()
    received: list[StreamEvent] = []
    done = threading.Event()
    subject.pipe(smooth_text(delay=0.0005)).subscribe(received.append, on_completed=done.set)
    pieces = [f"w{i} " if i % 7 else f"漢{i}" for i in range(400)]

    def produce() -> None:
        for i, piece in enumerate(pieces):
            subject.on_next(t(i, piece))
        subject.on_next(end(len(pieces)))
        subject.on_completed()

    reader = threading.Thread(target=produce)
    reader.start()
    reader.join(5)
    assert done.wait(5)
    assert "".join(e.text for e in received if isinstance(e, TextDelta)) == "".join(pieces)
    assert isinstance(received[-1], StreamEnd)

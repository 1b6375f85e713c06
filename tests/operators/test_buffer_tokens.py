"""Marble tests of ``buffer_tokens`` on TestScheduler (1 tick = 1 second)."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import (
    StreamEvent,
)
from rxstream.operators import buffer_tokens
from rxstream.testing.kit import run
from rxstream.testing.kit import stream_end as end
from rxstream.testing.kit import text_delta as t
from rxstream.testing.kit import thinking_delta as th
from rxstream.testing.kit import tool_call_start as tool
from rxstream.testing.kit import usage_update as usage

on_next = ReactiveTest.on_next
on_error = ReactiveTest.on_error
on_completed = ReactiveTest.on_completed


# --------------------------------------------------------------------------- buffer_tokens


def test_buffer_tokens_groups_by_count_and_flushes_on_other_events() -> None:
    a, b, c, d, e = (t(i, x) for i, x in enumerate("abcde", start=1))
    u = usage(6)
    messages, _ = run(
        [
            on_next(210, a),
            on_next(211, b),
            on_next(212, c),
            on_next(213, d),
            on_next(214, e),
            on_next(215, u),
            on_completed(216),
        ],
        buffer_tokens(3),
    )
    assert messages == [on_next(212, [a, b, c]), on_next(215, [d, e]), on_next(215, [u]), on_completed(216)]


def test_buffer_tokens_never_mixes_text_and_thinking() -> None:
    x, y, z = th(1, "x"), t(2, "y"), t(3, "z")
    messages, _ = run(
        [on_next(210, x), on_next(211, y), on_next(212, z), on_completed(213)], buffer_tokens(5)
    )
    assert messages == [on_next(211, [x]), on_next(213, [y, z]), on_completed(213)]


def test_buffer_tokens_flattened_output_is_the_input() -> None:
    events: list[StreamEvent] = [t(1, "a"), tool(2), t(3, "b"), th(4, "c"), th(5, "d"), t(6, "e"), end(7)]
    out = reactivex.from_iterable(events).pipe(buffer_tokens(2), ops.to_list()).run()
    assert [e for group in out for e in group] == events
    assert all(group for group in out)


def test_buffer_tokens_max_delay_releases_a_partial_group() -> None:
    a, b, c = t(1, "a"), t(2, "b"), t(3, "c")
    messages, _ = run([on_next(210, a), on_next(211, b), on_next(220, c)], buffer_tokens(10, max_delay=4))
    assert messages == [on_next(214, [a, b]), on_next(224, [c])]


def test_buffer_tokens_error_flushes_the_held_group_first() -> None:
    a, b = t(1, "a"), t(2, "b")
    error = StreamInterruptedError("dropped")
    messages, _ = run([on_next(210, a), on_next(211, b), on_error(212, error)], buffer_tokens(3))
    assert messages == [on_next(212, [a, b]), on_error(212, error)]


def test_buffer_tokens_dispose_mid_stream() -> None:
    a, b = t(1, "a"), t(2, "b")
    messages, source = run(
        [on_next(210, a), on_next(440, b), on_next(460, t(3, "c"))],
        buffer_tokens(1, max_delay=5),
        disposed=450,
    )
    assert messages == [on_next(210, [a]), on_next(440, [b])]
    assert source.subscriptions == [Subscription(200, 450)]


def test_buffer_tokens_each_subscription_has_its_own_group() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(on_next(1, t(1, "a")), on_next(2, t(2, "b")), on_completed(3))
    grouped = source.pipe(buffer_tokens(2))
    first, second = scheduler.create_observer(), scheduler.create_observer()
    scheduler.schedule_absolute(200, lambda *_: grouped.subscribe(first, scheduler=scheduler))
    scheduler.schedule_absolute(201, lambda *_: grouped.subscribe(second, scheduler=scheduler))
    scheduler.start()
    assert first.messages == [on_next(202, [t(1, "a"), t(2, "b")]), on_completed(203)]
    assert second.messages == [on_next(203, [t(1, "a"), t(2, "b")]), on_completed(204)]


@pytest.mark.parametrize(
    ("n", "max_delay"), [(0, None), (-1, None), (1.5, None), (True, None), (2, 0), (2, "1")]
)
def test_buffer_tokens_invalid_arguments_raise_at_creation(n: Any, max_delay: Any) -> None:
    with pytest.raises(ConfigurationError):
        buffer_tokens(n, max_delay=max_delay)

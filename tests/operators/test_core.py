"""Tests of the operators' shared plumbing: scheduler resolution and argument checks."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from reactivex.scheduler import (
    CurrentThreadScheduler,
    ImmediateScheduler,
    NewThreadScheduler,
    TimeoutScheduler,
    TrampolineScheduler,
)
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler
from reactivex.testing import TestScheduler

from rxstream.errors import ConfigurationError
from rxstream.operators._core import (
    check_count,
    check_rate,
    check_seconds,
    resolve_scheduler,
    scheduler_clock,
)


def test_the_argument_wins_then_the_subscribe_time_scheduler_then_the_timeout_scheduler() -> None:
    explicit, subscribe_time = TestScheduler(), NewThreadScheduler()
    assert resolve_scheduler(explicit, subscribe_time) is explicit
    assert resolve_scheduler(None, subscribe_time) is subscribe_time
    assert resolve_scheduler(None, None) is TimeoutScheduler.singleton()


@pytest.mark.parametrize(
    "blocking", [ImmediateScheduler(), CurrentThreadScheduler.singleton(), TrampolineScheduler()]
)
def test_subscribe_time_schedulers_that_sleep_on_the_reader_thread_are_skipped(blocking: object) -> None:
    assert resolve_scheduler(None, blocking) is TimeoutScheduler.singleton()  # type: ignore[arg-type]


def test_a_plain_asyncio_scheduler_is_made_thread_safe_on_the_same_loop() -> None:
    loop = asyncio.new_event_loop()
    try:
        for resolved in (
            resolve_scheduler(AsyncIOScheduler(loop), None),
            resolve_scheduler(None, AsyncIOScheduler(loop)),
        ):
            assert isinstance(resolved, AsyncIOThreadSafeScheduler)
            assert resolved._loop is loop
        safe = AsyncIOThreadSafeScheduler(loop)
        assert resolve_scheduler(safe, None) is safe
    finally:
        loop.close()


def test_checks() -> None:
    assert check_seconds("x", 2) == 2.0
    assert check_seconds("x", 0, allow_zero=True) == 0.0
    assert check_rate("x", 0.5) == 0.5
    assert check_count("x", 3) == 3
    for bad in (0, -1, float("nan"), float("inf"), "1", True, None):
        with pytest.raises(ConfigurationError):
            check_seconds("x", bad)
    with pytest.raises(ConfigurationError, match="must be >= 1"):
        check_count("x", 0)
    assert issubclass(ConfigurationError, ValueError)


def test_scheduler_clock_reads_virtual_time_exactly() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(100)
    clock = scheduler_clock(scheduler)
    assert clock() == 0.0
    scheduler.advance_by(timedelta(seconds=2.5))
    assert clock() == 2.5


def test_scheduler_clock_of_a_real_time_scheduler_is_the_monotonic_clock() -> None:
    for real_time in (TimeoutScheduler.singleton(), NewThreadScheduler()):
        assert scheduler_clock(real_time) is time.monotonic
    loop = asyncio.new_event_loop()
    try:
        assert scheduler_clock(AsyncIOThreadSafeScheduler(loop)) is time.monotonic
    finally:
        loop.close()

"""``stream_stats``: live metrics of a stream (TTFT, throughput, inter-token latency).

`StatsTracker` is the pure core (no Rx, no clock: callers pass ``now``); `stream_stats` is
the Rx shell that feeds it ``scheduler.now`` and emits `StreamStats` snapshots.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxstream.events import StreamEnd, StreamEvent, TextDelta, ThinkingDelta, UsageUpdate
from rxstream.operators._core import (
    check_count,
    check_scheduler,
    check_seconds,
    is_first_token,
    resolve_scheduler,
    scheduler_clock,
    to_timedelta,
)

__all__ = ["StatsTracker", "StreamStats", "stream_stats"]

RESERVOIR_SIZE = 10_000
"""Inter-token gaps kept exactly before `StatsTracker` switches to reservoir sampling."""


class StreamStats(BaseModel):
    """Metrics of one stream at one instant (all times in seconds of scheduler time).

    "Content delta" below means a `TextDelta` or `ThinkingDelta` with non-empty text.

    Attributes:
        stream_id: ``stream_id`` of the latest event (``None`` before the first event).
        time_to_first_token: Seconds from subscription (``start``) to the first content
            event: a content delta or a `ToolCallStart`, as in `first_token_timeout`.
            ``None`` until then.
        elapsed: Seconds since subscription.
        output_tokens: Output tokens: the latest reported usage (`UsageUpdate` or
            `StreamEnd`), but never less than ``deltas`` (early usage reports, such as
            Anthropic's ``message_start``, are stale); ``deltas`` when no usage arrived.
        tokens_per_second: ``output_tokens`` / seconds since the first token; ``None``
            before the first token or when no time has passed since it.
        chars: Characters (code points) of all content deltas, text plus thinking.
        deltas: Number of content deltas.
        inter_token_latency_p50: Median of the gaps in seconds between consecutive content
            deltas (``None`` with fewer than two deltas). Percentiles interpolate linearly
            between order statistics over every gap, or over a uniform reservoir sample
            of 10,000 gaps for longer streams.
        inter_token_latency_p95: 95th percentile of the same gaps.
        done: True for the last snapshot, emitted when the stream terminated.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stream_id: str | None
    time_to_first_token: float | None
    elapsed: float
    output_tokens: int
    tokens_per_second: float | None
    chars: int
    deltas: int
    inter_token_latency_p50: float | None
    inter_token_latency_p95: float | None
    done: bool

    def _repr_markdown_(self) -> str:
        """Jupyter display: one line (TTFT, tokens/s, tokens, elapsed)."""
        from rxstream._markdown import stats_text

        return stats_text(self)

    def _repr_html_(self) -> str:
        """Jupyter display as HTML (escaped)."""
        import html

        from rxstream._markdown import stats_text

        return f"<small>{html.escape(stats_text(self))}</small>"


def _percentile(ordered: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class StatsTracker:
    """Pure, clock-free stream metrics: feed events with their times, read `StreamStats`.

    Times are seconds on any monotonic clock; only differences matter. Not thread-safe:
    guard it with a lock if events and snapshots come from different threads.

    Example:
        >>> from rxstream.events import TextDelta
        >>> tracker = StatsTracker()
        >>> tracker.start(0.0)
        >>> tracker.observe(TextDelta(stream_id="s", seq=1, text="Hi"), 0.5)
        >>> tracker.observe(TextDelta(stream_id="s", seq=2, text=" there"), 0.7)
        >>> stats = tracker.snapshot(1.0, done=True)
        >>> (stats.time_to_first_token, stats.deltas, stats.chars, stats.output_tokens)
        (0.5, 2, 8, 2)
    """

    __slots__ = (
        "_chars",
        "_deltas",
        "_first_token",
        "_gaps",
        "_gaps_seen",
        "_last_delta",
        "_next_sample",
        "_random",
        "_reservoir_size",
        "_skip_weight",
        "_start",
        "_stream_id",
        "_usage_tokens",
    )

    def __init__(self, *, reservoir_size: int = RESERVOIR_SIZE, seed: int = 0) -> None:
        """Create a tracker.

        Args:
            reservoir_size: Gaps kept for the latency percentiles (>= 1). Up to this many
                gaps the percentiles are exact; beyond, a uniform reservoir sample
                (Li's algorithm L: the number of gaps to skip before the next
                replacement is drawn at once, O(1) per gap) of this size is kept, so
                memory stays bounded.
            seed: Seed of the reservoir's random generator (results are reproducible).

        Raises:
            ConfigurationError: if ``reservoir_size`` is not an int >= 1.
        """
        self._reservoir_size = check_count("reservoir_size", reservoir_size)
        self._random = random.Random(seed)
        self._start: float | None = None
        self._stream_id: str | None = None
        self._first_token: float | None = None
        self._last_delta: float | None = None
        self._usage_tokens: int | None = None
        self._chars = 0
        self._deltas = 0
        self._gaps: list[float] = []
        self._gaps_seen = 0
        self._skip_weight = 0.0  # algorithm L's W, drawn when the reservoir is full
        self._next_sample = 0  # the gap (1-based count) that replaces a random slot next

    def start(self, now: float) -> None:
        """Mark the subscription time ``now`` (seconds); resets nothing else."""
        self._start = now

    def observe(self, event: StreamEvent, now: float) -> None:
        """Account for ``event`` received at ``now`` (seconds). Starts the clock if needed."""
        self._stream_id = event.stream_id
        if self._first_token is None:
            if self._start is None:
                self._start = now
            if is_first_token(event):
                self._first_token = now
        kind = type(event)
        if kind is TextDelta or kind is ThinkingDelta:
            text: str = event.text  # type: ignore[union-attr]
            if text:
                self._chars += len(text)
                self._deltas += 1
                last = self._last_delta
                self._last_delta = now
                if last is not None:
                    self._gaps_seen += 1
                    if self._gaps_seen <= self._reservoir_size:
                        self._gaps.append(now - last)
                    elif self._gaps_seen >= self._next_sample:
                        self._sample(now - last)
        elif kind is UsageUpdate or kind is StreamEnd:
            self._usage_tokens = event.usage.output_tokens  # type: ignore[union-attr]

    def _sample(self, gap: float) -> None:
        """Reservoir full and gap number ``_gaps_seen`` due: algorithm L (Li 1994).

        The weight ``W`` shrinks with every replacement; the number of gaps passed over
        before the next one is geometric: ``floor(log(u) / log(1 - W))``. Uniform draws are
        taken in (0, 1) (``random()`` or the smallest float) so every logarithm is finite.
        """
        size = self._reservoir_size
        draw = self._random.random
        if self._next_sample == 0:  # the first gap past a full reservoir: draw the first skip
            self._skip_weight = (draw() or 5e-324) ** (1.0 / size)  # exp(log(u) / k)
            self._next_sample = self._gaps_seen + self._skip(draw() or 5e-324)
            if self._gaps_seen < self._next_sample:
                return
        self._gaps[int(draw() * size)] = gap
        self._skip_weight *= (draw() or 5e-324) ** (1.0 / size)
        self._next_sample = self._gaps_seen + self._skip(draw() or 5e-324) + 1

    def _skip(self, uniform: float) -> int:
        """Gaps to pass over before the next replacement, for a uniform draw in (0, 1)."""
        weight = self._skip_weight
        if weight >= 1.0:  # rounding: log(1 - W) would be -inf; replace at once
            return 0
        denominator = math.log1p(-weight)
        if denominator == 0.0:  # W underflowed to 0: no replacement within any real stream
            return 1 << 62
        return int(math.log(uniform) / denominator)  # >= 0: int() is the floor

    def snapshot(self, now: float, done: bool = False) -> StreamStats:
        """Return the metrics at ``now`` (seconds); ``done`` marks the final snapshot."""
        start = now if self._start is None else self._start
        tokens = self._deltas if self._usage_tokens is None else max(self._usage_tokens, self._deltas)
        rate: float | None = None
        if self._first_token is not None and now > self._first_token:
            rate = tokens / (now - self._first_token)
        p50 = p95 = None
        if self._gaps:
            ordered = sorted(self._gaps)
            p50 = _percentile(ordered, 0.5)
            p95 = _percentile(ordered, 0.95)
        return StreamStats(
            stream_id=self._stream_id,
            time_to_first_token=None if self._first_token is None else self._first_token - start,
            elapsed=now - start,
            output_tokens=tokens,
            tokens_per_second=rate,
            chars=self._chars,
            deltas=self._deltas,
            inter_token_latency_p50=p50,
            inter_token_latency_p95=p95,
            done=done,
        )


def stream_stats(
    interval: float | None = None, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[StreamEvent]], Observable[StreamStats]]:
    """Measure a stream: emit `StreamStats` every ``interval`` seconds and once at the end.

    ``Observable[StreamEvent] -> Observable[StreamStats]``. Times come from
    ``scheduler.now`` and are measured from subscription (see `StreamStats` for every
    field). The source events are consumed, not forwarded: to display the stream and its
    stats, share the source (``ops.share()``) or use `StatsTracker` in your own handler. The
    ticks are drift-free (the *k*-th tick is due *k* x ``interval`` after subscription).

    Marble (``interval`` = 4 ticks; ``s`` a `StreamStats`, ``D`` the final one with
    ``done=True``)::

        source:             -a-b-c-d-e|
        stream_stats(4):    ----s---s-(D|)

    Args:
        interval: Seconds between two periodic snapshots (> 0); ``None`` (default): only
            the final snapshot.
        scheduler: Scheduler for the ticks and the clock. Default: the subscribe-time
            scheduler, else the shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``interval`` is not ``None`` or a finite
            number > 0.

    Emits:
        `StreamStats` on every tick, then one with ``done=True`` before ``on_completed``
        and also before forwarding a source error (the error unchanged).

    Scheduler:
        Ticks run on the resolved scheduler (``scheduler`` argument → subscribe-time
        scheduler → ``TimeoutScheduler``), whose ``now`` is the clock even without
        ``interval``; emissions are serialized by a per-subscription lock.

    Example:
        >>> stats = stream.pipe(rso.stream_stats()).run()  # doctest: +SKIP
        >>> print(stats.time_to_first_token, stats.tokens_per_second)  # doctest: +SKIP
    """
    period = None if interval is None else to_timedelta(check_seconds("interval", interval))
    explicit = check_scheduler(scheduler)

    def _stream_stats(source: Observable[StreamEvent]) -> Observable[StreamStats]:
        def subscribe(
            observer: abc.ObserverBase[StreamStats], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(explicit, subscribe_scheduler)
            lock = threading.RLock()
            timer = SerialDisposable()
            tracker = StatsTracker()
            started: datetime = sched.now
            # Seconds on the scheduler's time: exact on virtual time (datetime arithmetic),
            # time.monotonic on real-time schedulers (see scheduler_clock). The tracker only
            # uses differences to the start.
            seconds = scheduler_clock(sched)
            observe = tracker.observe
            tracker.start(seconds())
            ticks = 0
            stopped = False

            def arm() -> None:  # caller holds the lock
                if period is None:
                    return
                due: timedelta = period * (ticks + 1) - (sched.now - started)
                timer.disposable = sched.schedule_relative(max(due, timedelta(0)), on_tick)

            def on_tick(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal ticks
                with lock:
                    if stopped:
                        return
                    ticks += 1
                    observer.on_next(tracker.snapshot(seconds()))
                    if not stopped:
                        arm()

            def on_next(event: StreamEvent) -> None:
                with lock:
                    if not stopped:
                        observe(event, seconds())

            def finish(error: Exception | None) -> None:
                nonlocal stopped
                with lock:
                    if stopped:
                        return
                    timer.dispose()
                    observer.on_next(tracker.snapshot(seconds(), done=True))
                    if stopped:
                        return
                    stopped = True
                    if error is None:
                        observer.on_completed()
                    else:
                        observer.on_error(error)

            def dispose() -> None:
                nonlocal stopped
                stopped = True

            with lock:
                arm()
            upstream = source.subscribe(
                on_next, lambda e: finish(e), lambda: finish(None), scheduler=subscribe_scheduler
            )
            return CompositeDisposable(Disposable(dispose), timer, upstream)

        return Observable(subscribe)

    return _stream_stats

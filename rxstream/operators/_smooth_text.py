"""``smooth_text``: re-chunk text into words/lines/graphemes and pace them for display."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent, TextDelta, ThinkingDelta
from rxstream.operators._core import (
    Holding,
    check_rate,
    check_scheduler,
    check_seconds,
    is_mergeable,
    resolve_scheduler,
    subscribe_holding,
    to_timedelta,
)
from rxstream.operators._graphemes import graphemes, is_wide

__all__ = ["Chunking", "smooth_text"]

Chunking = Literal["word", "line", "grapheme"]
"""How `smooth_text` cuts text: ``"word"``, ``"line"`` or ``"grapheme"``."""

_DEFAULT_DELAY = 0.01
"""Seconds between chunks when neither a rate nor a delay is given (the AI SDK's default)."""

_MAX_WORD = 100
"""A run longer than this many code points without a word boundary is released anyway."""

_NEWLINES = re.compile(r"\n+")

_Delta = TextDelta | ThinkingDelta


def _final_tail(cluster: str) -> bool:
    """True when nothing appended later can join ``cluster`` (it ends with LF or a control)."""
    last = cluster[-1]
    return last == "\n" or (last != "\r" and (ord(last) < 0x20 or last in "\x7f\u2028\u2029"))


def _word_cuts(text: str) -> list[int]:
    r"""Cut offsets after complete words: ``\s*\S+\s+`` like the AI SDK, or one wide (CJK) char.

    A cut before cluster *i* is final because cluster *i* exists (so cluster *i - 1* is
    complete); a cut at the very end only happens after a cluster that cannot grow (LF, tab).
    """
    clusters = graphemes(text)
    if not clusters:
        return []
    cuts: list[int] = []
    pos = last_start = 0
    has_content = prev_space = last_wide = False  # about the chunk being built
    for cluster in clusters:
        space = cluster.isspace()
        if not space:
            wide = is_wide(cluster)
            if has_content and (prev_space or wide or last_wide):
                cuts.append(pos)
            has_content, last_wide = True, wide
        prev_space = space
        last_start = pos
        pos += len(cluster)
    last = clusters[-1]
    if has_content and prev_space and _final_tail(last):
        cuts.append(pos)
    elif last_start - (cuts[-1] if cuts else 0) > _MAX_WORD:
        cuts.append(last_start)
    return cuts


def _line_cuts(text: str) -> list[int]:
    """Cut offsets after each run of newlines (a line feed always ends a grapheme cluster)."""
    return [m.end() for m in _NEWLINES.finditer(text)]


def _grapheme_cuts(text: str) -> list[int]:
    """Cut offsets after every grapheme cluster except a last one that may still grow."""
    clusters = graphemes(text)
    cuts: list[int] = []
    pos = 0
    for cluster in clusters:
        pos += len(cluster)
        cuts.append(pos)
    if clusters and not _final_tail(clusters[-1]):
        cuts.pop()
    return cuts


_CUTTERS: dict[str, Callable[[str], list[int]]] = {
    "word": _word_cuts,
    "line": _line_cuts,
    "grapheme": _grapheme_cuts,
}


def smooth_text(
    chars_per_second: float | None = None,
    *,
    delay: float | None = None,
    chunking: Chunking = "word",
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    r"""Re-chunk text and thinking into words, lines or graphemes and release them at a steady pace.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``; the Rx counterpart of the Vercel AI
    SDK's ``smoothStream`` transform, but lossless and non-blocking. Incoming `TextDelta` and
    `ThinkingDelta` text is buffered and cut into chunks:

    * ``"word"`` (default): leading whitespace + a word + its trailing whitespace (the AI
      SDK's ``\S+\s+``); each East Asian wide character (CJK ideograph, kana, Hangul
      syllable, fullwidth form) is a word of its own, so unspaced CJK text flows too; a run
      of more than 100 characters without a boundary is released anyway;
    * ``"line"``: up to and including a run of newlines;
    * ``"grapheme"``: one user-perceived character (an extended grapheme cluster: combining
      marks, emoji ZWJ sequences, skin tones, flags and CR LF stay whole).

    A chunk never splits a grapheme cluster: the trailing partial word/line/cluster is held
    until more text decides it. Ready chunks queue up and leave one at a time: ``delay``
    seconds apart, or paced by ``chars_per_second`` (a chunk of *k* characters is followed
    by a pause of *k* / ``chars_per_second`` seconds). The first chunk after a quiet period
    or a flush leaves at once. Anything else (tool call, usage, end, reset, a delta with a signature or
    ``provider_details``), completion and error **flush** the queue and the held tail
    immediately, in order, and then pass through. Text and thinking are never mixed in one
    chunk. The queue is unbounded: if the model is faster than the pace, display lag grows
    until the next flush.

    Each chunk is a copy of the delta its first character came from (same type,
    ``stream_id`` and ``seq``; consecutive chunks of one delta therefore repeat its seq) with
    ``text`` = the chunk; a delta that is exactly one chunk is emitted unchanged. Empty
    deltas carry no text and leave no chunk.

    Marble (``delay`` = 2 ticks, word chunking; ``a`` = ``"Hi there you"`` arrives at once,
    ``1``/``2``/``3`` = ``"Hi "``/``"there "``/``"you"``, ``E`` the end event; a
    parenthesised group happens at one instant)::

        source:                  -a-------E|
        smooth_text(delay=2):    -1-2-----(3E)|

    Args:
        chars_per_second: Pace in characters (code points) per second (> 0). Mutually
            exclusive with ``delay``.
        delay: Seconds between chunks (>= 0; 0 re-chunks without pacing). Default when
            neither is given: 0.01 s.
        chunking: ``"word"``, ``"line"`` or ``"grapheme"``.
        scheduler: Scheduler for the pacing timer. Default: the subscribe-time scheduler,
            else the shared ``TimeoutScheduler``.

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if both ``chars_per_second`` and ``delay`` are
            given, either is out of range, or ``chunking`` is unknown.

    Emits:
        The same text, re-chunked, and every other event unchanged and in order. On source
        error or completion everything held is emitted first, then ``on_error`` (the error
        unchanged) or ``on_completed``.

    Scheduler:
        The pacing timer runs on the resolved scheduler (``scheduler`` argument →
        subscribe-time scheduler → ``TimeoutScheduler``); emissions happen on the source's
        or the timer's thread, serialized by a per-subscription lock.

    Example:
        >>> stream.pipe(rso.smooth_text(delay=0.02), rso.text()).subscribe(print_now)  # doctest: +SKIP
    """
    if chars_per_second is not None and delay is not None:
        raise ConfigurationError("give chars_per_second or delay, not both")
    rate = None if chars_per_second is None else check_rate("chars_per_second", chars_per_second)
    step = to_timedelta(_DEFAULT_DELAY if delay is None else check_seconds("delay", delay, allow_zero=True))
    if chunking not in get_args(Chunking):
        raise ConfigurationError(f"chunking must be 'word', 'line' or 'grapheme', got {chunking!r}")
    cutter = _CUTTERS[chunking]
    line_mode = chunking == "line"
    explicit = check_scheduler(scheduler)

    def cost(chunk: str) -> timedelta:
        return step if rate is None else to_timedelta(len(chunk) / rate)

    def _smooth_text(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = resolve_scheduler(explicit, subscribe_scheduler)
            hold = Holding()
            timer = SerialDisposable()
            queue: deque[_Delta] = deque()
            tail: list[str] = []  # held text not yet cut (joined lazily: a line can be long)
            tail_template: _Delta | None = None
            next_time: datetime | None = None
            armed = False

            def chunk_of(template: _Delta, text: str) -> _Delta:
                return template if template.text == text else template.model_copy(update={"text": text})

            def pump() -> None:  # caller holds the lock
                nonlocal armed, next_time
                if armed:
                    return
                while queue and not hold.stopped:
                    now = sched.now
                    if next_time is not None and now < next_time:
                        armed = True
                        timer.disposable = sched.schedule_relative(next_time - now, on_timer)
                        return
                    chunk = queue.popleft()
                    next_time = now + cost(chunk.text)
                    observer.on_next(chunk)

            def on_timer(_: abc.SchedulerBase, __: Any = None) -> None:
                nonlocal armed
                with hold.lock:
                    armed = False
                    if not hold.stopped:
                        pump()

            def release_tail() -> None:  # caller holds the lock
                nonlocal tail_template
                held = "".join(tail)
                if held and tail_template is not None:
                    queue.append(chunk_of(tail_template, held))
                tail.clear()
                tail_template = None

            def flush() -> None:  # caller holds the lock
                nonlocal armed, next_time
                release_tail()
                next_time = None  # the pace restarts after a flush, as in the AI SDK
                if armed:
                    armed = False
                    timer.disposable = Disposable()
                while queue and not hold.stopped:
                    observer.on_next(queue.popleft())

            def add(delta: _Delta) -> None:  # caller holds the lock
                nonlocal tail_template
                if tail_template is not None and type(tail_template) is not type(delta):
                    release_tail()
                if line_mode and "\n" not in delta.text:  # nothing to cut: skip the O(line) join
                    if delta.text:
                        tail.append(delta.text)
                        if tail_template is None:
                            tail_template = delta
                    return
                old = "".join(tail)
                old_len = len(old)
                old_template = tail_template if tail_template is not None else delta
                text = old + delta.text
                start = 0
                for cut in cutter(text):
                    queue.append(chunk_of(old_template if start < old_len else delta, text[start:cut]))
                    start = cut
                rest = text[start:]
                tail[:] = [rest] if rest else []
                tail_template = (old_template if start < old_len else delta) if rest else None

            def on_next(event: StreamEvent) -> None:
                with hold.lock:
                    if hold.stopped:
                        return
                    if is_mergeable(event):
                        add(event)
                        pump()
                    else:
                        flush()
                        if not hold.stopped:
                            observer.on_next(event)

            return subscribe_holding(source, observer, subscribe_scheduler, hold, on_next, flush, timer)

        return Observable(subscribe)

    return _smooth_text

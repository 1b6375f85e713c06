"""Several models at once: merge, race, speculative draft, fallback and compare.

Every function here takes cold ``Observable[StreamEvent]`` sources (any mix of sync and
async clients) and returns a cold Observable: nothing runs before ``subscribe``, and
disposing the result disposes every inner subscription (closing their connections). They
are built from reactivex primitives (``merge``, ``catch``, per-source subscriptions with
``SingleAssignmentDisposable`` / ``SerialDisposable``), with no thread or timer of their
own; notifications are serialized with one lock per subscription.

"Content" below means a `TextDelta`, `ThinkingDelta` or `ToolCallStart`, the same "first
token" as `rxstream.operators.first_token_timeout`.

Sources are given as a ``Mapping[str, Observable]`` or as ``(name, Observable)`` pairs; an
empty collection, a non-string name, a name used twice or a value that is not an
Observable raise `ConfigurationError` at call time.
"""

from __future__ import annotations

import difflib
import html
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from typing import Any, Literal

import reactivex
from pydantic import BaseModel, ConfigDict
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable, SingleAssignmentDisposable

from rxstream._tagged import Tagged
from rxstream.errors import AllSourcesFailedError, ConfigurationError, StreamError
from rxstream.events import StreamEvent, StreamReset, TextDelta, ThinkingDelta, ToolCallStart
from rxstream.operators._core import check_scheduler, resolve_scheduler
from rxstream.operators._stats import StatsTracker
from rxstream.response import ResponseAccumulator

__all__ = [
    "Comparison",
    "Similarity",
    "SourceResult",
    "Sources",
    "Tagged",
    "compare_streams",
    "fallback",
    "merge_streams",
    "race_first_token",
    "speculative",
]

logger = logging.getLogger("rxstream")

Sources = Mapping[str, Observable[StreamEvent]] | Iterable[tuple[str, Observable[StreamEvent]]]
"""Named sources: a mapping, or ``(name, observable)`` pairs (names must be unique)."""


def _named(sources: Sources) -> list[tuple[str, Observable[StreamEvent]]]:
    if isinstance(sources, Observable | str | bytes):
        raise ConfigurationError(
            "sources must be a mapping of name -> Observable or (name, Observable) pairs"
        )
    try:
        pairs = list(sources.items()) if isinstance(sources, Mapping) else list(sources)
    except TypeError as exc:
        raise ConfigurationError(f"sources must be a mapping or pairs, got {type(sources).__name__}") from exc
    if not pairs:
        raise ConfigurationError("sources is empty: give at least one named Observable")
    seen: set[str] = set()
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ConfigurationError(f"expected (name, Observable) pairs, got {pair!r}")
        name, source = pair
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"source names must be non-empty strings, got {name!r}")
        if name in seen:
            raise ConfigurationError(f"source name {name!r} is used twice")
        seen.add(name)
        _check_observable(name, source)
    return pairs


def _check_observable(name: str, source: object) -> None:
    if not isinstance(source, Observable):
        raise ConfigurationError(f"source {name!r} is not a reactivex Observable: {type(source).__name__}")


def _is_content(event: StreamEvent) -> bool:
    return type(event) in (TextDelta, ThinkingDelta, ToolCallStart)


def merge_streams(sources: Sources, *, fail_fast: bool = False) -> Observable[Tagged]:
    """Run every source concurrently and interleave their events, tagged with their name.

    ``{name: Observable[StreamEvent]} -> Observable[Tagged]`` built on ``reactivex.merge``:
    all sources are subscribed at once (one request each); each source's events keep their
    order. An error of one source becomes one `Tagged` item with ``error`` set while the
    others go on; the merge completes when every source has ended. With
    ``fail_fast=True`` the first error ends the merge (``on_error``) and disposes the rest.

    Marble (``a``/``b`` events of sources A and B; ``x`` = A's error item)::

        A:                -a--a--#
        B:                --b---b---b|
        merge_streams():  -ab-a-bx--b|

    Args:
        sources: Named sources (see `Sources`).
        fail_fast: End everything on the first error instead of tagging it.

    Returns:
        A cold ``Observable[Tagged]``; use `rxstream.operators.for_source` /
        `rxstream.operators.untag` to get plain events back. No scheduler of its own.

    Raises:
        ConfigurationError: at call time, for bad ``sources`` (see the module docstring).

    Example:
        >>> rxs.merge_streams({"local": a, "cloud": b}).subscribe(print)  # doctest: +SKIP
    """
    pairs = _named(sources)

    def tag(name: str, source: Observable[StreamEvent]) -> Observable[Tagged]:
        def to_tagged(event: StreamEvent) -> Tagged:
            return Tagged(name, event)

        tagged = source.pipe(ops.map(to_tagged))
        if fail_fast:
            return tagged
        return tagged.pipe(ops.catch(lambda error, _: reactivex.just(Tagged(name, error=error))))

    return reactivex.merge(*(tag(name, source) for name, source in pairs))


def race_first_token(sources: Sources) -> Observable[StreamEvent]:
    """Subscribe to every source; the first to deliver content wins and is forwarded.

    ``{name: Observable[StreamEvent]} -> Observable[StreamEvent]``. Events of each source are
    held until one of them delivers content; that source wins: its held events (from its
    `StreamStart` on) are emitted, then its live events, completion or error. Every other
    source is disposed at that moment, before the winner's first event is forwarded (their
    connections close). A source that fails or completes before any content drops out of
    the race; if every source ends without content, the first that completed wins (an empty
    answer), else `AllSourcesFailedError` is emitted with each source's error.

    Marble (``t`` = content)::

        A:                   -S----t--E|
        B:                   --S-t--t-E|
        race_first_token():  ----(St)t-E|     (B won; A disposed at tick 4)

    Args:
        sources: Named sources (see `Sources`).

    Returns:
        A cold ``Observable[StreamEvent]``. Emits on the winner's thread; no scheduler.

    Raises:
        ConfigurationError: at call time, for bad ``sources``.

    Emits:
        The winner's error, unchanged (with its ``.partial``); `AllSourcesFailedError`
        (``.errors`` maps each name to its error) when no source delivered content.

    Example:
        >>> rxs.race_first_token({"a": a, "b": b}).pipe(rso.final()).run()  # doctest: +SKIP
    """
    pairs = _named(sources)

    def subscribe(
        observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        lock = threading.Lock()
        subscriptions = {name: SingleAssignmentDisposable() for name, _ in pairs}
        held: dict[str, list[StreamEvent]] = {name: [] for name, _ in pairs}
        errors: dict[str, Exception] = {}
        completed: list[str] = []
        state: dict[str, Any] = {"winner": None, "over": False}

        def dispose_losers(winner: str) -> None:
            for name, subscription in subscriptions.items():
                if name != winner:
                    subscription.dispose()

        def ended(name: str) -> Callable[[], None] | None:
            """After ``name`` dropped out (lock held): the terminal to emit, if the race is over."""
            if len(errors) + len(completed) < len(pairs):
                return None
            state["over"] = True
            if completed:
                first = completed[0]
                events = held[first]

                def complete() -> None:
                    for event in events:
                        observer.on_next(event)
                    observer.on_completed()

                return complete
            failure = AllSourcesFailedError(dict(errors))
            return lambda: observer.on_error(failure)

        def make(name: str) -> abc.ObserverBase[StreamEvent]:
            def on_next(event: StreamEvent) -> None:
                with lock:
                    winner = state["winner"]
                    if winner is None and not state["over"]:
                        held[name].append(event)
                        if not _is_content(event):
                            return
                        state["winner"] = name
                        flush, held[name] = held[name], []
                    elif winner == name:
                        flush = [event]
                    else:
                        return
                if winner is None:
                    dispose_losers(name)
                for item in flush:
                    observer.on_next(item)

            def on_error(error: Exception) -> None:
                terminal: Callable[[], None] | None = None
                with lock:
                    if state["winner"] == name:
                        terminal = partial(observer.on_error, error)
                    elif state["winner"] is None and not state["over"]:
                        errors[name] = error
                        terminal = ended(name)
                if terminal is not None:
                    terminal()

            def on_completed() -> None:
                with lock:
                    if state["winner"] == name:
                        terminal: Callable[[], None] | None = observer.on_completed
                    elif state["winner"] is None and not state["over"]:
                        completed.append(name)
                        terminal = ended(name)
                    else:
                        terminal = None
                if terminal is not None:
                    terminal()

            return reactivex.Observer(on_next, on_error, on_completed)

        for name, source in pairs:
            if state["winner"] is not None:  # a source won while subscribing: skip the rest
                subscriptions[name].dispose()
                continue
            subscriptions[name].disposable = source.subscribe(make(name), scheduler=scheduler)
        return CompositeDisposable(*subscriptions.values())

    return reactivex.create(subscribe)


def speculative(
    draft: Observable[StreamEvent],
    primary: Observable[StreamEvent],
    *,
    keep_draft: bool = False,
    on_primary_error: Callable[[Exception], None] | None = None,
) -> Observable[StreamEvent]:
    """Show a fast draft answer until the primary answers, then switch to the primary.

    ``(Observable[StreamEvent], Observable[StreamEvent]) -> Observable[StreamEvent]``, the
    local-then-cloud pattern. Both are subscribed at once. The draft's events are forwarded
    as they come; the primary's are held until its first content. Then one `StreamReset`
    (``attempt=2``, ``discarded_text`` = the draft text shown) is emitted if any draft event
    was forwarded, followed by the primary's held events and its live ones; the draft is
    disposed at that moment (``keep_draft=True`` lets it finish, its events dropped; the
    output then completes once both ended). ``rso.final()`` after it gives exactly the
    primary's answer. A primary that completes without content also wins (empty answer).

    If the primary fails before content, the draft's answer stands: its events go on and
    its completion or error ends the output; the primary's error goes to
    ``on_primary_error`` (isolated: an exception there is logged). A draft error before the
    switch only stops the draft; it is emitted if the primary also fails before content.

    Marble (``d`` draft text, ``p`` primary content, ``R`` the reset)::

        draft:           -S-d-d-d-d-E|
        primary:         ---S-----p-p-E|
        speculative():   -S-d-d-d-(RSp)p-E|    (draft disposed at the switch)

    Args:
        draft: The fast, provisional source (e.g. a local model).
        primary: The source whose answer is wanted (e.g. a cloud model).
        keep_draft: Keep the draft's request running after the switch.
        on_primary_error: Called with the primary's error when it fails before content.

    Returns:
        A cold ``Observable[StreamEvent]``; emits on the sources' threads, serialized.

    Raises:
        ConfigurationError: at call time, if a source is not an Observable or
            ``on_primary_error`` is not callable.

    Example:
        >>> rxs.speculative(local, cloud).pipe(rso.final()).run()  # doctest: +SKIP
    """
    _check_observable("draft", draft)
    _check_observable("primary", primary)
    if on_primary_error is not None and not callable(on_primary_error):
        raise ConfigurationError("on_primary_error must be callable")

    def subscribe(
        observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        lock = threading.RLock()  # held while emitting: two sources, one serialized output
        draft_sub = SingleAssignmentDisposable()
        primary_sub = SingleAssignmentDisposable()
        held: list[StreamEvent] = []
        shown = ResponseAccumulator()
        st: dict[str, Any] = {
            "switched": False,
            "primary_failed": False,
            "draft_end": None,  # ("completed", None) | ("error", exc) once the draft ended
            "primary_done": False,
            "over": False,
            "last": None,  # the last forwarded draft event
        }

        def finish(emit: Callable[[], None]) -> None:
            if not st["over"]:
                st["over"] = True
                emit()

        def switch() -> None:
            st["switched"] = True
            if not keep_draft:
                draft_sub.dispose()
            last = st["last"]
            if last is not None:
                observer.on_next(
                    StreamReset(
                        stream_id=last.stream_id, seq=last.seq + 1, attempt=2, discarded_text=shown.text
                    )
                )
            for event in held:
                observer.on_next(event)
            held.clear()

        def draft_next(event: StreamEvent) -> None:
            with lock:
                if st["switched"] or st["over"]:
                    return
                st["last"] = event
                shown.add(event)
                observer.on_next(event)

        def draft_error(error: Exception) -> None:
            with lock:
                st["draft_end"] = ("error", error)
                if st["switched"]:
                    if st["primary_done"]:
                        finish(observer.on_completed)
                elif st["primary_failed"]:
                    finish(lambda: observer.on_error(error))

        def draft_completed() -> None:
            with lock:
                st["draft_end"] = ("completed", None)
                if st["switched"]:
                    if st["primary_done"]:
                        finish(observer.on_completed)
                elif st["primary_failed"]:
                    finish(observer.on_completed)

        def primary_next(event: StreamEvent) -> None:
            with lock:
                if st["over"]:
                    return
                if st["switched"]:
                    observer.on_next(event)
                    return
                held.append(event)
                if _is_content(event):
                    switch()

        def primary_error(error: Exception) -> None:
            with lock:
                if st["over"]:
                    return
                if st["switched"]:
                    draft_sub.dispose()
                    finish(lambda: observer.on_error(error))
                    return
                st["primary_failed"] = True
                held.clear()
                if on_primary_error is not None:
                    try:
                        on_primary_error(error)
                    except Exception:
                        logger.warning("rxstream: on_primary_error raised", exc_info=True)
                end = st["draft_end"]
                if end is not None:
                    kind, draft_exc = end
                    if kind == "completed":
                        finish(observer.on_completed)
                    else:
                        finish(lambda: observer.on_error(draft_exc))

        def primary_completed() -> None:
            with lock:
                if st["over"]:
                    return
                if not st["switched"]:
                    switch()
                st["primary_done"] = True
                if not keep_draft or st["draft_end"] is not None:
                    draft_sub.dispose()
                    finish(observer.on_completed)

        draft_sub.disposable = draft.subscribe(draft_next, draft_error, draft_completed, scheduler=scheduler)
        primary_sub.disposable = primary.subscribe(
            primary_next, primary_error, primary_completed, scheduler=scheduler
        )
        return CompositeDisposable(draft_sub, primary_sub)

    return reactivex.create(subscribe)


OnPartial = Literal["fail", "restart"]


def fallback(
    primary: Observable[StreamEvent], *alternates: Observable[StreamEvent], on_partial: OnPartial = "fail"
) -> Observable[StreamEvent]:
    """Use the next source when the current one fails with a retryable error.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Sources are tried in order, one
    at a time. A retryable error (``error.retryable``, e.g. HTTP 429/529, a dropped
    connection) before any content subscribes to the next source (its events follow what
    was emitted so far, e.g. the failed attempt's `StreamStart`). After content,
    ``on_partial="fail"`` (default) emits the error; ``"restart"`` emits one `StreamReset`
    (``attempt`` = the next source's position, 2 for the first alternate, with the
    discarded text) and continues with the next source, as ``retry_stream`` does. A
    non-retryable error, or an error of the last source, is emitted unchanged.

    Marble (``#r`` = retryable error)::

        primary:      -S-#r
        alternate:        -S-t-E|
        fallback():   -S--S-t-E|

    Args:
        primary: The preferred source.
        *alternates: Sources to try next, in order.
        on_partial: ``"fail"`` or ``"restart"``.

    Returns:
        A cold ``Observable[StreamEvent]``; only one source runs at a time. No scheduler.

    Raises:
        ConfigurationError: at call time, for a non-Observable or a bad ``on_partial``.

    Example:
        >>> rxs.fallback(claude, gpt).pipe(rso.final()).run()  # doctest: +SKIP
    """
    chain = [primary, *alternates]
    for position, source in enumerate(chain):
        _check_observable(f"#{position + 1}", source)
    if on_partial not in ("fail", "restart"):
        raise ConfigurationError(f"on_partial must be 'fail' or 'restart', got {on_partial!r}")

    def subscribe(
        observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        current = SerialDisposable()
        emitted = ResponseAccumulator()
        st: dict[str, Any] = {"content": False, "last": None, "disposed": False}

        def attempt(position: int) -> None:
            def on_next(event: StreamEvent) -> None:
                if _is_content(event):
                    st["content"] = True
                st["last"] = event
                emitted.add(event)
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                retryable = bool(getattr(error, "retryable", False))
                if st["disposed"] or not retryable or position + 1 >= len(chain):
                    observer.on_error(error)
                    return
                if st["content"]:
                    if on_partial == "fail":
                        observer.on_error(error)
                        return
                    last = st["last"]
                    reset = StreamReset(
                        stream_id=last.stream_id,
                        seq=last.seq + 1,
                        attempt=position + 2,
                        discarded_text=emitted.text,
                    )
                    emitted.add(reset)
                    st["content"] = False
                    observer.on_next(reset)
                attempt(position + 1)

            subscription = SingleAssignmentDisposable()
            current.disposable = subscription
            subscription.disposable = chain[position].subscribe(
                on_next, on_error, observer.on_completed, scheduler=scheduler
            )

        attempt(0)

        def dispose() -> None:
            st["disposed"] = True
            current.dispose()

        return Disposable(dispose)

    return reactivex.create(subscribe)


# --- compare ---------------------------------------------------------------------------------------


class SourceResult(BaseModel):
    """How one source answered in `compare_streams` (times in seconds of scheduler time).

    Attributes:
        source: The source's name.
        provider: ``StreamStart.provider`` (``None`` if it never started).
        model: The model that answered.
        time_to_first_token: Subscription to first content (``None`` without content).
        total_time: Subscription to the source's end.
        input_tokens: Reported input tokens.
        output_tokens: Reported output tokens (at least the number of content deltas).
        tokens_per_second: ``output_tokens`` / seconds from the first token to the end.
        stop_reason: Normalised stop reason (``None`` if the stream did not end normally).
        text: The final answer text (the partial text for a failed source).
        error: ``"ErrorType: message"`` of a failed source, else ``None``.
    """

    model_config = ConfigDict(frozen=True)

    source: str
    provider: str | None
    model: str | None
    time_to_first_token: float | None
    total_time: float
    input_tokens: int
    output_tokens: int
    tokens_per_second: float | None
    stop_reason: str | None
    text: str
    error: str | None


class Similarity(BaseModel):
    """Text similarity of two answers: `difflib.SequenceMatcher` ``ratio()`` in ``[0, 1]``.

    ``ratio = 2 * M / T`` with ``M`` matching characters and ``T`` the total length of both
    texts (Python standard library, ``difflib.SequenceMatcher.ratio``; ``autojunk`` off).
    """

    model_config = ConfigDict(frozen=True)

    a: str
    b: str
    ratio: float


class Comparison(BaseModel):
    """The outcome of `compare_streams`: one `SourceResult` per source and pairwise similarity.

    Renders as a rich table in a terminal (``rich.print(comparison)``), as an HTML table in
    Jupyter, and converts with `to_records` / `to_pandas`.
    """

    model_config = ConfigDict(frozen=True)

    results: tuple[SourceResult, ...]
    similarities: tuple[Similarity, ...]

    def result(self, source: str) -> SourceResult:
        """The result of the source named ``source`` (KeyError if unknown)."""
        for result in self.results:
            if result.source == source:
                return result
        raise KeyError(source)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per source (the `SourceResult` fields), in the order the sources were given."""
        return [result.model_dump() for result in self.results]

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` of `to_records`, indexed by source.

        Raises:
            ConfigurationError: if pandas is not installed (``pip install pandas``).
        """
        try:
            import pandas as pd  # type: ignore[import-untyped,unused-ignore]
        except ImportError as exc:
            raise ConfigurationError("Comparison.to_pandas needs pandas: pip install pandas") from exc
        return pd.DataFrame.from_records(self.to_records()).set_index("source")

    def _rows(self) -> list[list[str]]:
        rows = []
        for r in self.results:
            rows.append(
                [
                    r.source,
                    r.model or "-",
                    _fmt(r.time_to_first_token, "s"),
                    _fmt(r.total_time, "s"),
                    _fmt(r.tokens_per_second, ""),
                    str(r.input_tokens),
                    str(r.output_tokens),
                    r.stop_reason or "-",
                    r.error or "",
                ]
            )
        return rows

    _HEADERS = ("source", "model", "TTFT", "total", "tok/s", "in", "out", "stop", "error")

    def __rich__(self) -> Any:
        """A rich renderable: the metrics table, the similarity table and each answer."""
        from rich.console import Group
        from rich.table import Table

        table = Table(title="Comparison")
        for header in self._HEADERS:
            table.add_column(
                header, justify="right" if header in ("TTFT", "total", "tok/s", "in", "out") else "left"
            )
        for row in self._rows():
            table.add_row(*row)
        parts: list[Any] = [table]
        if self.similarities:
            sim = Table(title="Similarity (difflib ratio)")
            sim.add_column("a")
            sim.add_column("b")
            sim.add_column("ratio", justify="right")
            for s in self.similarities:
                sim.add_row(s.a, s.b, f"{s.ratio:.2f}")
            parts.append(sim)
        return Group(*parts)

    def _repr_markdown_(self) -> str:
        """A Markdown table for Jupyter and Markdown renderers (cells escaped: no HTML, no ``|``)."""

        def cell(text: str) -> str:
            return html.escape(text).replace("|", "\\|").replace("\n", " ")

        lines = [
            "| " + " | ".join(self._HEADERS) + " |",
            "|" + "---|" * len(self._HEADERS),
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in self._rows()),
        ]
        if self.similarities:
            lines += ["", "| a | b | similarity |", "|---|---|---:|"]
            lines += [f"| {cell(s.a)} | {cell(s.b)} | {s.ratio:.2f} |" for s in self.similarities]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """An HTML table for Jupyter."""
        head = "".join(f"<th>{h}</th>" for h in self._HEADERS)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
            for row in self._rows()
        )
        out = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if self.similarities:
            sims = "".join(
                f"<tr><td>{html.escape(s.a)}</td><td>{html.escape(s.b)}</td><td>{s.ratio:.2f}</td></tr>"
                for s in self.similarities
            )
            out += (
                "<table><thead><tr><th>a</th><th>b</th><th>similarity</th></tr></thead>"
                f"<tbody>{sims}</tbody></table>"
            )
        return out


def _fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def similarity(a: str, b: str) -> float:
    """`difflib.SequenceMatcher` ratio of two texts (``autojunk=False``), in ``[0, 1]``."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


class _Track:
    __slots__ = ("acc", "end", "error", "stats")

    def __init__(self) -> None:
        self.stats = StatsTracker()
        self.acc = ResponseAccumulator()
        self.end: float | None = None
        self.error: Exception | None = None


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def compare_streams(
    sources: Sources, *, scheduler: abc.SchedulerBase | None = None
) -> Observable[Comparison]:
    """Run every source on its own request concurrently and emit one `Comparison` at the end.

    ``{name: Observable[StreamEvent]} -> Observable[Comparison]`` over `merge_streams`: per
    source the time to first token, total time, tokens/s (as `StatsTracker` computes them),
    input/output tokens, stop reason, final text and error; and the pairwise
    `difflib.SequenceMatcher` similarity of the answers (see `Similarity`). A failing source
    is reported in its row; the others are unaffected.

    Marble::

        A:                  -S-t-E|
        B:                  --S---t-t-E|
        compare_streams():  ----------(C|)

    Args:
        sources: Named sources (see `Sources`).
        scheduler: Clock for the times (``scheduler.now``): argument → subscribe-time
            scheduler → `TimeoutScheduler`.

    Returns:
        A cold ``Observable[Comparison]`` emitting exactly one item, then completing.

    Raises:
        ConfigurationError: at call time, for bad ``sources`` or ``scheduler``.

    Example:
        >>> comparison = rxs.compare_streams({"a": a, "b": b}).run()  # doctest: +SKIP
        >>> comparison.to_records()  # doctest: +SKIP
    """
    pairs = _named(sources)
    check_scheduler(scheduler)
    names = [name for name, _ in pairs]
    merged = merge_streams(pairs)

    def subscribe(
        observer: abc.ObserverBase[Comparison], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        clock = resolve_scheduler(scheduler, subscribe_scheduler)
        lock = threading.Lock()
        tracks = {name: _Track() for name in names}
        start = _seconds(clock.now)
        for track in tracks.values():
            track.stats.start(start)

        def on_next(item: Tagged) -> None:
            now = _seconds(clock.now)
            with lock:
                track = tracks[item.source]
                if item.error is not None:
                    track.error = item.error
                    track.end = now
                    return
                event = item.event
                assert event is not None
                track.stats.observe(event, now)
                track.acc.add(event)
                if event.type == "stream_end":
                    track.end = now

        def on_completed() -> None:
            now = _seconds(clock.now)
            with lock:
                results = [_result(name, tracks[name], now) for name in names]
            sims = tuple(
                Similarity(a=a.source, b=b.source, ratio=similarity(a.text, b.text))
                for a, b in itertools.combinations(results, 2)
            )
            observer.on_next(Comparison(results=tuple(results), similarities=sims))
            observer.on_completed()

        return merged.subscribe(on_next, observer.on_error, on_completed, scheduler=subscribe_scheduler)

    return reactivex.create(subscribe)


def _result(name: str, track: _Track, now: float) -> SourceResult:
    end = track.end if track.end is not None else now
    stats = track.stats.snapshot(end, done=True)
    response = track.acc.snapshot()
    error = track.error
    if isinstance(error, StreamError) and not response.text:
        response = error.partial
    return SourceResult(
        source=name,
        provider=response.provider,
        model=response.model,
        time_to_first_token=stats.time_to_first_token,
        total_time=stats.elapsed,
        input_tokens=response.usage.input_tokens,
        output_tokens=stats.output_tokens,
        tokens_per_second=stats.tokens_per_second,
        stop_reason=response.stop_reason,
        text=response.text,
        error=None if error is None else f"{type(error).__name__}: {error}",
    )

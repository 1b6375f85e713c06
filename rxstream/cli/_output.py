"""Where one CLI stream goes: live on a terminal, plain text into a pipe, or JSON Lines.

* `OutputMode` ``live`` (stdout is a terminal): rich live view (see `rxstream._live`).
* ``plain`` (stdout is a pipe or a file): each text delta is written and flushed as it
  arrives, no wrapping, no markup; notices and the stats line go to stderr.
* ``json``: one event per line, the typed event's JSON (`StreamEvent.model_dump_json`), for
  pipelines (JSON Lines, https://jsonlines.org).

Every mode measures with one `rxstream.operators.StatsTracker` definition of output
tokens/s (``output_tokens`` / seconds since the first token), shown in the summary line.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from reactivex import Observable

from rxstream._live import render_live, summary_line
from rxstream.errors import StreamError
from rxstream.events import StreamEvent
from rxstream.operators import StatsTracker, StreamStats
from rxstream.response import Response, ResponseAccumulator

__all__ = ["OutputMode", "StreamOutcome", "choose_mode", "emit", "summary_line"]

OutputMode = Literal["live", "plain", "json"]


def choose_mode(json_lines: bool, stdout: TextIO | None = None) -> OutputMode:
    """``json`` when asked, else ``live`` on a terminal and ``plain`` otherwise."""
    if json_lines:
        return "json"
    stream = stdout or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return "live" if callable(isatty) and isatty() else "plain"


@dataclass
class StreamOutcome:
    """What one stream produced: the response (partial on error), stats, and the error."""

    response: Response
    stats: StreamStats | None
    error: BaseException | None = None
    closed: bool = False
    """The reader of stdout went away (``| head``): the stream was disposed, no error."""


def _write_text(out: TextIO) -> Callable[[StreamEvent], None]:
    def write(event: StreamEvent) -> None:
        if event.type == "text_delta":
            out.write(event.text)
            out.flush()

    return write


def _write_json(out: TextIO) -> Callable[[StreamEvent], None]:
    def write(event: StreamEvent) -> None:
        out.write(event.model_dump_json() + "\n")
        out.flush()

    return write


def drain(stream: Observable[StreamEvent], sink: Callable[[StreamEvent], None]) -> StreamOutcome:
    """Subscribe, hand every event to ``sink`` on the reading thread, block until the end.

    Raises:
        KeyboardInterrupt: on Ctrl+C, after disposing the subscription (connection closed).
    """
    acc = ResponseAccumulator()
    tracker = StatsTracker()
    done = threading.Event()
    failure: list[BaseException] = []
    lock = threading.Lock()
    closed = threading.Event()

    def on_next(event: StreamEvent) -> None:
        with lock:
            acc.add(event)
            tracker.observe(event, time.monotonic())
        if closed.is_set():
            return
        try:
            sink(event)
        except BrokenPipeError:  # `rxstream run ... | head`: stop reading, quietly
            closed.set()
            done.set()

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    tracker.start(time.monotonic())
    subscription = stream.subscribe(on_next, on_error, done.set)
    try:
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        subscription.dispose()
        raise
    if closed.is_set():
        subscription.dispose()
    with lock:
        stats = tracker.snapshot(time.monotonic(), done=True)
        response = acc.snapshot()
    error = failure[0] if failure else None
    if isinstance(error, StreamError) and len(error.partial.text) >= len(response.text):
        response = error.partial
    if closed.is_set():
        return StreamOutcome(response, stats, None, closed=True)
    return StreamOutcome(response, stats, error)


def emit(
    mode: OutputMode, stream: Observable[StreamEvent], stdout: TextIO, live_console: Any
) -> StreamOutcome:
    """Send ``stream`` to ``stdout`` in ``mode``; return the outcome (errors are returned).

    Raises:
        KeyboardInterrupt: on Ctrl+C, after disposing the subscription.
    """
    if mode == "live":
        try:
            response, stats = render_live(live_console, stream)
        except StreamError as exc:
            return StreamOutcome(exc.partial, None, exc)
        return StreamOutcome(response, stats)
    outcome = drain(stream, _write_json(stdout) if mode == "json" else _write_text(stdout))
    if (
        mode == "plain"
        and not outcome.closed
        and outcome.response.text
        and not outcome.response.text.endswith("\n")
    ):
        stdout.write("\n")
        stdout.flush()
    return outcome

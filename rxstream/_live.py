"""Live terminal rendering of one stream for the CLI (rich).

The chain, on one request::

    stream ─► publish ─┬─► coalesce_text(0.03 s) ─► throttle_snapshots(0.05 s) ─► text view
                       └─► stream_stats(interval=0.25 s) ─► stats line and summary

``coalesce_text`` merges bursts of tiny deltas, ``throttle_snapshots`` redraws at most 20
times a second (always the latest and the final snapshot), and ``stream_stats`` supplies
time to first token and output tokens/s from the scheduler clock. The stats see the
uncoalesced stream, so the live line and the final summary count the same deltas (one
tokens/s definition: `rxstream.operators.StreamStats.tokens_per_second`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops

from rxstream.errors import StreamError
from rxstream.events import StreamEvent
from rxstream.operators import StreamStats, coalesce_text, stream_stats, throttle_snapshots
from rxstream.response import Response
from rxstream.sinks.terminal import format_stats

__all__ = ["live_views", "render_live", "summary_line"]


def summary_line(response: Response, stats: StreamStats | None) -> str:
    """The one-line summary: TTFT (s), output tokens/s, input/output tokens, stop reason."""
    ttft = f"{stats.time_to_first_token:.2f}s" if stats and stats.time_to_first_token is not None else "-"
    rate = f"{stats.tokens_per_second:.1f} tok/s" if stats and stats.tokens_per_second else "- tok/s"
    usage = response.usage
    return (
        f"TTFT {ttft} · {rate} · input {usage.input_tokens} tok · output {usage.output_tokens} tok"
        f" · stop {response.stop_reason or '-'}"
    )


def live_views(
    stream: Observable[StreamEvent], scheduler: abc.SchedulerBase | None = None
) -> tuple[Observable[Response | StreamStats], Callable[[], abc.DisposableBase | None]]:
    """The live chain (module docstring): snapshots and stats, and the ``connect`` to start it."""
    published = stream.pipe(ops.publish())
    views: Observable[Response | StreamStats] = reactivex.merge(
        published.pipe(
            coalesce_text(0.03, scheduler=scheduler), throttle_snapshots(0.05, scheduler=scheduler)
        ),
        published.pipe(stream_stats(interval=0.25, scheduler=scheduler)),
    )
    return views, published.connect


def render_live(console: Any, stream: Observable[StreamEvent]) -> tuple[Response, StreamStats | None]:
    """Subscribe to ``stream``, render it live on ``console``; block until it ends.

    Returns:
        The final `Response` and the final `StreamStats` (for `summary_line`).

    Raises:
        KeyboardInterrupt: on Ctrl+C, after disposing the subscription (connection closed).
        StreamError: the stream failed; the partial text stays on screen.
    """
    from rich.console import Group
    from rich.live import Live
    from rich.text import Text

    state: dict[str, Any] = {"response": Response(), "stats": None}
    done = threading.Event()
    failure: list[Exception] = []
    lock = threading.Lock()

    def on_next(value: Response | StreamStats) -> None:
        with lock:
            state["response" if isinstance(value, Response) else "stats"] = value

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    def render() -> Group:
        with lock:
            response: Response = state["response"]
            stats: StreamStats | None = state["stats"]
        line = "" if stats is None else format_stats(stats)
        return Group(Text(response.text), Text(line, style="dim"))

    views, connect = live_views(stream)
    interrupted = False
    with Live(render(), console=console, refresh_per_second=12, transient=True) as live:
        subscription = views.subscribe(on_next, on_error, done.set)
        connection = connect()
        try:
            while not done.wait(0.05):
                live.update(render())
        except KeyboardInterrupt:
            interrupted = True
            subscription.dispose()
            if connection is not None:
                connection.dispose()
    response: Response = state["response"]
    error = failure[0] if failure else None
    if isinstance(error, StreamError) and len(error.partial.text) >= len(response.text):
        response = error.partial
    if response.text:
        console.print(Text(response.text))
    if interrupted:
        raise KeyboardInterrupt
    if error is not None:
        raise error
    return response, state["stats"]

"""Live terminal rendering of one stream for the CLI (rich).

The chain, on one request::

    stream ─► coalesce_text(0.03 s) ─► publish ─┬─► throttle_snapshots(0.05 s) ─► text view
                                                └─► stream_stats(interval=0.25 s) ─► stats line

``coalesce_text`` merges bursts of tiny deltas, ``throttle_snapshots`` redraws at most 20
times a second (always the latest and the final snapshot), and ``stream_stats`` supplies
time to first token and output tokens/s from the scheduler clock.
"""

from __future__ import annotations

import threading
from typing import Any

import reactivex
from reactivex import Observable
from reactivex import operators as ops

from rxstream.errors import StreamError
from rxstream.events import StreamEvent
from rxstream.operators import StreamStats, coalesce_text, stream_stats, throttle_snapshots
from rxstream.response import Response
from rxstream.sinks.terminal import format_stats

__all__ = ["render_live", "summary_line"]


def summary_line(response: Response, stats: StreamStats | None) -> str:
    """The one-line summary: TTFT (s), output tokens/s, input/output tokens, stop reason."""
    ttft = f"{stats.time_to_first_token:.2f}s" if stats and stats.time_to_first_token is not None else "-"
    rate = f"{stats.tokens_per_second:.1f} tok/s" if stats and stats.tokens_per_second else "- tok/s"
    usage = response.usage
    return (
        f"TTFT {ttft} · {rate} · input {usage.input_tokens} tok · output {usage.output_tokens} tok"
        f" · stop {response.stop_reason or '-'}"
    )


def render_live(console: Any, stream: Observable[StreamEvent]) -> Response:
    """Subscribe to ``stream``, render it live on ``console``; block until it ends.

    Returns:
        The final `Response`.

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

    published = stream.pipe(coalesce_text(0.03), ops.publish())
    views = reactivex.merge(
        published.pipe(throttle_snapshots(0.05)),
        published.pipe(stream_stats(interval=0.25)),
    )
    interrupted = False
    with Live(render(), console=console, refresh_per_second=12, transient=True) as live:
        subscription = views.subscribe(on_next, on_error, done.set)
        connection = published.connect()
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
    console.print(summary_line(response, state["stats"]), style="dim")
    return response

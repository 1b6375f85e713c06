"""Live terminal rendering of one stream for the CLI (rich)."""

from __future__ import annotations

import threading
import time
from typing import Any

from reactivex import Observable

from rxstream.errors import StreamError
from rxstream.events import StreamEvent
from rxstream.response import Response, ResponseAccumulator

__all__ = ["render_live"]


def render_live(console: Any, stream: Observable[StreamEvent]) -> Response:
    """Subscribe to ``stream`` and render it live on ``console``; block until it ends.

    Returns:
        The final `Response`.

    Raises:
        KeyboardInterrupt: on Ctrl+C, after disposing the subscription (connection closed).
        StreamError: the stream failed; the partial text stays on screen.
    """
    from rich.live import Live
    from rich.text import Text

    acc = ResponseAccumulator()
    done = threading.Event()
    failure: list[BaseException] = []
    started = time.monotonic()
    first: list[float] = []
    lock = threading.Lock()

    def on_next(event: StreamEvent) -> None:
        with lock:
            if not first and event.type in ("text_delta", "thinking_delta", "tool_call_start"):
                first.append(time.monotonic())
            acc.add(event)

    def on_error(error: Exception) -> None:
        failure.append(error)
        done.set()

    def render() -> Text:
        with lock:
            snapshot = acc.snapshot()
        return Text(snapshot.text)

    with Live(render(), console=console, refresh_per_second=12, transient=False) as live:
        disposable = stream.subscribe(on_next, on_error, done.set)
        try:
            while not done.wait(0.05):
                live.update(render())
        except KeyboardInterrupt:
            disposable.dispose()
            live.update(render())
            raise
        live.update(render())
    response = acc.snapshot()
    if failure:
        error = failure[0]
        if isinstance(error, StreamError):
            raise error
        raise error
    ended = time.monotonic()
    ttft = (first[0] - started) if first else None
    gen = ended - first[0] if first else 0.0
    rate = response.usage.output_tokens / gen if gen > 0 else None
    if not response.text.endswith("\n"):
        console.print()
    console.print(
        f"[dim]TTFT {ttft:.2f}s · {rate:.1f} tok/s · input {response.usage.input_tokens} tok · "
        f"output {response.usage.output_tokens} tok · stop {response.stop_reason}[/dim]"
        if ttft is not None and rate is not None
        else f"[dim]input {response.usage.input_tokens} tok · output {response.usage.output_tokens} tok · "
        f"stop {response.stop_reason}[/dim]"
    )
    return response

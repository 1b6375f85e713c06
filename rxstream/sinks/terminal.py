"""`RichLiveHandler`: render one stream live in the terminal with rich."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from reactivex import abc
from reactivex.scheduler import TimeoutScheduler

from rxstream._extras import require
from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent
from rxstream.handlers import StreamHandler
from rxstream.operators._core import check_rate, check_scheduler
from rxstream.operators._stats import StatsTracker, StreamStats
from rxstream.response import Response, ResponseAccumulator

__all__ = ["RichLiveHandler", "format_stats"]


def format_stats(stats: StreamStats) -> str:
    """One line of stats, e.g. ``42 tokens · 31.5 tok/s · TTFT 0.42 s · 1.8 s``."""
    parts = [f"{stats.output_tokens} tokens"]
    if stats.tokens_per_second is not None:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if stats.time_to_first_token is not None:
        parts.append(f"TTFT {stats.time_to_first_token:.2f} s")
    parts.append(f"{stats.elapsed:.1f} s")
    return " · ".join(parts)


class RichLiveHandler(StreamHandler):
    """A rich ``Live`` view of one stream: the accumulated text and a stats line.

    The view starts with the first event and stops when the stream completes or fails (a
    failure adds a red line with the error type; the partial text stays). A retry's
    `StreamReset` clears the text; the stats cover every attempt. Use one handler per
    stream: it keeps one view.

    Callbacks only update state under a lock; rich's refresh thread renders it
    ``refresh_per_second`` times a second, so a fast stream costs no terminal writes per
    token.

    Args:
        console: A ``rich.console.Console``; default a new one on stdout.
        scheduler: Clock of the stats (``scheduler.now``); default the wall clock. Times
            are measured from the first event.
        refresh_per_second: Redraws per second (> 0).
        transient: Remove the view when the stream ends.
        show_thinking: Also show the thinking text (dimmed, above the answer).

    Raises:
        ConfigurationError: rich is not installed (``pip install 'rxstream[cli]'``), or an
            argument is invalid.
    """

    def __init__(
        self,
        console: Any = None,
        *,
        scheduler: abc.SchedulerBase | None = None,
        refresh_per_second: float = 10.0,
        transient: bool = False,
        show_thinking: bool = False,
    ) -> None:
        require("rich", "cli")
        from rich.console import Console

        if console is not None and not isinstance(console, Console):
            raise ConfigurationError(f"console must be a rich.console.Console, got {type(console).__name__}")
        self._console = console if console is not None else Console()
        self._clock = check_scheduler(scheduler) or TimeoutScheduler.singleton()
        self._refresh = check_rate("refresh_per_second", refresh_per_second)
        self._transient = transient
        self._show_thinking = show_thinking
        self._lock = threading.Lock()
        self._acc = ResponseAccumulator()
        self._tracker = StatsTracker()
        self._started: datetime | None = None
        self._error: str | None = None
        self._live: Any = None

    def _seconds(self) -> float:
        now = self._clock.now
        if self._started is None:
            self._started = now
        return (now - self._started).total_seconds()

    def render(self) -> Any:
        """The renderable of the current state (text, optional thinking, stats line)."""
        from rich.console import Group
        from rich.text import Text

        with self._lock:
            snapshot = self._acc.snapshot()
            stats = self._tracker.snapshot(self._seconds() if self._started is not None else 0.0)
            error = self._error
        parts: list[Any] = []
        if self._show_thinking and snapshot.thinking:
            parts.append(Text(snapshot.thinking, style="dim italic"))
        parts.append(Text(snapshot.text))
        parts.append(Text(format_stats(stats), style="dim"))
        if error is not None:
            parts.append(Text(f"stream failed: {error}", style="bold red"))
        return Group(*parts)

    def _ensure_live(self) -> None:
        if self._live is not None:
            return
        from rich.live import Live

        self._live = Live(
            console=self._console,
            get_renderable=self.render,
            refresh_per_second=self._refresh,
            transient=self._transient,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def on_event(self, event: StreamEvent) -> None:
        """Account for the event; the next refresh shows it."""
        with self._lock:
            if self._started is None:
                self._tracker.start(0.0)
            self._tracker.observe(event, self._seconds())
            self._acc.add(event)
        self._ensure_live()

    def _stop(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()  # renders the final state once more

    def on_stream_complete(self, response: Response) -> None:
        """Show the final state and stop the view."""
        self._stop()

    def on_stream_error(self, error: BaseException) -> None:
        """Show the error type under the partial text and stop the view."""
        with self._lock:
            self._error = type(error).__name__
        self._ensure_live()
        self._stop()

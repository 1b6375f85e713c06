"""Live display of a stream in a Jupyter cell: `display_stream`, `display_stream_async`.

One display handle (``IPython.display.display(..., display_id=True)``) is updated in place:
a waiting indicator until the first token, then the answer as Markdown with thinking and
tool calls in collapsible ``<details>`` sections, at most once per ``interval`` (built on
`rxstream.operators.throttle_snapshots`, so the final state is always shown), and at the
end a stats footer (TTFT, tokens/s, usage, stop reason). An error is shown in place under
the partial text. A tool loop (`rxstream.tool_loop`) is shown iteration by iteration, each
tool call's section holding its `ToolResult` once the tool ran, and the footer sums the
usage of all iterations. Jupyter's protocol sends the first render as ``display_data`` and every
later one as ``update_display_data`` with the same ``display_id`` (Jupyter messaging spec,
"Update Display Data").

Threads: async SDK clients run on the kernel's asyncio loop; sync clients read on worker
threads, and every display update hops onto the loop that was running when
`display_stream` was called (``loop.call_soon_threadsafe``), so the kernel's loop never
blocks and IPython's output machinery is used from one thread only. Updates are sent on
behalf of the kernel's current request: a cell that awaits the display (``await
shown.wait()``) receives them, which is what executed notebooks (nbclient) record.

Example:
    >>> import rxstream as rxs
    >>> shown = rxs.notebook.display_stream(rxs.from_anthropic(client, **params))  # doctest: +SKIP
    >>> shown.dispose()  # stop: the connection closes  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import math
import threading
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable

from rxstream._extras import require
from rxstream._markdown import loop_markdown, loop_stats_text, response_markdown, stats_text
from rxstream.errors import ConfigurationError, StreamError
from rxstream.events import IterationEnd, IterationStart, StreamEvent
from rxstream.operators import StreamStats, stream_stats, throttle_snapshots
from rxstream.operators._loop_result import LoopAccumulator, ToolLoopResult
from rxstream.response import Response

__all__ = ["StreamDisplay", "display_stream", "display_stream_async"]

logger = logging.getLogger("rxstream")


class StreamDisplay(abc.DisposableBase):
    """The live display of one stream: a subscription you can dispose (Stop) or await.

    Attributes:
        response: The latest `Response` snapshot shown (in a tool loop: of the latest
            iteration, as ``rso.final()`` gives it).
        stats: The final `StreamStats` (``None`` until the stream ended).
        error: The stream's error, if it failed.
        display_id: The IPython display id that is updated in place.
    """

    def __init__(
        self,
        handle: Any,
        loop: asyncio.AbstractEventLoop | None,
        *,
        show_thinking: bool,
        show_tools: bool,
        show_stats: bool,
    ) -> None:
        self._handle = handle
        self._loop = loop
        self._show_thinking = show_thinking
        self._show_tools = show_tools
        self._show_stats = show_stats
        self._lock = threading.Lock()
        self._subscription = CompositeDisposable()
        self._done = threading.Event()
        self._future: asyncio.Future[Response] | None = loop.create_future() if loop is not None else None
        self._button: Any = None
        self.response = Response()
        self.stats: StreamStats | None = None
        self.error: BaseException | None = None
        self.stopped = False
        self.updates = 0
        self.display_id: str = getattr(handle, "display_id", "")
        # A tool loop (first event IterationStart): every iteration and tool result, fed on
        # the source's thread before the throttled snapshot that triggers a render.
        self._loop_acc: LoopAccumulator | None = None
        self._in_iteration = False
        self._watching = True

    @property
    def loop_result(self) -> ToolLoopResult | None:
        """For a tool loop: the `ToolLoopResult` of the iterations completed so far, else ``None``."""
        with self._lock:
            return self._loop_acc.result() if self._loop_acc is not None else None

    @property
    def done(self) -> bool:
        """Whether the stream ended (completed, failed or was stopped)."""
        return self._done.is_set()

    def markdown(self) -> str:
        """The Markdown shown right now."""
        with self._lock:
            response, stats, error, stopped = self.response, self.stats, self.error, self.stopped
            finished = self._done.is_set()
            loop = self._loop_acc
            result = loop.result() if loop is not None else None
            current = loop.current() if loop is not None and self._in_iteration else None
        message: str | None = None
        if error is not None:
            message = f"{type(error).__name__}: {error}" if isinstance(error, StreamError) else repr(error)
        elif stopped:
            message = "stopped (connection closed)"
        show_footer = self._show_stats and finished and stats is not None
        thinking, tools = self._show_thinking, self._show_tools
        if result is not None:
            return loop_markdown(
                result,
                current=current,
                show_thinking=thinking,
                show_tools=tools,
                waiting=not finished,
                footer=loop_stats_text(result, stats) if show_footer else None,
                error=message,
            )
        return response_markdown(
            response,
            show_thinking=thinking,
            show_tools=tools,
            waiting=not finished,
            footer=stats_text(stats, response) if show_footer else None,
            error=message,
        )

    # -- called from any thread ----------------------------------------------------------
    def _on_event(self, event: StreamEvent) -> None:
        if not self._watching:
            return
        with self._lock:
            loop = self._loop_acc
            if loop is None:
                if not isinstance(event, IterationStart):
                    self._watching = False  # not a tool loop: the snapshots say everything
                    return
                loop = self._loop_acc = LoopAccumulator()
            loop.add(event)
            if isinstance(event, IterationStart):
                self._in_iteration = True
            elif isinstance(event, IterationEnd):
                self._in_iteration = False

    def _hop(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            self._render()
            return
        # Always a fresh, empty context: ipykernel keeps the parent message of an output in a
        # context variable, and a task started by an earlier cell would otherwise address its
        # updates to that finished cell (which nbclient and frontends no longer listen to). In
        # an empty context the update belongs to the kernel's current request.
        loop.call_soon_threadsafe(self._render, context=contextvars.Context())

    def _on_next(self, value: Response | StreamStats) -> None:
        with self._lock:
            if isinstance(value, Response):
                self.response = value
            else:
                self.stats = value
        self._hop()

    def _finish(self, error: BaseException | None = None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            if isinstance(error, StreamError) and len(error.partial.text) >= len(self.response.text):
                self.response = error.partial
            self.error = error
            self._done.set()
        self._hop()

    # -- on the loop thread ----------------------------------------------------------------
    def _render(self) -> None:
        try:
            markdown = require("IPython.display", "notebook").Markdown(self.markdown())
            self._handle.update(markdown)
            self.updates += 1
        except Exception:  # a display failure must not break the stream
            logger.warning("rxstream: notebook display update failed", exc_info=True)
        if self._done.is_set():
            if self._button is not None:
                self._button.close()
                self._button = None
            future = self._future
            if future is not None and not future.done():
                if self.error is not None:
                    future.set_exception(self.error)
                    future.exception()  # retrieved: no "never retrieved" warning if unawaited
                else:
                    future.set_result(self.response)

    # -- public ----------------------------------------------------------------------------
    def dispose(self) -> None:
        """Stop: dispose the subscription (the provider connection closes) and show "stopped"."""
        with self._lock:
            if self._done.is_set():
                return
            self.stopped = True
        self._subscription.dispose()
        self._finish(None)

    async def wait(self) -> Response:
        """Wait for the end of the stream without blocking the loop; return the final `Response`.

        Raises:
            StreamError: the stream's error (also shown in the display).
        """
        if self._future is not None and asyncio.get_running_loop() is self._loop:
            return await asyncio.shield(self._future)
        await asyncio.to_thread(self._done.wait)
        if self.error is not None:
            raise self.error
        return self.response


def _check(stream: object, interval: object) -> float:
    if not isinstance(stream, Observable):
        raise ConfigurationError(f"stream must be a reactivex Observable, got {type(stream).__name__}")
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not math.isfinite(interval)
        or interval <= 0
    ):
        raise ConfigurationError(f"interval must be a finite number of seconds > 0, got {interval!r}")
    return float(interval)


def display_stream(
    stream: Observable[StreamEvent],
    *,
    interval: float = 0.1,
    show_thinking: bool = True,
    show_tools: bool = True,
    show_stats: bool = True,
    stop_button: bool = False,
    scheduler: abc.SchedulerBase | None = None,
) -> StreamDisplay:
    """Show a stream live in the current Jupyter cell output; return at once.

    Subscribes to ``stream`` (one request) and renders into one display handle: a waiting
    indicator, then the `Response` snapshot at most once per ``interval`` (leading and
    trailing edge, the final snapshot always shown), finally the stats footer. The cell
    does not block: keep working, or ``await shown.wait()`` / use `display_stream_async`.

    Args:
        stream: The cold event stream (e.g. ``rxs.from_openai(client, ...)``).
        interval: Minimum seconds between two display updates (> 0).
        show_thinking: Show the thinking text in a collapsed section.
        show_tools: Show tool calls (name and arguments as they stream) and, in a tool loop
            (`rxstream.tool_loop`), each call's `ToolResult`.
        show_stats: Show the footer: TTFT, tokens/s, input/output tokens, stop reason.
        stop_button: Also show an ipywidgets "Stop" button that disposes the stream (needs
            ``ipywidgets``; ignored when it is not installed).
        scheduler: Clock/timer scheduler for the throttle and the stats (default: the
            shared ``TimeoutScheduler``).

    Returns:
        A `StreamDisplay`: ``dispose()`` stops the stream (connection closed), ``await
        wait()`` gives the final `Response`.

    Raises:
        ConfigurationError: at call time, if ``stream`` is not an Observable, ``interval`` is
            not > 0, or IPython is missing (``pip install 'rxstream[notebook]'``).

    Example:
        >>> shown = display_stream(rxs.from_anthropic(client, **params), interval=0.2)  # doctest: +SKIP
    """
    seconds = _check(stream, interval)
    display_module = require("IPython.display", "notebook")
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    button = None
    if stop_button:
        try:
            ipywidgets: Any = importlib.import_module("ipywidgets")
        except ImportError:
            ipywidgets = None
        if ipywidgets is not None:
            button = ipywidgets.Button(description="Stop", icon="stop", button_style="warning")
            display_module.display(button)
    from rxstream._markdown import WAITING

    handle = display_module.display(display_module.Markdown(WAITING), display_id=True)
    if handle is None:  # outside IPython display() returns nothing; updates then go to stdout
        handle = display_module.DisplayHandle()
    shown = StreamDisplay(
        handle, loop, show_thinking=show_thinking, show_tools=show_tools, show_stats=show_stats
    )
    if button is not None:
        shown._button = button
        button.on_click(lambda _: shown.dispose())

    published = stream.pipe(ops.publish())
    # Subscribed first, so each event reaches the loop view before the snapshot it triggers.
    shown._subscription.add(published.subscribe(shown._on_event, lambda _: None))
    views: Observable[Response | StreamStats] = reactivex.merge(
        published.pipe(throttle_snapshots(seconds, scheduler=scheduler)),
        published.pipe(stream_stats(scheduler=scheduler)),
    )
    shown._subscription.add(views.subscribe(shown._on_next, shown._finish, shown._finish))
    connection = published.connect()
    if connection is not None:
        shown._subscription.add(connection)
    return shown


async def display_stream_async(
    stream: Observable[StreamEvent],
    *,
    interval: float = 0.1,
    show_thinking: bool = True,
    show_tools: bool = True,
    show_stats: bool = True,
    stop_button: bool = False,
    scheduler: abc.SchedulerBase | None = None,
) -> Response:
    """`display_stream`, then wait (without blocking the loop) for the final `Response`.

    Cancelling the awaiting task disposes the stream (connection closed).

    Raises:
        ConfigurationError: as `display_stream`.
        StreamError: the stream's error, after it was shown in place with the partial text.

    Example:
        >>> response = await display_stream_async(rxs.from_openai(client, **params))  # doctest: +SKIP
    """
    shown = display_stream(
        stream,
        interval=interval,
        show_thinking=show_thinking,
        show_tools=show_tools,
        show_stats=show_stats,
        stop_button=stop_button,
        scheduler=scheduler,
    )
    try:
        return await shown.wait()
    except asyncio.CancelledError:
        shown.dispose()
        raise

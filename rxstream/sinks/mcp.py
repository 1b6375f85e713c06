"""MCP sink: stream an answer to an MCP client as progress notifications while a tool runs.

What MCP offers for this (checked against fastmcp 4.2.3 and mcp 2.3.0, the installed
versions): there is **no** ``ctx.stream_text`` and no ``streamingHint`` in FastMCP or the MCP
Python SDK. A tool can send ``notifications/progress`` through
``fastmcp.Context.report_progress(progress, total=None, message=None)``
(``fastmcp/server/context.py``), which sends only when the client's request carried
``params._meta.progressToken`` (read in ``mcp/shared/jsonrpc_dispatcher.py``,
``progress_token_from_params``) and otherwise does nothing. The MCP specification
("Utilities → Progress"; ``ProgressNotificationParams.progress`` in
``mcp_types/_types.py``: "should increase every time progress is made, even if the total is
unknown") wants ``progress`` to increase with each notification. Cancellation: a client's
``notifications/cancelled`` cancels the handler's scope (``mcp/shared/jsonrpc_dispatcher.py``,
``PeerCancelMode = "interrupt"``), i.e. the tool coroutine gets ``CancelledError``. A tool
that returns a pydantic model gets an ``outputSchema`` and its result is sent as
``structuredContent``. (mcp 2.x moved its bundled
server from ``mcp.server.fastmcp`` to ``mcp.server.mcpserver.MCPServer``; this module only
uses the standalone ``fastmcp`` package.)

So `stream_to_context` sends the answer as progress notifications — at most one per
``interval``, text never dropped — plus heartbeats before the first token, and returns the
final `Response` for the tool result. The stream is consumed on the running asyncio loop with
`rxstream.aio.to_async_iterator` (bounded buffer, backpressure to the connection).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, cast, get_type_hints

from pydantic import TypeAdapter
from pydantic_core import to_json
from reactivex import Observable

from rxstream._extras import require
from rxstream.aio import to_async_iterator
from rxstream.errors import ConfigurationError, StreamError
from rxstream.events import StreamEvent, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallStart
from rxstream.operators._core import check_seconds
from rxstream.operators._structured import FinalOutput, StructuredParser, adapter_for, tool_name
from rxstream.response import Response, ResponseAccumulator

if TYPE_CHECKING:
    from fastmcp import Context, FastMCP

__all__ = [
    "ProgressReporter",
    "StructuredProgressReporter",
    "stream_to_context",
    "streaming_tool",
    "structured_to_context",
]

T = TypeVar("T")
X = TypeVar("X")
X_contra = TypeVar("X_contra", contravariant=True)
Mode = Literal["delta", "snapshot"]

# A notification that adds no characters (heartbeat, a note) still has to raise `progress`
# (MCP spec: "The progress value MUST increase with each notification").
_NOTE_STEP = 0.001


class _Reporter(Protocol[X_contra]):
    started: bool

    def add(self, item: X_contra) -> None: ...

    def has_pending(self) -> bool: ...

    def take(self) -> tuple[float, str] | None: ...

    def heartbeat(self, waited: float) -> tuple[float, str]: ...


class _Progress:
    """Strictly increasing ``progress`` values: characters so far, or a small step above."""

    def __init__(self) -> None:
        self.last = 0.0

    def next(self, chars: float) -> float:
        value = chars if chars > self.last else self.last + _NOTE_STEP
        self.last = value
        return value


class ProgressReporter:
    """What to send for a stream of events (pure: no I/O, no clock).

    ``progress`` is the number of characters received (text, thinking and tool-call
    arguments); ``message`` is the text since the last notification (``"delta"``) or all
    text so far (``"snapshot"``). Thinking and tool calls give short notes (``"thinking…"``,
    ``"calling tool NAME"``) when no text is waiting; notes may be replaced by a newer one,
    text is never dropped.
    """

    def __init__(self, mode: Mode = "delta") -> None:
        self.mode = mode
        self.started = False
        self.accumulator = ResponseAccumulator()
        self._chars = 0
        self._pending: list[str] = []
        self._all: list[str] = []
        self._note: str | None = None
        self._progress = _Progress()

    def add(self, event: StreamEvent) -> None:
        """Take one event."""
        self.accumulator.add(event)
        kind = type(event)
        if kind is TextDelta:
            text = cast(TextDelta, event).text
            if text:
                self.started = True
                self._chars += len(text)
                self._pending.append(text)
                if self.mode == "snapshot":
                    self._all.append(text)
        elif kind is ThinkingDelta:
            self.started = True
            self._chars += len(cast(ThinkingDelta, event).text)
            if not self._pending:
                self._note = f"thinking… ({self._chars} characters)"
        elif kind is ToolCallStart:
            self.started = True
            self._note = f"calling tool {cast(ToolCallStart, event).name}"
        elif kind is ToolCallDelta:
            self._chars += len(cast(ToolCallDelta, event).arguments_delta)

    def has_pending(self) -> bool:
        """Whether a notification is waiting to be sent."""
        return bool(self._pending) or self._note is not None

    def take(self) -> tuple[float, str]:
        """The next notification's ``(progress, message)``; clears what it sends."""
        if self._pending:
            delta = "".join(self._pending)
            self._pending.clear()
            self._note = None
            if self.mode == "snapshot":
                self._all = ["".join(self._all)]
                return self._progress.next(self._chars), self._all[0]
            return self._progress.next(self._chars), delta
        note, self._note = self._note or "", None
        return self._progress.next(self._chars), note

    def heartbeat(self, waited: float) -> tuple[float, str]:
        """A "still waiting" notification after ``waited`` seconds."""
        return self._progress.next(self._chars), f"waiting for first token, {waited:.1f} s"


class StructuredProgressReporter(Generic[T]):
    """What to send for structured output: the newest partial object as compact JSON (pure).

    Events accumulate in a lazy `StructuredParser` (``eager=False``): the JSON is parsed
    and validated only when a notification is due, so the cost follows the notification
    rate, not the delta rate. ``progress`` is the length of the JSON text received;
    ``message`` the partial's ``data`` as compact JSON.
    """

    def __init__(self, adapter: TypeAdapter[T], tool: str | None = None) -> None:
        self.started = False
        self.accumulator = ResponseAccumulator()
        self.parser = StructuredParser(adapter, tool, eager=False)
        self._progress = _Progress()

    def add(self, event: StreamEvent) -> None:
        """Take one event."""
        self.accumulator.add(event)
        self.parser.add(event)
        if type(event) in (TextDelta, ThinkingDelta, ToolCallStart):
            self.started = True

    def has_pending(self) -> bool:
        """Whether JSON arrived since the last notification."""
        return self.parser.has_unparsed()

    def take(self) -> tuple[float, str] | None:
        """The newest partial as ``(progress, compact JSON)``, or ``None`` if it did not change."""
        partial = self.parser.flush()
        if partial is None:
            return None
        return self._progress.next(partial.chars), to_json(partial.data).decode()

    def heartbeat(self, waited: float) -> tuple[float, str]:
        """A "still waiting" notification after ``waited`` seconds."""
        return self._progress.next(0), f"waiting for first token, {waited:.1f} s"

    def finish(self) -> FinalOutput[T]:
        """Validate the complete output (raises `OutputValidationError`)."""
        return self.parser.finish(self.accumulator.snapshot())


def _has_progress_token(ctx: Any) -> bool:
    # FastMCPRequestContext.meta is the raw ``_meta`` of the request
    # (fastmcp/server/dependencies.py); the token is ``progressToken`` in it.
    request = getattr(ctx, "request_context", None)
    meta = getattr(request, "meta", None) if request is not None else None
    return isinstance(meta, dict) and meta.get("progressToken") is not None


async def _pump(
    items: AsyncIterator[X],
    ctx: Any,
    reporter: _Reporter[X],
    *,
    interval: float,
    heartbeat: float,
    notify: bool,
) -> None:
    """Consume ``items`` into ``reporter``, sending at most one notification per ``interval``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    last_sent = -math.inf
    next_heartbeat = start + heartbeat
    pending_next: asyncio.Future[X] | None = asyncio.ensure_future(items.__anext__())
    try:
        while True:
            now = loop.time()
            if notify and reporter.has_pending() and now >= last_sent + interval:
                note = reporter.take()
                if note is not None:
                    await ctx.report_progress(note[0], None, note[1])
                    last_sent = now
            elif notify and not reporter.started and now >= next_heartbeat and now >= last_sent + interval:
                progress, message = reporter.heartbeat(now - start)
                await ctx.report_progress(progress, None, message)
                last_sent = now
                next_heartbeat = now + heartbeat
            if pending_next is None:  # the stream ended: flush within the rate limit
                if not (notify and reporter.has_pending()):
                    return
                await asyncio.sleep(max(0.0, last_sent + interval - loop.time()))
                continue
            if notify and reporter.has_pending():
                timeout: float | None = max(0.0, last_sent + interval - loop.time())
            elif notify and not reporter.started:
                timeout = max(0.0, max(next_heartbeat, last_sent + interval) - loop.time())
            else:
                timeout = None
            done, _ = await asyncio.wait({pending_next}, timeout=timeout)
            if pending_next not in done:
                continue
            try:
                item = pending_next.result()
            except StopAsyncIteration:
                pending_next = None
                continue
            reporter.add(item)
            pending_next = asyncio.ensure_future(items.__anext__())
    finally:
        if pending_next is not None and not pending_next.done():
            pending_next.cancel()  # cancelling __anext__ disposes the subscription
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()  # synchronous inside: completes even in a cancelled scope


def _check(interval: object, heartbeat: object, mode: object) -> tuple[float, float]:
    if mode not in ("delta", "snapshot"):
        raise ConfigurationError(f"mode must be 'delta' or 'snapshot', got {mode!r}")
    return check_seconds("interval", interval), check_seconds("heartbeat", heartbeat)


async def stream_to_context(
    stream: Observable[StreamEvent],
    ctx: Context,
    *,
    interval: float = 0.25,
    heartbeat: float = 5.0,
    mode: Mode = "delta",
    max_buffered: int = 1024,
) -> Response:
    """Send a stream to the MCP client as progress notifications; return the final `Response`.

    Subscribes (one request) on the running asyncio loop via `rxstream.aio.to_async_iterator`.
    Notifications (``ctx.report_progress(progress, None, message)``, i.e.
    ``notifications/progress``):

    * ``progress``: characters received so far (text, thinking, tool-call arguments),
      strictly increasing as the MCP spec requires (a notification that adds no characters
      adds 0.001); ``total`` is not sent.
    * ``message``: the text since the previous notification (``"delta"``) or all text so
      far (``"snapshot"``); ``"thinking… (N characters)"`` / ``"calling tool NAME"`` notes
      when no text waits; ``"waiting for first token, 3.1 s"`` every ``heartbeat`` seconds
      before the first content, so hosts do not time out.
    * At most one notification per ``interval`` seconds (pending text is merged, never
      dropped); at the end, the last pending text is sent once the interval allows, then the
      function returns.

    When the request carried no ``progressToken`` nothing is sent: the stream is read and
    its `Response` returned. When the client cancels the call (``notifications/cancelled``
    cancels the tool's task), the subscription is disposed (the provider connection closes)
    and `asyncio.CancelledError` propagates.

    Args:
        stream: A cold event stream (pipe ``rso.apply_config(...)`` into it first if wanted).
        ctx: The tool's ``fastmcp.Context``.
        interval: Seconds between notifications, at least (> 0).
        heartbeat: Seconds between heartbeats before the first content (> 0).
        mode: ``"delta"`` or ``"snapshot"``.
        max_buffered: Events buffered for this coroutine before the source waits.

    Returns:
        The final `Response` (``.text`` is the answer for the tool result).

    Raises:
        ConfigurationError: at call time, for a bad ``interval``/``heartbeat``/``mode``.
        StreamError: the stream's own error (with ``.partial``), raised from the ``await``.

    Example:
        >>> @server.tool  # doctest: +SKIP
        ... async def ask(prompt: str, ctx: Context) -> str:
        ...     response = await rxs.mcp.stream_to_context(make_stream(prompt), ctx)
        ...     return response.text
    """
    seconds, beat = _check(interval, heartbeat, mode)
    reporter = ProgressReporter(mode)
    items = to_async_iterator(stream, max_buffered=max_buffered)
    await _pump(items, ctx, reporter, interval=seconds, heartbeat=beat, notify=_has_progress_token(ctx))
    return reporter.accumulator.snapshot()


async def structured_to_context(
    stream: Observable[StreamEvent],
    ctx: Context,
    model: type[T],
    *,
    source: str = "text",
    interval: float = 0.25,
    heartbeat: float = 5.0,
    max_buffered: int = 1024,
) -> FinalOutput[T]:
    """Like `stream_to_context` for structured output: partial objects as compact JSON messages.

    The JSON (answer text, or the arguments of tool ``NAME`` for ``source="tool:NAME"``) is
    parsed as in ``rso.structured`` but only when a notification is due; each notification's
    ``message`` is the newest partial object's JSON (``progress`` = JSON characters so far).
    Return ``result.value`` from a FastMCP tool annotated ``-> Model`` and the client gets it
    as ``structuredContent`` matching the tool's ``outputSchema``.

    Returns:
        The `FinalOutput` (``.value`` validated, ``.response`` the final `Response`).

    Raises:
        ConfigurationError: at call time, for bad arguments (see ``rso.structured``).
        OutputValidationError: the finished output does not validate (raw text attached).
        StreamError: the stream's own error.
    """
    seconds, beat = _check(interval, heartbeat, "delta")
    reporter = StructuredProgressReporter(cast(TypeAdapter[T], adapter_for(model)), tool_name(source))
    items = to_async_iterator(stream, max_buffered=max_buffered)
    await _pump(items, ctx, reporter, interval=seconds, heartbeat=beat, notify=_has_progress_token(ctx))
    return reporter.finish()


def _error_text(exc: StreamError) -> str:
    partial = exc.partial.text
    tail = f"\n\npartial answer ({len(partial)} characters):\n{partial}" if partial else ""
    return f"{type(exc).__name__}: {exc}{tail}"


def streaming_tool(
    server: FastMCP,
    *,
    name: str | None = None,
    description: str | None = None,
    output: type[Any] | None = None,
    source: str = "text",
    interval: float = 0.25,
    heartbeat: float = 5.0,
    mode: Mode = "delta",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function that returns an event stream as a FastMCP tool that streams it.

    The decorated function takes the tool's arguments and returns an
    ``Observable[StreamEvent]`` (or an awaitable of one). The registered tool has the same
    parameters (its input schema), plus an injected ``fastmcp.Context``
    (``fastmcp.dependencies.CurrentContext()``); it streams the answer with
    `stream_to_context` and returns the final text, or — with ``output=Model`` — streams
    partial objects with `structured_to_context` and returns the validated model, which
    FastMCP sends as ``structuredContent`` with ``outputSchema`` derived from ``Model``.
    A stream error becomes a tool error (``isError``) whose text carries the partial answer.

    Args:
        server: The ``fastmcp.FastMCP`` server.
        name: Tool name (default: the function name).
        description: Tool description (default: the function's docstring).
        output: A pydantic model (or other type) for structured output; ``None``: text.
        source: For ``output``: ``"text"`` or ``"tool:NAME"`` (see ``rso.structured``).
        interval: Seconds between progress notifications, at least.
        heartbeat: Seconds between heartbeats before the first content.
        mode: ``"delta"`` or ``"snapshot"`` (text output only).

    Returns:
        A decorator; it returns the original function unchanged.

    Raises:
        ConfigurationError: the ``mcp`` extra is missing, bad timing arguments, or the
            function already has a parameter named ``ctx``.

    Example:
        >>> @rxs.mcp.streaming_tool(server, description="Ask the model")  # doctest: +SKIP
        ... def ask(prompt: str) -> Observable[StreamEvent]:
        ...     return rxs.from_anthropic(client, model=..., max_tokens=512,
        ...                               messages=[{"role": "user", "content": prompt}])
    """
    require("fastmcp", "mcp")
    from fastmcp import Context
    from fastmcp.dependencies import CurrentContext
    from fastmcp.exceptions import ToolError

    _check(interval, heartbeat, mode)
    if output is not None:
        adapter_for(output)  # validates model and source now
        tool_name(source)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(fn)
        if "ctx" in signature.parameters:
            raise ConfigurationError(f"streaming_tool: {fn.__name__} must not have a parameter named 'ctx'")

        async def tool(*args: Any, ctx: Context, **kwargs: Any) -> Any:
            made = fn(*args, **kwargs)
            # An Observable is awaitable itself (``__await__``: its last value): test it first.
            stream = made if isinstance(made, Observable) else await made
            if not isinstance(stream, Observable):
                raise ToolError(f"{fn.__name__} returned {type(stream).__name__}, not an Observable")
            try:
                if output is None:
                    response = await stream_to_context(
                        stream, ctx, interval=interval, heartbeat=heartbeat, mode=mode
                    )
                    return response.text
                result = await structured_to_context(
                    stream, ctx, output, source=source, interval=interval, heartbeat=heartbeat
                )
                return result.value
            except StreamError as exc:
                raise ToolError(_error_text(exc)) from exc

        functools.update_wrapper(tool, fn)
        del tool.__wrapped__  # type: ignore[attr-defined]  # FastMCP must see the signature below, not fn's
        ctx_param = inspect.Parameter(
            "ctx", inspect.Parameter.KEYWORD_ONLY, default=CurrentContext(), annotation=Context
        )
        hints = get_type_hints(fn, include_extras=True)  # resolved in fn's own module
        params = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
            if p.kind is not p.VAR_KEYWORD
        ]
        returns = str if output is None else output
        tool.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*params, ctx_param], return_annotation=returns
        )
        tool.__annotations__ = {**{p.name: p.annotation for p in params}, "ctx": Context, "return": returns}
        server.tool(tool, name=name or fn.__name__, description=description or inspect.getdoc(fn))
        return fn

    return decorator

"""``tool_loop``: the agent tool loop as one cold ``Observable[StreamEvent]``.

Data flow per subscription::

    history ─► request (tools rendered) ─► entry(client, **params) ─► turn events ─┐
       ▲                                                                            │
       └── assistant turn + tool results ◄── tools (asyncio: gather / to_thread) ◄──┘

The provider knowledge (how tools, assistant turns and tool results look on each wire API)
lives in `rxstream.providers._tool_wire`; this module only drives iterations.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable

from rxstream._demand import pick_loop
from rxstream.errors import ConfigurationError, StreamError, ToolError
from rxstream.events import (
    IterationEnd,
    IterationStart,
    LoopStopReason,
    StreamEvent,
    ToolResult,
)
from rxstream.operators._loop_result import LoopAccumulator
from rxstream.providers import PROVIDERS, ProviderSpec
from rxstream.providers._source import new_stream_id
from rxstream.providers._tool_wire import ToolWire, tool_wire
from rxstream.response import ToolCall
from rxstream.tools.tool import Tool

__all__ = ["TurnHook", "tool_loop"]

TurnHook = Callable[[Observable[StreamEvent]], Observable[StreamEvent]]
"""Operators applied to each model turn's stream (e.g. ``retry_stream``, ``idle_timeout``)."""

_background: asyncio.AbstractEventLoop | None = None
_background_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """A private asyncio loop in a daemon thread, for tools when no loop is running."""
    global _background
    with _background_lock:
        if _background is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="rxstream-tools", daemon=True).start()
            atexit.register(_stop_background, loop)
            _background = loop
        return _background


def _stop_background(loop: asyncio.AbstractEventLoop) -> None:
    loop.call_soon_threadsafe(loop.stop)


def _spec_for(entry: Any) -> ProviderSpec:
    """The registry entry of a source function (``rxs.from_anthropic`` or its spec's wrapper)."""
    name = getattr(entry, "__name__", None)
    module = str(getattr(entry, "__module__", ""))
    for spec in PROVIDERS.values():
        if entry is spec.entry_point or (
            name == spec.entry_point.__name__ and module.startswith("rxstream.providers.")
        ):
            if spec.render_tools is None or spec.render_tool_results is None or spec.disable_tools is None:
                break
            return spec
    names = ", ".join(spec.entry_point.__name__ for spec in PROVIDERS.values())
    raise ConfigurationError(f"tool_loop needs one of the rxstream entry points ({names}), not {entry!r}")


def _as_tools(tools: Iterable[Tool | Callable[..., Any]]) -> dict[str, Tool]:
    by_name: dict[str, Tool] = {}
    for item in tools:
        t = item if isinstance(item, Tool) else Tool.from_function(item)
        if t.name in by_name:
            raise ConfigurationError(f"tool_loop: two tools are named {t.name!r}")
        by_name[t.name] = t
    return by_name


def tool_loop(
    entry: Callable[..., Observable[StreamEvent]],
    client: Any,
    *,
    tools: Sequence[Tool | Callable[..., Any]],
    max_iterations: int = 10,
    parallel_tool_calls: bool = True,
    tool_timeout: float | None = None,
    final_answer_on_limit: bool = True,
    turn: TurnHook | None = None,
    **params: Any,
) -> Observable[StreamEvent]:
    """Run model turns and tool calls until the model answers, as one cold Observable.

    Each iteration streams one model turn with the tools offered; when the turn stops for
    tool use, the requested tools run, the assistant turn and the tool results are appended
    to the history, and the next turn streams. The loop ends after a turn without tool calls,
    or at ``max_iterations``.

    Event grammar (every model-turn event passes unchanged except ``stream_id`` — the loop's
    own, one per subscription — and ``seq``, counted across the whole loop)::

        ( IterationStart
          StreamStart (TextDelta | ThinkingDelta | ToolCallStart ToolCallDelta* ToolCallEnd
                       | UsageUpdate)* StreamEnd
          ToolResult*                  (one per executed call, in completion order)
          IterationEnd )+              (usage of that turn; stop_reason)

    Marble (``I`` IterationStart, ``S``/``E`` the turn's StreamStart/StreamEnd, ``T`` a tool
    call, ``R`` a ToolResult, ``J`` IterationEnd)::

        turn 1:  -S-T-T-E|
        tools:           --R-R
        turn 2:                  -S-t-t-E|
        loop:    I-S-T-T-E--R-R-J-I-S-t-t-E-J|

    Args:
        entry: One of the five sources: ``rxs.from_anthropic``, ``rxs.from_openai``,
            ``rxs.from_openai_responses``, ``rxs.from_bedrock``, ``rxs.from_bedrock_invoke``.
        client: What ``entry`` takes (sync or async SDK client, boto3 client).
        tools: `Tool`s (or plain functions, made into tools with `Tool.from_function`).
        max_iterations: Most model turns that may call tools (>= 1).
        parallel_tool_calls: Run the calls of one turn concurrently (async tools on the
            loop, sync tools in worker threads); False runs them one by one in call order.
            Either way results go back to the model in the model's call order.
        tool_timeout: Seconds one tool call may take; a slower call becomes an error result
            (an async tool is cancelled; a sync tool's thread finishes, its result discarded).
        final_answer_on_limit: When the turn at ``max_iterations`` still asks for tools, run
            them and request one more turn with tool use disabled (``tool_choice`` "none";
            Bedrock Converse, which has none, is asked in a text block) so the run ends with
            an answer. False ends the loop there with ``stop_reason="max_iterations"``.
        turn: Operators applied to each model turn, e.g.
            ``lambda s: s.pipe(rso.retry_stream(3), rso.idle_timeout(30))``: a retry resends
            only that turn's request; a timeout fails the loop with ``.iterations`` set.
        **params: What ``entry`` takes; ``messages`` (``input`` for Responses, the body's
            ``messages`` for InvokeModel) is the starting history. Must not carry tools.

    Returns:
        A cold Observable: each subscription runs the whole loop from the starting history.
        Disposal closes the model connection, cancels running async tools (sync tools run
        to their end, results discarded) and emits nothing more.

    Raises:
        ConfigurationError: a wrong ``entry``, client or parameters (checked now, nothing is
            sent), duplicate tool names, ``max_iterations < 1`` or ``tool_timeout <= 0``.

    Emits:
        The model turn's typed error (`ProviderError`, `StreamInterruptedError`, a timeout
        from ``turn``, ...) with ``.partial`` = that turn so far and ``.iterations`` = the
        `ToolLoopResult` of the completed iterations. Tool failures are not errors: they
        become ``ToolResult(is_error=True)`` sent to the model.

    Threads: tools run on the asyncio loop running at subscribe time (or the
    `AsyncIOScheduler`'s loop), else on a private background loop; do not block that loop
    while the loop runs. Model turns run where ``entry`` runs them.

    Example:
        >>> events = rxs.tool_loop(rxs.from_anthropic, client, tools=[add], model="m",
        ...     max_tokens=256, messages=[{"role": "user", "content": "2+3?"}])  # doctest: +SKIP
        >>> result = events.pipe(rso.loop_result()).run()  # doctest: +SKIP
    """
    spec = _spec_for(entry)
    wire = tool_wire(spec.name)
    by_name = _as_tools(tools)
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise ConfigurationError(f"max_iterations must be an integer >= 1, not {max_iterations!r}")
    if tool_timeout is not None and not tool_timeout > 0:
        raise ConfigurationError(f"tool_timeout must be > 0 seconds, not {tool_timeout!r}")
    base = wire.with_tools(params, list(by_name.values()))
    history = wire.history(base)
    entry(client, **wire.with_history(base, history))  # validates client and params now (cold)
    settings = _Settings(
        entry=entry,
        spec=spec,
        wire=wire,
        client=client,
        base=base,
        history=history,
        tools=by_name,
        max_iterations=max_iterations,
        parallel=parallel_tool_calls,
        tool_timeout=tool_timeout,
        final_answer=final_answer_on_limit,
        turn=turn,
    )

    def subscribe(
        observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        run = _LoopRun(settings, observer, scheduler)
        run.start_turn()
        return Disposable(run.dispose)

    return reactivex.create(subscribe)


class _Settings:
    __slots__ = (
        "base",
        "client",
        "entry",
        "final_answer",
        "history",
        "max_iterations",
        "parallel",
        "spec",
        "tool_timeout",
        "tools",
        "turn",
        "wire",
    )

    def __init__(
        self,
        *,
        entry: Callable[..., Observable[StreamEvent]],
        spec: ProviderSpec,
        wire: ToolWire,
        client: Any,
        base: dict[str, Any],
        history: list[Any],
        tools: dict[str, Tool],
        max_iterations: int,
        parallel: bool,
        tool_timeout: float | None,
        final_answer: bool,
        turn: TurnHook | None,
    ) -> None:
        self.entry = entry
        self.spec = spec
        self.wire = wire
        self.client = client
        self.base = base
        self.history = history
        self.tools = tools
        self.max_iterations = max_iterations
        self.parallel = parallel
        self.tool_timeout = tool_timeout
        self.final_answer = final_answer
        self.turn = turn


class _LoopRun:
    """The state of one subscription: history, iteration, seq, running turn and tools."""

    def __init__(
        self, s: _Settings, observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None
    ) -> None:
        self.s = s
        self.observer = observer
        self.scheduler = scheduler
        self.stream_id = new_stream_id()
        self.history = list(s.history)
        self.iteration = 0
        self.seq = 0
        self.acc = LoopAccumulator()
        self.lock = threading.Lock()
        self.done = False
        self.turn_subscription = SerialDisposable()
        self.tools_future: concurrent.futures.Future[None] | None = None
        self.loop = pick_loop(scheduler)

    # -- emission -------------------------------------------------------------------------

    def emit(self, event: StreamEvent) -> None:
        with self.lock:
            if self.done:
                return
            seq = self.seq
            self.seq = seq + 1
        stamped = event.model_copy(update={"stream_id": self.stream_id, "seq": seq})
        self.acc.add(stamped)
        self.observer.on_next(stamped)

    def finish(self, error: Exception | None = None) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
        if error is None:
            self.observer.on_completed()
            return
        if isinstance(error, StreamError):
            error.iterations = self.acc.result()
        self.observer.on_error(error)

    def dispose(self) -> None:
        with self.lock:
            self.done = True
        self.turn_subscription.dispose()
        future = self.tools_future
        if future is not None:
            future.cancel()

    # -- model turns ----------------------------------------------------------------------

    def start_turn(self) -> None:
        s = self.s
        self.iteration += 1
        tools_disabled = self.iteration > s.max_iterations
        params = s.wire.with_history(s.base, list(self.history))
        if tools_disabled:
            params = s.spec.disable_tools(params)  # type: ignore[misc]  # checked in _spec_for
        details = {"messages": list(self.history)} if self.iteration == 1 else None
        slot = SingleAssignmentDisposable()
        self.turn_subscription.disposable = slot
        try:
            self.emit(IterationStart(stream_id="", seq=0, iteration=self.iteration, provider_details=details))
            stream = s.entry(s.client, **params)
            if s.turn is not None:
                stream = s.turn(stream)
        except Exception as exc:  # e.g. botocore rejects the next request's parameters
            self.finish(exc)
            return
        if self.done:
            return
        slot.disposable = stream.subscribe(
            self.emit,
            self.finish,
            lambda: self.turn_done(tools_disabled),
            scheduler=self.scheduler,
        )

    def turn_done(self, tools_disabled: bool) -> None:
        if self.done:
            return
        try:
            response = self.acc.current()
            s = self.s
            assistant = s.spec.render_assistant(response)
            calls = list(response.tool_calls)
            wants_tools = (
                bool(calls) and all(c.complete for c in calls) and response.stop_reason != "max_tokens"
            )
            if not wants_tools:
                self.end_iteration(response.stop_reason or "other", assistant)
                self.finish()
                return
            if tools_disabled:  # the model asked for tools on the no-tools turn: not executed
                self.end_iteration("max_iterations", assistant)
                self.finish()
                return
            self.run_tools(calls, assistant)
        except Exception as exc:
            self.finish(exc)

    def end_iteration(self, stop_reason: LoopStopReason, items: list[Any]) -> None:
        self.history.extend(items)
        usage = self.acc.current().usage
        self.emit(
            IterationEnd(
                stream_id="",
                seq=0,
                iteration=self.iteration,
                usage=usage,
                stop_reason=stop_reason,
                provider_details={"messages": items},
            )
        )

    # -- tools ------------------------------------------------------------------------------

    def run_tools(self, calls: list[ToolCall], assistant: list[Any]) -> None:
        loop = self.loop if self.loop is not None and not self.loop.is_closed() else _background_loop()
        self.tools_future = asyncio.run_coroutine_threadsafe(self.tools_then_next(calls, assistant), loop)
        if self.done:
            self.tools_future.cancel()

    async def tools_then_next(self, calls: list[ToolCall], assistant: list[Any]) -> None:
        try:
            if self.s.parallel:
                results = list(await asyncio.gather(*(self.call_tool(c) for c in calls)))
            else:
                results = [await self.call_tool(c) for c in calls]
            if self.done:
                return
            s = self.s
            items = assistant + s.spec.render_tool_results(results)  # type: ignore[misc]
            at_limit = self.iteration >= s.max_iterations
            if at_limit and not s.final_answer:
                self.end_iteration("max_iterations", items)
                self.finish()
                return
            self.end_iteration("tool_use", items)
            self.start_turn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an observer raised in on_next
            self.finish(exc)

    async def call_tool(self, call: ToolCall) -> ToolResult:
        started = time.perf_counter()
        output, is_error = await self.execute(call)
        result = ToolResult(
            stream_id="",
            seq=0,
            iteration=self.iteration,
            tool_call_id=call.id,
            name=call.name,
            output=output,
            is_error=is_error,
            duration_s=time.perf_counter() - started,
        )
        self.emit(result)
        return result

    async def execute(self, call: ToolCall) -> tuple[str, bool]:
        t = self.s.tools.get(call.name)
        if t is None:
            known = ", ".join(sorted(self.s.tools)) or "none"
            return f"unknown tool {call.name!r} (available: {known})", True
        timeout = self.s.tool_timeout
        try:
            if timeout is None:
                return await t.acall(call.arguments), False
            return await asyncio.wait_for(t.acall(call.arguments), timeout), False
        except ToolError as exc:
            return str(exc), True
        except TimeoutError:
            return f"tool {call.name!r} timed out after {timeout:g} s", True
        except Exception as exc:  # the message only: never a traceback
            return f"{type(exc).__name__}: {exc}", True

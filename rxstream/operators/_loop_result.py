"""``loop_result()``: one `ToolLoopResult` at the completion of a tool loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict
from reactivex import Observable, abc

from rxstream.events import (
    IterationEnd,
    IterationStart,
    LoopStopReason,
    StreamEvent,
    ToolResult,
    Usage,
)
from rxstream.response import Response, ResponseAccumulator

__all__ = ["LoopAccumulator", "ToolLoopResult", "loop_result", "sum_usage"]


def sum_usage(usages: tuple[Usage, ...] | list[Usage]) -> Usage:
    """Add token counts field by field (the usage of several model turns)."""
    return Usage(
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        cache_read_tokens=sum(u.cache_read_tokens for u in usages),
        cache_write_tokens=sum(u.cache_write_tokens for u in usages),
        reasoning_tokens=sum(u.reasoning_tokens for u in usages),
    )


class ToolLoopResult(BaseModel):
    """The outcome of a tool loop (`rxstream.tool_loop`).

    Attributes:
        responses: One `Response` per completed iteration (model turn), in order.
        text: The final answer: the text of the last model turn.
        usage: Tokens summed over all iterations.
        iteration_usage: Tokens of each iteration's model turn, in order.
        tool_results: Every `ToolResult`, in the order they were emitted.
        iterations: Number of completed iterations.
        stop_reason: The last iteration's stop reason (``max_iterations`` when the loop
            stopped at its limit), ``None`` if no iteration completed.
        messages: The whole conversation in the provider's own format (starting history,
            then each assistant turn and its tool results): pass it as ``messages`` /
            ``input`` (or the InvokeModel body's ``messages``) to continue.
    """

    model_config = ConfigDict(frozen=True)

    responses: tuple[Response, ...] = ()
    text: str = ""
    usage: Usage = Usage()
    iteration_usage: tuple[Usage, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    iterations: int = 0
    stop_reason: LoopStopReason | None = None
    messages: list[Any] = []

    def _repr_markdown_(self) -> str:
        """Jupyter display: each iteration's text and tool calls with their results, the totals."""
        from rxstream._markdown import loop_markdown, loop_stats_text

        return loop_markdown(self, footer=loop_stats_text(self))

    def _repr_html_(self) -> str:
        """Jupyter display as escaped HTML (model and tool output never interpreted as markup)."""
        from rxstream._markdown import loop_html

        return loop_html(self)


class LoopAccumulator:
    """Pure reducer of tool-loop events into a `ToolLoopResult` (no Rx, threads or clocks).

    ``add(event)`` per event, ``result()`` at any time (completed iterations only).
    """

    __slots__ = ("_current", "_messages", "_responses", "_stop", "_tool_results", "_usages")

    def __init__(self) -> None:
        self._current = ResponseAccumulator()
        self._responses: list[Response] = []
        self._usages: list[Usage] = []
        self._tool_results: list[ToolResult] = []
        self._messages: list[Any] = []
        self._stop: LoopStopReason | None = None

    def add(self, event: StreamEvent) -> None:
        """Apply one event."""
        kind = type(event)
        if kind is not IterationStart and kind is not ToolResult and kind is not IterationEnd:
            self._current.add(event)  # a model-turn event (the hot path)
        elif isinstance(event, IterationStart):
            self._current = ResponseAccumulator()
            if event.iteration == 1 and event.provider_details:
                self._messages = list(event.provider_details.get("messages", []))
        elif isinstance(event, ToolResult):
            self._tool_results.append(event)
        elif isinstance(event, IterationEnd):
            self._responses.append(self._current.snapshot())
            self._usages.append(event.usage)
            self._stop = event.stop_reason
            if event.provider_details:
                self._messages.extend(event.provider_details.get("messages", []))

    def current(self) -> Response:
        """The `Response` of the iteration in progress so far."""
        return self._current.snapshot()

    def result(self) -> ToolLoopResult:
        """The `ToolLoopResult` of the iterations completed so far."""
        return ToolLoopResult(
            responses=tuple(self._responses),
            text=self._responses[-1].text if self._responses else "",
            usage=sum_usage(self._usages),
            iteration_usage=tuple(self._usages),
            tool_results=tuple(self._tool_results),
            iterations=len(self._responses),
            stop_reason=self._stop,
            messages=list(self._messages),
        )


def loop_result() -> Callable[[Observable[StreamEvent]], Observable[ToolLoopResult]]:
    """Emit one `ToolLoopResult` when a tool loop completes.

    ``Observable[StreamEvent] -> Observable[ToolLoopResult]`` over the events of
    `rxstream.tool_loop` (the history comes from ``provider_details["messages"]`` of the
    first `IterationStart` and of each `IterationEnd`). Errors pass through unchanged (a
    loop error already carries ``.partial`` and ``.iterations``). Runs on the source's
    thread; O(1) per event.

    Marble::

        loop:           -I-S-t-E-R-J-I-S-t-E-J|
        loop_result():  ----------------------(L|)

    Example:
        >>> result = rxs.tool_loop(rxs.from_anthropic, client, tools=[add], model="m",
        ...     max_tokens=256, messages=[...]).pipe(rso.loop_result()).run()  # doctest: +SKIP
    """

    def _loop_result(source: Observable[StreamEvent]) -> Observable[ToolLoopResult]:
        def subscribe(
            observer: abc.ObserverBase[ToolLoopResult], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            acc = LoopAccumulator()

            def on_completed() -> None:
                observer.on_next(acc.result())
                observer.on_completed()

            return source.subscribe(acc.add, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _loop_result

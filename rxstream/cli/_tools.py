"""``rxstream run "PROMPT" --tools demo``: the tool loop, rendered live in the terminal.

Two small demo tools (`calculator`, `clock`) are offered to the model; on the embedded
emulator the demo model calls both, then answers with their results. The view shows each
iteration, the text as it streams, every tool call with its arguments and result, the usage
of each iteration as it ends, and a summary line with the total usage.
"""

from __future__ import annotations

import argparse
import ast
import json
import operator
import queue
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reactivex import Observable

from rxstream.cli._session import Session, announce, console, open_session
from rxstream.errors import StreamError, ToolError
from rxstream.events import (
    IterationEnd,
    IterationStart,
    StreamEvent,
    TextDelta,
    ToolCallEnd,
    ToolResult,
)
from rxstream.operators._loop_result import LoopAccumulator, ToolLoopResult
from rxstream.tools import Tool, tool, tool_loop

__all__ = [
    "DEMO_TOOLS",
    "add_arguments",
    "calculator",
    "clock",
    "loop_stream",
    "render_loop",
    "run_tools",
]

_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        if isinstance(node.op, ast.Pow) and abs(_evaluate(node.right)) > 100:
            raise ToolError("exponent too large")
        return float(_OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return float(_OPERATORS[type(node.op)](_evaluate(node.operand)))
    raise ToolError(f"unsupported expression element: {type(node).__name__}")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression (numbers, + - * / // % ** and parentheses).

    Args:
        expression: The expression, e.g. "12 * (3 + 4)".
    """
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {expression!r}") from exc
    value = _evaluate(tree)
    shown = int(value) if value == int(value) else value
    return f"{expression} = {shown}"


@tool
def clock(timezone: str = "UTC") -> str:
    """The current date and time in a time zone.

    Args:
        timezone: IANA time zone name, e.g. "Europe/Zurich".
    """
    try:
        zone = ZoneInfo(timezone) if timezone != "UTC" else UTC
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolError(f"unknown time zone {timezone!r}") from exc
    return datetime.now(zone).strftime(f"%Y-%m-%d %H:%M:%S {timezone}")


DEMO_TOOLS: dict[str, list[Tool]] = {"demo": [calculator, clock]}
"""Tool sets for ``--tools``."""


def loop_stream(session: Session, tools: str, prompt: str, max_iterations: int) -> Observable[StreamEvent]:
    """The cold tool loop answering ``prompt`` after ``session.history``, with a `DEMO_TOOLS` set.

    On the embedded emulator the demo responder (`rxstream.testing.demo`) sees the demo
    tools offered: its first turn calls both, the next answers with their results.

    Raises:
        ConfigurationError: ``max_iterations < 1`` (from `rxstream.tool_loop`).
        KeyError: ``tools`` is not a key of `DEMO_TOOLS`.
    """
    return tool_loop(
        session.spec.entry_point,
        session.client,
        tools=DEMO_TOOLS[tools],
        max_iterations=max_iterations,
        **session.request(prompt),
    )


def render_loop(out: Any, stream: Observable[StreamEvent]) -> ToolLoopResult:
    """Subscribe to a tool loop and render it on a rich console; block until it ends.

    Events are handed from the stream's threads to this thread through a queue, so all
    printing happens here.

    Returns:
        The `ToolLoopResult`.

    Raises:
        KeyboardInterrupt: on Ctrl+C, after disposing the loop (connection closed, tools
            cancelled).
        StreamError: the loop failed (the text so far stays on screen).
    """
    from rich.text import Text

    inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    subscription = stream.subscribe(
        lambda e: inbox.put(("event", e)),
        lambda err: inbox.put(("error", err)),
        lambda: inbox.put(("done", None)),
    )
    acc = LoopAccumulator()
    in_text = False
    try:
        while True:
            try:
                kind, value = inbox.get(timeout=0.1)  # a timeout keeps Ctrl+C responsive
            except queue.Empty:
                continue
            if kind == "error":
                if in_text:
                    out.print()
                raise value
            if kind == "done":
                break
            event: StreamEvent = value
            acc.add(event)
            if isinstance(event, TextDelta):
                out.print(Text(event.text), end="")
                in_text = True
                continue
            if in_text and isinstance(event, (ToolCallEnd, ToolResult, IterationEnd)):
                out.print()
                in_text = False
            if isinstance(event, IterationStart):
                out.rule(f"iteration {event.iteration}", style="dim")
            elif isinstance(event, ToolCallEnd):
                arguments = json.dumps(event.arguments, ensure_ascii=False)
                out.print(Text.assemble(("→ ", "cyan"), (event.name, "bold cyan"), f" {arguments}"))
            elif isinstance(event, ToolResult):
                style = "red" if event.is_error else "green"
                label = "error" if event.is_error else "result"
                out.print(
                    Text.assemble(
                        ("← ", style),
                        (f"{event.name} {label}: ", style),
                        event.output,
                        (f"  ({event.duration_s * 1000:.1f} ms)", "dim"),
                    )
                )
            elif isinstance(event, IterationEnd):
                u = event.usage
                out.print(
                    f"iteration {event.iteration}: input {u.input_tokens} tok · output {u.output_tokens} tok"
                    f" · stop {event.stop_reason}",
                    style="dim",
                )
    except KeyboardInterrupt:
        subscription.dispose()
        raise
    result = acc.result()
    total = result.usage
    stop = result.stop_reason or "-"
    out.print(
        f"{result.iterations} iterations · {len(result.tool_results)} tool calls · "
        f"input {total.input_tokens} tok · output {total.output_tokens} tok · stop {stop}",
        style="bold",
    )
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tools`` and ``--max-iterations`` to the ``run`` parser."""
    parser.add_argument(
        "--tools",
        choices=sorted(DEMO_TOOLS),
        default=None,
        help="run the agent tool loop with a tool set (demo: a calculator and a clock)",
    )
    parser.add_argument(
        "--max-iterations", type=int, default=10, help="tool loop: most model turns that may call tools"
    )


def run_tools(args: argparse.Namespace) -> int:
    """``rxstream run PROMPT --tools NAME``: the tool loop on the chosen provider.

    The iterations go to stdout (with ``--json``: every event of the loop as one JSON line,
    `IterationStart`, `ToolResult` and `IterationEnd` included); the emulator notice and
    errors go to stderr.
    """
    from rxstream.cli._chat import _prompt_text, describe_error, session_options
    from rxstream.cli._output import emit

    prompt = _prompt_text(args)
    out, err = console(), console(stderr=True)
    with open_session(session_options(args)) as session:
        announce(err, session)
        stream = loop_stream(session, args.tools, prompt, args.max_iterations)
        try:
            if getattr(args, "json", False):
                outcome = emit("json", stream, sys.stdout, None)
                if outcome.error is not None:
                    raise outcome.error
            else:
                render_loop(out, stream)
        except KeyboardInterrupt:
            err.print("cancelled", style="yellow")
            return 130
        except StreamError as exc:
            err.print(f"error: {describe_error(exc, session)}", style="red", markup=False)
            return 1
    return 0

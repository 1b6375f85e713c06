"""Multi-turn tool conversations on the emulator: a responder that reads the request.

`ToolConversation` is a :data:`~rxstream.testing.emulator.Responder`: for each request it
counts the tool results the request carries and picks the next scripted turn, so one script
drives a whole tool loop on every wire format (the emulator itself is stateless). The
request readers (`offered_tools`, `request_tool_results`, `tools_disabled`) understand the
five request shapes and are handy in assertions.

Example:
    >>> conversation = ToolConversation([
    ...     ResponseScript(tool_calls=[ScriptedToolCall(id="call_1", name="add",
    ...         arguments='{"a": 2, "b": 3}')], stop_reason="tool_use"),
    ...     ResponseScript(text="2 + 3 = 5"),
    ... ])
    >>> with ProviderEmulator(responder=conversation) as emu:  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rxstream.events import StreamEvent
from rxstream.providers._tool_wire import CONVERSE_NO_TOOLS_TEXT
from rxstream.testing.scripts import ResponseScript

__all__ = [
    "RequestToolResult",
    "ToolConversation",
    "check_loop_grammar",
    "offered_tools",
    "request_tool_results",
    "tools_disabled",
]


@dataclass(frozen=True)
class RequestToolResult:
    """One tool result found in a request body.

    Attributes:
        tool_call_id: The call id it answers (``tool_use_id``, ``tool_call_id``, ``call_id``,
            ``toolUseId``).
        output: Its text.
        is_error: Whether it was marked as an error (Anthropic ``is_error``, Converse
            ``status: "error"``; always False for OpenAI, which has no such flag).
    """

    tool_call_id: str
    output: str
    is_error: bool


def _messages(body: dict[str, Any], key: str = "messages") -> list[dict[str, Any]]:
    value = body.get(key)
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def request_tool_results(provider: str, body: dict[str, Any]) -> list[RequestToolResult]:
    """The tool results a request carries, oldest first.

    Args:
        provider: The emulated route (``anthropic``, ``openai``, ``openai-responses``,
            ``bedrock``, ``bedrock-invoke``).
        body: The parsed JSON request body.
    """
    out: list[RequestToolResult] = []
    if provider in ("anthropic", "bedrock-invoke"):
        for m in _messages(body):
            for b in m.get("content") or []:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    out.append(
                        RequestToolResult(
                            str(b.get("tool_use_id")), _text_of(b.get("content")), bool(b.get("is_error"))
                        )
                    )
    elif provider == "openai":
        for m in _messages(body):
            if m.get("role") == "tool":
                out.append(RequestToolResult(str(m.get("tool_call_id")), _text_of(m.get("content")), False))
    elif provider == "openai-responses":
        for item in _messages(body, "input"):
            if item.get("type") == "function_call_output":
                out.append(RequestToolResult(str(item.get("call_id")), _text_of(item.get("output")), False))
    elif provider == "bedrock":
        for m in _messages(body):
            for b in m.get("content") or []:
                result = b.get("toolResult") if isinstance(b, dict) else None
                if isinstance(result, dict):
                    out.append(
                        RequestToolResult(
                            str(result.get("toolUseId")),
                            _text_of(result.get("content")),
                            result.get("status") == "error",
                        )
                    )
    return out


def offered_tools(provider: str, body: dict[str, Any]) -> list[str]:
    """The names of the tools a request offers (empty when none)."""
    if provider == "bedrock":
        config = body.get("toolConfig") or {}
        return [str(t.get("toolSpec", {}).get("name")) for t in config.get("tools") or []]
    names: list[str] = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict):
            continue
        function = t.get("function")
        names.append(str(function.get("name") if isinstance(function, dict) else t.get("name")))
    return names


def tools_disabled(provider: str, body: dict[str, Any]) -> bool:
    """Whether the request forbids tool use this turn (``tool_choice`` none, or no tools).

    Bedrock Converse has no "none" choice: `rxstream.tool_loop` asks in a text block
    (`rxstream.providers._tool_wire.CONVERSE_NO_TOOLS_TEXT`), which this detects.
    """
    if not offered_tools(provider, body):
        return True
    if provider == "bedrock":
        messages = _messages(body)
        return bool(messages) and CONVERSE_NO_TOOLS_TEXT in _text_of(messages[-1].get("content"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return choice.get("type") == "none"
    return choice == "none"


class ToolConversation:
    """A responder playing scripted turns, chosen by the tool results the request carries.

    Turn ``k`` is served once the request carries as many tool results as turns ``0..k-1``
    made tool calls (so a turn with two parallel calls is followed by the turn after it once
    both results are back). Past the last turn, the last one is repeated.

    Args:
        turns: The scripted model turns, in order.
        when_tools_disabled: The turn to play when the request forbids tools
            (`tools_disabled`); default: the chosen turn without its tool calls.

    Attributes:
        served: ``(provider, turn index)`` per request, in order (thread-safe).
    """

    def __init__(
        self, turns: Sequence[ResponseScript], *, when_tools_disabled: ResponseScript | None = None
    ) -> None:
        if not turns:
            raise ValueError("ToolConversation needs at least one turn")
        self.turns = list(turns)
        self.when_tools_disabled = when_tools_disabled
        self.served: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def pick(self, provider: str, body: dict[str, Any]) -> int:
        """The index of the turn that answers this request."""
        seen = len(request_tool_results(provider, body))
        made = 0
        for index, turn in enumerate(self.turns):
            if seen <= made:
                return index
            made += len(turn.tool_calls)
        return len(self.turns) - 1

    def __call__(self, provider: str, body: dict[str, Any]) -> ResponseScript:
        """Return the script for this request (see the class docstring)."""
        index = self.pick(provider, body)
        with self._lock:
            self.served.append((provider, index))
        script = self.turns[index]
        if tools_disabled(provider, body) and script.tool_calls:
            if self.when_tools_disabled is not None:
                return self.when_tools_disabled
            return script.model_copy(update={"tool_calls": [], "stop_reason": "end_turn"})
        return script


def check_loop_grammar(events: Sequence[StreamEvent]) -> None:
    """Assert the grammar of a tool loop's events (`rxstream.tool_loop`).

    ``IterationStart`` … ``IterationEnd`` nested and numbered 1, 2, ...; one model turn
    (``StreamStart`` … ``StreamEnd``) inside each; every ``ToolResult`` after the
    ``ToolCallEnd`` with its id, in its iteration; ``seq`` 0..n and one ``stream_id``; the
    last event an ``IterationEnd``.

    Raises:
        AssertionError: the first violation.
    """
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.stream_id for e in events}) == 1
    assert events[-1].type == "iteration_end"
    iteration = 0
    state = "between"
    ended_calls: set[str] = set()
    for e in events:
        if e.type == "iteration_start":
            assert state == "between"
            iteration += 1
            assert e.iteration == iteration
            state, ended_calls = "started", set()
        elif e.type == "stream_start":
            assert state == "started"
            state = "turn"
        elif e.type == "stream_end":
            assert state == "turn"
            state = "tools"
        elif e.type == "tool_result":
            assert state == "tools" and e.iteration == iteration
            assert e.tool_call_id in ended_calls
        elif e.type == "iteration_end":
            assert state == "tools" and e.iteration == iteration
            state = "between"
        else:
            assert state == "turn", e
            if e.type == "tool_call_end":
                ended_calls.add(e.id)

"""How each wire API carries tools: schemas in the request, the assistant turn, tool results.

The three tool hooks of each `rxstream.providers.ProviderSpec` are the plain functions of
this module (the registry imports them):

* ``render_tools(tools) -> dict``: the request parameters that offer the tools;
* ``render_tool_results(results) -> list``: the tool results as history items;
* ``disable_tools(params) -> dict``: the same request with tool use turned off.

`ToolWire` (one per provider, `tool_wire(name)`) adds the request plumbing the loop needs:
``history(params)`` / ``with_history(params, history)`` (``messages``, ``input``, or the
``messages`` of a Bedrock InvokeModel ``body``) and ``with_tools(params, tools)``. The
assistant turn is the spec's ``render_assistant``. `rxstream.tool_loop` uses only these and
never compares provider names.

Sources, per wire API:

* Anthropic Messages (and Anthropic bodies on Bedrock InvokeModel): "Tool use with Claude" →
  "Specifying client tools" (``tools=[{name, description, input_schema}]``), "Handling tool
  use and tool result content blocks" (a user message of ``tool_result`` blocks with
  ``tool_use_id``, ``content`` and ``is_error``), "Forcing tool use" (``tool_choice`` ``{"type":
  "none"}``).
* OpenAI Chat Completions: "Function calling" guide (``tools=[{"type": "function",
  "function": {name, description, parameters}}]``; one ``{"role": "tool", "tool_call_id",
  "content"}`` message per result; ``tool_choice="none"``).
* OpenAI Responses: "Function calling" guide, Responses tab (``tools=[{"type": "function",
  name, description, parameters, strict}]``; ``function_call`` and ``function_call_output``
  input items with ``call_id``; ``tool_choice="none"``).
* Bedrock Converse: "Call a tool with the Amazon Bedrock Converse API" and the API reference
  of ``ToolSpecification`` / ``ToolResultBlock`` (``toolConfig.tools[].toolSpec`` with
  ``inputSchema.json``; a user message of ``toolResult`` blocks with ``toolUseId``,
  ``content=[{"text"}]`` and ``status`` ``"success"``/``"error"``). ``ToolChoice`` has only
  ``auto``/``any``/``tool`` and ``toolConfig`` must stay defined while the history holds
  ``toolUse`` blocks, so "no tools this turn" is a text block asking for the answer, added
  to the last user message of that request only (`CONVERSE_NO_TOOLS_TEXT`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rxstream.errors import ConfigurationError
from rxstream.events import ToolResult

__all__ = [
    "CONVERSE_NO_TOOLS_TEXT",
    "ToolLike",
    "ToolWire",
    "anthropic_disable_tools",
    "anthropic_render_tool_results",
    "anthropic_render_tools",
    "chat_render_tool_results",
    "chat_render_tools",
    "converse_disable_tools",
    "converse_render_tool_results",
    "converse_render_tools",
    "invoke_disable_tools",
    "openai_disable_tools",
    "responses_render_tool_results",
    "responses_render_tools",
    "tool_wire",
]

CONVERSE_NO_TOOLS_TEXT = (
    "Tool use is disabled for this turn: do not call any tool, answer now with what you have."
)
"""The text block that asks a Converse model for its final answer (Converse has no "none")."""


class ToolLike(Protocol):
    """What a renderer needs of a tool (`rxstream.tools.Tool` has it)."""

    @property
    def name(self) -> str:
        """Tool name."""
        ...

    @property
    def description(self) -> str:
        """What the tool does, for the model."""
        ...

    @property
    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the arguments object."""
        ...


@dataclass(frozen=True)
class ToolWire:
    """The request plumbing of one wire API for the tool loop (see the module docstring).

    Attributes:
        name: Provider name (`rxstream.events.ProviderName`).
        history_key: The parameter holding the conversation (for error messages).
        tool_params: Request parameters that offer tools (refused in the user's params).
    """

    name: str
    history_key: str
    render_tools: Callable[[Sequence[ToolLike]], dict[str, Any]]
    history: Callable[[dict[str, Any]], list[Any]]
    with_history: Callable[[dict[str, Any], list[Any]], dict[str, Any]]
    tool_params: tuple[str, ...]

    def with_tools(self, params: dict[str, Any], tools: Sequence[ToolLike]) -> dict[str, Any]:
        """Return ``params`` with the rendered tool schemas added.

        Raises:
            ConfigurationError: ``params`` already offer tools (pass them as ``tools=``).
        """
        target = self._request_body(params)
        clash = [key for key in self.tool_params if key in target]
        if clash:
            raise ConfigurationError(
                f"tool_loop renders the tools itself: remove {', '.join(clash)} from the parameters "
                "and pass rxstream Tools as tools="
            )
        if self.name != "bedrock-invoke":
            return {**params, **self.render_tools(tools)}
        return {**params, "body": {**target, **self.render_tools(tools)}}

    def _request_body(self, params: dict[str, Any]) -> dict[str, Any]:
        return _invoke_body(params) if self.name == "bedrock-invoke" else params


# -- Anthropic Messages (also the body of Bedrock InvokeModel) ------------------------------


def anthropic_render_tools(tools: Sequence[ToolLike]) -> dict[str, Any]:
    """``{"tools": [{name, description, input_schema}]}`` (Anthropic "Specifying client tools")."""
    return {
        "tools": [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools
        ]
    }


def anthropic_render_tool_results(results: Sequence[ToolResult]) -> list[dict[str, Any]]:
    """One user message of ``tool_result`` blocks, in call order (``is_error`` on failures)."""
    blocks: list[dict[str, Any]] = []
    for r in results:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": r.tool_call_id, "content": r.output}
        if r.is_error:
            block["is_error"] = True
        blocks.append(block)
    return [{"role": "user", "content": blocks}]


def anthropic_disable_tools(params: dict[str, Any]) -> dict[str, Any]:
    """``tool_choice={"type": "none"}``: the tools stay defined, the model may not call them."""
    return {**params, "tool_choice": {"type": "none"}}


def _messages(params: dict[str, Any]) -> list[Any]:
    messages = params.get("messages")
    if not isinstance(messages, list):
        raise ConfigurationError("tool_loop needs the starting history as a list: messages=[...]")
    return list(messages)


def _with_messages(params: dict[str, Any], history: list[Any]) -> dict[str, Any]:
    return {**params, "messages": history}


# -- Bedrock InvokeModel with an Anthropic body ------------------------------------------------


def _invoke_body(params: dict[str, Any]) -> dict[str, Any]:
    body = params.get("body")
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise ConfigurationError("tool_loop: the InvokeModel body is not JSON") from exc
    if not isinstance(body, dict):
        raise ConfigurationError("tool_loop with from_bedrock_invoke needs body= (a dict or JSON text)")
    return body


def invoke_history(params: dict[str, Any]) -> list[Any]:
    """The ``messages`` of the Anthropic body of an InvokeModel request."""
    return _messages(_invoke_body(params))


def invoke_with_history(params: dict[str, Any], history: list[Any]) -> dict[str, Any]:
    """The InvokeModel request with its body's ``messages`` replaced (body as a dict)."""
    return {**params, "body": {**_invoke_body(params), "messages": history}}


def invoke_disable_tools(params: dict[str, Any]) -> dict[str, Any]:
    """``tool_choice={"type": "none"}`` in the body (Anthropic Messages body on Bedrock)."""
    return {**params, "body": anthropic_disable_tools(_invoke_body(params))}


# -- OpenAI Chat Completions ------------------------------------------------------------------


def chat_render_tools(tools: Sequence[ToolLike]) -> dict[str, Any]:
    """``{"tools": [{"type": "function", "function": {name, description, parameters}}]}``."""
    return {
        "tools": [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
            }
            for t in tools
        ]
    }


def chat_render_tool_results(results: Sequence[ToolResult]) -> list[dict[str, Any]]:
    """One ``{"role": "tool", "tool_call_id", "content"}`` message per result, in call order."""
    return [{"role": "tool", "tool_call_id": r.tool_call_id, "content": r.output} for r in results]


def openai_disable_tools(params: dict[str, Any]) -> dict[str, Any]:
    """``tool_choice="none"`` (Chat Completions and Responses)."""
    return {**params, "tool_choice": "none"}


# -- OpenAI Responses ---------------------------------------------------------------------------


def responses_render_tools(tools: Sequence[ToolLike]) -> dict[str, Any]:
    """``{"tools": [{"type": "function", name, description, parameters, "strict": False}]}``.

    ``strict`` is sent as ``False``: strict mode needs every property required and
    ``additionalProperties: false``, which a general JSON Schema does not promise.
    """
    return {
        "tools": [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
                "strict": False,
            }
            for t in tools
        ]
    }


def responses_render_tool_results(results: Sequence[ToolResult]) -> list[dict[str, Any]]:
    """One ``{"type": "function_call_output", "call_id", "output"}`` item per result."""
    return [{"type": "function_call_output", "call_id": r.tool_call_id, "output": r.output} for r in results]


def responses_history(params: dict[str, Any]) -> list[Any]:
    """The ``input`` items (a plain string becomes one user message)."""
    value = params.get("input")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise ConfigurationError("tool_loop needs the starting history: input='...' or input=[...]")
    return list(value)


def responses_with_history(params: dict[str, Any], history: list[Any]) -> dict[str, Any]:
    """The request with ``input`` replaced."""
    return {**params, "input": history}


# -- Bedrock Converse ----------------------------------------------------------------------------


def converse_render_tools(tools: Sequence[ToolLike]) -> dict[str, Any]:
    """``{"toolConfig": {"tools": [{"toolSpec": {name, description, inputSchema: {json}}}]}}``."""
    return {
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": {"json": t.input_schema},
                    }
                }
                for t in tools
            ]
        }
    }


def converse_render_tool_results(results: Sequence[ToolResult]) -> list[dict[str, Any]]:
    """One user message of ``toolResult`` blocks (``status`` ``success``/``error``)."""
    return [
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": r.tool_call_id,
                        "content": [{"text": r.output}],
                        "status": "error" if r.is_error else "success",
                    }
                }
                for r in results
            ],
        }
    ]


def converse_disable_tools(params: dict[str, Any]) -> dict[str, Any]:
    """Ask for the answer in text: `CONVERSE_NO_TOOLS_TEXT` joins the last user message.

    Converse has no ``toolChoice`` "none" and rejects ``toolUse`` history without
    ``toolConfig``, so the tools stay offered for this one request.
    """
    messages = _messages(params)
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "user":
        last = messages[-1]
        messages[-1] = {**last, "content": [*last.get("content", []), {"text": CONVERSE_NO_TOOLS_TEXT}]}
    else:
        messages.append({"role": "user", "content": [{"text": CONVERSE_NO_TOOLS_TEXT}]})
    return {**params, "messages": messages}


_WIRES: dict[str, ToolWire] = {
    w.name: w
    for w in (
        ToolWire(
            name="anthropic",
            history_key="messages",
            render_tools=anthropic_render_tools,
            history=_messages,
            with_history=_with_messages,
            tool_params=("tools", "tool_choice"),
        ),
        ToolWire(
            name="openai",
            history_key="messages",
            render_tools=chat_render_tools,
            history=_messages,
            with_history=_with_messages,
            tool_params=("tools", "tool_choice", "functions"),
        ),
        ToolWire(
            name="openai-responses",
            history_key="input",
            render_tools=responses_render_tools,
            history=responses_history,
            with_history=responses_with_history,
            tool_params=("tools", "tool_choice"),
        ),
        ToolWire(
            name="bedrock",
            history_key="messages",
            render_tools=converse_render_tools,
            history=_messages,
            with_history=_with_messages,
            tool_params=("toolConfig",),
        ),
        ToolWire(
            name="bedrock-invoke",
            history_key="body.messages",
            render_tools=anthropic_render_tools,
            history=invoke_history,
            with_history=invoke_with_history,
            tool_params=("tools", "tool_choice"),
        ),
    )
}


def tool_wire(name: str) -> ToolWire:
    """The `ToolWire` of a provider by name (``"anthropic"``, ``"openai"``, ...).

    Raises:
        ConfigurationError: unknown name.
    """
    wire = _WIRES.get(name)
    if wire is None:
        raise ConfigurationError(f"no tool wire named {name!r}")
    return wire

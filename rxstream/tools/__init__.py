"""The agent tool loop: tools from Python functions and MCP servers, iterations over a source.

* `Tool`, `tool`: a tool from a sync or async function (JSON Schema from pydantic, arguments
  validated before the call).
* `mcp_tools(session)`: the tools of an MCP server (``mcp.ClientSession`` or
  ``fastmcp.Client``; extra ``rxstream[mcp]``).
* `tool_loop(entry, client, *, tools, ...)`: model turns and tool calls as one cold
  ``Observable[StreamEvent]``; ``rso.loop_result()`` gives the `ToolLoopResult`.
"""

from __future__ import annotations

from rxstream.operators._loop_result import ToolLoopResult
from rxstream.tools.loop import TurnHook, tool_loop
from rxstream.tools.tool import Tool, mcp_tools, render_output, tool

__all__ = ["Tool", "ToolLoopResult", "TurnHook", "mcp_tools", "render_output", "tool", "tool_loop"]

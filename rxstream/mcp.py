"""Stream answers to MCP clients (``rxs.mcp``): progress notifications, heartbeats, cancellation.

Public home of `rxstream.sinks.mcp` (extra ``rxstream[mcp]``: fastmcp). See ``docs/mcp.md``.

* `stream_to_context(stream, ctx, *, interval=0.25, heartbeat=5.0, mode="delta")` → `Response`
* `structured_to_context(stream, ctx, Model, *, source="text")` → `FinalOutput`
* `streaming_tool(server, name=..., description=..., output=None)`: a decorator that registers
  a function returning an event stream as a streaming FastMCP tool.
"""

from __future__ import annotations

from rxstream.sinks.mcp import (
    ProgressReporter,
    StructuredProgressReporter,
    stream_to_context,
    streaming_tool,
    structured_to_context,
)

__all__ = [
    "ProgressReporter",
    "StructuredProgressReporter",
    "stream_to_context",
    "streaming_tool",
    "structured_to_context",
]

"""A small MCP server on stdio (mcp 2.x `MCPServer`), started as a subprocess by the tests."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("rxstream-test-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def fail(reason: str) -> str:
    """Always fails (a ToolError's message reaches the client; other exceptions are masked)."""
    raise ToolError(reason)


if __name__ == "__main__":
    server.run("stdio")

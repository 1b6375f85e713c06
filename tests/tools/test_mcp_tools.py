"""MCP tools in the tool loop: an in-memory FastMCP server and a real stdio subprocess server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import anthropic
import fastmcp
import fastmcp.exceptions
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

import rxstream as rxs
from rxstream import operators as rso
from rxstream.operators import ToolLoopResult
from rxstream.testing import (
    ProviderEmulator,
    ResponseScript,
    ScriptedToolCall,
    ToolConversation,
    request_tool_results,
)

TURNS = [
    ResponseScript(
        tool_calls=[
            ScriptedToolCall(id="toolu_add", name="add", arguments='{"a": 2, "b": 40}'),
            ScriptedToolCall(id="toolu_fail", name="fail", arguments='{"reason": "disk on fire"}'),
        ],
        stop_reason="tool_use",
    ),
    ResponseScript(text="2 + 40 = 42; the other tool failed."),
]


async def run_loop(emu: ProviderEmulator, tools: list[rxs.Tool]) -> ToolLoopResult:
    client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=emu.anthropic_base_url, max_retries=0)
    try:
        stream = rxs.tool_loop(
            rxs.from_anthropic,
            client,
            tools=tools,
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "add 2 and 40"}],
        )
        done: asyncio.Future[ToolLoopResult] = asyncio.get_running_loop().create_future()
        stream.pipe(rso.loop_result()).subscribe(done.set_result, done.set_exception)
        return await asyncio.wait_for(done, 20)
    finally:
        await client.close()


def check(result: ToolLoopResult, emu: ProviderEmulator) -> None:
    by_id = {r.tool_call_id: r for r in result.tool_results}
    assert by_id["toolu_add"].output == "42" and not by_id["toolu_add"].is_error
    assert by_id["toolu_fail"].is_error and "disk on fire" in by_id["toolu_fail"].output
    sent = request_tool_results("anthropic", emu.requests[-1].body)
    assert [(r.tool_call_id, r.is_error) for r in sent] == [("toolu_add", False), ("toolu_fail", True)]
    first_tools = {t["name"]: t for t in emu.requests[-2].body["tools"]}
    assert first_tools["add"]["input_schema"]["properties"].keys() == {"a", "b"}
    assert first_tools["add"]["description"] == "Add two integers."
    assert result.text == TURNS[1].text


async def test_in_memory_fastmcp_server() -> None:
    server = fastmcp.FastMCP("calc")

    @server.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool
    def fail(reason: str) -> str:
        """Always fails."""
        raise fastmcp.exceptions.ToolError(reason)  # FastMCP masks other exceptions' messages

    with ProviderEmulator(responder=ToolConversation(TURNS)) as emu:
        async with fastmcp.Client(server) as client:
            tools = await rxs.mcp_tools(client)
            assert sorted(t.name for t in tools) == ["add", "fail"]
            assert all(t.is_async for t in tools)
            result = await run_loop(emu, tools)
        check(result, emu)


async def test_stdio_subprocess_server() -> None:
    script = Path(__file__).with_name("mcp_stdio_server.py")
    params = StdioServerParameters(command=sys.executable, args=[str(script)])
    with ProviderEmulator(responder=ToolConversation(TURNS)) as emu:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = await rxs.mcp_tools(session)
            assert sorted(t.name for t in tools) == ["add", "fail"]
            result = await run_loop(emu, tools)
        check(result, emu)


async def test_mcp_tools_rejects_other_objects() -> None:
    with pytest.raises(rxs.errors.ConfigurationError, match="ClientSession"):
        await rxs.mcp_tools(object())

"""MCP sink: progress notifications through a real FastMCP server and client (in memory)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest
from fastmcp import Client, Context, FastMCP
from fastmcp.exceptions import ToolError
from pydantic import BaseModel
from reactivex import Observable

import rxstream as rxs
from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent, TextDelta, ThinkingDelta, ToolCallStart
from rxstream.mcp import ProgressReporter, stream_to_context, streaming_tool
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall

WORDS = " ".join(f"word{i}" for i in range(2000))


class Progress:
    """A progress handler that records (arrival time, progress, message) in arrival order."""

    def __init__(self) -> None:
        self.items: list[tuple[float, float, str]] = []
        self.first = asyncio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.items.append((time.monotonic(), progress, message or ""))
        self.first.set()

    @property
    def messages(self) -> list[str]:
        return [m for _, _, m in self.items]

    def text(self) -> str:
        return "".join(m for m in self.messages if not m.startswith("waiting for first token"))


@pytest.fixture
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: ProviderEmulator) -> Iterator[anthropic.Anthropic]:
    sdk = anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="sk-test", max_retries=0)
    yield sdk
    sdk.close()


def ask_stream(client: anthropic.Anthropic, prompt: str) -> Observable[StreamEvent]:
    return rxs.from_anthropic(
        client, model="m", max_tokens=10_000, messages=[{"role": "user", "content": prompt}]
    )


def text_server(client: anthropic.Anthropic, **options: Any) -> FastMCP:
    server = FastMCP("test")

    @streaming_tool(server, description="Ask the model", **options)
    def ask(prompt: str) -> Observable[StreamEvent]:
        return ask_stream(client, prompt)

    return server


async def test_fast_stream_progress_joins_to_the_answer_rate_limited(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.enqueue(ResponseScript(text=WORDS, event_delay=0.0005))
    progress = Progress()
    interval = 0.1
    async with Client(text_server(client, interval=interval), progress_handler=progress) as mcp:
        started = time.monotonic()
        result = await mcp.call_tool("ask", {"prompt": "hi"})
        elapsed = time.monotonic() - started
    assert result.data == WORDS
    assert progress.text() == WORDS  # in order, nothing dropped
    values = [p for _, p, _ in progress.items]
    assert all(b > a for a, b in itertools.pairwise(values))  # strictly increasing
    assert values[-1] == len(WORDS)  # progress = characters so far
    assert len(progress.items) >= 2
    assert len(progress.items) <= elapsed / interval + 2  # at most one per interval
    assert len(progress.items) < 2000 / 10  # coalesced: far fewer than the text deltas


async def test_snapshot_mode_sends_the_whole_text_so_far(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.enqueue(ResponseScript(text=WORDS[:3000], event_delay=0.001))
    progress = Progress()
    async with Client(text_server(client, interval=0.05, mode="snapshot"), progress_handler=progress) as mcp:
        result = await mcp.call_tool("ask", {"prompt": "hi"})
    assert progress.messages[-1] == result.data == WORDS[:3000]
    assert all(WORDS.startswith(m) for m in progress.messages)


async def test_heartbeats_before_a_delayed_first_token(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.enqueue(ResponseScript(text="late answer", first_event_delay=1.5))
    progress = Progress()
    async with Client(text_server(client, interval=0.05, heartbeat=0.2), progress_handler=progress) as mcp:
        result = await mcp.call_tool("ask", {"prompt": "hi"})
    assert result.data == "late answer"
    beats = [m for m in progress.messages if m.startswith("waiting for first token, ")]
    assert len(beats) >= 4  # ~1.5 s / 0.2 s
    assert progress.messages[: len(beats)] == beats  # all before the text
    waited = [float(m.removeprefix("waiting for first token, ").removesuffix(" s")) for m in beats]
    assert waited == sorted(waited) and waited[0] >= 0.2
    assert progress.text() == "late answer"
    values = [p for _, p, _ in progress.items]
    assert all(b > a for a, b in itertools.pairwise(values))


async def test_client_cancellation_closes_the_provider_connection(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.enqueue(ResponseScript(text=WORDS, fault=Fault(kind="stall", after_events=20)))
    progress = Progress()
    async with Client(text_server(client, interval=0.05), progress_handler=progress) as mcp:
        call = asyncio.create_task(mcp.call_tool("ask", {"prompt": "hi"}))
        await asyncio.wait_for(progress.first.wait(), 10)
        call.cancel()  # the client abandons the request: notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await call
        record = await asyncio.to_thread(emu.wait_for_disconnect, -1, 10.0)
    assert record.client_disconnected and not record.completed


async def test_no_progress_token_still_returns_the_answer(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.enqueue(ResponseScript(text="quiet answer", first_event_delay=0.3))
    progress = Progress()
    async with Client(text_server(client, interval=0.05, heartbeat=0.1), progress_handler=progress) as mcp:
        # The SDK session sends no ``_meta.progressToken`` without a progress callback.
        raw = await mcp.session.call_tool("ask", {"prompt": "hi"})
    assert raw.structured_content == {"result": "quiet answer"}
    assert progress.items == []


class Recipe(BaseModel):
    title: str = ""
    steps: list[str] = []


async def test_structured_tool_sends_partial_objects_and_structured_content(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    recipe = Recipe(title="Tea", steps=[f"step {i}: " + "stir " * 20 for i in range(20)])
    emu.enqueue(
        ResponseScript(text=recipe.model_dump_json(), chunking="chars", chunk_size=9, event_delay=0.001)
    )
    server = FastMCP("test")

    @streaming_tool(server, output=Recipe, interval=0.02)
    def make_recipe(dish: str) -> Observable[StreamEvent]:
        """Write a recipe as JSON."""
        return ask_stream(client, dish)

    progress = Progress()
    async with Client(server, progress_handler=progress) as mcp:
        (tool,) = await mcp.list_tools()
        assert tool.output_schema is not None and "steps" in tool.output_schema["properties"]
        result = await mcp.call_tool("make_recipe", {"dish": "tea"})
    assert result.structured_content == recipe.model_dump()
    partials = [json.loads(m) for m in progress.messages]
    assert len(partials) >= 2
    assert all(len(a.get("steps", [])) <= len(b.get("steps", [])) for a, b in itertools.pairwise(partials))


async def test_structured_tool_from_a_tool_call_and_invalid_output(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    arguments = Recipe(title="Soup", steps=["chop", "boil"]).model_dump_json()
    emu.enqueue(
        ResponseScript(
            tool_calls=[ScriptedToolCall(id="toolu_1", name="record", arguments=arguments, fragment_size=4)],
            stop_reason="tool_use",
        ),
        ResponseScript(text='Sure! {"title": "Soup"}'),
    )
    server = FastMCP("test")

    @streaming_tool(server, output=Recipe, source="tool:record", interval=0.01)
    def via_tool(dish: str) -> Observable[StreamEvent]:
        return ask_stream(client, dish)

    @streaming_tool(server, name="via_text", output=Recipe)
    def via_text(dish: str) -> Observable[StreamEvent]:
        return ask_stream(client, dish)

    async with Client(server) as mcp:
        result = await mcp.call_tool("via_tool", {"dish": "soup"})
        assert result.structured_content == {"title": "Soup", "steps": ["chop", "boil"]}
        with pytest.raises(
            ToolError, match=r"OutputValidationError[\s\S]*json_invalid|OutputValidationError"
        ):
            await mcp.call_tool("via_text", {"dish": "soup"})


async def test_stream_error_is_a_tool_error_with_the_partial_answer(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.enqueue(ResponseScript(text=WORDS[:200], fault=Fault(kind="error_event", after_events=8)))
    async with Client(text_server(client, interval=0.05)) as mcp:
        with pytest.raises(ToolError, match=r"ProviderError[\s\S]*partial answer \(\d+ characters\):\nword0"):
            await mcp.call_tool("ask", {"prompt": "hi"})


async def test_async_factories_and_direct_use_with_a_context(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.enqueue(ResponseScript(text="from async"), ResponseScript(text="direct"))
    server = FastMCP("test")

    @streaming_tool(server, name="later")
    async def build(prompt: str) -> Observable[StreamEvent]:
        await asyncio.sleep(0)
        return ask_stream(client, prompt)

    @server.tool
    async def direct(prompt: str, ctx: Context) -> str:
        response = await stream_to_context(ask_stream(client, prompt), ctx, interval=0.01)
        return response.text

    async with Client(server) as mcp:
        assert (await mcp.call_tool("later", {"prompt": "x"})).data == "from async"
        assert (await mcp.call_tool("direct", {"prompt": "x"})).data == "direct"


def test_misuse_is_a_configuration_error() -> None:
    server = FastMCP("test")
    with pytest.raises(ConfigurationError, match="interval"):
        streaming_tool(server, interval=0)
    with pytest.raises(ConfigurationError, match="mode"):
        streaming_tool(server, mode="stream")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="source"):
        streaming_tool(server, output=Recipe, source="json")
    with pytest.raises(ConfigurationError, match="'ctx'"):

        @streaming_tool(server)
        def bad(prompt: str, ctx: str) -> Observable[StreamEvent]:
            raise AssertionError


def ev(factory: Callable[..., StreamEvent], **fields: Any) -> StreamEvent:
    return factory(stream_id="s", seq=0, **fields)


def test_reporter_notes_never_replace_text_and_progress_increases() -> None:
    reporter = ProgressReporter()
    assert reporter.heartbeat(1.04) == (0.001, "waiting for first token, 1.0 s")
    reporter.add(ev(ThinkingDelta, text="hmm"))
    assert reporter.started and reporter.take() == (3, "thinking… (3 characters)")
    reporter.add(ev(TextDelta, text="Hi"))
    reporter.add(ev(ToolCallStart, index=0, id="t", name="lookup"))
    assert reporter.take() == (5, "Hi")  # text first; the note is dropped with it
    assert not reporter.has_pending()
    reporter.add(ev(ToolCallStart, index=1, id="u", name="fetch"))
    assert reporter.take() == (5.001, "calling tool fetch")

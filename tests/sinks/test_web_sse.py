"""rxstream.web: SSE out (to_sse / sse_response) and in (from_sse), against the emulator over HTTP."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx2
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse
from starlette.routing import Route

import rxstream as rxs
from rxstream.errors import ConfigurationError, ProviderError, StreamInterruptedError
from rxstream.events import (
    IterationEnd,
    IterationStart,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallStart,
    ToolResult,
)
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall, ToolConversation

RICH = ResponseScript(
    thinking="Let me think about it.",
    text="Hello there, dear world.",
    tool_calls=[
        ScriptedToolCall(id="toolu_01", name="lookup", arguments='{"q": "rx streams"}', fragment_size=5)
    ],
    stop_reason="tool_use",
)


def app_for(
    make_stream: Callable[[], Observable[StreamEvent]],
    protocol: rxs.web.Protocol = "rxstream",
    ping: float = 15.0,
) -> Starlette:
    async def events(request: Request) -> StarletteResponse:
        response: StarletteResponse = rxs.web.sse_response(make_stream(), protocol=protocol, ping=ping)
        return response

    return Starlette(routes=[Route("/events", events, methods=["GET", "POST"])])


_OPEN_CLIENTS: list[anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close the SDK clients a test's server made (their pooled keep-alive sockets)."""
    yield
    while _OPEN_CLIENTS:
        _OPEN_CLIENTS.pop().close()


def anthropic_stream(emu: ProviderEmulator, sent: list[StreamEvent] | None = None) -> Observable[StreamEvent]:
    client = anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="sk-test")
    _OPEN_CLIENTS.append(client)
    stream = rxs.from_anthropic(
        client, model="emulator-1", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    if sent is not None:
        stream = stream.pipe(ops.do_action(sent.append))
    return stream


def collect(stream: Observable[StreamEvent]) -> tuple[list[StreamEvent], BaseException | None]:
    events: list[StreamEvent] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def on_error(exc: BaseException) -> None:
        failure.append(exc)
        done.set()

    sub = stream.subscribe(events.append, on_error, done.set)
    assert done.wait(20), "stream did not end"
    sub.dispose()
    return events, failure[0] if failure else None


def test_round_trip_events_out_equal_events_in(emulator: ProviderEmulator, serve_asgi: Any) -> None:
    emulator.enqueue(RICH)
    sent: list[StreamEvent] = []
    url = serve_asgi(app_for(lambda: anthropic_stream(emulator, sent)))
    received, error = collect(rxs.web.from_sse(url + "/events"))
    assert error is None
    assert received == sent
    assert {type(e).__name__ for e in received} >= {
        "StreamStart",
        "ThinkingDelta",
        "TextDelta",
        "ToolCallEnd",
    }
    final = rxs.web.from_sse(url + "/events")  # cold: a second subscription is a second request
    emulator.enqueue(ResponseScript(text="again"))
    assert final.pipe(rxs.operators.final()).run().text == "again"


def test_upstream_error_arrives_after_the_partial_text(emulator: ProviderEmulator, serve_asgi: Any) -> None:
    emulator.enqueue(
        ResponseScript(
            text="one two three four five six",
            fault=Fault(
                kind="error_event", after_events=6, error_type="overloaded_error", message="Overloaded"
            ),
        )
    )
    url = serve_asgi(app_for(lambda: anthropic_stream(emulator)))
    received, error = collect(rxs.web.from_sse(url + "/events"))
    assert isinstance(error, ProviderError)
    assert error.error_type == "overloaded_error" and error.retryable and error.in_stream
    text = "".join(e.text for e in received if isinstance(e, TextDelta))
    assert text and error.partial.text == text


def test_client_disconnect_disposes_the_upstream_stream(emulator: ProviderEmulator, serve_asgi: Any) -> None:
    emulator.enqueue(ResponseScript(text=" ".join(["word"] * 400), event_delay=0.02))
    url = serve_asgi(app_for(lambda: anthropic_stream(emulator)))
    first_text = threading.Event()
    events: list[StreamEvent] = []

    def on_next(event: StreamEvent) -> None:
        events.append(event)
        if isinstance(event, TextDelta):
            first_text.set()

    sub = rxs.web.from_sse(url + "/events").subscribe(on_next)
    assert first_text.wait(10)
    sub.dispose()
    record = emulator.wait_for_disconnect(timeout=10)
    assert record.client_disconnected and not record.completed
    assert record.events_written < 400


# --- the AI SDK UI message stream protocol, byte by byte ------------------------------------

# Keys each chunk type may carry: the strict zod schema `uiMessageChunkSchema` in
# vercel/ai packages/ai/src/ui-message-stream/ui-message-chunks.ts (required first).
AI_SDK_SCHEMA: dict[str, tuple[set[str], set[str]]] = {
    "start": (set(), {"messageId", "messageMetadata"}),
    "start-step": (set(), set()),
    "text-start": ({"id"}, {"providerMetadata"}),
    "text-delta": ({"id", "delta"}, {"providerMetadata"}),
    "text-end": ({"id"}, {"providerMetadata"}),
    "reasoning-start": ({"id"}, {"providerMetadata"}),
    "reasoning-delta": ({"id", "delta"}, {"providerMetadata"}),
    "reasoning-end": ({"id"}, {"providerMetadata"}),
    "tool-input-start": (
        {"toolCallId", "toolName"},
        {"providerExecuted", "providerMetadata", "dynamic", "title"},
    ),
    "tool-input-delta": ({"toolCallId", "inputTextDelta"}, set()),
    "tool-input-available": (
        {"toolCallId", "toolName", "input"},
        {"providerExecuted", "providerMetadata", "dynamic", "title"},
    ),
    "tool-output-available": (
        {"toolCallId", "output"},
        {"providerExecuted", "providerMetadata", "toolMetadata", "dynamic", "preliminary"},
    ),
    "tool-output-error": (
        {"toolCallId", "errorText"},
        {"providerExecuted", "providerMetadata", "toolMetadata", "dynamic"},
    ),
    "finish-step": (set(), set()),
    "finish": (set(), {"finishReason", "messageMetadata"}),
    "error": ({"errorText"}, set()),
}
FINISH_REASONS = {"stop", "length", "content-filter", "tool-calls", "error", "other"}
# The message grammar (Data Stream Protocol section of the AI SDK docs): one start, one
# step, blocks of start/delta*/end with one id each, tool input start/delta*/available; an
# error may cut a block short (as the AI SDK's own createUIMessageStream does), then [DONE].
GRAMMAR = re.compile(
    r"start start-step "
    r"((reasoning-start (reasoning-delta )+reasoning-end )|(text-start (text-delta )+text-end )"
    r"|(tool-input-start (tool-input-delta )*tool-input-available ))*"
    r"(finish-step finish "
    r"|(reasoning-start (reasoning-delta )*|text-start (text-delta )*"
    r"|tool-input-start (tool-input-delta )*)?error )"
    r"\[DONE\] $"
)
# A tool loop (AI SDK multi-step `streamText`, stream-text.ts): one start, then per model turn
# one step of content blocks followed by the tool outputs of that turn, one finish, [DONE].
_BLOCK = (
    r"(reasoning-start (reasoning-delta )+reasoning-end )|(text-start (text-delta )+text-end )"
    r"|(tool-input-start (tool-input-delta )*tool-input-available )"
)
LOOP_GRAMMAR = re.compile(
    rf"start (start-step ({_BLOCK})*(tool-output-available |tool-output-error )*finish-step )+"
    r"finish \[DONE\] $"
)


def ai_sdk_frames(url: str) -> tuple[httpx2.Headers, list[bytes]]:
    with httpx2.Client(timeout=20) as client, client.stream("POST", url + "/events") as resp:
        assert resp.status_code == 200
        body = resp.read()
        headers = resp.headers
    assert body.endswith(b"\n\n")
    return headers, body[:-2].split(b"\n\n")


def check_grammar(frames: list[bytes], grammar: re.Pattern[str] = GRAMMAR) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    tokens: list[str] = []
    for frame in frames:
        assert frame.startswith(b"data: ") and b"\n" not in frame and b"\r" not in frame, frame
        payload = frame[len(b"data: ") :]
        if payload == b"[DONE]":
            tokens.append("[DONE]")
            continue
        chunk = json.loads(payload)
        required, optional = AI_SDK_SCHEMA[chunk["type"]]
        keys = set(chunk) - {"type"}
        assert required <= keys <= required | optional, chunk
        chunks.append(chunk)
        tokens.append(chunk["type"])
    assert grammar.fullmatch(" ".join(tokens) + " "), tokens
    open_id: str | None = None  # deltas use the id of their start; ids are unique
    seen: set[str] = set()
    for chunk in chunks:
        kind = chunk["type"]
        if kind.endswith("-start") and "id" in chunk:
            assert chunk["id"] not in seen
            seen.add(open_id := chunk["id"])
        elif kind.endswith(("-delta", "-end")) and "id" in chunk:
            assert chunk["id"] == open_id
    return chunks


@pytest.mark.parametrize("async_client", [False, True])
def test_ai_sdk_protocol_bytes_follow_the_documented_grammar(
    emulator: ProviderEmulator, serve_asgi: Any, async_client: bool
) -> None:
    emulator.enqueue(RICH)

    def make() -> Observable[StreamEvent]:
        if not async_client:
            return anthropic_stream(emulator)
        # No keep-alive: the pooled connection would outlive the server's loop (ResourceWarning).
        http = httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0))
        client = anthropic.AsyncAnthropic(base_url=emulator.anthropic_base_url, api_key="k", http_client=http)
        return rxs.from_anthropic(
            client, model="m", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        )

    headers, frames = ai_sdk_frames(serve_asgi(app_for(make, protocol="ai-sdk")))
    assert headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert headers["content-type"].startswith("text/event-stream")
    chunks = check_grammar(frames)
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    reasoning = "".join(c["delta"] for c in chunks if c["type"] == "reasoning-delta")
    tool_input = "".join(c["inputTextDelta"] for c in chunks if c["type"] == "tool-input-delta")
    assert (text, reasoning, tool_input) == (RICH.text, RICH.thinking, RICH.tool_calls[0].arguments)
    available = [c for c in chunks if c["type"] == "tool-input-available"]
    assert available == [
        {
            "type": "tool-input-available",
            "toolCallId": "toolu_01",
            "toolName": "lookup",
            "input": {"q": "rx streams"},
        }
    ]
    assert chunks[-1] == {"type": "finish", "finishReason": "tool-calls"}
    assert frames[-1] == b"data: [DONE]"


def test_ai_sdk_error_chunk_follows_the_partial_text(emulator: ProviderEmulator, serve_asgi: Any) -> None:
    emulator.enqueue(
        ResponseScript(text="alpha beta gamma delta", fault=Fault(kind="error_event", after_events=5))
    )
    _, frames = ai_sdk_frames(serve_asgi(app_for(lambda: anthropic_stream(emulator), protocol="ai-sdk")))
    chunks = check_grammar(frames)
    assert chunks[-1]["type"] == "error" and chunks[-1]["errorText"].startswith("ProviderError: ")
    assert any(c["type"] == "text-delta" for c in chunks)
    assert frames[-1] == b"data: [DONE]"


def test_ping_comment_while_upstream_stalls(emulator: ProviderEmulator, serve_asgi: Any) -> None:
    emulator.enqueue(ResponseScript(text="a b c", fault=Fault(kind="stall", after_events=2)))
    url = serve_asgi(app_for(lambda: anthropic_stream(emulator), ping=0.05))
    with httpx2.Client(timeout=20) as client, client.stream("GET", url + "/events") as resp:
        seen = b""
        for chunk in resp.iter_bytes():
            seen += chunk
            if b"\n: ping\n\n" in seen:
                break
    assert seen.startswith(b"event: stream_start\ndata: ")
    assert emulator.wait_for_disconnect(timeout=10).client_disconnected


async def test_to_sse_rxstream_frames_and_error_frame() -> None:
    events: list[StreamEvent] = [
        ThinkingDelta(stream_id="s", seq=0, text="hm"),
        TextDelta(stream_id="s", seq=1, text="Hi <b>"),
        ToolCallStart(stream_id="s", seq=2, index=0, id="c1", name="f"),
    ]
    failure = StreamInterruptedError("connection dropped mid-stream", provider="anthropic")
    source: Observable[StreamEvent] = reactivex.concat(
        reactivex.from_iterable(events), reactivex.throw(failure)
    )
    body = b"".join([f async for f in rxs.web.to_sse(source, ping=None)])
    frames = [f + b"\n\n" for f in body[:-2].split(b"\n\n")]
    expected = b'{"stream_id":"s","seq":1,"provider_details":null,"type":"text_delta","text":"Hi <b>"}'
    assert frames[1] == b"event: text_delta\ndata: " + expected + b"\n\n"
    name, data = frames[-1].decode().split("\n")[:2]
    assert name == "event: error"
    payload = json.loads(data.removeprefix("data: "))
    assert payload["error"] == "StreamInterruptedError" and payload["retryable"] is True


async def test_ai_sdk_encoder_blocks_and_ids() -> None:
    events: list[StreamEvent] = [
        TextDelta(stream_id="s", seq=0, text="a"),
        ThinkingDelta(stream_id="s", seq=1, text="t"),
        TextDelta(stream_id="s", seq=2, text="b"),
    ]
    frames = [f async for f in rxs.web.to_sse(reactivex.from_iterable(events), protocol="ai-sdk", ping=None)]
    body = b"".join(frames)
    tokens = [(c["type"], c.get("id")) for c in (json.loads(f[6:]) for f in body[:-2].split(b"\n\n")[:-1])]
    assert tokens == [
        ("start", None),
        ("start-step", None),
        ("text-start", "text-0"),
        ("text-delta", "text-0"),
        ("text-end", "text-0"),
        ("reasoning-start", "reasoning-1"),
        ("reasoning-delta", "reasoning-1"),
        ("reasoning-end", "reasoning-1"),
        ("text-start", "text-2"),
        ("text-delta", "text-2"),
        ("text-end", "text-2"),  # completion without StreamEnd still closes the message
        ("finish-step", None),
        ("finish", None),
    ]
    assert body.endswith(b"data: [DONE]\n\n")


# --- the agent tool loop over SSE -------------------------------------------------------------


@rxs.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@rxs.tool
def divide(a: int, b: int) -> float:
    """Divide a by b."""
    return a / b


LOOP_TURNS = [
    ResponseScript(
        thinking="Two tools.",
        text="Let me compute.",
        tool_calls=[
            ScriptedToolCall(id="toolu_add", name="add", arguments='{"a": 2, "b": 40}', fragment_size=4),
            ScriptedToolCall(id="toolu_div", name="divide", arguments='{"a": 1, "b": 0}'),
        ],
        stop_reason="tool_use",
    ),
    ResponseScript(text="2 + 40 = 42; 1 / 0 failed."),
]


def tool_loop_stream(emu: ProviderEmulator, sent: list[StreamEvent] | None = None) -> Observable[StreamEvent]:
    client = anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="sk-test")
    _OPEN_CLIENTS.append(client)
    loop = rxs.tool_loop(
        rxs.from_anthropic,
        client,
        tools=[add, divide],
        model="emulator-1",
        max_tokens=100,
        messages=[{"role": "user", "content": "2 + 40 and 1 / 0?"}],
    )
    return loop if sent is None else loop.pipe(ops.do_action(sent.append))


def test_tool_loop_ai_sdk_steps_and_tool_outputs(serve_asgi: Any) -> None:
    with ProviderEmulator(responder=ToolConversation(LOOP_TURNS)) as emu:
        _, frames = ai_sdk_frames(serve_asgi(app_for(lambda: tool_loop_stream(emu), protocol="ai-sdk")))
    chunks = check_grammar(frames, LOOP_GRAMMAR)
    kinds = [c["type"] for c in chunks]
    assert kinds.count("start") == 1 and kinds.count("finish") == 1
    assert kinds.count("start-step") == kinds.count("finish-step") == 2  # one step per model turn
    assert chunks[-1] == {"type": "finish", "finishReason": "stop"}
    assert frames[-1] == b"data: [DONE]"
    # Every tool output answers a tool input of the same step, each call exactly once.
    step_inputs: set[str] = set()
    answered: list[str] = []
    for chunk in chunks:
        if chunk["type"] == "start-step":
            step_inputs = set()
        elif chunk["type"].startswith("tool-input-"):
            step_inputs.add(chunk["toolCallId"])
        elif chunk["type"].startswith("tool-output-"):
            assert chunk["toolCallId"] in step_inputs, chunk
            answered.append(chunk["toolCallId"])
    assert sorted(answered) == ["toolu_add", "toolu_div"]
    outputs = {c["toolCallId"]: c for c in chunks if c["type"].startswith("tool-output-")}
    assert outputs["toolu_add"] == {
        "type": "tool-output-available",
        "toolCallId": "toolu_add",
        "output": "42",
    }
    assert outputs["toolu_div"] == {
        "type": "tool-output-error",
        "toolCallId": "toolu_div",
        "errorText": "ZeroDivisionError: division by zero",
    }
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert text == LOOP_TURNS[0].text + LOOP_TURNS[1].text


def test_tool_loop_rxstream_round_trip_keeps_loop_events(serve_asgi: Any) -> None:
    sent: list[StreamEvent] = []
    with ProviderEmulator(responder=ToolConversation(LOOP_TURNS)) as emu:
        url = serve_asgi(app_for(lambda: tool_loop_stream(emu, sent)))
        received, error = collect(rxs.web.from_sse(url + "/events"))
    assert error is None
    assert received == sent
    loop_events = [e for e in received if isinstance(e, IterationStart | ToolResult | IterationEnd)]
    assert [e.type for e in loop_events] == [
        "iteration_start",
        "tool_result",
        "tool_result",
        "iteration_end",
        "iteration_start",
        "iteration_end",
    ]
    assert {e.tool_call_id: e.is_error for e in loop_events if isinstance(e, ToolResult)} == {
        "toolu_add": False,
        "toolu_div": True,
    }


async def test_ai_sdk_encoder_loop_without_tools_and_error_mid_loop() -> None:
    events: list[StreamEvent] = [
        IterationStart(stream_id="l", seq=0, iteration=1),
        StreamStart(stream_id="l", seq=1, provider="anthropic"),
        TextDelta(stream_id="l", seq=2, text="Hi"),
    ]
    source: Observable[StreamEvent] = reactivex.concat(
        reactivex.from_iterable(events), reactivex.throw(StreamInterruptedError("dropped", provider="x"))
    )
    body = b"".join([f async for f in rxs.web.to_sse(source, protocol="ai-sdk", ping=None)])
    kinds = [json.loads(f[6:])["type"] for f in body[:-2].split(b"\n\n")[:-1]]
    assert kinds == ["start", "start-step", "text-start", "text-delta", "error"]
    assert body.endswith(b"data: [DONE]\n\n")


def test_misuse_is_a_configuration_error() -> None:
    stream: Observable[StreamEvent] = reactivex.empty()
    with pytest.raises(ConfigurationError):
        rxs.web.to_sse("not a stream")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rxs.web.to_sse(stream, protocol="websocket")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rxs.web.to_sse(stream, ping=0)
    with pytest.raises(ConfigurationError):
        rxs.web.sse_response(stream, protocol="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rxs.web.from_sse(42)
    with pytest.raises(ConfigurationError):
        rxs.web.from_sse("http://127.0.0.1:1/", client=object())


async def test_from_sse_with_an_async_client_on_the_running_loop(
    emulator: ProviderEmulator, serve_asgi: Any
) -> None:
    emulator.enqueue(RICH)
    sent: list[StreamEvent] = []
    url = serve_asgi(app_for(lambda: anthropic_stream(emulator, sent)))
    async with httpx2.AsyncClient(timeout=20) as http:
        events = await rxs.web.from_sse(url + "/events", client=http).pipe(ops.to_list())
    assert events == sent


def test_from_sse_reads_an_open_response_once(emulator: ProviderEmulator, serve_asgi: Any) -> None:
    emulator.enqueue(ResponseScript(text="read from an open response"))
    url = serve_asgi(app_for(lambda: anthropic_stream(emulator)))
    with httpx2.Client(timeout=20) as http:
        response = http.send(http.build_request("GET", url + "/events"), stream=True)
        final = rxs.web.from_sse(response).pipe(rxs.operators.final()).run()
    assert final.text == "read from an open response" and final.complete

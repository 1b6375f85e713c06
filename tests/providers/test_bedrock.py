"""Bedrock ConverseStream and InvokeModelWithResponseStream sources.

End-to-end tests go through a real boto3 ``bedrock-runtime`` client talking HTTP to
`rxstream.testing.ProviderEmulator` on 127.0.0.1 (AWS event-stream binary frames); nothing of
rxstream is mocked. The reference for the final `Response` is a small reduction, written here,
of boto3's own decoded event dicts over the very bytes our source read (recorded by a TCP tee).
The pure normalisers are also fed hand-written dicts for wire cases the emulator cannot script.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import pytest
import reactivex
from botocore.eventstream import EventStream
from botocore.parsers import EventStreamJSONParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops
from reactivex.scheduler import ThreadPoolScheduler

from rxstream import operators as rso
from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    StreamDecodeError,
    StreamError,
    StreamInterruptedError,
    ToolArgumentsError,
)
from rxstream.events import StreamEvent, Usage, stream_event_adapter
from rxstream.providers.bedrock import (
    BedrockConverseNormaliser,
    BedrockInvokeNormaliser,
    from_bedrock,
    from_bedrock_invoke,
)
from rxstream.response import Response, ToolCall
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall
from rxstream.testing.kit import collect

ACCESS_KEY = "AKIARXSTREAMTESTKEY7"
SECRET_KEY = "rxstream/Secret+Key/do-not-leak-0123456789"
MODEL = "anthropic.claude-test-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "hi"}]}]
INVOKE_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "hi"}],
}

TOOLS_SCRIPT = ResponseScript(
    text="Checking the weather in Zürich — 東京 too 🌦️.",
    thinking="The user wants weather; call both tools.",
    tool_calls=[
        ScriptedToolCall(
            id="tooluse_A1",
            name="get_weather",
            arguments='{"city": "Zürich", "unit": "celsius"}',
            fragment_size=5,
        ),
        ScriptedToolCall(id="tooluse_B2", name="get_time", arguments='{"tz": "Asia/Tokyo"}', fragment_size=3),
    ],
    stop_reason="tool_use",
    input_tokens=321,
    output_tokens=87,
    cache_read_input_tokens=100,
    cache_creation_input_tokens=20,
    chunking="chars",
    chunk_size=3,
)

_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def bedrock_client(endpoint_url: str, **config: Any) -> Any:
    # retries={"max_attempts": 1} in botocore means one *retry* (two requests): see
    # botocore.config.Config; total_max_attempts=1 is a single attempt.
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(retries={"total_max_attempts": 1}, **config),
    )
    _CLIENTS.append(client)
    return client


def converse(emu: ProviderEmulator, **extra: Any) -> reactivex.Observable[StreamEvent]:
    return from_bedrock(bedrock_client(emu.bedrock_endpoint_url), modelId=MODEL, messages=MESSAGES, **extra)


def invoke(emu: ProviderEmulator, **extra: Any) -> reactivex.Observable[StreamEvent]:
    return from_bedrock_invoke(
        bedrock_client(emu.bedrock_endpoint_url), modelId=MODEL, body=INVOKE_BODY, **extra
    )


STREAMS = {"bedrock": converse, "bedrock-invoke": invoke}


def check_grammar(events: list[StreamEvent], *, complete: bool = True) -> None:
    assert events[0].type == "stream_start"
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.stream_id for e in events}) == 1
    open_calls: set[int] = set()
    for e in events:
        if e.type == "tool_call_start":
            assert e.index not in open_calls
            open_calls.add(e.index)
        elif e.type == "tool_call_delta":
            assert e.index in open_calls
        elif e.type == "tool_call_end":
            open_calls.remove(e.index)
    if complete:
        assert not open_calls
        assert [e.type for e in events].count("stream_end") == 1
        assert events[-1].type == "stream_end"


def final(events: list[StreamEvent]) -> Response:
    return reactivex.from_iterable(events).pipe(rso.final()).run()


def golden(events: list[StreamEvent]) -> list[dict[str, Any]]:
    return [e.model_dump(exclude={"stream_id", "seq"}) for e in events]


# --- an independent reference: boto3's own decoding of the recorded bytes ----------------------


class TeeProxy:
    """A loopback TCP forwarder that records every byte the server sends back, per connection."""

    def __init__(self, target: str) -> None:
        match = re.match(r"http://([\d.]+):(\d+)", target)
        assert match
        self._target = (match[1], int(match[2]))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.responses: list[bytearray] = []
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            self._sockets += [client, upstream]
            record = bytearray()
            self.responses.append(record)
            for src, dst, rec in ((client, upstream, None), (upstream, client, record)):
                thread = threading.Thread(target=self._pump, args=(src, dst, rec), daemon=True)
                thread.start()
                self._threads.append(thread)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
        try:
            while data := src.recv(65536):
                if record is not None:
                    record += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(2)
        for s in self._sockets:
            s.close()


def split_http(raw: bytes) -> tuple[dict[str, str], bytes]:
    """Split a recorded HTTP/1.1 response into headers and the de-chunked body."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert headers.get("transfer-encoding") == "chunked"
    body = bytearray()
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body += rest[:size]
        rest = rest[size + 2 :]
    return headers, bytes(body)


class _RawBody:
    """What botocore's EventStream reads from: an object with ``stream()`` and ``close()``."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    def stream(self) -> Iterator[bytes]:
        yield from self._pieces

    def close(self) -> None:
        pass


def boto3_decode(client: Any, operation: str, member: str, pieces: list[bytes]) -> list[dict[str, Any]]:
    """Decode event-stream bytes exactly as boto3 does for ``operation``'s streaming member."""
    shape = client.meta.service_model.operation_model(operation).output_shape.members[member]
    return list(EventStream(_RawBody(pieces), shape, EventStreamJSONParser(), operation))


_STOP = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "model_context_window_exceeded": "max_tokens",
}


def reduce_converse(events: list[dict[str, Any]], *, model: str, request_id: str) -> Response:
    """Fold boto3 ConverseStream dicts into a Response (independent of rxstream's normaliser)."""
    text, thinking, signature = "", "", None
    tools: dict[int, dict[str, str]] = {}
    stop = None
    usage: dict[str, int] = {}
    for event in events:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            tool = start["start"]["toolUse"]
            tools[start["contentBlockIndex"]] = {"id": tool["toolUseId"], "name": tool["name"], "input": ""}
        elif "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]["delta"]
            text += delta.get("text", "")
            reasoning = delta.get("reasoningContent", {})
            thinking += reasoning.get("text", "")
            signature = reasoning.get("signature", signature)
            if "toolUse" in delta:
                tools[event["contentBlockDelta"]["contentBlockIndex"]]["input"] += delta["toolUse"]["input"]
        elif "messageStop" in event:
            stop = event["messageStop"]["stopReason"]
        elif "metadata" in event:
            usage = event["metadata"]["usage"]
    assert stop is not None
    return Response(
        provider="bedrock",
        model=model,
        request_id=request_id,
        text=text,
        thinking=thinking,
        thinking_signature=signature,
        tool_calls=tuple(
            ToolCall(
                id=t["id"],
                name=t["name"],
                arguments=json.loads(t["input"]) if t["input"] else {},
                raw_arguments=t["input"],
                complete=True,
            )
            for _, t in sorted(tools.items())
        ),
        usage=Usage(
            input_tokens=usage.get("inputTokens", 0),
            output_tokens=usage.get("outputTokens", 0),
            cache_read_tokens=usage.get("cacheReadInputTokens", 0),
            cache_write_tokens=usage.get("cacheWriteInputTokens", 0),
        ),
        stop_reason=_STOP.get(stop, "other"),
        raw_stop_reason=stop,
        complete=True,
    )


def test_converse_final_equals_reduction_of_boto3_events_on_the_same_bytes(
    emulator: ProviderEmulator,
) -> None:
    proxy = TeeProxy(emulator.bedrock_endpoint_url)
    try:
        emulator.enqueue(TOOLS_SCRIPT)
        client = bedrock_client(proxy.url)
        events, error = collect(from_bedrock(client, modelId=MODEL, messages=MESSAGES))
        assert error is None
        (raw,) = proxy.responses
        headers, body = split_http(bytes(raw))
        decoded = boto3_decode(client, "ConverseStream", "stream", [body])
        expected = reduce_converse(decoded, model=MODEL, request_id=headers["x-amzn-requestid"])
        assert final(events) == expected
        assert expected.thinking_signature and len(expected.tool_calls) == 2
    finally:
        proxy.close()


def test_invoke_final_equals_reduction_of_boto3_events_on_the_same_bytes(emulator: ProviderEmulator) -> None:
    proxy = TeeProxy(emulator.bedrock_endpoint_url)
    try:
        emulator.enqueue(TOOLS_SCRIPT)
        client = bedrock_client(proxy.url)
        events, error = collect(from_bedrock_invoke(client, modelId=MODEL, body=INVOKE_BODY))
        assert error is None
        (raw,) = proxy.responses
        headers, body = split_http(bytes(raw))
        decoded = boto3_decode(client, "InvokeModelWithResponseStream", "body", [body])
        # The Anthropic Messages events inside the chunks, reduced by hand.
        text, thinking, signature, stop, message = "", "", None, None, {}
        usage: dict[str, Any] = {}
        tools: dict[int, dict[str, str]] = {}
        metrics = None
        for item in decoded:
            ev = json.loads(item["chunk"]["bytes"])
            if ev["type"] == "message_start":
                message = ev["message"]
                usage.update(message["usage"])
            elif ev["type"] == "content_block_start" and ev["content_block"]["type"] == "tool_use":
                block = ev["content_block"]
                tools[ev["index"]] = {"id": block["id"], "name": block["name"], "input": ""}
            elif ev["type"] == "content_block_delta":
                d = ev["delta"]
                text += d.get("text", "")
                thinking += d.get("thinking", "")
                signature = d.get("signature", signature)
                if d["type"] == "input_json_delta":
                    tools[ev["index"]]["input"] += d["partial_json"]
            elif ev["type"] == "message_delta":
                stop = ev["delta"]["stop_reason"]
                usage.update(ev["usage"])
            elif ev["type"] == "message_stop":
                metrics = ev["amazon-bedrock-invocationMetrics"]
        expected = Response(
            provider="bedrock-invoke",
            model=message["model"],
            id=message["id"],
            request_id=headers["x-amzn-requestid"],
            text=text,
            thinking=thinking,
            thinking_signature=signature,
            tool_calls=tuple(
                ToolCall(
                    id=t["id"],
                    name=t["name"],
                    arguments=json.loads(t["input"]),
                    raw_arguments=t["input"],
                    complete=True,
                )
                for _, t in sorted(tools.items())
            ),
            usage=Usage(
                input_tokens=usage["input_tokens"],
                output_tokens=usage["output_tokens"],
                cache_read_tokens=usage.get("cache_read_input_tokens") or 0,
                cache_write_tokens=usage.get("cache_creation_input_tokens") or 0,
            ),
            stop_reason=stop,
            raw_stop_reason=stop,
            complete=True,
        )
        assert final(events) == expected
        end = events[-1]
        assert end.type == "stream_end"
        assert end.provider_details is not None
        assert end.provider_details["amazon-bedrock-invocationMetrics"] == metrics
    finally:
        proxy.close()


# --- golden event lists -------------------------------------------------------------------------


def test_converse_text_golden_events(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="Hello there world", input_tokens=7, output_tokens=3))
    events, error = collect(converse(emulator))
    assert error is None
    check_grammar(events)
    start = events[0]
    assert start.type == "stream_start"
    assert start.request_id and re.fullmatch(r"[0-9a-f-]{36}", start.request_id)
    usage = {
        "input_tokens": 7,
        "output_tokens": 3,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert golden(events) == [
        {
            "type": "stream_start",
            "provider": "bedrock",
            "model": MODEL,
            "request_id": start.request_id,
            "response_id": None,
            "provider_details": {"role": "assistant"},
        },
        {"type": "text_delta", "text": "Hello", "provider_details": None},
        {"type": "text_delta", "text": " there", "provider_details": None},
        {"type": "text_delta", "text": " world", "provider_details": None},
        {
            "type": "usage_update",
            "usage": usage,
            "provider_details": {
                "usage": {
                    "inputTokens": 7,
                    "outputTokens": 3,
                    "totalTokens": 10,
                    "cacheReadInputTokens": 0,
                    "cacheWriteInputTokens": 0,
                }
            },
        },
        {
            "type": "stream_end",
            "stop_reason": "end_turn",
            "usage": usage,
            "provider_details": {"stop_reason": "end_turn", "latency_ms": 1},
        },
    ]
    assert final(events).to_message() == {"role": "assistant", "content": [{"text": "Hello there world"}]}


def test_converse_reasoning_with_signature(emulator: ProviderEmulator) -> None:
    emulator.enqueue(
        ResponseScript(thinking="Think first, then answer.", thinking_signature="c2lnbmF0dXJl", text="42")
    )
    events, error = collect(converse(emulator))
    assert error is None
    check_grammar(events)
    thinking = [e for e in events if e.type == "thinking_delta"]
    assert "".join(e.text for e in thinking) == "Think first, then answer."
    assert [e.signature for e in thinking if e.signature] == ["c2lnbmF0dXJl"]
    response = final(events)
    assert (response.thinking, response.thinking_signature, response.text) == (
        "Think first, then answer.",
        "c2lnbmF0dXJl",
        "42",
    )
    assert response.to_message()["content"][0] == {
        "reasoningContent": {
            "reasoningText": {"text": "Think first, then answer.", "signature": "c2lnbmF0dXJl"}
        }
    }


def test_converse_two_tool_calls(emulator: ProviderEmulator) -> None:
    emulator.enqueue(TOOLS_SCRIPT)
    events, error = collect(converse(emulator))
    assert error is None
    check_grammar(events)
    starts = [e for e in events if e.type == "tool_call_start"]
    assert [(e.index, e.id, e.name) for e in starts] == [
        (0, "tooluse_A1", "get_weather"),
        (1, "tooluse_B2", "get_time"),
    ]
    # thinking is block 0, text block 1, tools blocks 2 and 3
    assert [e.provider_details for e in starts] == [{"content_block_index": 2}, {"content_block_index": 3}]
    deltas = [e for e in events if e.type == "tool_call_delta" and e.index == 0]
    assert "".join(d.arguments_delta for d in deltas) == '{"city": "Zürich", "unit": "celsius"}'
    assert deltas[-1].partial_arguments == {"city": "Zürich", "unit": "celsius"}
    assert any(d.partial_arguments == {"city": "Züric"} for d in deltas)  # partial parse of a string
    ends = [e for e in events if e.type == "tool_call_end"]
    assert [e.arguments for e in ends] == [{"city": "Zürich", "unit": "celsius"}, {"tz": "Asia/Tokyo"}]
    response = final(events)
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(
        input_tokens=321, output_tokens=87, cache_read_tokens=100, cache_write_tokens=20
    )


@pytest.mark.parametrize(
    ("script_reason", "raw", "neutral"),
    [
        ("end_turn", "end_turn", "end_turn"),
        ("max_tokens", "max_tokens", "max_tokens"),
        ("tool_use", "tool_use", "tool_use"),
        ("stop_sequence", "stop_sequence", "stop_sequence"),
        ("content_filter", "content_filtered", "content_filter"),
        ("refusal", "content_filtered", "content_filter"),
    ],
)
def test_converse_stop_reasons(
    emulator: ProviderEmulator, script_reason: str, raw: str, neutral: str
) -> None:
    emulator.enqueue(ResponseScript(text="x", stop_reason=script_reason))
    events, error = collect(converse(emulator))
    assert error is None
    end = events[-1]
    assert end.type == "stream_end"
    assert (end.stop_reason, end.provider_details and end.provider_details["stop_reason"]) == (neutral, raw)
    assert final(events).raw_stop_reason == raw


@pytest.mark.parametrize(
    ("script_reason", "neutral"),
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_use"),
    ],
)
def test_invoke_stop_reasons(emulator: ProviderEmulator, script_reason: str, neutral: str) -> None:
    emulator.enqueue(ResponseScript(text="x", stop_reason=script_reason))
    events, error = collect(invoke(emulator))
    assert error is None
    check_grammar(events)
    assert events[-1].type == "stream_end" and events[-1].stop_reason == neutral


def test_converse_usage_with_cache_tokens(emulator: ProviderEmulator) -> None:
    emulator.enqueue(
        ResponseScript(
            text="cached",
            input_tokens=11,
            output_tokens=5,
            cache_read_input_tokens=900,
            cache_creation_input_tokens=40,
        )
    )
    events, error = collect(converse(emulator))
    assert error is None
    updates = [e for e in events if e.type == "usage_update"]
    assert len(updates) == 1
    expected = Usage(input_tokens=11, output_tokens=5, cache_read_tokens=900, cache_write_tokens=40)
    assert updates[0].usage == expected
    assert events[-1].type == "stream_end" and events[-1].usage == expected
    assert updates[0].provider_details == {
        "usage": {
            "inputTokens": 11,
            "outputTokens": 5,
            "totalTokens": 956,
            "cacheReadInputTokens": 900,
            "cacheWriteInputTokens": 40,
        }
    }


def test_invoke_text_thinking_and_tools(emulator: ProviderEmulator) -> None:
    emulator.enqueue(TOOLS_SCRIPT)
    events, error = collect(invoke(emulator))
    assert error is None
    check_grammar(events)
    assert events[0].type == "stream_start" and events[0].provider == "bedrock-invoke"
    response = final(events)
    assert response.text == TOOLS_SCRIPT.text
    assert response.thinking == TOOLS_SCRIPT.thinking
    assert [c.arguments for c in response.tool_calls] == [
        {"city": "Zürich", "unit": "celsius"},
        {"tz": "Asia/Tokyo"},
    ]
    assert response.usage.cache_read_tokens == 100 and response.usage.cache_write_tokens == 20
    assert emulator.requests[-1].body == INVOKE_BODY


# --- errors: typed, with the partial response ----------------------------------------------------

CONVERSE_EXCEPTIONS = [
    ("throttlingException", 429, True),
    ("modelStreamErrorException", 424, True),
    ("internalServerException", 500, True),
    ("serviceUnavailableException", 503, True),
    ("validationException", 400, False),
]


@pytest.mark.parametrize("provider", ["bedrock", "bedrock-invoke"])
@pytest.mark.parametrize(("error_type", "status", "retryable"), CONVERSE_EXCEPTIONS)
def test_exception_frame_mid_stream(
    emulator: ProviderEmulator, provider: str, error_type: str, status: int, retryable: bool
) -> None:
    # Converse: messageStart, "one", " two" then the exception. Invoke: message_start,
    # content_block_start, "one", " two" then the exception.
    after = 3 if provider == "bedrock" else 4
    emulator.enqueue(
        ResponseScript(
            text="one two three four",
            fault=Fault(
                kind="error_event", after_events=after, error_type=error_type, message="Too many tokens"
            ),
        )
    )
    events, error = collect(STREAMS[provider](emulator))
    assert isinstance(error, ProviderError)
    assert error.in_stream
    assert (error.error_type, error.status_code, error.retryable) == (error_type, status, retryable)
    assert error.provider == provider
    assert error.request_id and error.request_id == events[0].request_id  # type: ignore[union-attr]
    assert "Too many tokens" in str(error)
    assert error.partial.text == "one two"
    assert error.partial.complete is False
    assert isinstance(error.__cause__, botocore.exceptions.EventStreamError)


def test_invoke_model_timeout_exception_frame(emulator: ProviderEmulator) -> None:
    emulator.enqueue(
        ResponseScript(
            text="a b", fault=Fault(kind="error_event", after_events=2, error_type="modelTimeoutException")
        )
    )
    _, error = collect(invoke(emulator))
    assert isinstance(error, ProviderError)
    assert (error.error_type, error.status_code, error.retryable) == ("modelTimeoutException", 408, True)


@pytest.mark.parametrize("provider", ["bedrock", "bedrock-invoke"])
@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (429, "ThrottlingException", True),
        (403, "AccessDeniedException", False),
        (400, "ValidationException", False),
        (503, "ServiceUnavailableException", True),
    ],
)
def test_http_error_before_stream(
    emulator: ProviderEmulator, provider: str, status: int, error_type: str, retryable: bool
) -> None:
    emulator.enqueue(
        ResponseScript(fault=Fault(kind="http_error", status=status, message="Nope", retry_after=2))
    )
    events, error = collect(STREAMS[provider](emulator))
    assert events == []
    assert isinstance(error, ProviderError)
    assert not error.in_stream
    assert (error.status_code, error.error_type, error.retryable) == (status, error_type, retryable)
    assert error.retry_after == 2.0
    assert error.request_id and error.request_id in str(error)
    assert error.partial == Response()
    assert isinstance(error.__cause__, botocore.exceptions.ClientError)
    assert len(emulator.requests) == 1


def test_connection_refused_is_interrupted() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    client = bedrock_client(f"http://127.0.0.1:{port}", connect_timeout=1)
    events, error = collect(from_bedrock(client, modelId=MODEL, messages=MESSAGES))
    assert events == []
    assert isinstance(error, StreamInterruptedError)
    assert isinstance(error.__cause__, botocore.exceptions.EndpointConnectionError)


@pytest.mark.parametrize("provider", ["bedrock", "bedrock-invoke"])
def test_secrets_never_appear_in_errors_or_events(emulator: ProviderEmulator, provider: str) -> None:
    emulator.enqueue(
        ResponseScript(fault=Fault(kind="http_error", status=403)),
        ResponseScript(
            text="a b c", fault=Fault(kind="error_event", after_events=2, error_type="throttlingException")
        ),
        ResponseScript(text="a b c", fault=Fault(kind="drop", after_events=2)),
    )
    for _ in range(3):
        events, error = collect(STREAMS[provider](emulator))
        assert isinstance(error, StreamError)
        texts = [
            str(error),
            repr(error),
            str(error.__cause__),
            repr(error.__cause__),
            error.partial.model_dump_json(),
        ]
        texts += [stream_event_adapter.dump_json(e).decode() for e in events]
        for text in texts:
            assert ACCESS_KEY not in text and SECRET_KEY not in text
            assert "Signature=" not in text and "Authorization" not in text


# --- cold semantics and disposal ---------------------------------------------------------------


@pytest.mark.parametrize("provider", ["bedrock", "bedrock-invoke"])
@pytest.mark.parametrize("fault", ["stall", "first_event_delay"])
def test_dispose_while_stalled_closes_the_connection_within_1s(
    emulator: ProviderEmulator, provider: str, fault: str
) -> None:
    if fault == "stall":
        emulator.enqueue(ResponseScript(text="one two three four", fault=Fault(kind="stall", after_events=3)))
    else:
        emulator.enqueue(ResponseScript(text="late", first_event_delay=30))
    scheduler = ThreadPoolScheduler(max_workers=1)
    got: list[StreamEvent] = []
    terminal: list[str] = []
    disposable = STREAMS[provider](emulator).subscribe(
        got.append,
        lambda e: terminal.append("error"),
        lambda: terminal.append("completed"),
        scheduler=scheduler,
    )
    deadline = time.monotonic() + 5
    while not emulator.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # the reader is now blocked on the stalled socket
    t0 = time.monotonic()
    disposable.dispose()
    record = emulator.wait_for_disconnect(-1, timeout=2.0)
    assert record.client_disconnected and not record.completed
    assert record.disconnected_at is not None and record.disconnected_at - t0 < 1.0
    # The single worker thread was freed: the blocked read returned.
    freed = threading.Event()
    scheduler.schedule(lambda *_: freed.set())
    assert freed.wait(1.0)
    assert time.monotonic() - t0 < 1.0
    assert terminal == []  # nothing after disposal
    if fault == "stall":
        assert any(e.type == "text_delta" for e in got)


def test_observer_error_in_on_next_closes_connection(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="a b c d e f", event_delay=0.02))
    errors: list[BaseException] = []
    done = threading.Event()

    def boom(event: StreamEvent) -> None:
        if event.type == "text_delta":
            raise ValueError("observer bug")

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    converse(emulator).pipe(ops.map(lambda e: e)).subscribe(boom, on_error)
    assert done.wait(5)
    assert isinstance(errors[0], ValueError)
    record = emulator.wait_for_disconnect(-1, timeout=2)
    assert not record.completed


# --- wire robustness --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_emulator() -> Iterator[ProviderEmulator]:
    with ProviderEmulator() as emu:
        yield emu


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    provider=st.sampled_from(["bedrock", "bedrock-invoke"]),
)
def test_frames_split_anywhere_give_the_same_events(
    split_emulator: ProviderEmulator, seed: int, provider: str
) -> None:
    # Every wire event is written in random 1..64-byte pieces (each one HTTP chunk), so pieces
    # end mid-prelude, mid-header, mid-payload and mid-UTF-8 sequence.
    script = TOOLS_SCRIPT.model_copy(update={"write_split_seed": None})
    split_emulator.enqueue(script, script.model_copy(update={"write_split_seed": seed}))
    whole, error1 = collect(STREAMS[provider](split_emulator))
    split, error2 = collect(STREAMS[provider](split_emulator))
    assert error1 is None and error2 is None
    strip = {"request_id", "response_id"}
    assert [e.model_dump(exclude={"stream_id", "seq", *strip}) for e in whole] == [
        e.model_dump(exclude={"stream_id", "seq", *strip}) for e in split
    ]


# --- the pure normalisers, fed dicts ------------------------------------------------------------


def feed_all(norm: BedrockConverseNormaliser, *events: dict[str, Any]) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for event in events:
        out.extend(norm.feed(event))
    out.extend(norm.finish())
    return out


def test_normaliser_interleaved_parallel_tool_calls() -> None:
    norm = BedrockConverseNormaliser("s", request_model="m")
    events = feed_all(
        norm,
        {"messageStart": {"role": "assistant"}},
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "a", "name": "f"}},
                "contentBlockIndex": 1,
            }
        },
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "b", "name": "g"}},
                "contentBlockIndex": 2,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"x": '}}, "contentBlockIndex": 2}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"y": "z'}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": "1}"}}, "contentBlockIndex": 2}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '"}'}}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 2}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "tool_use"}},
        {
            "metadata": {
                "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
                "metrics": {"latencyMs": 9},
            }
        },
    )
    check_grammar(events)
    deltas = [(e.index, e.partial_arguments) for e in events if e.type == "tool_call_delta"]
    assert deltas == [(1, {}), (0, {"y": "z"}), (1, {"x": 1}), (0, {"y": "z"})]
    ends = [(e.index, e.id, e.arguments) for e in events if e.type == "tool_call_end"]
    assert ends == [(1, "b", {"x": 1}), (0, "a", {"y": "z"})]
    assert events[-1].type == "stream_end"
    assert events[-1].provider_details == {"stop_reason": "tool_use", "latency_ms": 9}


@pytest.mark.parametrize(
    ("raw", "neutral"),
    [
        ("end_turn", "end_turn"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("model_context_window_exceeded", "max_tokens"),
        ("malformed_model_output", "other"),
        ("malformed_tool_use", "other"),
        ("some_future_reason", "other"),
    ],
)
def test_normaliser_stop_reason_table(raw: str, neutral: str) -> None:
    events = feed_all(
        BedrockConverseNormaliser("s"),
        {"messageStart": {"role": "assistant"}},
        {"messageStop": {"stopReason": raw}},
    )
    end = events[-1]
    assert end.type == "stream_end"
    assert (end.stop_reason, end.provider_details) == (neutral, {"stop_reason": raw})


def test_normaliser_ends_cleanly_without_metadata() -> None:
    norm = BedrockConverseNormaliser("s")
    events = [
        e
        for ev in (
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "hi"}, "contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
        )
        for e in norm.feed(ev)
    ]
    assert [e.type for e in events] == ["stream_start", "text_delta"]  # StreamEnd waits for metadata
    tail = norm.finish()
    assert [e.type for e in tail] == ["stream_end"]
    assert norm.finish() == []


def test_normaliser_metadata_before_message_stop_and_events_after_end() -> None:
    norm = BedrockConverseNormaliser("s")
    events = feed_all(
        norm,
        {"messageStart": {"role": "assistant"}},
        {
            "metadata": {
                "usage": {"inputTokens": 4, "outputTokens": 2, "totalTokens": 6},
                "metrics": {"latencyMs": 5},
            }
        },
        {"messageStop": {"stopReason": "end_turn", "additionalModelResponseFields": {"k": 1}}},
        {"contentBlockDelta": {"delta": {"text": "late"}, "contentBlockIndex": 0}},
    )
    assert [e.type for e in events] == ["stream_start", "usage_update", "stream_end"]
    assert events[-1].provider_details == {
        "stop_reason": "end_turn",
        "latency_ms": 5,
        "additional_model_response_fields": {"k": 1},
    }


def test_normaliser_stream_ending_before_message_stop_is_interrupted() -> None:
    norm = BedrockConverseNormaliser("s")
    norm.feed({"messageStart": {"role": "assistant"}})
    norm.feed({"contentBlockDelta": {"delta": {"text": "partial"}, "contentBlockIndex": 0}})
    with pytest.raises(StreamInterruptedError):
        norm.finish()


def test_normaliser_reasoning_signature_and_redacted_content() -> None:
    events = feed_all(
        BedrockConverseNormaliser("s"),
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"reasoningContent": {"text": "hmm"}}, "contentBlockIndex": 0}},
        {
            "contentBlockDelta": {
                "delta": {"reasoningContent": {"signature": "sig=="}},
                "contentBlockIndex": 0,
            }
        },
        {
            "contentBlockDelta": {
                "delta": {"reasoningContent": {"redactedContent": b"\x00\xffsecret"}},
                "contentBlockIndex": 1,
            }
        },
        {"messageStop": {"stopReason": "end_turn"}},
    )
    thinking = [(e.text, e.signature, e.provider_details) for e in events if e.type == "thinking_delta"]
    assert thinking == [
        ("hmm", None, None),
        ("", "sig==", None),
        ("", None, {"redacted_content": "AP9zZWNyZXQ="}),
    ]
    for e in events:
        stream_event_adapter.dump_json(e)  # JSON-serialisable


def test_normaliser_invalid_tool_json_is_a_typed_error_with_the_raw_text() -> None:
    norm = BedrockConverseNormaliser("s")
    norm.feed(
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "t", "name": "f"}}, "contentBlockIndex": 0}}
    )
    norm.feed({"contentBlockDelta": {"delta": {"toolUse": {"input": '{"a": tru'}}, "contentBlockIndex": 0}})
    with pytest.raises(ToolArgumentsError) as info:
        norm.feed({"contentBlockStop": {"contentBlockIndex": 0}})
    assert (info.value.raw_arguments, info.value.index, info.value.tool_call_id, info.value.name) == (
        '{"a": tru',
        0,
        "t",
        "f",
    )


def test_invalid_tool_json_end_to_end(emulator: ProviderEmulator) -> None:
    emulator.enqueue(
        ResponseScript(
            text="ok",
            tool_calls=[ScriptedToolCall(id="t1", name="f", arguments='{"a": [1, 2')],
            stop_reason="tool_use",
        )
    )
    _, error = collect(converse(emulator))
    assert isinstance(error, ToolArgumentsError)
    assert error.raw_arguments == '{"a": [1, 2'
    assert error.partial.text == "ok"
    assert error.partial.tool_calls[0].arguments == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("name", "status", "retryable"),
    [*CONVERSE_EXCEPTIONS, ("modelTimeoutException", 408, True), ("brandNewException", None, False)],
)
def test_exception_as_a_dict_key(name: str, status: int | None, retryable: bool) -> None:
    norm = BedrockConverseNormaliser("s")
    norm.request_id = "req-1"
    norm.feed({"messageStart": {"role": "assistant"}})
    with pytest.raises(ProviderError) as info:
        norm.feed({name: {"message": "boom"}})
    err = info.value
    assert (err.error_type, err.status_code, err.retryable, err.in_stream, err.request_id) == (
        name,
        status,
        retryable,
        True,
        "req-1",
    )
    invoke_norm = BedrockInvokeNormaliser("s")
    with pytest.raises(ProviderError) as info2:
        invoke_norm.feed({name: {"message": "boom"}})
    assert (info2.value.error_type, info2.value.retryable, info2.value.provider) == (
        name,
        retryable,
        "bedrock-invoke",
    )


def test_normaliser_unexpected_shape_is_a_decode_error() -> None:
    with pytest.raises(StreamDecodeError):
        BedrockConverseNormaliser("s").feed({"contentBlockDelta": {"contentBlockIndex": 0}})
    with pytest.raises(StreamDecodeError):
        BedrockInvokeNormaliser("s").feed({"chunk": {"bytes": b"{not json"}})


def test_invoke_normaliser_feeds_anthropic_events() -> None:
    norm = BedrockInvokeNormaliser("s", request_model="m")
    chunks = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3, "output_tokens": 1}},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3, "outputTokenCount": 2},
        },
    ]
    events = [e for c in chunks for e in norm.feed({"chunk": {"bytes": json.dumps(c).encode()}})]
    events += norm.finish()
    check_grammar(events)
    assert norm.ended
    assert events[-1].provider_details == {
        "stop_reason": "end_turn",
        "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3, "outputTokenCount": 2},
    }
    assert norm.feed({"chunk": {"bytes": b'{"type": "message_stop"}'}}) == []


# --- misuse is raised synchronously ----------------------------------------------------------


def test_wrong_client_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        from_bedrock(object(), modelId=MODEL, messages=MESSAGES)
    with pytest.raises(ConfigurationError):
        from_bedrock_invoke(object(), modelId=MODEL, body=b"{}")


def test_invalid_params_are_a_configuration_error_before_any_request(emulator: ProviderEmulator) -> None:
    client = bedrock_client(emulator.bedrock_endpoint_url)
    with pytest.raises(ConfigurationError, match="modelId"):
        from_bedrock(client, messages=MESSAGES)
    with pytest.raises(ConfigurationError, match="messages"):
        from_bedrock(client, modelId=MODEL, messages="hi")
    with pytest.raises(ConfigurationError, match="modelId"):
        from_bedrock_invoke(client, body=INVOKE_BODY)
    with pytest.raises(ConfigurationError, match="performanceConfigLatency"):
        from_bedrock_invoke(client, modelId=MODEL, body=INVOKE_BODY, performanceConfigLatency=3)
    assert emulator.requests == []


def test_errors_are_stream_errors(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(fault=Fault(kind="http_error", status=500)))
    _, error = collect(converse(emulator))
    assert isinstance(error, StreamError) and error.retryable

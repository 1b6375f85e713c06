"""The provider emulator, checked with the official SDKs' own parsers and accumulators."""

from __future__ import annotations

import base64
import gc
import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import botocore.eventstream
import httpx2
import openai
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError

from rxstream.testing import (
    Fault,
    ProviderEmulator,
    ResponseScript,
    ScriptedToolCall,
    demo_responder,
)
from rxstream.testing._content import split_deltas
from rxstream.testing._eventstream import encode_event, encode_exception, encode_message
from rxstream.testing.demo import last_user_text

MODEL_ID = "anthropic.claude-3-5-sonnet-20241022-v2:0"
ANTHROPIC_BODY = {
    "model": "m",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "x"}],
    "stream": True,
}
CONVERSE_BODY = {"messages": [{"role": "user", "content": [{"text": "x"}]}]}
ARGS = '{"city": "Paris", "units": "celsius", "days": [1, 2, 3]}'
TEXT = "Héllo wörld 👋, this is 雪 streaming."

FULL = ResponseScript(
    model="claude-test-1",
    text=TEXT,
    thinking="First, consider the question.",
    tool_calls=[ScriptedToolCall(id="toolu_01Abc", name="get_weather", arguments=ARGS, fragment_size=7)],
    stop_reason="tool_use",
    input_tokens=42,
    output_tokens=77,
    cache_read_input_tokens=5,
    cache_creation_input_tokens=3,
    reasoning_tokens=11,
)


# -- fixtures and helpers ---------------------------------------------------------------


class SDK:
    """The official clients pointed at one emulator (closed after each test)."""

    def __init__(self, emu: ProviderEmulator) -> None:
        self.emu = emu
        self.anthropic = anthropic.Anthropic(
            base_url=emu.anthropic_base_url, api_key="test-key", max_retries=0
        )
        self.openai = openai.OpenAI(base_url=emu.openai_base_url, api_key="test-key", max_retries=0)
        self.bedrock: Any = boto3.client(
            "bedrock-runtime",
            endpoint_url=emu.bedrock_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"total_max_attempts": 1}),
        )

    def close(self) -> None:
        self.anthropic.close()
        self.openai.close()
        self.bedrock.close()

    def anthropic_final(self) -> Any:
        with self.anthropic.messages.stream(model="claude-test-1", max_tokens=256, messages=MESSAGES) as s:
            return s.get_final_message()

    def chat_final(self, **kwargs: Any) -> Any:
        with self.openai.chat.completions.stream(model="gpt-test", messages=MESSAGES, **kwargs) as s:
            return s.get_final_completion()

    def responses_events(self) -> list[Any]:
        with self.openai.responses.stream(model="gpt-test", input="What's the weather?") as s:
            return list(s)

    def converse_events(self) -> list[dict[str, Any]]:
        resp = self.bedrock.converse_stream(
            modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        try:
            return list(resp["stream"])
        finally:
            resp["stream"].close()

    def invoke_events(self) -> list[dict[str, Any]]:
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": MESSAGES}
        resp = self.bedrock.invoke_model_with_response_stream(modelId=MODEL_ID, body=json.dumps(body))
        assert resp["contentType"] == "application/json"
        try:
            return [json.loads(ev["chunk"]["bytes"]) for ev in resp["body"]]
        finally:
            resp["body"].close()


MESSAGES: list[Any] = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def shared() -> Iterator[SDK]:
    with ProviderEmulator() as emulator:
        clients = SDK(emulator)
        yield clients
        clients.close()


@pytest.fixture
def sdk(shared: SDK) -> Iterator[SDK]:
    yield shared
    shared.emu.dequeue_all()  # a failed test must not leave scripts for the next one


@pytest.fixture
def emu(sdk: SDK) -> ProviderEmulator:
    return sdk.emu


def wire(emu: ProviderEmulator, path: str, body: dict[str, Any]) -> httpx2.Response:
    with httpx2.Client() as http:
        return http.post(emu.url + path, json=body)


# -- Anthropic ------------------------------------------------------------------------------


def test_anthropic_final_message_matches_script(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(FULL)
    msg = sdk.anthropic_final()
    thinking, text, tool = msg.content
    assert thinking.type == "thinking" and thinking.thinking == FULL.thinking
    assert thinking.signature == FULL.thinking_signature
    assert text.type == "text" and text.text == TEXT
    assert tool.type == "tool_use" and tool.id == "toolu_01Abc" and tool.name == "get_weather"
    assert tool.input == json.loads(ARGS)
    assert msg.stop_reason == "tool_use" and msg.model == "claude-test-1"
    assert msg.id.startswith("msg_01")
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (42, 77)
    assert msg.usage.cache_read_input_tokens == 5 and msg.usage.cache_creation_input_tokens == 3
    assert msg.usage.output_tokens_details is not None
    assert msg.usage.output_tokens_details.thinking_tokens == 11


def test_anthropic_wire_headers_ping_and_stop_details(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(text="one two three", stop_reason="refusal", ping_every=2))
    stream = sdk.anthropic.messages.create(model="m", max_tokens=10, messages=MESSAGES, stream=True)
    headers = stream.response.headers
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["request-id"].startswith("req_")
    wire = b"".join(stream.response.iter_bytes()).decode()
    assert 'event: ping\ndata: {"type": "ping"}\n\n' in wire
    names = [line[7:] for line in wire.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert [n for n in names if n != "ping"][-2:] == ["message_delta", "message_stop"]
    assert names.count("ping") > 2  # the real one plus ping_every
    delta = json.loads(wire.split("event: message_delta\ndata: ")[1].split("\n")[0])
    assert delta["delta"]["stop_details"] == {"type": "refusal", "category": None, "explanation": None}
    assert delta["usage"]["input_tokens"] == 12  # cumulative usage on message_delta


def test_anthropic_stream_false_is_rejected(emu: ProviderEmulator, sdk: SDK) -> None:
    with pytest.raises(anthropic.BadRequestError, match="stream"):
        sdk.anthropic.messages.create(model="m", max_tokens=10, messages=MESSAGES)


# -- OpenAI Chat Completions ------------------------------------------------------------------


def test_chat_final_completion_with_usage(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(FULL)
    completion = sdk.chat_final(stream_options={"include_usage": True})
    choice = completion.choices[0]
    assert choice.message.content == TEXT
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id == "toolu_01Abc" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == json.loads(ARGS)
    assert completion.id.startswith("chatcmpl-") and completion.system_fingerprint.startswith("fp_")
    assert completion.usage is not None
    # prompt_tokens is the whole prompt: 42 uncached + 5 cache reads + 3 cache writes.
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (50, 77)
    assert completion.usage.total_tokens == 127
    assert completion.usage.prompt_tokens_details.cached_tokens == 5
    assert completion.usage.completion_tokens_details.reasoning_tokens == 11
    # OpenAI never sends reasoning_content unless the compat flag asks for it.
    assert "reasoning_content" not in (choice.message.model_extra or {})


def test_chat_wire_without_usage_tool_deltas_and_done(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(tool_calls=FULL.tool_calls, stop_reason="tool_use"))
    stream = sdk.openai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert stream.response.headers["x-request-id"].startswith("req_")
    wire = b"".join(stream.response.iter_bytes()).decode()
    assert wire.endswith("data: [DONE]\n\n")
    chunks = [json.loads(line[6:]) for line in wire.split("\n\n") if line.startswith("data: {")]
    assert all("usage" not in c and "obfuscation" in c for c in chunks)
    first, second = chunks[0]["choices"][0]["delta"], chunks[1]["choices"][0]["delta"]
    assert first["role"] == "assistant"
    assert first["tool_calls"][0] == {
        "index": 0,
        "id": "toolu_01Abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert second == {"tool_calls": [{"index": 0, "function": {"arguments": ARGS[:7]}}]}
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


def test_chat_refusal_and_compat_reasoning_content(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(refusal="I can't help with that.", stop_reason="refusal"))
    refused = sdk.chat_final()
    assert refused.choices[0].message.refusal == "I can't help with that."
    assert refused.choices[0].finish_reason == "stop" and refused.usage is None

    emu.enqueue(ResponseScript(text="Answer.", thinking="Hmm, let me see.", compat_reasoning_content=True))
    stream = sdk.openai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    reasoning = "".join(
        (chunk.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for chunk in stream
        if chunk.choices
    )
    assert reasoning == "Hmm, let me see."


def test_chat_in_stream_error_raises_api_error(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(text="a b c d", fault=Fault(kind="error_event", after_events=2)))
    with pytest.raises(openai.APIError, match="Overloaded") as info:
        sdk.chat_final()
    assert info.value.type == "server_error"


# -- OpenAI Responses -------------------------------------------------------------------------


def test_responses_final_response(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(FULL)
    with sdk.openai.responses.stream(model="gpt-test", input="What's the weather?") as s:
        events = list(s)
        response = s.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    types = {e.type for e in events}
    assert {
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.output_text.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
    } <= types
    reasoning, message, call = response.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == FULL.thinking
    assert reasoning.id.startswith("rs_")
    assert message.type == "message" and response.output_text == TEXT
    assert call.type == "function_call" and call.id is not None and call.id.startswith("fc_")
    assert call.call_id == "toolu_01Abc" and json.loads(call.arguments) == json.loads(ARGS)
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 5
    assert response.usage.output_tokens_details.reasoning_tokens == 11


def test_responses_raw_wire(emu: ProviderEmulator) -> None:
    emu.enqueue(FULL)
    resp = wire(emu, "/v1/responses", {"model": "m", "input": "x", "stream": True})
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = []
    for block in resp.text.strip().split("\n\n"):
        name_line, data_line = block.split("\n")
        payload = json.loads(data_line.removeprefix("data: "))
        assert name_line == "event: " + payload["type"]
        events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    text_delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert text_delta["logprobs"] == [] and text_delta["obfuscation"]
    args_delta = next(e for e in events if e["type"] == "response.function_call_arguments.delta")
    assert args_delta["item_id"].startswith("fc_") and args_delta["obfuscation"]
    added = next(e for e in events if e["type"] == "response.output_item.added" and e["output_index"] == 2)
    assert added["item"] == {
        "id": args_delta["item_id"],
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "toolu_01Abc",
        "name": "get_weather",
    }


@pytest.mark.parametrize(
    ("stop", "reason"), [("max_tokens", "max_output_tokens"), ("content_filter", "content_filter")]
)
def test_responses_incomplete(emu: ProviderEmulator, sdk: SDK, stop: str, reason: str) -> None:
    emu.enqueue(ResponseScript(text="Partial answer", stop_reason=stop))
    events = sdk.responses_events()
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == reason
    assert last.response.output[0].status == "incomplete"


def test_responses_refusal(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(refusal="Sorry, I can't."))
    with sdk.openai.responses.stream(model="gpt-test", input="x") as s:
        events = list(s)
        response: Any = s.get_final_response()
    assert "response.refusal.delta" in {e.type for e in events}
    assert response.output[0].content[0].type == "refusal"
    assert response.output[0].content[0].refusal == "Sorry, I can't."


def test_responses_error_event_and_failed(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(text="a b", fault=Fault(kind="error_event", after_events=3, status=429)))
    events = sdk.responses_events()
    error, failed = events[-2:]
    assert error.type == "error" and error.code == "rate_limit_exceeded" and error.message == "Overloaded"
    assert failed.type == "response.failed" and failed.response.status == "failed"
    assert failed.response.error.code == "rate_limit_exceeded"


# -- Bedrock --------------------------------------------------------------------------------------


def test_bedrock_converse_stream(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(FULL)
    events = sdk.converse_events()
    assert events[0] == {"messageStart": {"role": "assistant"}}
    reasoning = "".join(
        e["contentBlockDelta"]["delta"]["reasoningContent"].get("text", "")
        for e in events
        if "reasoningContent" in e.get("contentBlockDelta", {}).get("delta", {})
    )
    assert reasoning == FULL.thinking
    signature = [
        e["contentBlockDelta"]["delta"]["reasoningContent"]["signature"]
        for e in events
        if "signature" in e.get("contentBlockDelta", {}).get("delta", {}).get("reasoningContent", {})
    ]
    assert signature == [FULL.thinking_signature]
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert text == TEXT
    start = next(e["contentBlockStart"] for e in events if "contentBlockStart" in e)
    assert start == {
        "start": {"toolUse": {"toolUseId": "toolu_01Abc", "name": "get_weather"}},
        "contentBlockIndex": 2,
    }
    args = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    )
    assert args == ARGS
    assert events[-2] == {"messageStop": {"stopReason": "tool_use"}}
    usage = events[-1]["metadata"]["usage"]
    assert usage == {
        "inputTokens": 42,
        "outputTokens": 77,
        "totalTokens": 127,
        "cacheReadInputTokens": 5,
        "cacheWriteInputTokens": 3,
    }
    assert events[-1]["metadata"]["metrics"]["latencyMs"] >= 1
    assert emu.requests[-1].model == MODEL_ID and emu.requests[-1].provider == "bedrock"


def test_bedrock_converse_payloads_carry_padding(emu: ProviderEmulator) -> None:
    emu.enqueue(ResponseScript(text="hi there"))
    with httpx2.Client() as http:
        resp = http.post(
            f"{emu.url}/model/m/converse-stream",
            json={"messages": [{"role": "user", "content": [{"text": "x"}]}]},
        )
    assert resp.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert resp.headers["x-amzn-requestid"]
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(resp.content)
    messages: list[Any] = list(buffer)
    assert [m.headers[":event-type"] for m in messages][:2] == ["messageStart", "contentBlockDelta"]
    for m in messages:
        assert m.headers[":message-type"] == "event" and m.headers[":content-type"] == "application/json"
        assert "p" in json.loads(m.payload)


def test_bedrock_invoke_with_response_stream(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(FULL)
    events = sdk.invoke_events()
    assert [e["type"] for e in events][:2] == ["message_start", "content_block_start"]
    assert "ping" not in {e["type"] for e in events}
    assert events[0]["message"]["id"].startswith("msg_bdrk_")
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == TEXT
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert (metrics["inputTokenCount"], metrics["outputTokenCount"]) == (42, 77)
    assert {"invocationLatency", "firstByteLatency"} <= metrics.keys()


@pytest.mark.parametrize(
    "exception",
    [
        "throttlingException",
        "modelStreamErrorException",
        "internalServerException",
        "serviceUnavailableException",
        "validationException",
    ],
)
def test_bedrock_exception_frames(emu: ProviderEmulator, sdk: SDK, exception: str) -> None:
    fault = Fault(kind="error_event", after_events=2, error_type=exception, message="boom")
    emu.enqueue(ResponseScript(text="a b c", fault=fault), ResponseScript(text="a b c", fault=fault))
    with pytest.raises(EventStreamError) as converse:
        sdk.converse_events()
    assert converse.value.response["Error"] == {"Code": exception, "Message": "boom"}
    with pytest.raises(EventStreamError) as invoke:
        sdk.invoke_events()
    assert invoke.value.response["Error"]["Code"] == exception


# -- HTTP errors, drops, stalls and backpressure ------------------------------------------------------


def test_http_errors_map_to_sdk_exceptions(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(fault=Fault(kind="http_error", status=529, retry_after=3)))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        sdk.anthropic_final()
    assert overloaded.value.response.headers["retry-after"] == "3"
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": overloaded.value.response.headers["request-id"],
    }

    emu.enqueue(
        ResponseScript(fault=Fault(kind="http_error", status=429, retry_after=1.5, message="slow down"))
    )
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk.anthropic_final()
    assert limited.value.response.headers["retry-after"] == "1.5"

    emu.enqueue(ResponseScript(fault=Fault(kind="http_error", status=429, message="slow down")))
    with pytest.raises(openai.RateLimitError) as chat_limited:
        sdk.chat_final()
    assert chat_limited.value.code == "rate_limit_exceeded"
    assert chat_limited.value.response.headers["x-request-id"].startswith("req_")

    emu.enqueue(ResponseScript(fault=Fault(kind="http_error", status=503, message="down")))
    with pytest.raises(openai.InternalServerError):
        sdk.responses_events()

    emu.enqueue(ResponseScript(fault=Fault(kind="http_error", status=429, message="Too many requests")))
    with pytest.raises(ClientError) as throttled:
        sdk.converse_events()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_anthropic_in_stream_error_event(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(text="a b c", fault=Fault(kind="error_event", after_events=3)))
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk.anthropic_final()
    assert info.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}  # type: ignore[index]


def test_drop_makes_every_sdk_raise(emu: ProviderEmulator, sdk: SDK) -> None:
    drop = ResponseScript(text="one two three four", fault=Fault(kind="drop", after_events=3))
    emu.enqueue(*[drop] * 5)
    with pytest.raises(httpx2.RemoteProtocolError):
        sdk.anthropic_final()
    with pytest.raises(openai.APIConnectionError):
        sdk.chat_final()
    with pytest.raises(openai.APIConnectionError):
        sdk.responses_events()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        sdk.converse_events()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        sdk.invoke_events()
    records = emu.connections[-5:]
    assert all(not r.completed and not r.client_disconnected and r.events_written == 3 for r in records)


def test_stall_then_client_close_is_seen_at_once(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(text="a b c d", fault=Fault(kind="stall", after_events=2)))
    with sdk.anthropic.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as s:
        assert next(iter(s)).type == "message_start"
        time.sleep(0.2)
        assert not emu.connections[-1].ended
        closed_at = time.monotonic()
    record = emu.wait_for_disconnect(timeout=2.0)
    assert record.client_disconnected and not record.completed
    assert record.events_written == 2
    assert record.disconnected_at is not None and record.disconnected_at - closed_at < 0.1


def test_timed_stall_resumes(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(text="a b c", fault=Fault(kind="stall", after_events=2, stall_seconds=0.3)))
    started = time.monotonic()
    assert sdk.anthropic_final().content[0].text == "a b c"
    assert time.monotonic() - started >= 0.3
    assert emu.wait_for_disconnect().completed


def test_backpressure_blocks_the_writer(emu: ProviderEmulator, sdk: SDK) -> None:
    big = "x" * 8_000_000
    emu.enqueue(ResponseScript(text=big, chunking="chars", chunk_size=20_000))
    stream = sdk.anthropic.messages.create(model="m", max_tokens=4_000_000, messages=MESSAGES, stream=True)
    try:
        time.sleep(0.5)
        first = emu.connections[-1].events_written
        time.sleep(0.3)
        second = emu.connections[-1]
        assert first == second.events_written < 400
        assert not second.ended
    finally:
        stream.close()
    record = emu.wait_for_disconnect(timeout=2.0)
    assert record.client_disconnected and not record.completed


def test_stop_aborts_a_stream_the_client_stopped_reading() -> None:
    emu = ProviderEmulator(ResponseScript(text="x" * 16_000_000, chunking="chars", chunk_size=40_000))
    emu.start()
    try:
        with httpx2.Client() as http, http.stream("POST", emu.url + "/v1/messages", json=ANTHROPIC_BODY):
            time.sleep(0.3)
            started = time.monotonic()
            emu.stop()
            assert time.monotonic() - started < 1.0
    finally:
        emu.stop()
    (record,) = emu.connections
    assert record.ended and not record.completed and not record.client_disconnected
    gc.collect()  # a socket left open by the server would warn (and fail) here


def test_timing_delays(emu: ProviderEmulator, sdk: SDK) -> None:
    emu.enqueue(ResponseScript(text="a b c", first_event_delay=0.3, event_delay=0.05))
    started = time.monotonic()
    with sdk.anthropic.messages.stream(model="m", max_tokens=10, messages=MESSAGES) as s:
        headers_at = time.monotonic()
        next(iter(s))
        first_at = time.monotonic()
        s.until_done()
    done_at = time.monotonic()
    assert headers_at - started < 0.25  # headers go out before the first event
    assert first_at - started >= 0.3
    assert done_at - first_at >= 0.05 * 8 - 0.03  # 8 more events (incl. ping); client lag slack


# -- chunking, write splitting, unknown events --------------------------------------------------


def _normalised_results(emu: ProviderEmulator, sdk: SDK, script: ResponseScript) -> list[Any]:
    emu.enqueue(*[script] * 5)
    msg = sdk.anthropic_final()
    chat = sdk.chat_final(stream_options={"include_usage": True})
    with sdk.openai.responses.stream(model="m", input="x") as s:
        resp = s.get_final_response()
    converse = sdk.converse_events()
    invoke = sdk.invoke_events()
    return [
        [b.model_dump(exclude={"parsed_output"}) for b in msg.content],
        msg.usage.model_dump(),
        chat.choices[0].message.model_dump(),
        chat.usage.model_dump() if chat.usage else None,
        [item.model_dump(exclude={"id"}) for item in resp.output],
        [e for e in converse if "metadata" not in e],
        [e for e in invoke if e["type"] != "message_start"],
    ]


def test_write_split_gives_the_same_sdk_results(emu: ProviderEmulator, sdk: SDK) -> None:
    base = FULL.model_copy(update={"chunking": "chars", "chunk_size": 3})
    plain = _normalised_results(emu, sdk, base)
    split = _normalised_results(emu, sdk, base.model_copy(update={"write_split_seed": 1234}))
    assert plain == split
    assert plain[0][1]["text"] == TEXT


def test_unknown_events_are_tolerated_by_the_sdks(emu: ProviderEmulator, sdk: SDK) -> None:
    script = FULL.model_copy(update={"unknown_event_after": 3})
    results = _normalised_results(emu, sdk, script)
    assert results[0][1]["text"] == TEXT
    assert results[2]["content"] == TEXT
    assert [e["type"] for e in results[6]].count("unknown_future_event") == 1


def test_split_deltas_keeps_text_and_code_points() -> None:
    text = "  Héllo wörld 👋🏽 雪\n\nnext  "
    words = split_deltas(text, "words", 1)
    assert "".join(words) == text
    assert words[1] == " wörld"
    assert "".join(split_deltas(text, "words", 3)) == text
    chars = split_deltas(text, "chars", 3)
    assert "".join(chars) == text and all(len(c) <= 3 for c in chars)
    assert split_deltas("", "words", 1) == []


def test_large_tool_arguments_fragmented(emu: ProviderEmulator, sdk: SDK) -> None:
    payload = json.dumps({"rows": [{"id": i, "name": f"row-{i}", "note": "é" * 10} for i in range(4000)]})
    assert len(payload) > 200_000
    call = ScriptedToolCall(id="call_big", name="bulk", arguments=payload, fragment_size=4096)
    emu.enqueue(ResponseScript(tool_calls=[call], stop_reason="tool_use"))
    completion = sdk.chat_final()
    assert completion.choices[0].message.tool_calls[0].function.arguments == payload


# -- event stream encoder --------------------------------------------------------------------------


def test_event_stream_encoder_round_trips_through_botocore() -> None:
    frame = encode_message([(":event-type", "chunk"), (":message-type", "event")], b'{"a":"\xc3\xa9"}')
    assert int.from_bytes(frame[:4], "big") == len(frame)
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(
        frame + encode_event("x", {"b": 1}) + encode_exception("throttlingException", {"message": "m"})
    )
    decoded: list[Any] = list(buffer)
    first, second, third = decoded
    assert first.headers == {":event-type": "chunk", ":message-type": "event"}
    assert first.payload == b'{"a":"\xc3\xa9"}'
    assert json.loads(second.payload) == {"b": 1}
    assert third.headers[":message-type"] == "exception"
    assert third.to_response_dict()["status_code"] == 400


def test_event_stream_chunk_payload_is_base64_json() -> None:
    frame = encode_event("chunk", {"bytes": base64.b64encode(b'{"type":"message_stop"}').decode(), "p": "ab"})
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(frame)
    (message,) = list(buffer)
    assert json.loads(base64.b64decode(json.loads(message.payload)["bytes"])) == {"type": "message_stop"}


# -- records, queue, responder, demo ---------------------------------------------------------------------


def test_queue_responder_and_records() -> None:
    seen: list[str] = []

    def responder(provider: str, body: dict[str, Any]) -> ResponseScript:
        seen.append(provider)
        return ResponseScript(text=f"from responder {len(seen)}")

    with ProviderEmulator(responder=responder) as emu:
        sdk = SDK(emu)
        emu.enqueue(ResponseScript(text="queued"))
        assert sdk.anthropic_final().content[0].text == "queued"
        assert sdk.anthropic_final().content[0].text == "from responder 1"
        assert sdk.chat_final().choices[0].message.content == "from responder 2"
        assert seen == ["anthropic", "openai"]
        first = emu.requests[0]
        assert first.provider == "anthropic" and first.path == "/v1/messages"
        assert first.body["messages"] == MESSAGES and first.body["stream"] is True
        assert not hasattr(first, "headers")
        assert "test-key" not in repr(emu.requests)
        assert [emu.wait_for_disconnect(i).completed for i in range(3)] == [True, True, True]
        sdk.close()
    with pytest.raises(RuntimeError):
        _ = emu.url


def test_wait_for_disconnect_times_out(emu: ProviderEmulator) -> None:
    with pytest.raises(TimeoutError):
        emu.wait_for_disconnect(len(emu.connections), timeout=0.05)


def test_demo_responder_reply() -> None:
    body = {
        "model": "claude-demo",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]}],
    }
    script = demo_responder("anthropic", body)
    assert 'You asked: "Why is the sky blue?"' in script.text
    assert 3 <= script.text.count(". ") + 1 <= 6
    assert 0.03 <= script.event_delay <= 0.05 and script.chunking == "words"
    assert script.model == "claude-demo" and script.input_tokens > 0
    topic = demo_responder("openai-responses", {"input": "Tell me about reactive observables"})
    assert "Observable" in topic.text
    converse = {"messages": [{"role": "user", "content": [{"text": "hello"}]}]}
    assert last_user_text(converse) == "hello"
    assert (
        last_user_text(
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
        )
        == "a"
    )

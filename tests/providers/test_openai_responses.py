"""OpenAI Responses API source: pure normaliser on wire bytes, then end to end via the SDK.

Normaliser tests feed SSE bytes shaped like ``openai/types/responses/response_*_event.py``.
End-to-end tests talk HTTP to `rxstream.testing.ProviderEmulator` on 127.0.0.1 through the
official ``openai.OpenAI`` / ``AsyncOpenAI`` clients; nothing of rxstream is mocked. The
SDK's own ``responses.stream(...).get_final_response()`` is the reference for the final
Response, also on the very same recorded bytes (replayed through an httpx2 MockTransport).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import (
    ConfigurationError,
    ProviderError,
    StreamDecodeError,
    StreamInterruptedError,
    ToolArgumentsError,
)
from rxstream.events import StreamEvent, TextDelta, ThinkingDelta
from rxstream.providers._sse import SSEDecoder
from rxstream.providers.openai_responses import OpenAIResponsesNormaliser, from_openai_responses
from rxstream.response import Response
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall
from rxstream.testing.kit import collect

API_KEY = "sk-test-secret-0123456789abcdef"

# --- wire helpers --------------------------------------------------------------------------------


class Wire:
    """Builds a Responses SSE body: ``event: <type>`` + ``data: {type, sequence_number, ...}``."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def add(self, kind: str, **fields: Any) -> Wire:
        payload = {"type": kind, "sequence_number": len(self.frames), **fields}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        self.frames.append(f"event: {kind}\ndata: {body}\n\n".encode())
        return self

    def raw(self, data: bytes) -> Wire:
        self.frames.append(data)
        return self

    @property
    def body(self) -> bytes:
        return b"".join(self.frames)


def resp(status: str = "in_progress", **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_abc",
        "object": "response",
        "status": status,
        "model": "gpt-x-2025",
        "output": [],
        **extra,
    }


USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 40, "cache_write_tokens": 0},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 12},
    "total_tokens": 130,
}


def fc_item(
    out: int, call_id: str, name: str, arguments: str = "", status: str = "in_progress"
) -> dict[str, Any]:
    return {
        "id": f"fc_{out}",
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def run(
    body: bytes, *, chunks: list[int] | None = None, request_id: str | None = "req_1"
) -> list[StreamEvent]:
    """Decode ``body`` (optionally split at ``chunks`` offsets) and normalise it, finish included."""
    norm = OpenAIResponsesNormaliser("s1", request_model="req-model")
    norm.request_id = request_id
    decoder = SSEDecoder()
    pieces: list[bytes] = []
    start = 0
    for cut in sorted(chunks or []):
        pieces.append(body[start:cut])
        start = cut
    pieces.append(body[start:])
    events: list[StreamEvent] = []
    for piece in pieces:
        for sse in decoder.feed(piece):
            events.extend(norm.feed_sse(sse.event, sse.data))
    for sse in decoder.flush():
        events.extend(norm.feed_sse(sse.event, sse.data))
    events.extend(norm.finish())
    return events


def fold(events: list[StreamEvent]) -> Response:
    response = Response()
    for event in events:
        response = rxs.apply(response, event)
    return response


def check_grammar(events: list[StreamEvent]) -> None:
    assert events[0].type == "stream_start"
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.stream_id for e in events}) == 1
    open_calls: set[int] = set()
    raw: dict[int, str] = {}
    for e in events:
        if e.type == "tool_call_start":
            assert e.index not in open_calls
            open_calls.add(e.index)
            raw[e.index] = ""
        elif e.type == "tool_call_delta":
            assert e.index in open_calls
            raw[e.index] += e.arguments_delta
        elif e.type == "tool_call_end":
            open_calls.remove(e.index)
            assert raw[e.index] == e.raw_arguments
    assert not open_calls
    assert sum(e.type == "stream_end" for e in events) <= 1
    if any(e.type == "stream_end" for e in events):
        assert events[-1].type == "stream_end"


def text_wire(text_deltas: list[str], terminal: str = "response.completed", **final: Any) -> Wire:
    w = Wire().add("response.created", response=resp()).add("response.in_progress", response=resp())
    w.add(
        "response.output_item.added",
        output_index=0,
        item={"id": "msg_1", "type": "message", "status": "in_progress", "content": [], "role": "assistant"},
    )
    w.add(
        "response.content_part.added",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        part={"type": "output_text", "annotations": [], "text": ""},
    )
    for d in text_deltas:
        w.add(
            "response.output_text.delta",
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta=d,
            logprobs=[],
            obfuscation="xyz",
        )
    w.add(
        "response.output_text.done",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        text="".join(text_deltas),
        logprobs=[],
    )
    w.add(
        "response.content_part.done",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        part={"type": "output_text", "annotations": [], "text": "".join(text_deltas)},
    )
    w.add(
        "response.output_item.done",
        output_index=0,
        item={"id": "msg_1", "type": "message", "status": "completed", "content": [], "role": "assistant"},
    )
    w.add(terminal, response=resp(final.pop("status", "completed"), usage=USAGE, **final))
    return w


# --- pure normaliser: golden events ----------------------------------------------------------------


def test_golden_text_stream() -> None:
    events = run(text_wire(["Hel", "lo ", "wörld 🌍"]).body)
    check_grammar(events)
    assert [e.model_dump() for e in events] == [
        {
            "stream_id": "s1",
            "seq": 0,
            "provider_details": None,
            "type": "stream_start",
            "provider": "openai-responses",
            "model": "gpt-x-2025",
            "request_id": "req_1",
            "response_id": "resp_abc",
        },
        {"stream_id": "s1", "seq": 1, "provider_details": None, "type": "text_delta", "text": "Hel"},
        {"stream_id": "s1", "seq": 2, "provider_details": None, "type": "text_delta", "text": "lo "},
        {"stream_id": "s1", "seq": 3, "provider_details": None, "type": "text_delta", "text": "wörld 🌍"},
        {
            "stream_id": "s1",
            "seq": 4,
            "provider_details": {"usage": USAGE},
            "type": "usage_update",
            "usage": {
                "input_tokens": 60,
                "output_tokens": 30,
                "cache_read_tokens": 40,
                "cache_write_tokens": 0,
                "reasoning_tokens": 12,
            },
        },
        {
            "stream_id": "s1",
            "seq": 5,
            "provider_details": {"stop_reason": "completed"},
            "type": "stream_end",
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 60,
                "output_tokens": 30,
                "cache_read_tokens": 40,
                "cache_write_tokens": 0,
                "reasoning_tokens": 12,
            },
        },
    ]


def test_hot_path_text_delta_equals_a_validated_one() -> None:
    events = run(text_wire(["x"]).body)
    built = events[1]
    assert type(built) is TextDelta
    assert built == TextDelta(stream_id="s1", seq=1, text="x")
    assert TextDelta.model_validate(built.model_dump()) == built


def test_reasoning_summary_raw_reasoning_and_encrypted_content() -> None:
    w = Wire().add("response.created", response=resp())
    w.add(
        "response.output_item.added",
        output_index=0,
        item={"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "partial"},
    )
    w.add(
        "response.reasoning_summary_part.added",
        item_id="rs_1",
        output_index=0,
        summary_index=0,
        part={"type": "summary_text", "text": ""},
    )
    w.add(
        "response.reasoning_summary_text.delta",
        item_id="rs_1",
        output_index=0,
        summary_index=0,
        delta="**Plan** ",
    )
    w.add(
        "response.reasoning_summary_text.delta",
        item_id="rs_1",
        output_index=0,
        summary_index=1,
        delta="second",
    )
    w.add("response.reasoning_text.delta", item_id="rs_1", output_index=0, content_index=0, delta=" raw")
    w.add(
        "response.reasoning_summary_text.done", item_id="rs_1", output_index=0, summary_index=1, text="second"
    )
    w.add(
        "response.output_item.done",
        output_index=0,
        item={"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA-sealed"},
    )
    w.add("response.completed", response=resp("completed", usage=USAGE))
    events = run(w.body)
    check_grammar(events)
    thinking = [e for e in events if isinstance(e, ThinkingDelta)]
    assert [(e.text, e.signature, e.provider_details) for e in thinking] == [
        ("**Plan** ", None, {"reasoning": "summary", "summary_index": 0}),
        ("second", None, {"reasoning": "summary", "summary_index": 1}),
        (" raw", None, {"reasoning": "text", "content_index": 0}),
        ("", "gAAAA-sealed", {"reasoning_item_id": "rs_1"}),
    ]
    final = fold(events)
    assert final.thinking == "**Plan** second raw"
    assert final.thinking_signature == "gAAAA-sealed"  # only the .done item's content is complete
    assert final.stop_reason == "end_turn"


def parallel_tools_wire() -> Wire:
    """Two function calls whose argument deltas interleave by output_index."""
    w = Wire().add("response.created", response=resp())
    w.add("response.output_item.added", output_index=0, item=fc_item(0, "call_A", "get_weather"))
    w.add("response.output_item.added", output_index=1, item=fc_item(1, "call_B", "get_time"))
    a = ['{"ci', 'ty": "Zü', 'rich"}']
    b = ['{"tz"', ': "Asia/', 'Tokyo"}']
    for fa, fb in zip(a, b, strict=True):
        w.add(
            "response.function_call_arguments.delta",
            item_id="fc_1",
            output_index=1,
            delta=fb,
            obfuscation="q",
        )
        w.add(
            "response.function_call_arguments.delta",
            item_id="fc_0",
            output_index=0,
            delta=fa,
            obfuscation="q",
        )
    w.add("response.function_call_arguments.done", item_id="fc_1", output_index=1, arguments="".join(b))
    w.add(
        "response.output_item.done",
        output_index=1,
        item=fc_item(1, "call_B", "get_time", "".join(b), "completed"),
    )
    w.add("response.function_call_arguments.done", item_id="fc_0", output_index=0, arguments="".join(a))
    w.add(
        "response.output_item.done",
        output_index=0,
        item=fc_item(0, "call_A", "get_weather", "".join(a), "completed"),
    )
    w.add("response.completed", response=resp("completed", usage=USAGE))
    return w


def test_parallel_tool_calls_interleaved_by_output_index_stay_apart() -> None:
    events = run(parallel_tools_wire().body)
    check_grammar(events)
    starts = [e for e in events if e.type == "tool_call_start"]
    assert [(e.index, e.id, e.name, e.provider_details) for e in starts] == [
        (0, "call_A", "get_weather", {"item_id": "fc_0", "output_index": 0}),
        (1, "call_B", "get_time", {"item_id": "fc_1", "output_index": 1}),
    ]
    ends = [e for e in events if e.type == "tool_call_end"]
    assert [(e.index, e.arguments) for e in ends] == [(1, {"tz": "Asia/Tokyo"}), (0, {"city": "Zürich"})]
    deltas_b = [e.partial_arguments for e in events if e.type == "tool_call_delta" and e.index == 1]
    assert deltas_b[-1] == {"tz": "Asia/Tokyo"}
    final = fold(events)
    assert [(c.id, c.name, c.arguments, c.complete) for c in final.tool_calls] == [
        ("call_A", "get_weather", {"city": "Zürich"}, True),
        ("call_B", "get_time", {"tz": "Asia/Tokyo"}, True),
    ]
    assert final.stop_reason == "tool_use" and final.raw_stop_reason == "completed"


def test_tool_call_ended_by_output_item_done_and_done_only_items() -> None:
    w = Wire().add("response.created", response=resp())
    # call 1: no function_call_arguments.done, ended by output_item.done
    w.add("response.output_item.added", output_index=0, item=fc_item(0, "call_1", "f"))
    w.add("response.function_call_arguments.delta", item_id="fc_0", output_index=0, delta='{"a": 1}')
    w.add(
        "response.output_item.done", output_index=0, item=fc_item(0, "call_1", "f", '{"a": 1}', "completed")
    )
    # call 2: a compatible server that only sends the finished item
    w.add(
        "response.output_item.done", output_index=1, item=fc_item(1, "call_2", "g", '{"b": [2]}', "completed")
    )
    # call 3: no arguments at all
    w.add("response.output_item.added", output_index=2, item=fc_item(2, "call_3", "h"))
    w.add("response.function_call_arguments.done", item_id="fc_2", output_index=2, arguments="")
    w.add("response.completed", response=resp("completed"))
    events = run(w.body)
    check_grammar(events)
    final = fold(events)
    assert [(c.id, c.arguments, c.raw_arguments) for c in final.tool_calls] == [
        ("call_1", {"a": 1}, '{"a": 1}'),
        ("call_2", {"b": [2]}, '{"b": [2]}'),
        ("call_3", {}, ""),
    ]
    assert not any(e.type == "usage_update" for e in events)  # usage: null → no UsageUpdate


def test_done_arguments_are_authoritative_missing_tail_becomes_a_delta() -> None:
    w = Wire().add("response.created", response=resp())
    w.add("response.output_item.added", output_index=0, item=fc_item(0, "call_1", "f"))
    w.add("response.function_call_arguments.delta", item_id="fc_0", output_index=0, delta='{"q": ')
    w.add("response.function_call_arguments.done", item_id="fc_0", output_index=0, arguments='{"q": "full"}')
    w.add("response.completed", response=resp("completed"))
    events = run(w.body)
    check_grammar(events)
    assert [e.arguments_delta for e in events if e.type == "tool_call_delta"] == ['{"q": ', '"full"}']
    assert fold(events).tool_calls[0].arguments == {"q": "full"}


def test_invalid_tool_arguments_are_a_typed_error_with_raw_text() -> None:
    w = Wire().add("response.created", response=resp())
    w.add("response.output_item.added", output_index=0, item=fc_item(0, "call_1", "f"))
    w.add("response.function_call_arguments.delta", item_id="fc_0", output_index=0, delta='{"city": "Par')
    w.add("response.function_call_arguments.done", item_id="fc_0", output_index=0, arguments='{"city": "Par')
    with pytest.raises(ToolArgumentsError) as info:
        run(w.body)
    err = info.value
    assert err.raw_arguments == '{"city": "Par' and err.name == "f" and err.tool_call_id == "call_1"
    assert err.index == 0 and not err.retryable


def test_arguments_delta_for_unknown_item_is_a_decode_error() -> None:
    w = Wire().add("response.created", response=resp())
    w.add("response.function_call_arguments.delta", item_id="fc_9", output_index=9, delta="{")
    with pytest.raises(StreamDecodeError, match="unknown output item"):
        run(w.body)


def test_refusal_is_text_with_refusal_detail_and_stop_reason() -> None:
    w = Wire().add("response.created", response=resp())
    w.add(
        "response.output_item.added",
        output_index=0,
        item={"id": "msg_1", "type": "message", "status": "in_progress", "content": [], "role": "assistant"},
    )
    w.add(
        "response.content_part.added",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        part={"type": "refusal", "refusal": ""},
    )
    w.add("response.refusal.delta", item_id="msg_1", output_index=0, content_index=0, delta="I can't ")
    w.add("response.refusal.delta", item_id="msg_1", output_index=0, content_index=0, delta="help with that.")
    w.add(
        "response.refusal.done",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        refusal="I can't help with that.",
    )
    w.add("response.completed", response=resp("completed", usage=USAGE))
    events = run(w.body)
    check_grammar(events)
    refusals = [e for e in events if e.type == "text_delta"]
    assert all(e.provider_details == {"refusal": True} for e in refusals)
    final = fold(events)
    assert final.text == "I can't help with that."
    assert final.stop_reason == "refusal" and final.raw_stop_reason == "completed"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("max_output_tokens", "max_tokens"),
        ("content_filter", "content_filter"),
        ("max_messages", "other"),
        (None, "other"),
    ],
)
def test_incomplete_maps_incomplete_details_reason(reason: str | None, expected: str) -> None:
    details = {"reason": reason} if reason else None
    events = run(
        text_wire(
            ["partial"], terminal="response.incomplete", status="incomplete", incomplete_details=details
        ).body
    )
    check_grammar(events)
    end = events[-1]
    assert end.type == "stream_end" and end.stop_reason == expected
    assert end.provider_details == {
        "stop_reason": reason or "incomplete",
        "status": "incomplete",
        "incomplete_details": details,
    }
    assert end.usage.output_tokens == 30
    assert fold(events).text == "partial"


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("server_error", 500, True),
        ("rate_limit_exceeded", 429, True),
        ("vector_store_timeout", 504, True),
        ("invalid_prompt", 400, False),
        ("image_content_policy_violation", 400, False),
        ("insufficient_quota", 429, False),
        ("timeout", None, True),
        ("brand_new_code", None, False),
    ],
)
def test_response_failed_raises_provider_error(code: str, status: int | None, retryable: bool) -> None:
    w = text_wire(
        ["so far"], terminal="response.failed", status="failed", error={"code": code, "message": "boom"}
    )
    with pytest.raises(ProviderError) as info:
        run(w.body, request_id="req_42")
    err = info.value
    assert (
        err.in_stream and err.error_type == code and err.status_code == status and err.retryable is retryable
    )
    assert err.request_id == "req_42" and "boom" in str(err) and "req_42" in str(err)
    assert err.provider == "openai-responses"


def test_response_failed_without_error_object_still_raises() -> None:
    w = (
        Wire()
        .add("response.created", response=resp())
        .add("response.failed", response=resp("failed", error=None))
    )
    with pytest.raises(ProviderError) as info:
        run(w.body)
    assert info.value.in_stream and not info.value.retryable


@pytest.mark.parametrize(
    "fields",
    [
        {"code": "rate_limit_exceeded", "message": "slow down", "param": None},  # response_error_event.py
        {
            "error": {"code": "rate_limit_exceeded", "message": "slow down", "param": None}
        },  # nested form in the wild
    ],
)
def test_error_event_raises_retryable_provider_error(fields: dict[str, Any]) -> None:
    w = text_wire(["abc"]).frames[:5]
    wire = Wire()
    wire.frames = list(w)
    wire.add("error", **fields)
    with pytest.raises(ProviderError) as info:
        run(wire.body)
    err = info.value
    assert err.in_stream and err.retryable and err.status_code == 429
    assert err.error_type == "rate_limit_exceeded" and "slow down" in str(err)


def test_error_event_with_param_and_non_retryable_code() -> None:
    w = (
        Wire()
        .add("response.created", response=resp())
        .add("error", code="invalid_prompt", message="Invalid prompt", param="input")
    )
    with pytest.raises(ProviderError) as info:
        run(w.body)
    assert not info.value.retryable and info.value.status_code == 400 and "param input" in str(info.value)


def test_unknown_and_ignored_event_types_are_skipped() -> None:
    base = text_wire(["a", "b"])
    w = Wire()
    w.frames = base.frames[:4]
    for kind in [
        "response.queued",
        "response.output_text.annotation.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.file_search_call.completed",
        "response.code_interpreter_call_code.delta",
        "response.image_generation_call.partial_image",
        "response.mcp_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.unknown_future_event",
    ]:
        w.add(kind, item_id="x", output_index=5, delta="ignored")
    w.frames += base.frames[4:]
    w.raw(b": keep-alive comment\n\n")
    events = run(w.body)
    check_grammar(events)
    assert fold(events).text == "ab"
    assert [e.type for e in events] == [
        "stream_start",
        "text_delta",
        "text_delta",
        "usage_update",
        "stream_end",
    ]


def test_events_after_the_terminal_event_are_ignored_and_done_is_tolerated() -> None:
    w = text_wire(["a"])
    w.add("response.output_text.delta", item_id="msg_1", output_index=0, content_index=0, delta="late")
    w.raw(b"data: [DONE]\n\n")
    events = run(w.body)
    check_grammar(events)
    assert fold(events).text == "a"


def test_stream_start_without_response_created() -> None:
    w = Wire().add("response.output_text.delta", item_id="m", output_index=0, content_index=0, delta="hi")
    w.add("response.completed", response={"status": "completed"})
    events = run(w.body)
    check_grammar(events)
    start = events[0]
    assert start.type == "stream_start" and start.model == "req-model" and start.response_id is None


def test_malformed_json_and_non_objects_are_decode_errors() -> None:
    norm = OpenAIResponsesNormaliser("s")
    with pytest.raises(StreamDecodeError) as info:
        norm.feed_sse("response.output_text.delta", b'{"type": "response.output_text.delta", "delta": "x')
    assert "response.output_text.delta" in info.value.raw and not info.value.retryable
    with pytest.raises(StreamDecodeError):
        norm.feed_sse("response.created", b"[1, 2]")
    norm.feed_json({"type": "response.created", "response": resp()})
    with pytest.raises(StreamDecodeError, match="unexpected shape"):
        norm.feed_json({"type": "response.output_text.delta", "delta": 5})


def test_body_ending_without_a_terminal_event_is_interrupted() -> None:
    w = text_wire(["one", " two"])
    w.frames = w.frames[:-1]  # drop response.completed
    with pytest.raises(StreamInterruptedError) as info:
        run(w.body)
    assert info.value.retryable


def test_sse_event_name_is_used_when_type_is_missing() -> None:
    norm = OpenAIResponsesNormaliser("s")
    events = norm.feed_sse("response.created", json.dumps({"response": resp()}).encode())
    assert events[0].type == "stream_start"


def full_wire() -> bytes:
    w = Wire().add("response.created", response=resp())
    w.add(
        "response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []}
    )
    w.add(
        "response.reasoning_summary_text.delta",
        item_id="rs_1",
        output_index=0,
        summary_index=0,
        delta="Thinking 🤔 about 東京",
    )
    w.add(
        "response.output_item.done",
        output_index=0,
        item={"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "enc"},
    )
    for d in ["Grüße ", "aus ", "東京 👩‍👩‍👧 ", "naïve ☕"]:
        w.add(
            "response.output_text.delta",
            item_id="msg_1",
            output_index=1,
            content_index=0,
            delta=d,
            logprobs=[],
        )
    body = parallel_tools_wire().frames[
        1:
    ]  # its tool events use output_index 0/1: renumber not needed, ids differ
    out = w.body + b"".join(body)
    return out.replace(b"\n", b"\r\n", 3)  # a few CRLF line endings as well


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_chunk_boundaries_anywhere_give_the_same_events(data: st.DataObject) -> None:
    body = full_wire()
    reference = run(body)
    cuts = data.draw(st.lists(st.integers(min_value=1, max_value=len(body) - 1), max_size=40, unique=True))
    assert run(body, chunks=cuts) == reference


def test_full_wire_reference_is_sane() -> None:
    events = run(full_wire())
    check_grammar(events)
    final = fold(events)
    assert final.text == "Grüße aus 東京 👩‍👩‍👧 naïve ☕"
    assert final.thinking == "Thinking 🤔 about 東京" and final.thinking_signature == "enc"
    assert len(final.tool_calls) == 2


def test_wrong_client_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        from_openai_responses(object(), model="m", input="hi")


def test_exported_from_the_package() -> None:
    import rxstream.providers.openai_responses as mod

    assert mod.__all__ == ["OpenAIResponsesNormaliser", "from_openai_responses"]


# --- end to end through the official SDK and the emulator --------------------------------------------

TOOLS_SCRIPT = ResponseScript(
    text="Checking the weather in Zürich — 東京 too 🌦️.",
    thinking="The user wants weather; call both tools.",
    tool_calls=[
        ScriptedToolCall(
            id="call_01A",
            name="get_weather",
            arguments='{"city": "Zürich", "unit": "celsius"}',
            fragment_size=5,
        ),
        ScriptedToolCall(id="call_01B", name="get_time", arguments='{"tz": "Asia/Tokyo"}', fragment_size=3),
    ],
    stop_reason="tool_use",
    input_tokens=321,
    output_tokens=87,
    cache_read_input_tokens=100,
    reasoning_tokens=20,
    chunking="chars",
    chunk_size=3,
)


_SYNC_CLIENTS: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_sync_clients() -> Iterator[None]:
    """Close every sync client a test made, so no pooled socket outlives its test."""
    yield
    while _SYNC_CLIENTS:
        _SYNC_CLIENTS.pop().close()


def client(emu: ProviderEmulator) -> openai.OpenAI:
    c = openai.OpenAI(api_key=API_KEY, base_url=emu.openai_base_url, max_retries=0)
    _SYNC_CLIENTS.append(c)
    return c


def async_client(emu: ProviderEmulator) -> openai.AsyncOpenAI:
    """Use as ``async with async_client(emu) as c`` so it is closed on the test's loop."""
    return openai.AsyncOpenAI(api_key=API_KEY, base_url=emu.openai_base_url, max_retries=0)


def stream(emu: ProviderEmulator, **extra: Any) -> reactivex.Observable[StreamEvent]:
    return from_openai_responses(client(emu), model="gpt-test", input="hi", **extra)


def assert_equals_sdk(final: Response, sdk: Any) -> None:
    """Our final Response against the SDK's ``get_final_response()``."""
    assert final.text == sdk.output_text
    calls = [o for o in sdk.output if o.type == "function_call"]
    assert [(c.id, c.name, c.raw_arguments) for c in final.tool_calls] == [
        (o.call_id, o.name, o.arguments) for o in calls
    ]
    assert [c.arguments for c in final.tool_calls] == [json.loads(o.arguments) for o in calls]
    summaries = "".join(s.text for o in sdk.output if o.type == "reasoning" for s in o.summary)
    assert final.thinking == summaries
    usage = sdk.usage
    assert final.usage.input_tokens + final.usage.cache_read_tokens == usage.input_tokens
    assert final.usage.cache_read_tokens == usage.input_tokens_details.cached_tokens
    assert final.usage.output_tokens == usage.output_tokens
    assert final.usage.reasoning_tokens == usage.output_tokens_details.reasoning_tokens
    assert final.id == sdk.id and final.model == sdk.model
    assert final.raw_stop_reason == sdk.status == "completed"
    assert final.complete


def test_events_and_final_equal_sdk_final_response(emulator: ProviderEmulator) -> None:
    emulator.enqueue(TOOLS_SCRIPT, TOOLS_SCRIPT, TOOLS_SCRIPT)
    events, error = collect(stream(emulator))
    assert error is None
    check_grammar(events)
    assert {e.type for e in events} == {
        "stream_start",
        "thinking_delta",
        "text_delta",
        "tool_call_start",
        "tool_call_delta",
        "tool_call_end",
        "usage_update",
        "stream_end",
    }
    final = fold(events)
    assert final == stream(emulator).pipe(rso.final()).run().model_copy(
        update={"id": final.id, "request_id": final.request_id}
    )
    with client(emulator).responses.stream(model="gpt-test", input="hi") as sdk_stream:
        sdk = sdk_stream.get_final_response()
    assert final.text == TOOLS_SCRIPT.text and final.thinking == TOOLS_SCRIPT.thinking
    assert final.stop_reason == "tool_use"
    # ids differ per emulated request; compare everything else with the SDK
    assert_equals_sdk(final.model_copy(update={"id": sdk.id}), sdk)
    assert final.request_id and final.request_id.startswith("req_")
    body = emulator.requests[0].body
    assert body["stream"] is True and body["model"] == "gpt-test" and body["input"] == "hi"


class Replay:
    """Records one emulator response body and replays the same bytes to any client."""

    def __init__(self, emu: ProviderEmulator, script: ResponseScript) -> None:
        emu.enqueue(script)
        with httpx2.Client() as http:
            reply = http.post(
                emu.openai_base_url + "/responses", json={"model": "gpt-test", "input": "hi", "stream": True}
            )
        self.body = reply.content
        self.headers = {"content-type": "text/event-stream", "x-request-id": reply.headers["x-request-id"]}

    def client(self) -> openai.OpenAI:
        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, headers=self.headers, content=self.body)

        http = httpx2.Client(transport=httpx2.MockTransport(handler))
        c = openai.OpenAI(api_key=API_KEY, base_url="http://127.0.0.1:9/v1", max_retries=0, http_client=http)
        _SYNC_CLIENTS.append(c)
        return c


@pytest.mark.parametrize(
    "script",
    [
        TOOLS_SCRIPT,
        ResponseScript(text="Just text, with ünïcödé ✓ and\nnewlines.", chunking="chars", chunk_size=2),
        ResponseScript(
            thinking="Only thinking then a call.",
            tool_calls=[
                ScriptedToolCall(id="call_x", name="noop", arguments="{}"),
            ],
            stop_reason="tool_use",
            cache_read_input_tokens=7,
        ),
    ],
    ids=["tools", "text", "thinking-tool"],
)
def test_final_equals_sdk_on_the_same_bytes(emulator: ProviderEmulator, script: ResponseScript) -> None:
    replay = Replay(emulator, script)
    final = from_openai_responses(replay.client(), model="gpt-test", input="hi").pipe(rso.final()).run()
    with replay.client().responses.stream(model="gpt-test", input="hi") as sdk_stream:
        sdk = sdk_stream.get_final_response()
    assert_equals_sdk(final, sdk)
    assert final.request_id == replay.headers["x-request-id"]
    assert final.provider == "openai-responses"


@pytest.mark.asyncio
async def test_async_client(emulator: ProviderEmulator) -> None:
    emulator.enqueue(TOOLS_SCRIPT, TOOLS_SCRIPT)
    async with async_client(emulator) as aclient:
        source = from_openai_responses(aclient, model="gpt-test", input="hi")
        response: Response = await source.pipe(rso.final())
        async with aclient.responses.stream(model="gpt-test", input="hi") as sdk_stream:
            sdk = await sdk_stream.get_final_response()
    assert response.text == TOOLS_SCRIPT.text
    assert [c.arguments for c in response.tool_calls] == [
        {"city": "Zürich", "unit": "celsius"},
        {"tz": "Asia/Tokyo"},
    ]
    assert response.stop_reason == "tool_use"
    assert_equals_sdk(response.model_copy(update={"id": sdk.id}), sdk)


@pytest.mark.asyncio
async def test_async_error_event_carries_partial(emulator: ProviderEmulator) -> None:
    emulator.enqueue(
        ResponseScript(text="alpha beta gamma delta", fault=Fault(kind="error_event", after_events=6))
    )
    async with async_client(emulator) as aclient:
        source = from_openai_responses(aclient, model="gpt-test", input="hi")
        with pytest.raises(ProviderError) as info:
            await source.pipe(rso.final())
    assert info.value.in_stream and info.value.partial.text


def test_reasoning_summary_end_to_end(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="42.", thinking="Let me think about it.", reasoning_tokens=9))
    events, error = collect(stream(emulator, reasoning={"effort": "low", "summary": "auto"}))
    assert error is None
    check_grammar(events)
    thinking = [e for e in events if e.type == "thinking_delta"]
    assert "".join(e.text for e in thinking) == "Let me think about it."
    assert all(e.provider_details == {"reasoning": "summary", "summary_index": 0} for e in thinking)
    final = fold(events)
    assert final.text == "42." and final.usage.reasoning_tokens == 9 and final.stop_reason == "end_turn"
    assert emulator.requests[0].body["reasoning"] == {"effort": "low", "summary": "auto"}


def test_refusal_end_to_end(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(refusal="I can't help with that.", stop_reason="refusal"))
    events, error = collect(stream(emulator))
    assert error is None
    check_grammar(events)
    final = fold(events)
    assert final.text == "I can't help with that." and final.stop_reason == "refusal"
    assert all(e.provider_details == {"refusal": True} for e in events if e.type == "text_delta")


def test_incomplete_max_output_tokens_end_to_end(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="This answer is cut", stop_reason="max_tokens", output_tokens=5))
    response = stream(emulator, max_output_tokens=16).pipe(rso.final()).run()
    assert response.text == "This answer is cut"
    assert response.stop_reason == "max_tokens" and response.raw_stop_reason == "max_output_tokens"
    assert response.usage.output_tokens == 5 and response.complete


def test_incomplete_content_filter_end_to_end(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="Some text", stop_reason="content_filter"))
    response = stream(emulator).pipe(rso.final()).run()
    assert response.stop_reason == "content_filter" and response.raw_stop_reason == "content_filter"


@pytest.mark.parametrize(
    ("error_type", "retryable", "status"),
    [(None, True, 500), ("rate_limit_exceeded", True, 429), ("invalid_prompt", False, 400)],
)
def test_error_event_end_to_end(
    emulator: ProviderEmulator, error_type: str | None, retryable: bool, status: int
) -> None:
    # The emulator writes the top-level `error` event followed by `response.failed`.
    emulator.enqueue(
        ResponseScript(
            text="alpha beta gamma delta",
            fault=Fault(
                kind="error_event", after_events=6, status=500, error_type=error_type, message="Oops"
            ),
        )
    )
    events, error = collect(stream(emulator))
    assert isinstance(error, ProviderError)
    assert error.in_stream and error.retryable is retryable and error.status_code == status
    assert error.error_type == (error_type or "server_error")
    text = "".join(e.text for e in events if e.type == "text_delta")
    assert text and error.partial.text == text and not error.partial.complete
    assert error.request_id and error.request_id == events[0].request_id  # type: ignore[union-attr]
    assert API_KEY not in str(error) and API_KEY not in repr(error)


def test_dropped_connection_is_interrupted_with_partial(emulator: ProviderEmulator) -> None:
    emulator.enqueue(
        ResponseScript(text="alpha beta gamma delta epsilon", fault=Fault(kind="drop", after_events=7))
    )
    events, error = collect(stream(emulator))
    assert isinstance(error, StreamInterruptedError) and error.retryable
    text = "".join(e.text for e in events if e.type == "text_delta")
    assert text and error.partial.text == text and not error.partial.complete


def test_unknown_event_is_skipped_end_to_end(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="one two three", unknown_event_after=5))
    response = stream(emulator).pipe(rso.final()).run()
    assert response.text == "one two three" and response.complete


@pytest.mark.parametrize("status", [429, 500, 503])
def test_http_error_before_stream(emulator: ProviderEmulator, status: int) -> None:
    emulator.enqueue(ResponseScript(text="x", fault=Fault(kind="http_error", status=status, retry_after=2)))
    events, error = collect(stream(emulator))
    assert events == []
    assert isinstance(error, ProviderError)
    assert error.status_code == status and error.retryable and not error.in_stream
    assert error.retry_after == 2.0 and error.request_id
    assert error.partial == Response()
    assert API_KEY not in str(error)


def test_http_400_is_not_retryable(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(fault=Fault(kind="http_error", status=400, message="bad input")))
    _, error = collect(stream(emulator))
    assert isinstance(error, ProviderError) and error.status_code == 400 and not error.retryable
    assert "bad input" in str(error)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_split_writes_mid_utf8_and_mid_json(emulator: ProviderEmulator, seed: int) -> None:
    text = "Grüße aus 東京 👩‍👩‍👧 and naïve café ☕ — ok"
    tool = ScriptedToolCall(
        id="call_1", name="say", arguments='{"text": "héllo 世界 🌍", "n": [1, 2]}', fragment_size=2
    )
    emulator.enqueue(
        ResponseScript(
            text=text,
            thinking="思考 🧠",
            chunking="chars",
            chunk_size=1,
            tool_calls=[tool],
            stop_reason="tool_use",
            write_split_seed=seed,
        )
    )
    response = stream(emulator).pipe(rso.final()).run()
    assert response.text == text and response.thinking == "思考 🧠"
    assert response.tool_calls[0].arguments == {"text": "héllo 世界 🌍", "n": [1, 2]}


def test_invalid_tool_json_end_to_end(emulator: ProviderEmulator) -> None:
    tool = ScriptedToolCall(id="call_1", name="f", arguments='{"city": "Par', fragment_size=4)
    emulator.enqueue(ResponseScript(text="Calling.", tool_calls=[tool], stop_reason="tool_use"))
    _, error = collect(stream(emulator))
    assert isinstance(error, ToolArgumentsError)
    assert error.raw_arguments == '{"city": "Par' and error.name == "f" and error.tool_call_id == "call_1"
    assert error.partial.text == "Calling."


def test_text_operator(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="a b c"))
    pieces = stream(emulator).pipe(rso.text(), ops.to_list()).run()
    assert "".join(pieces) == "a b c"


# --- cold semantics and disposal -------------------------------------------------------------------------


def test_cold_each_subscription_is_one_request(emulator: ProviderEmulator) -> None:
    source = stream(emulator)
    time.sleep(0.1)
    assert emulator.requests == []
    first = source.pipe(rso.final()).run()
    second = source.pipe(rso.final()).run()
    assert len(emulator.requests) == 2
    assert first.request_id != second.request_id and first.id != second.id


def test_dispose_while_stalled_closes_the_connection(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="one two three four", fault=Fault(kind="stall", after_events=6)))
    got: list[StreamEvent] = []
    first_text = threading.Event()

    def on_next(event: StreamEvent) -> None:
        got.append(event)
        if event.type == "text_delta":
            first_text.set()

    disposable = stream(emulator).subscribe(on_next)
    assert first_text.wait(5)
    time.sleep(0.2)  # the reader is now blocked on the stalled socket
    t0 = time.monotonic()
    disposable.dispose()
    record = emulator.wait_for_disconnect(-1, timeout=2.0)
    assert record.client_disconnected and not record.completed
    assert record.disconnected_at is not None and record.disconnected_at - t0 < 1.0
    assert got[-1].type == "text_delta"


def test_dispose_before_the_first_event_closes_the_connection(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="late", first_event_delay=30))
    disposable = stream(emulator).subscribe(lambda e: None)
    deadline = time.monotonic() + 5
    while not emulator.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    disposable.dispose()
    record = emulator.wait_for_disconnect(-1, timeout=2.0)
    assert record.client_disconnected


@pytest.mark.asyncio
async def test_async_disposal_closes_the_connection(emulator: ProviderEmulator) -> None:
    emulator.enqueue(ResponseScript(text="a b c d", fault=Fault(kind="stall", after_events=5)))
    async with async_client(emulator) as aclient:
        source = from_openai_responses(aclient, model="gpt-test", input="hi")
        got: list[StreamEvent] = []
        disposable = source.subscribe(got.append)
        for _ in range(300):
            if any(e.type == "text_delta" for e in got):
                break
            await asyncio.sleep(0.01)
        assert any(e.type == "text_delta" for e in got)
        disposable.dispose()
        record = await asyncio.to_thread(emulator.wait_for_disconnect, -1, 2.0)
    assert record.client_disconnected and not record.completed

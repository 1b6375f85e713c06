"""The SSE decoder and normalisers are independent of how the body is split into reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxstream.errors import StreamDecodeError
from rxstream.events import StreamEvent
from rxstream.providers._sse import SSEDecoder
from rxstream.providers.anthropic import AnthropicNormaliser
from rxstream.providers.openai_chat import OpenAIChatNormaliser


def sse(event: str | None, data: object) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


ANTHROPIC_BODY = b"".join(
    [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "model": "claude",
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                },
            },
        ),
        sse("ping", {"type": "ping"}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        *[
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
            )
            for t in ["Grü", "ße 東", "京 👩‍👩‍👧", " ok"]
        ],
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
            },
        ),
        *[
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": p},
                },
            )
            for p in ['{"q": "hé', "llo", ' 世界"}']
        ],
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        sse(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]
)


def decode(
    body: bytes, cuts: list[int], normaliser: AnthropicNormaliser | OpenAIChatNormaliser
) -> list[StreamEvent]:
    decoder = SSEDecoder()
    events: list[StreamEvent] = []
    points = sorted({c for c in cuts if 0 < c < len(body)})
    start = 0
    for point in [*points, len(body)]:
        for item in decoder.feed(body[start:point]):
            events.extend(normaliser.feed_sse(item.event, item.data))
        start = point
    for item in decoder.flush():
        events.extend(normaliser.feed_sse(item.event, item.data))
    events.extend(normaliser.finish())
    return events


def strip_ids(events: list[StreamEvent]) -> list[dict[str, object]]:
    return [e.model_dump(exclude={"stream_id"}) for e in events]


REFERENCE = strip_ids(decode(ANTHROPIC_BODY, [], AnthropicNormaliser("s")))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(ANTHROPIC_BODY)), max_size=40))
def test_anthropic_events_do_not_depend_on_read_boundaries(cuts: list[int]) -> None:
    assert strip_ids(decode(ANTHROPIC_BODY, cuts, AnthropicNormaliser("s"))) == REFERENCE


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=len(ANTHROPIC_BODY)), max_size=20),
    st.sampled_from(["\r\n", "\r"]),
)
def test_crlf_and_cr_line_endings(cuts: list[int], newline: str) -> None:
    body = ANTHROPIC_BODY.replace(b"\n", newline.encode())
    assert strip_ids(decode(body, cuts, AnthropicNormaliser("s"))) == REFERENCE


def test_reference_events() -> None:
    types = [e["type"] for e in REFERENCE]
    assert types[0] == "stream_start" and types[-1] == "stream_end"
    text = "".join(str(e["text"]) for e in REFERENCE if e["type"] == "text_delta")
    assert text == "Grüße 東京 👩‍👩‍👧 ok"
    end = next(e for e in REFERENCE if e["type"] == "tool_call_end")
    assert end["arguments"] == {"q": "héllo 世界"}


def test_comments_multiline_data_and_missing_final_blank_line() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b": keep-alive\n\nevent: x\ndata: a\ndata:b\n\ndata: tail")
    events += decoder.flush()
    assert [(e.event, e.data) for e in events] == [("x", b"a\nb"), (None, b"tail")]


OPENAI_BODY = b"".join(
    [
        b'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',  # noqa: E501
        *[
            (
                "data: "
                + json.dumps(
                    {"id": "c1", "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]},
                    ensure_ascii=False,
                )
                + "\n\n"
            ).encode()
            for t in ["na", "ïve ", "☕"]
        ],
        b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
        b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}\n\n',  # noqa: E501
        b"data: [DONE]\n\n",
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(OPENAI_BODY)), max_size=30))
def test_openai_events_do_not_depend_on_read_boundaries(cuts: list[int]) -> None:
    reference = strip_ids(decode(OPENAI_BODY, [], OpenAIChatNormaliser("s")))
    assert strip_ids(decode(OPENAI_BODY, cuts, OpenAIChatNormaliser("s"))) == reference
    end = reference[-1]
    assert end["type"] == "stream_end" and end["stop_reason"] == "end_turn"
    assert end["usage"] == {
        "input_tokens": 6,
        "output_tokens": 3,
        "cache_read_tokens": 4,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
    }


def test_azure_prompt_filter_chunk_is_skipped() -> None:
    norm = OpenAIChatNormaliser("s", request_model="gpt")
    azure = b'{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}'  # noqa: E501
    assert norm.feed_sse(None, azure) == []
    events = norm.feed_sse(
        None, b'{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hi"}}]}'
    )
    assert [e.type for e in events] == ["stream_start", "text_delta"]
    start = events[0]
    assert start.type == "stream_start" and start.response_id == "c1" and start.model == "gpt-4o"


def test_a_long_line_split_into_many_chunks_decodes_once_and_whole() -> None:
    """Issue 7, defect 5: joining on every chunk made one long line quadratic."""
    line = b"data: " + b"x" * 3_000_000 + b"\n\n"
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(line), 4096):
        events += decoder.feed(line[i : i + 4096])
    assert [len(e.data) for e in events] == [3_000_000]


def test_a_line_beyond_max_event_bytes_is_a_decode_error() -> None:
    from rxstream.errors import StreamDecodeError

    decoder = SSEDecoder(max_event_bytes=1000)
    decoder.feed(b"data: " + b"x" * 500)
    try:
        decoder.feed(b"y" * 600)
    except StreamDecodeError as exc:
        assert "max_event_bytes" in str(exc)
    else:
        raise AssertionError("no StreamDecodeError")


def test_many_data_lines_beyond_max_event_bytes_are_a_decode_error() -> None:
    from rxstream.errors import StreamDecodeError

    decoder = SSEDecoder(max_event_bytes=1000)
    try:
        decoder.feed(b"data: 0123456789\n" * 200)
    except StreamDecodeError:
        pass
    else:
        raise AssertionError("no StreamDecodeError")


@given(st.integers(min_value=1, max_value=64))
@settings(max_examples=30, deadline=None)
def test_pending_long_lines_survive_any_chunk_size(size: int) -> None:
    body = b"event: a\ndata: " + b"z" * 300 + b"\n\nevent: b\ndata: 2\n\ndata: tail"
    decoder = SSEDecoder()
    out = []
    for i in range(0, len(body), size):
        out += decoder.feed(body[i : i + size])
    out += decoder.flush()
    assert [(e.event, e.data) for e in out] == [("a", b"z" * 300), ("b", b"2"), (None, b"tail")]


def test_iter_feed_yields_a_chunks_first_event_before_decoding_the_rest() -> None:
    # A fast server's 64 KiB read holds hundreds of events: the first one must not wait for
    # the rest to be decoded (time to first event). Proof of laziness: the second event is
    # too big, and that is only found after the first one was handed out.
    decoder = SSEDecoder(max_event_bytes=100)
    chunk = b"data: a\n\n" + b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n\n"
    events = decoder.iter_feed(chunk)
    assert next(events).data == b"a"
    with pytest.raises(StreamDecodeError):
        next(events)

"""Wrong-typed or malformed wire fields end a stream with a typed `StreamDecodeError`.

Whatever the wire carries, a normaliser never emits an event with a wrong-typed field and
never raises an untyped exception (issue 7, defects 2 and 6): a non-string ``text``, an
integer ``model`` or message ``id``, a usage count ``"abc"`` or ``1e400``, an event-stream
frame with valid CRCs but bad headers or a non-JSON payload, invalid base64 in an invoke
chunk. Each case is checked on the pure normaliser and end to end through the official SDK
(boto3 for Bedrock) reading the exact bytes from a loopback server, where the consumer must
get exactly one terminal, a `StreamDecodeError` that is not retryable, whose ``.partial``
holds the text delivered before it. A property test mutates every field of valid recorded
streams of all five formats with values of the wrong type.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import selectors
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import boto3
import openai
import pytest
import reactivex
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import rxstream as rxs
from rxstream.errors import StreamDecodeError, StreamError
from rxstream.events import StreamEvent, TextDelta, stream_event_adapter
from rxstream.providers.anthropic import AnthropicNormaliser
from rxstream.providers.bedrock import (
    BedrockConverseNormaliser,
    BedrockInvokeNormaliser,
    from_bedrock,
    from_bedrock_invoke,
)
from rxstream.providers.openai_chat import OpenAIChatNormaliser
from rxstream.providers.openai_responses import OpenAIResponsesNormaliser
from rxstream.response import ResponseAccumulator
from rxstream.testing import ResponseScript, ScriptedToolCall
from rxstream.testing._anthropic import AnthropicStream
from rxstream.testing._bedrock import BedrockConverseStream, BedrockInvokeStream
from rxstream.testing._content import Ids
from rxstream.testing._eventstream import encode_event, encode_message
from rxstream.testing._openai import ChatCompletionsStream, ResponsesStream
from rxstream.testing._wire import WireEvent, WireStream

API_KEY = "sk-secret-test-key-0123456789"
SSE = "text/event-stream; charset=utf-8"
EVENT_STREAM = "application/vnd.amazon.eventstream"


# -- a loopback server that answers with fixed bytes ----------------------------------------


class RawServer:
    """Answers each HTTP request on 127.0.0.1 with one fixed ``200`` body, then closes.

    The official SDKs read these bytes as they would read a provider's; nothing of rxstream
    is involved on the server side.
    """

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._wake_w.send(b"x")
        self._thread.join(10)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                conn, _ = self._listener.accept()
                with conn:
                    self._answer(conn)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return
            rest += chunk
        head_out = (
            "HTTP/1.1 200 OK\r\n"
            f"content-type: {self.content_type}\r\n"
            f"content-length: {len(self.body)}\r\n"
            "request-id: req_raw\r\nx-request-id: req_raw\r\nx-amzn-requestid: req_raw\r\n"
            "connection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):  # the client may hang up after its terminal
            conn.sendall(head_out.encode() + self.body)


class Outcome:
    """What one subscription delivered: events, and its one terminal."""

    def __init__(self) -> None:
        self.events: list[StreamEvent] = []
        self.errors: list[BaseException] = []
        self.completed = 0
        self.done = threading.Event()

    @property
    def text(self) -> str:
        return "".join(e.text for e in self.events if isinstance(e, TextDelta))


def run_to_terminal(stream: reactivex.Observable[StreamEvent], timeout: float = 20.0) -> Outcome:
    """Subscribe and wait (with a deadline) for the terminal; a hang fails the test."""
    out = Outcome()

    def on_error(exc: BaseException) -> None:
        out.errors.append(exc)
        out.done.set()

    def on_completed() -> None:
        out.completed += 1
        out.done.set()

    subscription = stream.subscribe(out.events.append, on_error, on_completed)
    try:
        assert out.done.wait(timeout), "no terminal: the consumer would hang"
    finally:
        subscription.dispose()
    return out


def assert_decode_error(out: Outcome, text_before: str) -> StreamDecodeError:
    assert out.completed == 0 and len(out.errors) == 1, (out.completed, out.errors)
    err = out.errors[0]
    assert isinstance(err, StreamDecodeError), repr(err)
    assert err.retryable is False
    assert err.partial.text == text_before == out.text
    return err


# -- wire bodies -----------------------------------------------------------------------------


def sse(*events: tuple[str | None, Any]) -> bytes:
    out = b""
    for name, payload in events:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        out += (f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode()
    return out


def anthropic_body(*, model: Any = "claude-test", msg_id: Any = "msg_1", bad_text: Any = 5) -> bytes:
    start = {
        "type": "message_start",
        "message": {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": []},
    }
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

    def delta(text: Any) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}

    return sse(
        ("message_start", start),
        ("content_block_start", block),
        ("content_block_delta", delta("Hel")),
        ("content_block_delta", delta(bad_text)),
        ("message_stop", {"type": "message_stop"}),
    )


def openai_body(*, model: Any = "gpt-test", content: Any = "lo", usage: Any = 3) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    last = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
        "choices": [],
        "usage": {"prompt_tokens": usage, "completion_tokens": 2, "total_tokens": 5},
    }
    return sse(
        (None, chunk({"role": "assistant", "content": "Hel"})),
        (None, chunk({"content": content})),
        (None, chunk({}, "stop")),
        (None, last),
        (None, "[DONE]"),
    )


def converse_frames(bad: bytes | None = None, *, text: Any = "lo") -> bytes:
    def delta(t: Any) -> bytes:
        return encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})

    out = encode_event("messageStart", {"role": "assistant"}) + delta("Hel")
    out += bad if bad is not None else delta(text)
    out += encode_event("contentBlockStop", {"contentBlockIndex": 0})
    out += encode_event("messageStop", {"stopReason": "end_turn"})
    return out


def raw_frame(headers: bytes, payload: bytes) -> bytes:
    """An event-stream frame with valid CRCs around arbitrary header and payload bytes."""
    prelude = struct.pack(">II", 16 + len(headers) + len(payload), len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    frame = prelude + headers + payload
    return frame + struct.pack(">I", zlib.crc32(frame))


def string_header(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + bytes([7]) + struct.pack(">H", len(value)) + value


EVENT_HEADERS = string_header(b":event-type", b"contentBlockDelta") + string_header(
    b":message-type", b"event"
)


def invoke_frames(bad_chunk: bytes) -> bytes:
    def chunk(event: dict[str, Any]) -> bytes:
        raw = json.dumps(event).encode()
        return encode_event("chunk", {"bytes": base64.b64encode(raw).decode()})

    start = {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "content": []}}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}
    return chunk(start) + chunk(block) + chunk(delta) + bad_chunk + chunk({"type": "message_stop"})


SSE_CASES: dict[str, tuple[str, bytes, str]] = {
    "anthropic-text-int": ("anthropic", anthropic_body(bad_text=5), "Hel"),
    "anthropic-text-list": ("anthropic", anthropic_body(bad_text=["x"]), "Hel"),
    "anthropic-model-int": ("anthropic", anthropic_body(model=7), ""),
    "anthropic-id-int": ("anthropic", anthropic_body(msg_id=123), ""),
    "openai-content-list": ("openai", openai_body(content=[1]), "Hel"),
    "openai-model-int": ("openai", openai_body(model=7), ""),
    "openai-usage-abc": ("openai", openai_body(usage="abc"), "Hello"),
    "openai-usage-1e400": (
        "openai",
        openai_body(usage=json.loads("1e400")).replace(b"Infinity", b"1e400"),
        "Hello",
    ),
}


@pytest.mark.parametrize("case", sorted(SSE_CASES))
def test_sse_wrong_types_end_with_a_decode_error(case: str) -> None:
    provider, body, text_before = SSE_CASES[case]
    with RawServer(body, SSE) as server:
        stream: reactivex.Observable[StreamEvent]
        if provider == "anthropic":
            a_client = anthropic.Anthropic(api_key=API_KEY, base_url=server.url, max_retries=0)
            with a_client:
                stream = rxs.from_anthropic(
                    a_client, model="m", max_tokens=8, messages=[{"role": "user", "content": "x"}]
                )
                out = run_to_terminal(stream)
        else:
            o_client = openai.OpenAI(api_key=API_KEY, base_url=server.url + "/v1", max_retries=0)
            with o_client:
                stream = rxs.from_openai(o_client, model="m", messages=[{"role": "user", "content": "x"}])
                out = run_to_terminal(stream)
    err = assert_decode_error(out, text_before)
    assert API_KEY not in str(err)


EVENT_STREAM_CASES: dict[str, tuple[str, bytes, str]] = {
    "converse-text-int": ("bedrock", converse_frames(text=7), "Hel"),
    "converse-non-json-payload": ("bedrock", converse_frames(raw_frame(EVENT_HEADERS, b"{not json")), "Hel"),
    "converse-invalid-utf8-payload": (
        "bedrock",
        converse_frames(raw_frame(EVENT_HEADERS, b'{"a":"\xff"}')),
        "Hel",
    ),
    "converse-header-name-invalid-utf8": (
        "bedrock",
        converse_frames(raw_frame(string_header(b"\xff\xfe", b"x"), b"{}")),
        "Hel",
    ),
    "converse-header-truncated": (
        "bedrock",
        converse_frames(raw_frame(b"\x0b:event-type\x07\x00", b"")),
        "Hel",
    ),
    "converse-header-unknown-type": ("bedrock", converse_frames(raw_frame(b"\x01a\x0e", b"{}")), "Hel"),
    "invoke-invalid-base64": (
        "bedrock-invoke",
        invoke_frames(encode_event("chunk", {"bytes": "abc"})),
        "Hel",
    ),
    "invoke-text-int": (
        "bedrock-invoke",
        invoke_frames(
            encode_event(
                "chunk",
                {
                    "bytes": base64.b64encode(
                        json.dumps(
                            {
                                "type": "content_block_delta",
                                "index": 0,
                                "delta": {"type": "text_delta", "text": 1},
                            }
                        ).encode()
                    ).decode()
                },
            )
        ),
        "Hel",
    ),
    "invoke-chunk-not-json": (
        "bedrock-invoke",
        invoke_frames(encode_message([(":event-type", "chunk"), (":message-type", "event")], b"nope")),
        "Hel",
    ),
}


@pytest.mark.parametrize("case", sorted(EVENT_STREAM_CASES))
def test_event_stream_malformed_frames_end_with_a_decode_error(case: str) -> None:
    provider, body, text_before = EVENT_STREAM_CASES[case]
    with RawServer(body, EVENT_STREAM) as server:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="AKIARXSTREAMTESTKEY7",
            aws_secret_access_key="rxstream/Secret+Key/do-not-leak",
        )
        try:
            if provider == "bedrock":
                stream = from_bedrock(
                    client, modelId="m", messages=[{"role": "user", "content": [{"text": "x"}]}]
                )
            else:
                stream = from_bedrock_invoke(
                    client, modelId="m", body={"anthropic_version": "bedrock-2023-05-31", "max_tokens": 8}
                )
            out = run_to_terminal(stream)
        finally:
            client.close()
    assert_decode_error(out, text_before)


# -- pure normalisers: targeted cases --------------------------------------------------------


def test_openai_usage_counts_must_be_integers() -> None:
    for bad in ("abc", float("inf"), float("nan"), True, [1], 1.5):
        norm = OpenAIChatNormaliser("s")
        chunk = {"id": "c", "choices": [], "usage": {"prompt_tokens": bad}}
        with pytest.raises(StreamDecodeError):
            norm.feed_chunk(chunk)
    norm = OpenAIChatNormaliser("s")
    (_, usage_event) = norm.feed_chunk({"id": "c", "choices": [], "usage": {"prompt_tokens": 12.0}})
    assert usage_event.model_dump()["usage"]["input_tokens"] == 12


def test_stop_reasons_of_the_wrong_type_are_decode_errors() -> None:
    a = AnthropicNormaliser("s")
    with pytest.raises(StreamDecodeError):
        a.feed_json({"type": "message_delta", "delta": {"stop_reason": ["end_turn"]}})
    o = OpenAIChatNormaliser("s")
    with pytest.raises(StreamDecodeError):
        o.feed_chunk({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": {"x": 1}}]})
    b = BedrockConverseNormaliser("s")
    with pytest.raises(StreamDecodeError):
        b.feed({"messageStop": {"stopReason": ["end_turn"]}})
    with pytest.raises(StreamDecodeError):
        BedrockInvokeNormaliser("s").feed({"chunk": {"bytes": [300]}})


# -- property: mutate every field of recorded streams ----------------------------------------

SCRIPT = ResponseScript(
    text="Hi there, Zürich.",
    thinking="hmm",
    tool_calls=[
        ScriptedToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Z"}', fragment_size=4)
    ],
    stop_reason="tool_use",
    chunking="chars",
    chunk_size=4,
)

_WIRE: dict[str, tuple[type[WireStream], dict[str, Any]]] = {
    "anthropic": (AnthropicStream, {"model": "claude-test", "max_tokens": 64, "stream": True}),
    "openai": (
        ChatCompletionsStream,
        {"model": "gpt-test", "stream": True, "stream_options": {"include_usage": True}},
    ),
    "openai-responses": (ResponsesStream, {"model": "gpt-test", "stream": True}),
    "bedrock": (BedrockConverseStream, {"messages": []}),
    "bedrock-invoke": (BedrockInvokeStream, {"anthropic_version": "bedrock-2023-05-31", "messages": []}),
}


def recorded(provider: str) -> list[WireEvent]:
    import random

    cls, body = _WIRE[provider]
    return cls(SCRIPT, body, Ids(rng=random.Random(7), created=1), "req_1").events()


Feed = Callable[[Any, str, Any], list[StreamEvent]]


def _feed(provider: str) -> tuple[Any, Feed]:
    if provider == "anthropic":
        return (
            AnthropicNormaliser("s"),
            lambda n, name, p: (
                n.feed_json(p) if isinstance(p, dict) else n.feed_sse(name, json.dumps(p).encode())
            ),
        )
    if provider == "openai":

        def feed_openai(n: Any, name: str, p: Any) -> list[StreamEvent]:
            if isinstance(p, dict):
                return n.feed_chunk(p)  # type: ignore[no-any-return]
            return n.feed_sse(None, p.encode() if isinstance(p, str) else json.dumps(p).encode())  # type: ignore[no-any-return]

        return OpenAIChatNormaliser("s"), feed_openai
    if provider == "openai-responses":
        return (
            OpenAIResponsesNormaliser("s"),
            lambda n, name, p: (
                n.feed_json(p) if isinstance(p, dict) else n.feed_sse(name, json.dumps(p).encode())
            ),
        )
    if provider == "bedrock":
        return BedrockConverseNormaliser("s"), lambda n, name, p: n.feed({name: p})
    return BedrockInvokeNormaliser("s"), lambda n, name, p: n.feed(
        {"chunk": {"bytes": json.dumps(p, allow_nan=False).encode()}}
    )


WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _mutate(data: st.DataObject, payload: Any) -> Any:
    """Replace one node of ``payload`` (possibly the root) with a value of any type."""
    if isinstance(payload, dict) and payload and data.draw(st.booleans(), label="descend"):
        key = data.draw(st.sampled_from(sorted(payload)), label="key")
        if data.draw(st.integers(0, 9), label="delete?") == 0:
            return {k: v for k, v in payload.items() if k != key}
        return {**payload, key: _mutate(data, payload[key])}
    if isinstance(payload, list) and payload and data.draw(st.booleans(), label="descend"):
        i = data.draw(st.integers(0, len(payload) - 1), label="item")
        return [*payload[:i], _mutate(data, payload[i]), *payload[i + 1 :]]
    return data.draw(WRONG, label="value")


@pytest.mark.parametrize("provider", sorted(_WIRE))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fields_give_typed_errors_and_well_typed_events(provider: str, data: st.DataObject) -> None:
    wire = [w for w in recorded(provider) if not w.exception]
    payloads = [copy.deepcopy(w.payload) for w in wire]
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        i = data.draw(st.integers(0, len(payloads) - 1), label="event")
        payloads[i] = _mutate(data, payloads[i])
    # Invoke chunks are JSON text on the wire, which cannot carry NaN or infinity.
    assume(provider != "bedrock-invoke" or not any(_has_nan_or_inf(p) for p in payloads))
    norm, feed = _feed(provider)
    acc = ResponseAccumulator()
    delivered: list[StreamEvent] = []
    try:
        for w, payload in zip(wire, payloads, strict=True):
            delivered.extend(feed(norm, w.name, payload))
        delivered.extend(norm.finish())
    except StreamError as exc:
        if isinstance(exc, StreamDecodeError):
            assert exc.retryable is False
    # Every event is exactly what validation would have built from its own fields.
    for event in delivered:
        assert stream_event_adapter.validate_python(event.model_dump()) == event, event
        acc.add(event)
    snapshot = acc.snapshot()  # never raises on our own events
    assert snapshot.text == "".join(e.text for e in delivered if isinstance(e, TextDelta))


def _has_nan_or_inf(value: Any) -> bool:
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return any(_has_nan_or_inf(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan_or_inf(v) for v in value)
    return False


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    before = {t.name for t in threading.enumerate()}
    yield
    assert "raw-server" not in {t.name for t in threading.enumerate()} - before

"""RawBytesServer, record_wire and encode_frame: exact bytes out, records in, real SDKs on top."""

from __future__ import annotations

import gc
import json
import re
import socket
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import boto3
import botocore.eventstream
import openai
import pytest
from botocore.config import Config
from reactivex import Observable

import rxstream as rxs
from rxstream.errors import StreamInterruptedError
from rxstream.events import StreamEvent
from rxstream.testing import (
    FrameHeader,
    Pause,
    RawBytesServer,
    RawReply,
    RawRequest,
    ResponseScript,
    encode_frame,
    record_wire,
)
from rxstream.testing._eventstream import encode_message

TEXT = "Hé 雪 👋 raw bytes"
PROVIDERS = ["anthropic", "openai", "openai-responses", "bedrock", "bedrock-invoke"]


@pytest.fixture
def server() -> Iterator[RawBytesServer]:
    with RawBytesServer() as srv:
        yield srv


def raw_request(server: RawBytesServer, body: bytes = b"{}", extra: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=5)
    head = f"POST /v1/x HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    sock.sendall(head.encode() + body)
    return sock


def read_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while data := sock.recv(65536):
        out += data
    return bytes(out)


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    out = bytearray()
    while marker not in out:
        data = sock.recv(65536)
        assert data, out
        out += data
    return bytes(out)


def source(provider: str, server: RawBytesServer, clients: list[Any]) -> Observable[StreamEvent]:
    if provider == "anthropic":
        client: Any = anthropic.Anthropic(api_key="sk-raw", base_url=server.anthropic_base_url, max_retries=0)
        clients.append(client)
        return rxs.from_anthropic(
            client, model="m", max_tokens=9, messages=[{"role": "user", "content": "x"}]
        )
    if provider.startswith("openai"):
        client = openai.OpenAI(api_key="sk-raw", base_url=server.openai_base_url, max_retries=0)
        clients.append(client)
        if provider == "openai":
            return rxs.from_openai(client, model="m", messages=[{"role": "user", "content": "x"}])
        return rxs.from_openai_responses(client, model="m", input="x")
    bedrock = boto3.client(
        "bedrock-runtime",
        endpoint_url=server.bedrock_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}),
    )
    clients.append(bedrock)
    if provider == "bedrock":
        return rxs.from_bedrock(bedrock, modelId="m", messages=[{"role": "user", "content": [{"text": "x"}]}])
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 9, "messages": []}
    return rxs.from_bedrock_invoke(bedrock, modelId="m", body=json.dumps(body))


def run(stream: Observable[StreamEvent]) -> tuple[list[StreamEvent], BaseException | None]:
    events: list[StreamEvent] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    stream.subscribe(events.append, on_error, done.set)
    assert done.wait(15)
    return events, errors[0] if errors else None


# -- the official SDKs on recorded streams -------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sdk_sources_complete_on_a_recorded_stream_split_anywhere(
    server: RawBytesServer, provider: str
) -> None:
    recording = record_wire(provider, ResponseScript(text=TEXT, chunking="chars", chunk_size=3))
    body = recording.body()
    pieces: list[bytes | Pause] = [body[i : i + 7] for i in range(0, len(body), 7)]
    server.enqueue(recording.reply(pieces))
    clients: list[Any] = []
    try:
        events, error = run(source(provider, server, clients))
    finally:
        for client in clients:
            client.close()
    assert error is None
    assert "".join(e.text for e in events if e.type == "text_delta") == TEXT
    assert events[-1].type == "stream_end"
    exchange = server.wait_for_end()
    assert exchange.completed and exchange.bytes_written == len(body)
    assert exchange.request.method == "POST"
    del clients
    gc.collect()  # boto3's client.close() leaves a pooled urllib3 connection open until GC
    server.wait_until_idle()


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_an_incomplete_body_is_a_typed_interruption_with_its_partial(
    server: RawBytesServer, provider: str
) -> None:
    recording = record_wire(provider, ResponseScript(text="one two three four"))
    server.enqueue(recording.reply(recording.encode()[:-3], ending="close"))
    clients: list[Any] = []
    try:
        events, error = run(source(provider, server, clients))
    finally:
        for client in clients:
            client.close()
    assert isinstance(error, StreamInterruptedError)
    assert error.partial.text == "".join(e.text for e in events if e.type == "text_delta") != ""


def test_secret_headers_are_redacted_in_the_record(server: RawBytesServer) -> None:
    server.enqueue(record_wire("anthropic").reply())
    with anthropic.Anthropic(api_key="sk-secret-42", base_url=server.anthropic_base_url) as client:
        run(rxs.from_anthropic(client, model="m", max_tokens=9, messages=[]))
    request = server.requests[0]
    assert request.path == "/v1/messages"
    assert "<redacted>" in (request.header("x-api-key"), request.header("authorization"))
    assert "sk-secret-42" not in repr(server.requests)
    assert json.loads(request.body)["stream"] is True


# -- framing and endings, byte for byte ------------------------------------------------------


def test_chunked_pieces_pauses_and_terminator(server: RawBytesServer) -> None:
    server.enqueue(RawReply(body=[b"ab", Pause(0.01), b"", b"cde"], headers=[("x-a", "1")]))
    with raw_request(server, extra="connection: close\r\n") as sock:
        data = read_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 200 OK",
        b"content-type: text/event-stream; charset=utf-8",
        b"x-a: 1",
        b"transfer-encoding: chunked",
    ]
    assert body == b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"
    exchange = server.wait_for_end()
    assert exchange.completed and not exchange.client_disconnected and exchange.bytes_written == 5


def test_length_framing_can_lie_and_close_framing_ends_with_the_connection(server: RawBytesServer) -> None:
    server.enqueue(
        RawReply(
            body=[b"{}"], content_type="application/json", framing="length", content_length=10, ending="close"
        ),
        RawReply(body=[b"xyz"], content_type=None, framing="close"),
    )
    with raw_request(server) as sock:
        assert read_all(sock).endswith(b"content-length: 10\r\n\r\n{}")
    with raw_request(server) as sock:
        data = read_all(sock)
    assert b"content-type" not in data and data.endswith(b"connection: close\r\n\r\nxyz")
    assert [server.wait_for_end(i).completed for i in (0, 1)] == [True, True]


def test_keep_alive_serves_several_requests_on_one_connection(server: RawBytesServer) -> None:
    server.enqueue(RawReply(body=[b"1"]), RawReply(body=[b"2"], status=429))
    with raw_request(server) as sock:
        first = read_until(sock, b"0\r\n\r\n")
        sock.sendall(
            b"POST /two HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        second = read_until(sock, b"0\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200 OK") and second.startswith(b"HTTP/1.1 429 Too Many Requests")
    assert server.connections_accepted == 1
    assert [r.path for r in server.requests] == ["/v1/x", "/two"]
    assert server.requests[1].body == b"abc"
    server.wait_until_idle()


def test_reset_ending_sends_rst(server: RawBytesServer) -> None:
    server.enqueue(RawReply(body=[b"partial"], ending="reset"))
    with raw_request(server) as sock, pytest.raises(ConnectionResetError):
        while sock.recv(65536):
            pass
    assert server.wait_for_end().completed


def test_stall_ends_when_the_client_goes_away(server: RawBytesServer) -> None:
    server.enqueue(RawReply(body=[b"data: 1\n\n"], ending="stall"))
    sock = raw_request(server)
    read_until(sock, b"data: 1")
    assert not server.exchanges[0].ended
    sock.close()
    exchange = server.wait_for_end()
    assert exchange.client_disconnected and not exchange.completed


def test_client_leaving_during_a_pause_is_seen(server: RawBytesServer) -> None:
    server.enqueue(RawReply(body=[b"a", Pause(30.0), b"b"]))
    sock = raw_request(server)
    read_until(sock, b"1\r\na\r\n")
    sock.close()
    exchange = server.wait_for_end(timeout=5)
    assert exchange.client_disconnected and exchange.bytes_written == 1


def test_stop_aborts_a_stalled_reply_and_joins_its_threads() -> None:
    srv = RawBytesServer(RawReply(headers_delay=60.0))
    srv.start()
    sock = raw_request(srv)
    srv.wait_for_requests(1)
    srv.stop()
    assert read_all(sock) == b""
    sock.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("rxstream-rawserver")]
    srv.stop()  # idempotent


def test_responder_serves_after_the_queue() -> None:
    seen: list[str] = []

    def responder(request: RawRequest) -> RawReply:
        seen.append(request.path)
        return RawReply(body=[b"r"], framing="close")

    with RawBytesServer(responder=responder) as srv:
        srv.enqueue(RawReply(body=[b"q"], framing="close"))
        with raw_request(srv) as sock:
            assert read_all(sock).endswith(b"q")
        with raw_request(srv) as sock:
            assert read_all(sock).endswith(b"r")
    assert seen == ["/v1/x"]


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        _ = RawBytesServer().url


# -- event-stream frames -------------------------------------------------------------------------


def decode(data: bytes) -> list[botocore.eventstream.EventStreamMessage]:
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


def test_encode_frame_defaults_match_encode_message_and_botocore_reads_typed_headers() -> None:
    headers = [(":event-type", "chunk"), (":message-type", "event")]
    assert encode_frame(headers, b"{}") == encode_message(headers, b"{}")
    frame = encode_frame(
        [FrameHeader("flag", 0), FrameHeader("n", 4, (7).to_bytes(4, "big")), FrameHeader.string("s", "é")],
        b"payload",
    )
    (message,) = decode(frame)
    decoded: Any = message.headers
    assert decoded == {"flag": True, "n": 7, "s": "é"}
    assert message.payload == b"payload"


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"prelude_crc": 0}, botocore.eventstream.ChecksumMismatch),
        ({"message_crc": 1}, botocore.eventstream.ChecksumMismatch),
        ({"total_length": 30 * 1024 * 1024}, botocore.eventstream.InvalidPayloadLength),
        ({"headers_length": 200 * 1024}, botocore.eventstream.InvalidHeadersLength),
    ],
)
def test_encode_frame_overrides_make_frames_botocore_rejects(
    override: dict[str, int], error: type[Exception]
) -> None:
    with pytest.raises(error):
        decode(encode_frame([(":message-type", "event")], b"{}", **override))


def test_encode_frame_crc_covers_the_bytes_written() -> None:
    frame = encode_frame([], b"x", total_length=99)
    assert int.from_bytes(frame[8:12], "big") == zlib.crc32(frame[:8])
    assert int.from_bytes(frame[-4:], "big") == zlib.crc32(frame[:-4])


def test_record_wire_covers_every_provider_and_rejects_others() -> None:
    for provider in PROVIDERS:
        recording = record_wire(provider, ResponseScript(text="x"))
        assert recording.events and recording.body()
        assert recording.body() == record_wire(provider, ResponseScript(text="x")).body() == recording.body()
        assert recording.content_type.startswith(("text/event-stream", "application/vnd.amazon.eventstream"))
        error = recording.error_reply(429, "slow down")
        assert error.status == 429 and error.content_type == "application/json"
        assert b"slow down" in b"".join(p for p in error.body if isinstance(p, bytes))
    with pytest.raises(ValueError, match="unknown provider"):
        record_wire("nope")


def test_the_reliability_docs_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    for block in blocks:
        exec(compile(block, str(page), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "StreamInterruptedError True 'Hello raw world, one two'" in out
    assert "StreamDecodeError False" in out

"""The lean event-stream decoder agrees with botocore's own parser on the same bytes."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2
import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from rxstream.providers._eventstream import EventStreamDecodeError, decode_frames
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall

SCRIPT = ResponseScript(
    text="Grüße aus 東京 👩‍👩‍👧",
    thinking="hmm",
    tool_calls=[ScriptedToolCall(id="tu_1", name="f", arguments='{"a": "ü"}', fragment_size=3)],
    stop_reason="tool_use",
    chunking="chars",
    chunk_size=2,
)


def record(path: str, body: dict[str, Any], script: ResponseScript) -> bytes:
    with ProviderEmulator(script) as emu, httpx2.Client() as http:
        return http.post(emu.url + path, json=body).content


BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "converse": ("/model/m/converse-stream", {"messages": [{"role": "user", "content": [{"text": "x"}]}]}),
    "invoke": (
        "/model/m/invoke-with-response-stream",
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": "x"}],
        },
    ),
}


def botocore_reference(data: bytes) -> list[dict[str, Any]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    out: list[dict[str, Any]] = []
    for message in buffer:
        headers: dict[str, Any] = message.headers  # type: ignore[assignment]  # botocore-stubs type it int
        payload = json.loads(message.payload) if message.payload else {}
        if headers[":message-type"] == "event":
            name = headers[":event-type"]
            if name == "chunk":
                payload = {**payload, "bytes": base64.b64decode(payload["bytes"])}
            out.append({name: payload})
        else:
            out.append({headers[":exception-type"]: payload})
    return out


@pytest.mark.parametrize("route", sorted(BODIES))
@pytest.mark.parametrize(
    "script",
    [
        SCRIPT,
        SCRIPT.model_copy(
            update={"fault": Fault(kind="error_event", after_events=4, error_type="throttlingException")}
        ),
    ],
    ids=["ok", "exception"],
)
def test_same_dicts_as_botocore(route: str, script: ResponseScript) -> None:
    path, body = BODIES[route]
    data = record(path, body, script)
    reference = botocore_reference(data)
    assert len(reference) >= 5
    assert list(decode_frames([data])) == reference


DATA = record(*BODIES["converse"], SCRIPT)
REFERENCE = botocore_reference(DATA)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(DATA)), max_size=40))
def test_any_split_decodes_the_same(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [DATA[a:b] for a, b in zip([0, *points], [*points, len(DATA)], strict=True)]
    assert list(decode_frames(pieces)) == REFERENCE


def test_corrupt_crc_and_truncated_body_are_errors() -> None:
    corrupt = bytearray(DATA)
    corrupt[20] ^= 0xFF
    with pytest.raises(EventStreamDecodeError):
        list(decode_frames([bytes(corrupt)]))
    with pytest.raises(EventStreamDecodeError):
        list(decode_frames([DATA[:-3]]))


def test_a_16_mib_frame_in_small_chunks_decodes() -> None:
    """Issue 7, defect 5: frame assembly joined on every chunk (a valid 16 MiB frame took 3.9 s)."""
    from rxstream.testing._eventstream import encode_event

    payload = {
        "bytes": base64.b64encode(json.dumps({"type": "ping", "pad": "p" * 12_000_000}).encode()).decode()
    }
    frame = encode_event("chunk", payload)
    assert len(frame) > 15 * 1024 * 1024
    chunks = [frame[i : i + 16384] for i in range(0, len(frame), 16384)]
    [event] = list(decode_frames(chunks))
    assert json.loads(event["chunk"]["bytes"])["type"] == "ping"


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"bytes": "@@@not base64@@@"}', b"\xff\xfe"],
)
def test_a_frame_with_a_valid_crc_but_bad_payload_is_a_decode_error(payload: bytes) -> None:
    """Issue 7, defect 6: ValueError / binascii.Error / UnicodeDecodeError escaped untyped."""
    from rxstream.testing._eventstream import encode_message

    frame = encode_message([(":message-type", "event"), (":event-type", "chunk")], payload)
    with pytest.raises(EventStreamDecodeError):
        list(decode_frames([frame]))


def test_a_frame_with_undecodable_header_names_is_a_decode_error() -> None:
    from rxstream.testing._eventstream import encode_message

    frame = bytearray(encode_message([(":message-type", "event"), (":event-type", "chunk")], b"{}"))
    frame[13] = 0xFF  # first byte of the first header name: invalid UTF-8
    import struct
    import zlib

    body = bytes(frame[:-4])
    body = body[:8] + struct.pack(">I", zlib.crc32(body[:8])) + body[12:]
    frame = bytearray(body + struct.pack(">I", zlib.crc32(body)))
    with pytest.raises(EventStreamDecodeError):
        list(decode_frames([bytes(frame)]))

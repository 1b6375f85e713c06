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

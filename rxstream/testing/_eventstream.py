"""Encoder for the AWS event stream binary framing (``application/vnd.amazon.eventstream``).

Layout of one message, all integers big-endian (AWS "Event stream encoding",
Amazon Transcribe / Lex V2 developer guides; decoded by ``botocore/eventstream.py``
``EventStreamBuffer``)::

    [total length: uint32][headers length: uint32][prelude CRC32: uint32]
    [headers ...][payload ...][message CRC32: uint32]

The prelude CRC covers the first 8 bytes; the message CRC covers every byte
before it, prelude CRC included. Both are the IEEE CRC-32 that
``zlib.crc32`` computes. Each header is ``[name length: uint8][name]
[value type: uint8][value]``; Bedrock only uses type 7 (UTF-8 string) with a
``uint16`` value length.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["encode_event", "encode_exception", "encode_message"]

_STRING_HEADER = 7
_PRELUDE = struct.Struct(">II")
_UINT32 = struct.Struct(">I")


def _encode_headers(headers: Sequence[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
            raise ValueError(f"event stream header too long: {name!r}")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """Encode one event stream message.

    Args:
        headers: ``(name, value)`` pairs, written in order as string headers.
        payload: The raw payload bytes.

    Returns:
        The complete message: prelude, prelude CRC, headers, payload, message CRC.
    """
    raw_headers = _encode_headers(headers)
    total = _PRELUDE.size + 4 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(total, len(raw_headers))
    prelude += _UINT32.pack(zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + raw_headers + payload
    return body + _UINT32.pack(zlib.crc32(body) & 0xFFFFFFFF)


def _json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def encode_event(event_type: str, payload: Any) -> bytes:
    """Encode an ``event`` message with a JSON payload, as Bedrock sends it.

    Headers are ``:event-type``, ``:content-type: application/json`` and
    ``:message-type: event``; payload keys are sorted, as on the real wire.

    Args:
        event_type: The ``:event-type`` header, e.g. ``"contentBlockDelta"``.
        payload: A JSON-serialisable object.

    Returns:
        The encoded message.
    """
    headers = [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ]
    return encode_message(headers, _json(payload))


def encode_exception(exception_type: str, payload: Any) -> bytes:
    """Encode an ``exception`` message, which botocore raises as ``EventStreamError``.

    Args:
        exception_type: The ``:exception-type`` header, e.g.
            ``"throttlingException"``; botocore uses it as the error code.
        payload: A JSON-serialisable object, normally ``{"message": ...}``.

    Returns:
        The encoded message.
    """
    headers = [
        (":exception-type", exception_type),
        (":content-type", "application/json"),
        (":message-type", "exception"),
    ]
    return encode_message(headers, _json(payload))

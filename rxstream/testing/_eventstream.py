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
from dataclasses import dataclass
from typing import Any

__all__ = ["FrameHeader", "encode_event", "encode_exception", "encode_frame", "encode_message"]

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


@dataclass(frozen=True)
class FrameHeader:
    """One event stream header with any value type, for hand-made (also malformed) frames.

    Value types (AWS "Event stream encoding"; ``botocore/eventstream.py`` ``DecodeUtils``):
    0 true, 1 false (no value bytes), 2 byte, 3 short, 4 integer, 5 long, 6 byte array
    and 7 string (each with a ``uint16`` length prefix), 8 timestamp (int64 ms), 9 UUID
    (16 bytes). Bytes are written exactly as given, so a wrong length or an unknown type
    code can be scripted on purpose.

    Attributes:
        name: Header name; written with a ``uint8`` length prefix (``name_length``
            overrides it).
        value_type: The type code byte.
        value: The value bytes after the type code, length prefix included for types 6
            and 7 (see `string`).
        name_length: Overrides the written name length, or ``None`` for the true one.
    """

    name: str
    value_type: int
    value: bytes = b""
    name_length: int | None = None

    @classmethod
    def string(cls, name: str, value: str | bytes) -> FrameHeader:
        """A type 7 string header; ``value`` bytes are written verbatim (may be invalid UTF-8)."""
        raw = value.encode("utf-8") if isinstance(value, str) else value
        return cls(name, _STRING_HEADER, struct.pack(">H", len(raw)) + raw)

    def encode(self) -> bytes:
        """Return ``[name length][name][type][value]``."""
        raw_name = self.name.encode("utf-8")
        length = len(raw_name) if self.name_length is None else self.name_length
        return (
            struct.pack(">B", length & 0xFF)
            + raw_name
            + struct.pack(">B", self.value_type & 0xFF)
            + self.value
        )


def encode_frame(
    headers: Sequence[tuple[str, str] | FrameHeader],
    payload: bytes,
    *,
    total_length: int | None = None,
    headers_length: int | None = None,
    prelude_crc: int | None = None,
    message_crc: int | None = None,
) -> bytes:
    """Encode one event stream message, with any field overridden to build a malformed one.

    With no overrides the result equals `encode_message` for string headers. Each override
    replaces the computed value as written (the CRCs are computed over the bytes actually
    written, so overriding a length alone gives a frame whose CRCs are right but whose
    lengths lie).

    Args:
        headers: ``(name, value)`` string headers or `FrameHeader` of any type.
        payload: The raw payload bytes.
        total_length: The prelude's total length (``uint32``); default the true length.
        headers_length: The prelude's headers length (``uint32``); default the true length.
        prelude_crc: The prelude CRC (``uint32``); default CRC-32 of the first 8 bytes.
        message_crc: The message CRC (``uint32``); default CRC-32 of everything before it.

    Returns:
        The message bytes.

    Example:
        >>> bad = encode_frame([(":message-type", "event")], b"{}", message_crc=0)
        >>> len(bad)
        41
    """
    raw_headers = b"".join(
        h.encode() if isinstance(h, FrameHeader) else FrameHeader.string(h[0], h[1]).encode() for h in headers
    )
    true_total = _PRELUDE.size + 4 + len(raw_headers) + len(payload) + 4
    prelude = _PRELUDE.pack(
        (true_total if total_length is None else total_length) & 0xFFFFFFFF,
        (len(raw_headers) if headers_length is None else headers_length) & 0xFFFFFFFF,
    )
    crc = zlib.crc32(prelude) & 0xFFFFFFFF if prelude_crc is None else prelude_crc
    body = prelude + _UINT32.pack(crc & 0xFFFFFFFF) + raw_headers + payload
    crc = zlib.crc32(body) & 0xFFFFFFFF if message_crc is None else message_crc
    return body + _UINT32.pack(crc & 0xFFFFFFFF)

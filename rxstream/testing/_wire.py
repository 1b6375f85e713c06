"""The shape shared by every emulated wire format, plus HTTP error bodies."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from rxstream.events import ProviderName
from rxstream.testing._content import (
    Ids,
    bedrock_http_error_type,
    default_error_type,
    default_openai_code,
)
from rxstream.testing.scripts import Fault, ResponseScript

__all__ = ["HttpReply", "WireEvent", "WireStream", "dumps", "http_error"]

Headers = list[tuple[str, str]]


def dumps(payload: Any) -> str:
    """Serialise JSON compactly with raw UTF-8, as the provider APIs do."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class WireEvent:
    """One unit on the wire: an SSE event or an event-stream message.

    ``payload`` is a JSON-able object, or a ``str`` written verbatim. For the
    OpenAI Responses format a ``"sequence_number"`` key is filled in when the
    event is encoded. ``exception`` marks a Bedrock exception message.
    """

    name: str
    payload: Any
    exception: bool = False


@dataclass(frozen=True)
class HttpReply:
    """A complete non-streaming HTTP reply."""

    status: int
    headers: Headers
    body: bytes


class WireStream(ABC):
    """Builds the wire events of one emulated streaming response.

    Subclasses are pure: they turn a script and the request body into a list
    of :class:`WireEvent` and encode each event to bytes. Timing, faults and
    transport belong to the emulator.
    """

    provider: ClassVar[ProviderName]
    media_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    stream_flag: ClassVar[bool] = True
    """Whether the request must say ``"stream": true`` (the SSE APIs; not Bedrock)."""

    def __init__(self, script: ResponseScript, body: dict[str, Any], ids: Ids, request_id: str) -> None:
        """Store the inputs; ``request_id`` goes into headers and error bodies."""
        self.script = script
        self.body = body
        self.ids = ids
        self.request_id = request_id

    @abstractmethod
    def headers(self) -> Headers:
        """Return the response headers after ``content-type``."""

    @abstractmethod
    def events(self) -> list[WireEvent]:
        """Return the wire events of the complete scripted response."""

    @abstractmethod
    def error_events(self, fault: Fault) -> list[WireEvent]:
        """Return the in-stream error form that ends the stream."""

    @abstractmethod
    def unknown_event(self) -> WireEvent:
        """Return a forward-compatible event of a type no client knows."""

    @abstractmethod
    def encode(self, event: WireEvent, seq: int) -> bytes:
        """Encode ``event``, the ``seq``-th (0-based) event of the stream."""


def _retry_after(value: float | None) -> Headers:
    if value is None:
        return []
    text = str(int(value)) if float(value).is_integer() else repr(float(value))
    return [("retry-after", text)]


def http_error(
    provider: str,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    retry_after: float | None = None,
    request_id: str,
) -> HttpReply:
    """Build a provider's HTTP error reply.

    Shapes: Anthropic ``{"type":"error","error":{"type","message"},
    "request_id"}`` with a ``request-id`` header (API docs, "Errors";
    ``anthropic/types/shared/error_response.py``); OpenAI ``{"error":
    {"message","type","param","code"}}`` with ``x-request-id`` (API reference,
    "Error codes"); Bedrock ``{"message"}`` with ``x-amzn-errortype:
    <Type>:http://internal.amazon.com/coral/com.amazon.bedrock/`` and
    ``x-amzn-requestid``, the header botocore's ``RestJSONParser`` reads the
    error code from.

    Args:
        provider: ``"anthropic"``, ``"openai"``, ``"openai-responses"``,
            ``"bedrock"`` or ``"bedrock-invoke"``.
        status: HTTP status code.
        message: Error message.
        error_type: Provider-native error type; ``None`` picks a default.
        retry_after: Seconds for the ``retry-after`` header, if any.
        request_id: Request id for the headers and body.

    Returns:
        The status, headers and JSON body.
    """
    headers: Headers = [("content-type", "application/json")]
    if provider == "anthropic":
        kind = error_type or default_error_type("anthropic", status)
        payload: dict[str, Any] = {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }
        headers.append(("request-id", request_id))
    elif provider.startswith("openai"):
        kind = error_type or default_error_type("openai", status)
        payload = {
            "error": {
                "message": message,
                "type": kind,
                "param": None,
                "code": error_type or default_openai_code(status),
            }
        }
        headers.append(("x-request-id", request_id))
    else:
        kind = bedrock_http_error_type(status, error_type)
        payload = {"message": message}
        headers.append(("x-amzn-requestid", request_id))
        headers.append(("x-amzn-errortype", f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"))
    headers.extend(_retry_after(retry_after))
    return HttpReply(status, headers, dumps(payload).encode("utf-8"))

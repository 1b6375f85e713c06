"""The shape shared by every emulated wire format, plus HTTP error bodies."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from rxstream.events import ProviderName
from rxstream.testing._content import (
    Ids,
)
from rxstream.testing.scripts import Fault, ResponseScript

__all__ = [
    "HttpReply",
    "RequestProblem",
    "WireEvent",
    "WireStream",
    "dumps",
    "is_int",
    "json_type",
    "retry_after_headers",
]

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
class RequestProblem:
    """Why the real API would reject a request (answered with HTTP 400 in its error format).

    Attributes:
        message: The API's error message.
        param: The offending parameter (OpenAI's ``error.param``), if any.
        code: OpenAI's ``error.code`` (``missing_required_parameter``, ``invalid_type``, ...).
    """

    message: str
    param: str | None = None
    code: str | None = None


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

    @classmethod
    @abstractmethod
    def new_request_id(cls, ids: Ids) -> str:
        """A request id in this API's format (``req_011C...``, ``req_<hex>``, a UUID)."""

    @classmethod
    @abstractmethod
    def error_reply(
        cls,
        status: int,
        message: str,
        *,
        request_id: str,
        error_type: str | None = None,
        retry_after: float | None = None,
        problem: RequestProblem | None = None,
    ) -> HttpReply:
        """This API's HTTP error reply (status, headers, JSON body)."""

    @classmethod
    def validate(cls, body: dict[str, Any], model: str | None) -> RequestProblem | None:
        """Check ``body`` the way the real API does for the fields the emulator knows.

        Args:
            body: The parsed JSON request body.
            model: The model id from the path (Bedrock), else ``None``.

        Returns:
            The first problem found, or ``None`` when the request is acceptable.
        """
        return None

    @classmethod
    def max_tokens(cls, body: dict[str, Any]) -> int | None:
        """The output token limit the (valid) request asks for, if any."""
        return None

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


def is_int(value: Any) -> bool:
    """Whether ``value`` is a JSON integer (``bool`` excluded)."""
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    """The JSON type name of ``value`` as the OpenAI API words it (``string``, ``integer``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def retry_after_headers(value: float | None) -> Headers:
    """The ``retry-after`` header for ``value`` seconds, or none."""
    return _retry_after(value)

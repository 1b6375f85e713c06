"""Valid wire streams of every provider, as data, to replay (or mutate) with `RawBytesServer`.

`record_wire` renders a `ResponseScript` with the emulator's own wire modules (the same
bytes the `ProviderEmulator` would stream), without a server: the result is the list of
wire events plus the way each is encoded, so a test can drop, duplicate, reorder or alter
events and then turn them into body bytes or a `RawReply`.

Example:
    >>> from rxstream.testing import ResponseScript, record_wire
    >>> rec = record_wire("anthropic", ResponseScript(text="Hi"))
    >>> rec.events[0].name
    'message_start'
    >>> rec.encode()[0].startswith(b"event: message_start")
    True
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rxstream.testing._anthropic import AnthropicStream
from rxstream.testing._bedrock import BedrockConverseStream, BedrockInvokeStream
from rxstream.testing._content import Ids
from rxstream.testing._openai import ChatCompletionsStream, ResponsesStream
from rxstream.testing._rawserver import Ending, Framing, Pause, RawReply
from rxstream.testing._wire import WireEvent, WireStream
from rxstream.testing.scripts import ResponseScript

__all__ = ["WireRecording", "record_wire"]

_STREAMS: dict[str, type[WireStream]] = {
    cls.provider: cls
    for cls in (
        AnthropicStream,
        ChatCompletionsStream,
        ResponsesStream,
        BedrockConverseStream,
        BedrockInvokeStream,
    )
}
# The request bodies the rxstream sources send, as far as the wire modules read them.
_BODIES: dict[str, dict[str, Any]] = {
    "openai": {"stream": True, "stream_options": {"include_usage": True}},
    "openai-responses": {"stream": True},
}


@dataclass(frozen=True)
class WireRecording:
    """A complete, valid streaming response of one provider, as wire events.

    Attributes:
        provider: ``"anthropic"``, ``"openai"``, ``"openai-responses"``,
            ``"bedrock"`` or ``"bedrock-invoke"`` (a `rxstream.events.ProviderName`).
        content_type: The response ``content-type``.
        headers: The other response headers (request id, ...).
        events: The wire events, in order (`WireEvent`: name, JSON payload, exception flag).
        seed: The seed of every random id and padding, so encoding is reproducible.
    """

    provider: str
    content_type: str
    headers: tuple[tuple[str, str], ...]
    events: tuple[WireEvent, ...]
    seed: int
    _stream: WireStream

    def encode(self, events: Sequence[WireEvent] | None = None) -> list[bytes]:
        """Encode ``events`` (default: `events`) to one bytes item each, numbered from 0.

        OpenAI Responses events get their ``sequence_number`` from their position. The
        same events always encode to the same bytes (Bedrock's random ``p`` padding is
        drawn from `seed` anew on each call).
        """
        self._stream.ids.rng.seed(self.seed)
        chosen = self.events if events is None else events
        return [self._stream.encode(event, seq) for seq, event in enumerate(chosen)]

    def body(self, events: Sequence[WireEvent] | None = None) -> bytes:
        """Return the whole encoded body."""
        return b"".join(self.encode(events))

    def reply(
        self,
        body: Sequence[bytes | Pause] | None = None,
        *,
        framing: Framing = "chunked",
        ending: Ending = "complete",
    ) -> RawReply:
        """A `RawReply` with this recording's status 200, content type and headers.

        Args:
            body: Body pieces; default one piece per encoded event.
            framing: See `RawReply.framing`.
            ending: See `RawReply.ending`.
        """
        return RawReply(
            body=list(self.encode()) if body is None else body,
            content_type=self.content_type,
            headers=self.headers,
            framing=framing,
            ending=ending,
        )

    def error_reply(self, status: int, message: str = "error", *, error_type: str | None = None) -> RawReply:
        """This provider's HTTP error reply (status, JSON body, request-id headers) as a `RawReply`.

        The body and headers are the emulator's (each API's documented error shape; see the
        wire classes' ``error_reply``). Add headers such as ``retry-after`` with
        ``dataclasses.replace(reply, headers=[*reply.headers, ("retry-after", "1")])``.

        Args:
            status: HTTP status code (4xx/5xx).
            message: The error message.
            error_type: The provider's error type; ``None`` picks the one for ``status``.
        """
        http = type(self._stream).error_reply(status, message, request_id="req_raw", error_type=error_type)
        content_type = next((v for k, v in http.headers if k.lower() == "content-type"), "application/json")
        headers = [(k, v) for k, v in http.headers if k.lower() != "content-type"]
        return RawReply(
            body=[http.body], status=status, content_type=content_type, headers=headers, framing="length"
        )


def record_wire(provider: str, script: ResponseScript | None = None, *, seed: int = 0) -> WireRecording:
    """Render ``script`` as ``provider``'s complete wire stream (no fault, no pacing).

    Args:
        provider: One of the emulator's route names (see `ProviderName`).
        script: The reply; default ``ResponseScript()``. Its ``fault`` and
            ``unknown_event_after`` are ignored: mutate the events instead.
        seed: Seed of the ids, timestamps-free padding and obfuscation values: the same
            arguments give the same bytes.

    Returns:
        The recording. OpenAI Chat includes the usage chunk (rxstream's sources ask for it).

    Raises:
        ValueError: For an unknown provider.
    """
    try:
        cls = _STREAMS[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(_STREAMS)}") from None
    ids = Ids(rng=random.Random(seed), created=1_700_000_000)
    stream = cls(script or ResponseScript(), dict(_BODIES.get(provider, {"stream": True})), ids, "req_raw")
    return WireRecording(
        provider=provider,
        content_type=cls.media_type,
        headers=tuple(stream.headers()),
        events=tuple(stream.events()),
        seed=seed,
        _stream=stream,
    )

r"""Anthropic Messages streaming (``POST /v1/messages`` with ``"stream": true``).

Wire facts and where they come from:

- SSE framing ``event: <type>\ndata: <json>\n\n``; the SDK decodes it in
  ``anthropic/_streaming.py`` (``SSEDecoder``), skips ``ping`` and raises on
  ``error``.
- Event order ``message_start``, per block ``content_block_start`` /
  ``content_block_delta``\* / ``content_block_stop``, then ``message_delta``
  and ``message_stop``; one ``ping`` right after the first
  ``content_block_start``, written as ``{"type": "ping"}`` (with a space):
  API docs "Streaming Messages" and the SDK's recorded fixtures
  ``tests/lib/streaming/fixtures/{basic,tool_use}_response.txt``.
- Thinking blocks start as ``{"type":"thinking","thinking":"","signature":""}``,
  get ``thinking_delta`` deltas and one ``signature_delta``
  (``anthropic/types/{thinking_block,signature_delta}.py``).
- Tool blocks start as ``{"type":"tool_use","id","name","input":{}}`` (plus
  ``caller``), then an empty ``input_json_delta`` and the fragments
  (``tool_use_response.txt``; the SDK parses them with ``jiter`` partial mode
  in ``anthropic/lib/streaming/_messages.py``).
- ``message_delta.usage`` counts are cumulative totals (comment in
  ``accumulate_event``; ``anthropic/types/message_delta_usage.py``);
  ``stop_details`` is ``{"type":"refusal",...}`` for refusals
  (``refusal_response.txt``, ``anthropic/types/refusal_stop_details.py``).
- In-stream errors: ``event: error`` with ``{"type":"error","error":
  {"type","message"}}`` (API docs "Streaming Messages", "Error events").
- Headers ``content-type: text/event-stream; charset=utf-8`` and
  ``request-id`` (read by ``MessageStream.request_id``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rxstream.events import ProviderName
from rxstream.testing._content import Ids, anthropic_error_type, fragments, output_tokens, split_deltas
from rxstream.testing._wire import (
    Headers,
    HttpReply,
    RequestProblem,
    WireEvent,
    WireStream,
    dumps,
    is_int,
    retry_after_headers,
)
from rxstream.testing.scripts import Fault

__all__ = ["AnthropicStream", "anthropic_stop_reason"]

_PING = '{"type": "ping"}'


def anthropic_stop_reason(stop_reason: str) -> str:
    """Map the neutral stop reason onto Anthropic's ``stop_reason``."""
    return "refusal" if stop_reason == "content_filter" else stop_reason


def _check_messages(body: dict[str, Any], empty: str) -> RequestProblem | None:
    if "messages" not in body:
        return RequestProblem("messages: Field required", "messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        return RequestProblem("messages: Input should be a valid list", "messages")
    if not messages:
        return RequestProblem(empty, "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return RequestProblem(f"messages.{i}: Input should be a valid dictionary", "messages")
        if message.get("role") not in ("user", "assistant"):
            return RequestProblem(f"messages.{i}.role: Input should be 'user' or 'assistant'", "messages")
        if "content" not in message:
            return RequestProblem(f"messages.{i}.content: Field required", "messages")
        if not isinstance(message["content"], str | list):
            return RequestProblem(f"messages.{i}.content: Input should be a valid list", "messages")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return RequestProblem("system: Input should be a valid list", "system")
    return None


class AnthropicStream(WireStream):
    """Renders a script as the Anthropic Messages SSE stream."""

    provider: ClassVar[ProviderName] = "anthropic"
    message_prefix = "msg_01"
    send_pings = True

    @classmethod
    def new_request_id(cls, ids: Ids) -> str:
        """``req_011C`` + 20 base-62 characters, as the ``request-id`` header shows."""
        return "req_011C" + ids.base62(20)

    @classmethod
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
        """``{"type": "error", "error": {"type", "message"}, "request_id"}`` + ``request-id``.

        Source: https://docs.anthropic.com/en/api/errors ("Error shapes");
        ``anthropic/types/shared/error_response.py``.
        """
        kind = error_type or anthropic_error_type(status)
        payload = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
        headers: Headers = [("content-type", "application/json"), ("request-id", request_id)]
        return HttpReply(status, headers + retry_after_headers(retry_after), dumps(payload).encode("utf-8"))

    @classmethod
    def validate(cls, body: dict[str, Any], model: str | None) -> RequestProblem | None:
        """Messages API checks: ``model``, ``max_tokens`` (integer >= 1), ``messages``.

        ``messages`` must be a non-empty list of ``{"role": "user" | "assistant",
        "content": str | list}``; ``system`` a string or a list. Messages follow the API's
        field-path style (``max_tokens: Field required``), sent as
        ``invalid_request_error`` (https://docs.anthropic.com/en/api/messages, parameters
        ``model``, ``max_tokens`` "x >= 1", ``messages``; https://docs.anthropic.com/en/api/errors).
        """
        if "model" not in body:
            return RequestProblem("model: Field required", "model")
        if not isinstance(body["model"], str):
            return RequestProblem("model: Input should be a valid string", "model")
        if "max_tokens" not in body:
            return RequestProblem("max_tokens: Field required", "max_tokens")
        if not is_int(body["max_tokens"]):
            return RequestProblem("max_tokens: Input should be a valid integer", "max_tokens")
        if body["max_tokens"] < 1:
            return RequestProblem("max_tokens: Input should be greater than or equal to 1", "max_tokens")
        return _check_messages(body, "messages: at least one message is required")

    @classmethod
    def max_tokens(cls, body: dict[str, Any]) -> int | None:
        """``max_tokens``."""
        value = body.get("max_tokens")
        return value if is_int(value) else None

    def headers(self) -> Headers:
        """Return ``request-id`` and ``cache-control`` headers."""
        return [("request-id", self.request_id), ("cache-control", "no-cache")]

    def _usage_start(self) -> dict[str, Any]:
        s = self.script
        return {
            "input_tokens": s.input_tokens,
            "cache_creation_input_tokens": s.cache_creation_input_tokens,
            "cache_read_input_tokens": s.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": s.cache_creation_input_tokens,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": 1,
            "service_tier": "standard",
        }

    def events(self) -> list[WireEvent]:
        """Return the full event list (see the module docstring for the order)."""
        s = self.script
        message_id = self.message_prefix + self.ids.base62(22)
        evs: list[WireEvent] = [
            WireEvent(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": s.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "stop_details": None,
                        "usage": self._usage_start(),
                    },
                },
            )
        ]
        blocks: list[list[WireEvent]] = []
        if s.thinking:
            blocks.append(
                self._block(
                    len(blocks),
                    {"type": "thinking", "thinking": "", "signature": ""},
                    [
                        {"type": "thinking_delta", "thinking": d}
                        for d in split_deltas(s.thinking, s.chunking, s.chunk_size)
                    ]
                    + [{"type": "signature_delta", "signature": s.thinking_signature}],
                )
            )
        visible = split_deltas(s.text, s.chunking, s.chunk_size)
        visible += split_deltas(s.refusal, s.chunking, s.chunk_size)
        if visible or not (s.thinking or s.tool_calls):
            blocks.append(
                self._block(
                    len(blocks),
                    {"type": "text", "text": ""},
                    [{"type": "text_delta", "text": d} for d in visible],
                )
            )
        for call in s.tool_calls:
            frags = ["", *fragments(call.arguments, call.fragment_size)]
            blocks.append(
                self._block(
                    len(blocks),
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": {},
                        "caller": {"type": "direct"},
                    },
                    [{"type": "input_json_delta", "partial_json": f} for f in frags],
                )
            )
        for i, block in enumerate(blocks):
            evs.extend(block[:1])
            if i == 0 and self.send_pings:
                evs.append(WireEvent("ping", _PING))
            evs.extend(block[1:])
        stop = anthropic_stop_reason(s.stop_reason)
        usage: dict[str, Any] = {
            "input_tokens": s.input_tokens,
            "cache_creation_input_tokens": s.cache_creation_input_tokens,
            "cache_read_input_tokens": s.cache_read_input_tokens,
            "output_tokens": output_tokens(s),
        }
        if s.reasoning_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": s.reasoning_tokens}
        evs.append(
            WireEvent(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": stop,
                        "stop_sequence": s.stop_sequence,
                        "stop_details": (
                            {"type": "refusal", "category": None, "explanation": None}
                            if stop == "refusal"
                            else None
                        ),
                    },
                    "usage": usage,
                },
            )
        )
        evs.append(WireEvent("message_stop", {"type": "message_stop"}))
        if self.send_pings and s.ping_every:
            evs = self._with_pings(evs, s.ping_every)
        return evs

    @staticmethod
    def _with_pings(evs: list[WireEvent], every: int) -> list[WireEvent]:
        out: list[WireEvent] = []
        for i, ev in enumerate(evs):
            out.append(ev)
            if (i + 1) % every == 0 and i + 1 < len(evs):
                out.append(WireEvent("ping", _PING))
        return out

    @staticmethod
    def _block(index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> list[WireEvent]:
        evs = [
            WireEvent(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        ]
        evs.extend(
            WireEvent(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": d},
            )
            for d in deltas
        )
        evs.append(WireEvent("content_block_stop", {"type": "content_block_stop", "index": index}))
        return evs

    def error_events(self, fault: Fault) -> list[WireEvent]:
        """Return the ``error`` event (type from ``fault`` or its status)."""
        kind = fault.error_type or anthropic_error_type(fault.status)
        return [
            WireEvent(
                "error",
                {
                    "type": "error",
                    "error": {"type": kind, "message": fault.message},
                    "request_id": self.request_id,
                },
            )
        ]

    def unknown_event(self) -> WireEvent:
        """Return an event of a type the SDK does not know (docs: handle gracefully)."""
        return WireEvent(
            "unknown_future_event",
            {"type": "unknown_future_event", "note": "rxstream.testing probe"},
        )

    def encode(self, event: WireEvent, seq: int) -> bytes:
        r"""Encode as ``event: <name>\ndata: <json>\n\n``."""
        data = event.payload if isinstance(event.payload, str) else dumps(event.payload)
        return f"event: {event.name}\ndata: {data}\n\n".encode()

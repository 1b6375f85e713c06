"""AWS Bedrock ConverseStream and InvokeModelWithResponseStream.

Both answer ``200`` with ``content-type: application/vnd.amazon.eventstream``
and an ``x-amzn-requestid`` header; the body is a sequence of event stream
messages (see :mod:`rxstream.testing._eventstream`).

ConverseStream (``POST /model/{modelId}/converse-stream``), shapes from
``ConverseStreamOutput`` in ``botocore/data/bedrock-runtime/2023-09-30/service-2.json``:

- ``messageStart {role}``; text and reasoning blocks get no start event, only
  ``contentBlockDelta {delta: {text} | {reasoningContent: {text} |
  {signature}}, contentBlockIndex}``; tool blocks begin with
  ``contentBlockStart {start: {toolUse: {toolUseId, name}}, contentBlockIndex}``
  and continue with ``{delta: {toolUse: {input}}}``; each block ends with
  ``contentBlockStop {contentBlockIndex}``; then ``messageStop {stopReason}``
  and ``metadata {usage, metrics: {latencyMs}}``.
- Every payload also carries a padding field ``"p"`` (a prefix of
  ``a…zA…Z0…9``) and keys are sorted, as captured from the real service.
- Exceptions are messages with ``:message-type: exception`` and
  ``:exception-type`` set to the camelCase member name, e.g.
  ``throttlingException``; payload ``{"message": ...}``. botocore's
  ``EventStream`` raises ``EventStreamError`` with that code.
- An event type botocore does not know parses to ``{}`` and is skipped by
  ``EventStream.__iter__``.

InvokeModelWithResponseStream (``POST /model/{modelId}/invoke-with-response-stream``)
for Anthropic models: ``chunk`` events with payload ``{"bytes": "<base64 of one
Anthropic streaming event JSON>", "p": ...}`` carrying the Anthropic Messages
event sequence without ``ping``; ``message_stop`` adds
``amazon-bedrock-invocationMetrics {inputTokenCount, outputTokenCount,
invocationLatency, firstByteLatency}`` (Bedrock user guide, "Anthropic Claude
Messages API"; ``anthropic/lib/bedrock`` decodes the same frames). The
response also has the ``x-amzn-bedrock-content-type`` header that the
``contentType`` output member is read from.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from rxstream.events import ProviderName
from rxstream.testing._anthropic import AnthropicStream
from rxstream.testing._content import (
    Ids,
    bedrock_http_error_type,
    bedrock_stream_exception,
    fragments,
    output_tokens,
    planned_duration_ms,
    split_deltas,
)
from rxstream.testing._eventstream import encode_event, encode_exception
from rxstream.testing._wire import (
    Headers,
    HttpReply,
    RequestProblem,
    WireEvent,
    WireStream,
    dumps,
    is_int,
    json_type,
    retry_after_headers,
)
from rxstream.testing.scripts import Fault

__all__ = ["BedrockConverseStream", "BedrockInvokeStream", "converse_stop_reason"]

_MEDIA_TYPE = "application/vnd.amazon.eventstream"


def converse_stop_reason(stop_reason: str) -> str:
    """Map the neutral stop reason onto Converse's ``stopReason``."""
    if stop_reason in ("refusal", "content_filter"):
        return "content_filtered"
    return stop_reason


def _exception(fault: Fault) -> WireEvent:
    name = bedrock_stream_exception(fault.status, fault.error_type)
    return WireEvent(name, {"message": fault.message}, exception=True)


def _bedrock_error_reply(
    status: int, message: str, request_id: str, error_type: str | None, retry_after: float | None
) -> HttpReply:
    """``{"message"}`` + ``x-amzn-errortype: <Type>:...`` + ``x-amzn-requestid``.

    botocore's ``RestJSONParser`` reads the error code from ``x-amzn-errortype``
    (https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html).
    """
    kind = bedrock_http_error_type(status, error_type)
    headers: Headers = [
        ("content-type", "application/json"),
        ("x-amzn-requestid", request_id),
        ("x-amzn-errortype", f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
    ]
    body = dumps({"message": message}).encode("utf-8")
    return HttpReply(status, headers + retry_after_headers(retry_after), body)


_SCHEMA_TYPES = {
    "string": "String",
    "number": "BigDecimal",
    "boolean": "Boolean",
    "array": "JSONArray",
    "null": "Null",
}


def _malformed(detail: str) -> RequestProblem:
    # InvokeModel validates the body against the model's JSON schema and answers
    # ValidationException "Malformed input request: <schema error>, please reformat your input
    # and try again."
    return RequestProblem(f"Malformed input request: {detail}, please reformat your input and try again.")


class _BedrockBase(WireStream):
    @classmethod
    def new_request_id(cls, ids: Ids) -> str:
        """A UUID, as the ``x-amzn-requestid`` header shows."""
        return ids.uuid()

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
        """Bedrock's JSON error (see `_bedrock_error_reply`)."""
        return _bedrock_error_reply(status, message, request_id, error_type, retry_after)


class BedrockConverseStream(_BedrockBase):
    """Renders a script as the ConverseStream event stream."""

    provider: ClassVar[ProviderName] = "bedrock"
    media_type = _MEDIA_TYPE
    stream_flag = False

    @classmethod
    def validate(cls, body: dict[str, Any], model: str | None) -> RequestProblem | None:
        """ConverseStream checks: a non-empty ``messages`` list starting with a user turn.

        ``inferenceConfig.maxTokens`` must be an integer >= 1 (botocore also checks this before
        sending). Source: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
        (ValidationException, HTTP 400).
        """
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not isinstance(messages[0], dict)
            or (messages[0].get("role") != "user")
        ):
            return RequestProblem(
                "A conversation must start with a user message. Try again with a conversation that "
                "starts with a user message."
            )
        limit = (body.get("inferenceConfig") or {}).get("maxTokens")
        if limit is not None and (not is_int(limit) or limit < 1):
            return RequestProblem(
                "1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy "
                "constraint: Member must have value greater than or equal to 1"
            )
        return None

    @classmethod
    def max_tokens(cls, body: dict[str, Any]) -> int | None:
        """``inferenceConfig.maxTokens``."""
        config = body.get("inferenceConfig")
        value = config.get("maxTokens") if isinstance(config, dict) else None
        return value if is_int(value) else None

    def headers(self) -> Headers:
        """Return the ``x-amzn-requestid`` header."""
        return [("x-amzn-requestid", self.request_id)]

    def _p(self, payload: dict[str, Any]) -> dict[str, Any]:
        payload["p"] = self.ids.padding()
        return payload

    def events(self) -> list[WireEvent]:
        """Return messageStart, block events, messageStop and metadata."""
        s = self.script
        p = self._p
        evs = [WireEvent("messageStart", p({"role": "assistant"}))]
        index = 0

        def delta(i: int, d: dict[str, Any]) -> WireEvent:
            return WireEvent("contentBlockDelta", p({"contentBlockIndex": i, "delta": d}))

        def stop(i: int) -> WireEvent:
            return WireEvent("contentBlockStop", p({"contentBlockIndex": i}))

        if s.thinking:
            for d in split_deltas(s.thinking, s.chunking, s.chunk_size):
                evs.append(delta(index, {"reasoningContent": {"text": d}}))
            evs.append(delta(index, {"reasoningContent": {"signature": s.thinking_signature}}))
            evs.append(stop(index))
            index += 1
        visible = split_deltas(s.text, s.chunking, s.chunk_size)
        visible += split_deltas(s.refusal, s.chunking, s.chunk_size)
        if visible:
            evs.extend(delta(index, {"text": d}) for d in visible)
            evs.append(stop(index))
            index += 1
        for call in s.tool_calls:
            start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
            evs.append(WireEvent("contentBlockStart", p({"contentBlockIndex": index, "start": start})))
            for frag in fragments(call.arguments, call.fragment_size):
                evs.append(delta(index, {"toolUse": {"input": frag}}))
            evs.append(stop(index))
            index += 1
        evs.append(WireEvent("messageStop", p({"stopReason": converse_stop_reason(s.stop_reason)})))
        out = output_tokens(s)
        usage = {
            "inputTokens": s.input_tokens,
            "outputTokens": out,
            "totalTokens": s.input_tokens + out + s.cache_read_input_tokens + s.cache_creation_input_tokens,
            "cacheReadInputTokens": s.cache_read_input_tokens,
            "cacheWriteInputTokens": s.cache_creation_input_tokens,
        }
        latency = planned_duration_ms(s, len(evs) + 1)
        evs.append(WireEvent("metadata", p({"usage": usage, "metrics": {"latencyMs": latency}})))
        return evs

    def error_events(self, fault: Fault) -> list[WireEvent]:
        """Return one exception message."""
        return [_exception(fault)]

    def unknown_event(self) -> WireEvent:
        """Return an event whose ``:event-type`` the service model does not define."""
        return WireEvent("unknownFutureEvent", self._p({"note": "rxstream.testing probe"}))

    def encode(self, event: WireEvent, seq: int) -> bytes:
        """Encode as one event stream message."""
        if event.exception:
            return encode_exception(event.name, event.payload)
        return encode_event(event.name, event.payload)


class BedrockInvokeStream(_BedrockBase, AnthropicStream):
    """Renders a script as InvokeModelWithResponseStream ``chunk`` events (Bedrock ids and errors)."""

    provider: ClassVar[ProviderName] = "bedrock-invoke"
    media_type = _MEDIA_TYPE
    stream_flag = False

    @classmethod
    def validate(cls, body: dict[str, Any], model: str | None) -> RequestProblem | None:
        """The Claude Messages body on Bedrock: ``anthropic_version``, ``max_tokens`` >= 1, ``messages``.

        Messages are the JSON-schema errors InvokeModel answers with (ValidationException
        "Malformed input request: #: required key [max_tokens] not found, ...").
        Source: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html.
        """
        for key in ("anthropic_version", "max_tokens", "messages"):
            if key not in body:
                return _malformed(f"#: required key [{key}] not found")
        if not is_int(body["max_tokens"]):
            return _malformed(
                "#/max_tokens: expected type: Integer, found: "
                + _SCHEMA_TYPES.get(json_type(body["max_tokens"]), "JSONObject")
            )
        if body["max_tokens"] < 1:
            return _malformed(f"#/max_tokens: {body['max_tokens']} is not greater or equal to 1")
        if not isinstance(body["messages"], list):
            return _malformed("#/messages: expected type: JSONArray")
        if not body["messages"]:
            return _malformed("#/messages: expected minimum item count: 1, found: 0")
        return None

    message_prefix = "msg_bdrk_01"
    send_pings = False

    def headers(self) -> Headers:
        """Return ``x-amzn-requestid`` and ``x-amzn-bedrock-content-type``."""
        return [
            ("x-amzn-requestid", self.request_id),
            ("x-amzn-bedrock-content-type", "application/json"),
        ]

    def _usage_start(self) -> dict[str, Any]:
        usage = super()._usage_start()
        del usage["service_tier"], usage["cache_creation"]
        return usage

    def events(self) -> list[WireEvent]:
        """Return the Anthropic events (no ``ping``) with invocation metrics."""
        s = self.script
        evs = super().events()
        metrics = {
            "inputTokenCount": s.input_tokens,
            "outputTokenCount": output_tokens(s),
            # The script's pacing stands in for the measured latencies.
            "invocationLatency": planned_duration_ms(s, len(evs)),
            "firstByteLatency": max(1, round(s.first_event_delay * 1000)),
        }
        stop = evs[-1]
        evs[-1] = WireEvent(stop.name, {**stop.payload, "amazon-bedrock-invocationMetrics": metrics})
        return evs

    def error_events(self, fault: Fault) -> list[WireEvent]:
        """Return one exception message (Bedrock reports stream errors this way)."""
        return [_exception(fault)]

    def encode(self, event: WireEvent, seq: int) -> bytes:
        """Wrap the Anthropic event JSON into a ``chunk`` event stream message."""
        if event.exception:
            return encode_exception(event.name, event.payload)
        raw = dumps(event.payload).encode("utf-8")
        payload = {"bytes": base64.b64encode(raw).decode("ascii"), "p": self.ids.padding()}
        return encode_event("chunk", payload)

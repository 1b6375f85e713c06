r"""OpenAI Chat Completions and Responses streaming.

Chat Completions (``POST /v1/chat/completions``, ``"stream": true``):

- Every event is ``data: <chunk json>\n\n`` and the stream ends with
  ``data: [DONE]\n\n`` (API docs "Streaming API responses";
  ``openai/_streaming.py`` stops at ``[DONE]``).
- Chunk keys ``id`` (``chatcmpl-…``), ``object: chat.completion.chunk``,
  ``created``, ``model``, ``service_tier``, ``system_fingerprint``,
  ``choices[{index, delta, logprobs, finish_reason}]``, ``usage`` (``null`` on
  every chunk, only when ``stream_options.include_usage`` is true) and
  ``obfuscation`` (omitted when ``stream_options.include_obfuscation`` is
  false): ``openai/types/chat/chat_completion_chunk.py`` and recorded traces.
- The first chunk carries ``delta.role``; tool-call deltas carry ``index``,
  the first one also ``id``, ``type`` and ``function.name`` with
  ``arguments: ""``; later ones only ``function.arguments`` (accumulated by
  ``openai/lib/streaming/chat/_completions.py``). A final chunk has an empty
  delta and ``finish_reason``; with ``include_usage`` a last chunk has
  ``"choices": []`` and the usage.
- In-stream errors are ``data: {"error": {...}}``; the SDK raises ``APIError``
  for any data object with an ``error`` key (``openai/_streaming.py``).
- ``reasoning_content`` deltas are not sent by OpenAI; local OpenAI-compatible
  servers (vLLM, llama.cpp, Ollama) send them, hence the opt-in script flag.

Responses (``POST /v1/responses``, ``"stream": true``):

- ``event: <type>\ndata: <json>\n\n`` where every payload starts with
  ``type`` and ``sequence_number`` (0, 1, 2, …): event models in
  ``openai/types/responses/response_*_event.py``, accumulated by
  ``openai/lib/streaming/responses/_responses.py``.
- Item ids ``msg_…``, ``rs_…``, ``fc_…`` (function calls also carry
  ``call_id``); ``output_text.delta`` carries ``logprobs: []`` and
  ``obfuscation``; ``function_call_arguments.delta`` carries ``obfuscation``.
- Terminal events: ``response.completed``, ``response.incomplete`` with
  ``incomplete_details.reason``, or ``response.failed`` with
  ``response.error {code, message}``; the top-level ``error`` event has
  ``code``, ``message``, ``param`` (``response_error_event.py``).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rxstream.events import ProviderName
from rxstream.testing._content import (
    Ids,
    default_openai_code,
    fragments,
    openai_error_type,
    output_tokens,
    split_deltas,
)
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

__all__ = ["ChatCompletionsStream", "ResponsesStream", "chat_finish_reason"]


def chat_finish_reason(stop_reason: str) -> str:
    """Map the neutral stop reason onto Chat Completions' ``finish_reason``."""
    return {
        "end_turn": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "stop_sequence": "stop",
        "refusal": "stop",
        "content_filter": "content_filter",
    }[stop_reason]


def _missing(param: str) -> RequestProblem:
    return RequestProblem(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: Any) -> RequestProblem:
    got = json_type(value)
    return RequestProblem(
        f"Invalid type for '{param}': expected {expected}, but got {'an' if got[0] in 'aeiou' else 'a'} {got}"
        " instead.",
        param,
        "invalid_type",
    )


def _check_int(body: dict[str, Any], param: str, minimum: int) -> RequestProblem | None:
    if param not in body or body[param] is None:
        return None
    value = body[param]
    if not is_int(value):
        return _wrong_type(param, "an integer", value)
    if value < minimum:
        return RequestProblem(
            f"Invalid '{param}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value} instead.",
            param,
            "integer_below_min_value",
        )
    return None


def _empty_array(param: str) -> RequestProblem:
    return RequestProblem(
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        param,
        "empty_array",
    )


class _OpenAIBase(WireStream):
    @classmethod
    def new_request_id(cls, ids: Ids) -> str:
        """``req_`` + 32 hex digits, as the ``x-request-id`` header shows."""
        return "req_" + ids.hex(32)

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
        """``{"error": {"message", "type", "param", "code"}}`` + ``x-request-id``.

        Source: https://platform.openai.com/docs/guides/error-codes (API errors);
        ``openai/_exceptions.py`` reads ``error.param`` / ``error.code``.
        """
        kind = error_type or openai_error_type(status)
        code = problem.code if problem is not None else error_type or default_openai_code(status)
        param = problem.param if problem is not None else None
        payload = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        headers: Headers = [("content-type", "application/json"), ("x-request-id", request_id)]
        return HttpReply(status, headers + retry_after_headers(retry_after), dumps(payload).encode("utf-8"))

    def headers(self) -> Headers:
        return [
            ("x-request-id", self.request_id),
            ("openai-version", "2020-10-01"),
            ("openai-processing-ms", str(self.ids.rng.randint(80, 400))),
        ]


class ChatCompletionsStream(_OpenAIBase):
    """Renders a script as the Chat Completions SSE stream."""

    provider: ClassVar[ProviderName] = "openai"

    @classmethod
    def validate(cls, body: dict[str, Any], model: str | None) -> RequestProblem | None:
        """Chat Completions checks: ``model``, non-empty ``messages`` with roles, token limits.

        ``max_completion_tokens`` / ``max_tokens`` must be integers >= 1. Messages and codes
        as the API words them (https://platform.openai.com/docs/api-reference/chat/create;
        codes ``missing_required_parameter``, ``invalid_type``, ``empty_array``,
        ``integer_below_min_value``).
        """
        if not isinstance(body.get("model"), str):
            return RequestProblem("you must provide a model parameter")
        if "messages" not in body:
            return _missing("messages")
        messages = body["messages"]
        if not isinstance(messages, list):
            return _wrong_type("messages", "an array", messages)
        if not messages:
            return _empty_array("messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                return _wrong_type(f"messages[{i}]", "an object", message)
            if "role" not in message:
                return _missing(f"messages[{i}].role")
        return _check_int(body, "max_completion_tokens", 1) or _check_int(body, "max_tokens", 1)

    @classmethod
    def max_tokens(cls, body: dict[str, Any]) -> int | None:
        """``max_completion_tokens``, else the older ``max_tokens``."""
        for key in ("max_completion_tokens", "max_tokens"):
            if is_int(body.get(key)):
                return int(body[key])
        return None

    def _options(self) -> dict[str, Any]:
        opts = self.body.get("stream_options")
        return opts if isinstance(opts, dict) else {}

    def events(self) -> list[WireEvent]:
        """Return role chunk, deltas, finish chunk, optional usage chunk, ``[DONE]``."""
        s = self.script
        opts = self._options()
        include_usage = bool(opts.get("include_usage"))
        obfuscate = opts.get("include_obfuscation", True) is not False
        chunk_id = "chatcmpl-" + self.ids.base62(29)
        fingerprint = "fp_" + self.ids.hex(10)

        def chunk(
            delta: dict[str, Any] | None,
            finish: str | None = None,
            usage: dict[str, Any] | None = None,
        ) -> WireEvent:
            payload: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": self.ids.created,
                "model": s.model,
                "service_tier": "default",
                "system_fingerprint": fingerprint,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                payload["usage"] = usage
            if obfuscate:
                visible = sum(len(v) for v in (delta or {}).values() if isinstance(v, str))
                payload["obfuscation"] = self.ids.obfuscation(visible, 8)
            return WireEvent("chunk", payload)

        thinking = s.thinking if s.compat_reasoning_content else ""
        calls = list(s.tool_calls)

        def tool_start(i: int) -> dict[str, Any]:
            call = calls[i]
            return {
                "index": i,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }

        evs: list[WireEvent] = []
        first_tool_merged = False
        if s.text or thinking:
            evs.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        elif s.refusal:
            evs.append(chunk({"role": "assistant", "content": None, "refusal": ""}))
        elif calls:
            first_tool_merged = True
            evs.append(
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [tool_start(0)],
                        "refusal": None,
                    }
                )
            )
        else:
            evs.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        for d in split_deltas(thinking, s.chunking, s.chunk_size):
            evs.append(chunk({"reasoning_content": d}))
        for d in split_deltas(s.text, s.chunking, s.chunk_size):
            evs.append(chunk({"content": d}))
        for d in split_deltas(s.refusal, s.chunking, s.chunk_size):
            evs.append(chunk({"refusal": d}))
        for i, call in enumerate(calls):
            if not (i == 0 and first_tool_merged):
                evs.append(chunk({"tool_calls": [tool_start(i)]}))
            for frag in fragments(call.arguments, call.fragment_size):
                evs.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}))
        evs.append(chunk({}, chat_finish_reason(s.stop_reason)))
        if include_usage:
            out = output_tokens(s)
            # OpenAI's prompt_tokens counts the whole prompt, cached tokens included
            # ("Prompt caching" guide: cached_tokens is a subset of prompt_tokens).
            prompt = s.input_tokens + s.cache_read_input_tokens + s.cache_creation_input_tokens
            details: dict[str, Any] = {"cached_tokens": s.cache_read_input_tokens, "audio_tokens": 0}
            if s.cache_creation_input_tokens:
                details["cache_write_tokens"] = s.cache_creation_input_tokens
            evs.append(
                chunk(
                    None,
                    usage={
                        "prompt_tokens": prompt,
                        "completion_tokens": out,
                        "total_tokens": prompt + out,
                        "prompt_tokens_details": details,
                        "completion_tokens_details": {
                            "reasoning_tokens": s.reasoning_tokens,
                            "audio_tokens": 0,
                            "accepted_prediction_tokens": 0,
                            "rejected_prediction_tokens": 0,
                        },
                    },
                )
            )
        evs.append(WireEvent("done", "[DONE]"))
        return evs

    def error_events(self, fault: Fault) -> list[WireEvent]:
        """Return the ``data: {"error": {...}}`` line that ends the stream."""
        kind = fault.error_type or openai_error_type(fault.status)
        code = fault.error_type or default_openai_code(fault.status)
        return [
            WireEvent(
                "error",
                {
                    "error": {
                        "message": fault.message,
                        "type": kind,
                        "param": None,
                        "code": code,
                    }
                },
            )
        ]

    def unknown_event(self) -> WireEvent:
        """Return an Azure-style asynchronous-filter chunk (``object: ""``).

        ``openai/lib/streaming/chat/_completions.py``
        (``_is_valid_chat_completion_chunk_weak``) documents and skips it.
        """
        return WireEvent(
            "chunk",
            {
                "choices": [],
                "created": 0,
                "id": "",
                "model": "",
                "object": "",
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            },
        )

    def encode(self, event: WireEvent, seq: int) -> bytes:
        r"""Encode as ``data: <json>\n\n``."""
        data = event.payload if isinstance(event.payload, str) else dumps(event.payload)
        return f"data: {data}\n\n".encode()


class ResponsesStream(_OpenAIBase):
    """Renders a script as the Responses API SSE stream."""

    @classmethod
    def validate(cls, body: dict[str, Any], model: str | None) -> RequestProblem | None:
        """Responses checks: ``model``; ``input`` a string or a non-empty array; ``max_output_tokens``.

        ``max_output_tokens`` must be an integer >= 16 (the minimum the API enforces; below it
        answers ``integer_below_min_value``). Source:
        https://platform.openai.com/docs/api-reference/responses/create.
        """
        if "model" not in body:
            return _missing("model")
        if not isinstance(body["model"], str):
            return _wrong_type("model", "a string", body["model"])
        if "input" in body:
            items = body["input"]
            if not isinstance(items, str | list):
                return _wrong_type("input", "one of a string or array of input items", items)
            if isinstance(items, list) and not items:
                return _empty_array("input")
        return _check_int(body, "max_output_tokens", 16)

    @classmethod
    def max_tokens(cls, body: dict[str, Any]) -> int | None:
        """``max_output_tokens``."""
        value = body.get("max_output_tokens")
        return value if is_int(value) else None

    provider: ClassVar[ProviderName] = "openai-responses"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create the response id and the echoed request settings."""
        super().__init__(*args, **kwargs)
        self.response_id = "resp_" + self.ids.hex(50)

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        b = self.body
        reasoning = b.get("reasoning") if isinstance(b.get("reasoning"), dict) else {}
        text = b.get("text") if isinstance(b.get("text"), dict) else {}
        resp: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.ids.created,
            "status": status,
            "background": bool(b.get("background", False)),
            "error": None,
            "incomplete_details": None,
            "instructions": b.get("instructions"),
            "max_output_tokens": b.get("max_output_tokens"),
            "max_tool_calls": b.get("max_tool_calls"),
            "model": self.script.model,
            "output": [],
            "parallel_tool_calls": b.get("parallel_tool_calls", True),
            "previous_response_id": b.get("previous_response_id"),
            "prompt_cache_key": b.get("prompt_cache_key"),
            "reasoning": {
                "effort": (reasoning or {}).get("effort"),
                "summary": (reasoning or {}).get("summary"),
            },
            "safety_identifier": b.get("safety_identifier"),
            "service_tier": "auto",
            "store": b.get("store", True),
            "temperature": b.get("temperature", 1.0),
            "text": {
                "format": (text or {}).get("format", {"type": "text"}),
                "verbosity": (text or {}).get("verbosity", "medium"),
            },
            "tool_choice": b.get("tool_choice", "auto"),
            "tools": b.get("tools", []),
            "top_logprobs": b.get("top_logprobs", 0),
            "top_p": b.get("top_p", 1.0),
            "truncation": b.get("truncation", "disabled"),
            "usage": None,
            "user": b.get("user"),
            "metadata": b.get("metadata") or {},
        }
        resp.update(extra)
        return resp

    @staticmethod
    def _ev(kind: str, **fields: Any) -> WireEvent:
        return WireEvent(kind, {"type": kind, "sequence_number": None, **fields})

    def events(self) -> list[WireEvent]:
        """Return lifecycle, output-item and terminal events in API order."""
        s = self.script
        ev = self._ev
        incomplete = {"max_tokens": "max_output_tokens", "content_filter": "content_filter"}
        reason = incomplete.get(s.stop_reason)
        evs = [
            ev("response.created", response=self._response("in_progress")),
            ev("response.in_progress", response=self._response("in_progress")),
        ]
        output: list[dict[str, Any]] = []
        if s.thinking:
            rs_id = "rs_" + self.ids.hex(50)
            oi = len(output)
            evs.append(
                ev(
                    "response.output_item.added",
                    output_index=oi,
                    item={"id": rs_id, "type": "reasoning", "summary": []},
                )
            )
            common = {"item_id": rs_id, "output_index": oi, "summary_index": 0}
            evs.append(
                ev(
                    "response.reasoning_summary_part.added",
                    **common,
                    part={"type": "summary_text", "text": ""},
                )
            )
            for d in split_deltas(s.thinking, s.chunking, s.chunk_size):
                evs.append(ev("response.reasoning_summary_text.delta", **common, delta=d))
            evs.append(ev("response.reasoning_summary_text.done", **common, text=s.thinking))
            part = {"type": "summary_text", "text": s.thinking}
            evs.append(ev("response.reasoning_summary_part.done", **common, part=part))
            item = {"id": rs_id, "type": "reasoning", "summary": [part]}
            evs.append(ev("response.output_item.done", output_index=oi, item=item))
            output.append(item)
        if s.text or s.refusal or not (s.thinking or s.tool_calls):
            evs.extend(self._message(len(output), output, reason is not None))
        for call in s.tool_calls:
            fc_id = "fc_" + self.ids.hex(50)
            oi = len(output)
            item = {
                "id": fc_id,
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": call.id,
                "name": call.name,
            }
            evs.append(ev("response.output_item.added", output_index=oi, item=item))
            common = {"item_id": fc_id, "output_index": oi}
            for frag in fragments(call.arguments, call.fragment_size):
                evs.append(
                    ev(
                        "response.function_call_arguments.delta",
                        **common,
                        delta=frag,
                        obfuscation=self.ids.obfuscation(len(frag)),
                    )
                )
            evs.append(ev("response.function_call_arguments.done", **common, arguments=call.arguments))
            done = dict(item, status="completed", arguments=call.arguments)
            evs.append(ev("response.output_item.done", output_index=oi, item=done))
            output.append(done)
        out = output_tokens(s)
        prompt = s.input_tokens + s.cache_read_input_tokens + s.cache_creation_input_tokens
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {
                "cached_tokens": s.cache_read_input_tokens,
                "cache_write_tokens": s.cache_creation_input_tokens,
            },
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": s.reasoning_tokens},
            "total_tokens": prompt + out,
        }
        if reason is None:
            final = self._response("completed", output=output, usage=usage, completed_at=int(time.time()))
            evs.append(ev("response.completed", response=final))
        else:
            final = self._response(
                "incomplete",
                output=output,
                usage=usage,
                incomplete_details={"reason": reason},
            )
            evs.append(ev("response.incomplete", response=final))
        return evs

    def _message(self, oi: int, output: list[dict[str, Any]], incomplete: bool) -> list[WireEvent]:
        s = self.script
        ev = self._ev
        msg_id = "msg_" + self.ids.hex(50)
        evs = [
            ev(
                "response.output_item.added",
                output_index=oi,
                item={
                    "id": msg_id,
                    "type": "message",
                    "status": "in_progress",
                    "content": [],
                    "role": "assistant",
                },
            )
        ]
        content: list[dict[str, Any]] = []
        if s.text or not s.refusal:
            common = {"item_id": msg_id, "output_index": oi, "content_index": len(content)}
            part: dict[str, Any] = {
                "type": "output_text",
                "annotations": [],
                "logprobs": [],
                "text": "",
            }
            evs.append(ev("response.content_part.added", **common, part=part))
            for d in split_deltas(s.text, s.chunking, s.chunk_size):
                evs.append(
                    ev(
                        "response.output_text.delta",
                        **common,
                        delta=d,
                        logprobs=[],
                        obfuscation=self.ids.obfuscation(len(d)),
                    )
                )
            evs.append(ev("response.output_text.done", **common, text=s.text, logprobs=[]))
            part = dict(part, text=s.text)
            evs.append(ev("response.content_part.done", **common, part=part))
            content.append(part)
        if s.refusal:
            common = {"item_id": msg_id, "output_index": oi, "content_index": len(content)}
            evs.append(
                ev(
                    "response.content_part.added",
                    **common,
                    part={"type": "refusal", "refusal": ""},
                )
            )
            for d in split_deltas(s.refusal, s.chunking, s.chunk_size):
                evs.append(ev("response.refusal.delta", **common, delta=d))
            evs.append(ev("response.refusal.done", **common, refusal=s.refusal))
            part = {"type": "refusal", "refusal": s.refusal}
            evs.append(ev("response.content_part.done", **common, part=part))
            content.append(part)
        item = {
            "id": msg_id,
            "type": "message",
            "status": "incomplete" if incomplete else "completed",
            "content": content,
            "role": "assistant",
        }
        evs.append(ev("response.output_item.done", output_index=oi, item=item))
        output.append(item)
        return evs

    def error_events(self, fault: Fault) -> list[WireEvent]:
        """Return the top-level ``error`` event followed by ``response.failed``.

        The default ``code`` is ``rate_limit_exceeded`` for status 429, else
        ``server_error`` (codes from ``openai/types/responses/response_error.py``).
        """
        default = "rate_limit_exceeded" if fault.status == 429 else "server_error"
        code = fault.error_type or default
        return [
            self._ev("error", code=code, message=fault.message, param=None),
            self._ev(
                "response.failed",
                response=self._response("failed", error={"code": code, "message": fault.message}),
            ),
        ]

    def unknown_event(self) -> WireEvent:
        """Return a ``response.unknown_future_event`` with a sequence number."""
        return self._ev("response.unknown_future_event", note="rxstream.testing probe")

    def encode(self, event: WireEvent, seq: int) -> bytes:
        r"""Encode as ``event: <type>\ndata: <json>\n\n`` with ``sequence_number``."""
        payload = dict(event.payload, sequence_number=seq)
        return f"event: {event.name}\ndata: {dumps(payload)}\n\n".encode()

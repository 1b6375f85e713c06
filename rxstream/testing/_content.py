"""Pure helpers shared by the wire formats: chunking, ids, token estimates."""

from __future__ import annotations

import math
import random
import re
import string
import time
import uuid
from dataclasses import dataclass, field

from rxstream.testing.scripts import ResponseScript

_WORD = re.compile(r"\s*\S+")
_BASE62 = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"
# Bedrock pads event payloads with a "p" field holding a prefix of this alphabet.
_PAD_ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits


def split_deltas(text: str, chunking: str, chunk_size: int) -> list[str]:
    """Split ``text`` into deltas whose concatenation is ``text``.

    ``"words"`` groups ``chunk_size`` words, each with the whitespace before
    it attached (trailing whitespace joins the last delta); ``"chars"`` groups
    ``chunk_size`` code points.
    """
    if not text:
        return []
    if chunking == "chars":
        return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    words = _WORD.findall(text)
    if not words:
        return [text]
    consumed = sum(len(w) for w in words)
    if consumed < len(text):
        words[-1] += text[consumed:]
    return ["".join(words[i : i + chunk_size]) for i in range(0, len(words), chunk_size)]


def fragments(arguments: str, size: int) -> list[str]:
    """Split tool-call arguments into fragments of ``size`` code points."""
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def output_tokens(script: ResponseScript) -> int:
    """Return the scripted output token count, or a ~4 characters/token estimate."""
    if script.output_tokens is not None:
        return script.output_tokens
    chars = len(script.text) + len(script.thinking) + len(script.refusal)
    chars += sum(len(c.name) + len(c.arguments) for c in script.tool_calls)
    return max(1, math.ceil(chars / 4), script.reasoning_tokens)


def planned_duration_ms(script: ResponseScript, events: int) -> int:
    """Return the stream duration the script's pacing implies, in milliseconds."""
    seconds = script.first_event_delay + script.event_delay * max(0, events - 1)
    return max(1, round(seconds * 1000))


@dataclass
class Ids:
    """Random, realistic-looking identifiers for one emulated response."""

    rng: random.Random = field(default_factory=random.Random)
    created: int = field(default_factory=lambda: int(time.time()))

    def base62(self, n: int) -> str:
        """Return ``n`` random base-62 characters."""
        return "".join(self.rng.choice(_BASE62) for _ in range(n))

    def hex(self, n: int) -> str:
        """Return ``n`` random lowercase hex digits."""
        return "".join(self.rng.choice(_HEX) for _ in range(n))

    def uuid(self) -> str:
        """Return a random UUID4 string."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def obfuscation(self, visible: int, width: int = 16) -> str:
        """Return filler whose length pads ``visible`` characters toward ``width``.

        OpenAI adds an ``obfuscation`` string to stream deltas to hide their
        size; only its presence is part of the wire format.
        """
        return self.base62(max(1, width - visible % width))

    def padding(self) -> str:
        """Return a Bedrock ``p`` padding value (a prefix of a fixed alphabet)."""
        return _PAD_ALPHABET[: self.rng.randint(1, len(_PAD_ALPHABET))]


def anthropic_error_type(status: int) -> str:
    """Return the Anthropic error type for an HTTP ``status``.

    From ``anthropic/types/shared/error_type.py`` and the "Errors" page of the API docs
    (529 = ``overloaded_error``).
    """
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        402: "billing_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        504: "timeout_error",
        529: "overloaded_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


def openai_error_type(status: int) -> str:
    """Return the OpenAI error type for an HTTP ``status`` (its error-code guide)."""
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


def bedrock_error_type(status: int) -> str:
    """Return the Bedrock exception name for an HTTP ``status``.

    From the error shapes in ``bedrock-runtime/2023-09-30/service-2.json`` (PascalCase here;
    the in-stream event names are the camelCase form).
    """
    return {
        400: "ValidationException",
        403: "AccessDeniedException",
        404: "ResourceNotFoundException",
        408: "ModelTimeoutException",
        424: "ModelErrorException",
        429: "ThrottlingException",
        500: "InternalServerException",
        503: "ServiceUnavailableException",
        529: "ServiceUnavailableException",
    }.get(status, "InternalServerException" if status >= 500 else "ValidationException")


def default_openai_code(status: int) -> str | None:
    """Return the OpenAI error ``code`` that goes with an HTTP ``status``."""
    return {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)


def bedrock_stream_exception(status: int, error_type: str | None) -> str:
    """Return the camelCase ``:exception-type`` for an in-stream Bedrock fault."""
    if error_type:
        return error_type[:1].lower() + error_type[1:]
    name = {
        400: "validationException",
        429: "throttlingException",
        500: "internalServerException",
        503: "serviceUnavailableException",
        529: "serviceUnavailableException",
    }.get(status, "modelStreamErrorException")
    return name


def bedrock_http_error_type(status: int, error_type: str | None) -> str:
    """Return the PascalCase error type for a Bedrock HTTP error."""
    if error_type:
        return error_type[:1].upper() + error_type[1:]
    return bedrock_error_type(status)

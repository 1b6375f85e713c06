"""The one rxstream exception tree.

::

    RxStreamError
    ├── ConfigurationError          raised synchronously: misuse, missing extra (also a ValueError)
    │   └── InvalidRequestError     the SDK refused the parameters after subscribe (also a StreamError)
    ├── HandlerError                a user handler raised (isolated; given to on_handler_error)
    ├── ToolError                   a tool reports failure: its message goes back to the model
    └── StreamError                 emitted through on_error; carries .partial: Response
        ├── ProviderError           the provider said no: HTTP error before the stream, or an
        │                           error event inside a 200 stream (status, request id, retryable)
        ├── StreamInterruptedError  the connection dropped mid-stream (retryable)
        ├── StreamTimeoutError      a timeout operator fired (retryable)
        │   ├── FirstTokenTimeout
        │   ├── IdleTimeout
        │   └── TotalTimeout
        ├── StreamCancelledError    waiting on a StreamManager handle that was cancelled
        ├── PausableBufferOverflow  pausable's bound reached on an asyncio loop (cannot block)
        ├── OutputValidationError   structured(): the finished JSON is invalid or breaks the schema
        ├── PublishError            publish_to_redis could not write (on its error channel)
        ├── StreamNotFoundError     from_redis: no stream under the key within ``block``
        ├── AllSourcesFailedError   race_first_token: every source failed before content (.errors)
        └── StreamDecodeError       malformed wire data (bad SSE/JSON/event-stream frame)
            ├── ToolArgumentsError  a tool call's complete arguments are not a JSON object
            └── CassetteError       a cassette line is truncated or corrupted (names the line)

Misuse is raised; stream problems are emitted through ``on_error``, never raised from
``subscribe``. In a tool loop (`rxstream.tool_loop`) a `StreamError` also carries
``.iterations``: the `ToolLoopResult` of the iterations completed before it. The SDK
exception, when there is one, is kept as ``__cause__``. Messages are
built from non-secret fields only (status, error type, provider message, request id):
API keys and auth headers never appear in them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rxstream.response import Response

if TYPE_CHECKING:
    from rxstream.operators._loop_result import ToolLoopResult

__all__ = [
    "AllSourcesFailedError",
    "CassetteError",
    "ConfigurationError",
    "FirstTokenTimeout",
    "HandlerError",
    "IdleTimeout",
    "InvalidRequestError",
    "OutputValidationError",
    "PausableBufferOverflow",
    "ProviderError",
    "PublishError",
    "RxStreamError",
    "StreamCancelledError",
    "StreamDecodeError",
    "StreamError",
    "StreamInterruptedError",
    "StreamNotFoundError",
    "StreamTimeoutError",
    "ToolArgumentsError",
    "ToolError",
    "TotalTimeout",
]


class RxStreamError(Exception):
    """Base class of every rxstream exception."""


class ConfigurationError(RxStreamError, ValueError):
    """Misuse detected synchronously: bad arguments, wrong client type, missing extra."""


class HandlerError(RxStreamError):
    """A user handler raised; other handlers kept running.

    Attributes:
        handler: The handler object that raised.
        callback: Name of the callback that raised (e.g. ``"on_token_received"``).
    """

    def __init__(self, message: str, *, handler: object, callback: str) -> None:
        super().__init__(message)
        self.handler = handler
        self.callback = callback


class ToolError(RxStreamError):
    """Raised by a tool to report a failure to the model.

    `rxstream.tool_loop` sends ``str(error)`` back as an error result (``is_error=True``)
    and goes on; MCP results with ``isError`` become this error. Any other exception a tool
    raises is reported the same way, as ``"<ExceptionClass>: <message>"``.
    """


class StreamError(RxStreamError):
    """An error emitted through ``on_error`` after subscription.

    Attributes:
        partial: The `Response` received before the error (never ``None``).
        retryable: Whether retrying the same request may succeed.
        provider: Provider name, when known.
        iterations: In a tool loop, the `ToolLoopResult` of the iterations completed before
            the error (``partial`` is the failed turn); ``None`` elsewhere.
    """

    retryable_default: bool = False
    iterations: ToolLoopResult | None = None

    def __init__(
        self,
        message: str,
        *,
        partial: Response | None = None,
        retryable: bool | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message)
        self.partial: Response = partial if partial is not None else Response()
        self.retryable: bool = self.retryable_default if retryable is None else retryable
        self.provider = provider

    def with_partial(self, partial: Response) -> StreamError:
        """Set ``partial`` (in place) and return ``self``."""
        self.partial = partial
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, retryable={self.retryable})"


class InvalidRequestError(StreamError, ConfigurationError):
    """The SDK refused the request parameters while building the request (after subscribe).

    The SDK's ``TypeError`` / ``ValueError`` (e.g. a value JSON cannot encode) is the
    ``__cause__``. Emitted through ``on_error`` with ``.partial`` like every stream failure,
    and also a `ConfigurationError` (the fix is in the caller's code). Unknown and missing
    parameters are caught earlier: the source functions raise `ConfigurationError` when called.

    Attributes:
        parameter: The offending top-level parameter, when it could be found.
    """

    def __init__(self, message: str, *, parameter: str | None = None, provider: str | None = None) -> None:
        super().__init__(message, provider=provider, retryable=False)
        self.parameter = parameter


class ProviderError(StreamError):
    """The provider reported an error: HTTP status before the stream, or an error event.

    Attributes:
        status_code: HTTP status (for in-stream error events: the status the error type
            maps to, e.g. 529 for Anthropic ``overloaded_error``, or ``None``).
        error_type: Provider error type (``overloaded_error``, ``rate_limit_error``,
            ``server_error``, ``throttlingException``, ...).
        request_id: Provider request id, if known.
        retry_after: Seconds the provider asked to wait (``retry-after`` header), if any.
        in_stream: True when the error arrived as an event inside a 200 stream.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        in_stream: bool = False,
        partial: Response | None = None,
        retryable: bool | None = None,
        provider: str | None = None,
    ) -> None:
        if retryable is None:
            retryable = is_retryable_status(status_code)
        super().__init__(message, partial=partial, retryable=retryable, provider=provider)
        self.status_code = status_code
        self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after
        self.in_stream = in_stream


class StreamInterruptedError(StreamError):
    """The connection dropped or the body ended before the stream's terminal event."""

    retryable_default = True


class StreamTimeoutError(StreamError):
    """A timeout operator fired; upstream was disposed (connection closed).

    Attributes:
        timeout: The configured limit in seconds.
    """

    retryable_default = True

    def __init__(
        self,
        message: str,
        *,
        timeout: float,
        partial: Response | None = None,
        retryable: bool | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, partial=partial, retryable=retryable, provider=provider)
        self.timeout = timeout


class FirstTokenTimeout(StreamTimeoutError):
    """No content (text, thinking or tool call) arrived within the limit."""


class IdleTimeout(StreamTimeoutError):
    """No event arrived for longer than the limit."""


class TotalTimeout(StreamTimeoutError):
    """The whole stream took longer than the limit."""


class PausableBufferOverflow(StreamError):
    """``pausable`` held ``max_buffered`` events on an asyncio loop, where it cannot block.

    Attributes:
        max_buffered: The configured bound (events).
    """

    def __init__(self, max_buffered: int) -> None:
        super().__init__(
            f"pausable: {max_buffered} events held while paused and the producer runs on an "
            "asyncio loop, which must not block; the upstream was disposed",
            retryable=False,
        )
        self.max_buffered = max_buffered


class OutputValidationError(StreamError):
    """``rxstream.operators.structured``: the finished output is not valid JSON for the schema.

    Emitted through ``on_error`` at completion (never raised); the pydantic
    ``ValidationError`` is kept as ``__cause__``. Not retryable by default: the same request
    usually produces the same shape; retry explicitly if the model is known to be flaky.

    Attributes:
        errors: pydantic's error list (``ValidationError.errors(include_url=False)``); for
            invalid JSON one ``json_invalid`` entry; for a missing tool call one entry of type
            ``missing_tool_call``.
        raw_text: The complete JSON text that failed (the answer text, or the tool call's raw
            arguments), untruncated.
        source: ``"text"`` or ``"tool:NAME"``.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: list[dict[str, Any]],
        raw_text: str,
        source: str,
        partial: Response | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, partial=partial, retryable=False, provider=provider)
        self.errors = errors
        self.raw_text = raw_text
        self.source = source


class AllSourcesFailedError(StreamError):
    """Every source of `rxstream.race_first_token` failed before delivering content.

    Attributes:
        errors: Each source's name mapped to its error, in the order they failed.
    """

    def __init__(self, errors: dict[str, Exception]) -> None:
        detail = "; ".join(f"{name}: {type(error).__name__}" for name, error in errors.items())
        super().__init__(
            f"every source failed before content ({detail})",
            retryable=any(getattr(error, "retryable", False) for error in errors.values()),
        )
        self.errors = errors


class StreamCancelledError(StreamError):
    """`StreamHandle.wait` / ``await handle`` on a stream that was cancelled (not retryable)."""

    def __init__(self, message: str = "the stream was cancelled", *, partial: Response | None = None) -> None:
        super().__init__(message, partial=partial, retryable=False)


class StreamDecodeError(StreamError):
    """The wire data could not be decoded (malformed SSE, JSON or event-stream frame).

    Attributes:
        raw: A short excerpt (at most 200 characters) of the offending data.
    """

    def __init__(
        self,
        message: str,
        *,
        raw: str = "",
        partial: Response | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, partial=partial, retryable=False, provider=provider)
        self.raw = raw[:200]


class ToolArgumentsError(StreamDecodeError):
    """A completed tool call's arguments are not a valid JSON object.

    Attributes:
        index: Tool-call position.
        tool_call_id: Tool call id.
        name: Tool name.
        raw_arguments: The complete raw argument text as streamed.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int,
        tool_call_id: str,
        name: str,
        raw_arguments: str,
        partial: Response | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, raw=raw_arguments, partial=partial, provider=provider)
        self.index = index
        self.tool_call_id = tool_call_id
        self.name = name
        self.raw_arguments = raw_arguments


class CassetteError(StreamDecodeError):
    """A cassette line could not be read; emitted by `rxstream.replay` after the valid prefix.

    Attributes:
        line: The 1-based number of the offending line.
        source: The cassette's path (or ``"<file>"`` for a file object).
    """

    def __init__(
        self, message: str, *, line: int, source: str, raw: str = "", partial: Response | None = None
    ):
        super().__init__(f"{source}:{line}: {message}", raw=raw, partial=partial)
        self.line = line
        self.source = source


class PublishError(StreamError):
    """``publish_to_redis`` could not write an entry; the local stream kept flowing.

    Reported on the operator's error channel (``on_publish_error`` and the
    ``PublishErrors`` subject), never through the stream's own ``on_error``.

    Attributes:
        key: The Redis stream key.
        seq: ``seq`` of the first event that was not written (``None`` for the terminal entry).
    """

    retryable_default = True

    def __init__(self, message: str, *, key: str, seq: int | None, partial: Response | None = None) -> None:
        super().__init__(message, partial=partial)
        self.key = key
        self.seq = seq


class StreamNotFoundError(StreamError):
    """``from_redis`` found no stream under the key within its ``block`` time.

    Attributes:
        key: The Redis stream key.
        waited: Seconds waited.
    """

    def __init__(self, message: str, *, key: str, waited: float) -> None:
        super().__init__(message, retryable=False)
        self.key = key
        self.waited = waited


_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def is_retryable_status(status_code: int | None) -> bool:
    """Return whether an HTTP status is worth retrying (408, 409, 425, 429, 5xx, 529)."""
    if status_code is None:
        return False
    return status_code in _RETRYABLE_STATUS or status_code >= 500


def parse_retry_after(value: Any) -> float | None:
    """Parse a ``retry-after`` / ``retry-after-ms`` header value into seconds (or None)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None

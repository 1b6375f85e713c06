"""Callback handlers for streams: `StreamHandler`, isolated observers and `attach`.

A `StreamHandler` is the callback-style way to consume an ``Observable[StreamEvent]``::

    class Printer(StreamHandler):
        def on_token_received(self, token: str, index: int) -> None:
            print(token, end="", flush=True)

    subscription = attach(stream, Printer(), LoggingHandler())   # one request, two handlers

Isolation: every call into user code is wrapped. An exception raised by a handler is
logged (logger ``"rxstream"``: handler class, callback name and exception type, never the
payload), counted, and handed as a `HandlerError` (the original exception as
``__cause__``) to the handler's ``on_handler_error`` and to ``attach``'s
``on_handler_error``; the stream and every other handler carry on. This is why `attach`
fans out from one subscription instead of using ``share()``: in reactivex 6.1 one
subscriber raising in a shared stream becomes ``on_error`` for every sibling.

Built-ins: `PrintHandler` (text to a file), `CollectHandler` (events and the final
`Response`), `LoggingHandler` (lifecycle, never text) and, in `rxstream.sinks.terminal`,
`RichLiveHandler` (a rich live view).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TextIO

from reactivex import Observable, abc
from reactivex.disposable import SingleAssignmentDisposable

from rxstream.errors import ConfigurationError, HandlerError, ProviderError, StreamError
from rxstream.events import StreamEvent, StreamReset, StreamStart, TextDelta
from rxstream.response import Response, ResponseAccumulator

__all__ = [
    "Attachment",
    "CollectHandler",
    "HandlerObserver",
    "LoggingHandler",
    "PrintHandler",
    "StreamHandler",
    "attach",
]

logger = logging.getLogger("rxstream")

HandlerErrorCallback = Callable[[HandlerError], None]


class StreamHandler:
    """Base class of callback handlers; every callback is a no-op unless overridden.

    Per event, ``on_event`` is called first, then the specific callback
    (``on_stream_start``, ``on_token_received`` or ``on_stream_reset``). At the end exactly
    one of ``on_stream_complete`` / ``on_stream_error`` is called. Disposal (cancellation)
    calls neither.

    A handler may be attached to several streams (e.g. registered with a
    `rxstream.manager.StreamManager`): it is then called from each stream's thread, possibly
    concurrently; per-stream values (``index``, the `Response`) are computed per stream.
    """

    def on_stream_start(self, metadata: StreamStart) -> None:
        """The provider accepted the request (called for every attempt of a retried stream)."""

    def on_token_received(self, token: str, index: int) -> None:
        """A text delta arrived.

        Args:
            token: The new text (`TextDelta.text`, an increment).
            index: Number of text deltas before this one (0-based); restarts at 0 after a
                `StreamReset`.
        """

    def on_stream_reset(self, reset: StreamReset) -> None:
        """A retry threw away what was received so far (see ``retry_stream(on_partial="restart")``)."""

    def on_stream_complete(self, response: Response) -> None:
        """The stream completed; ``response`` is the final `Response`."""

    def on_stream_error(self, error: BaseException) -> None:
        """The stream failed; a `StreamError` carries ``.partial``."""

    def on_event(self, event: StreamEvent) -> None:
        """Every event, before the specific callback."""

    def on_handler_error(self, error: HandlerError) -> None:
        """One of this handler's callbacks raised ``error.__cause__`` (already logged)."""

    def as_observer(self, *, on_handler_error: HandlerErrorCallback | None = None) -> HandlerObserver:
        """Adapt this handler to an isolated ``Observer[StreamEvent]`` (one per subscription).

        Args:
            on_handler_error: Also called with each `HandlerError`.

        Returns:
            A new `HandlerObserver`; pass it to ``stream.subscribe``.
        """
        return HandlerObserver([self], on_handler_error=on_handler_error)


_BASE = StreamHandler


class _Slot:
    """One handler with the callbacks it overrides (skips calling no-ops)."""

    __slots__ = ("complete", "error", "event", "handler", "reset", "start", "token")

    def __init__(self, handler: StreamHandler) -> None:
        cls = type(handler)
        self.handler = handler
        overrides = cls.on_event is not _BASE.on_event
        self.event = handler.on_event if overrides else None
        overrides = cls.on_stream_start is not _BASE.on_stream_start
        self.start = handler.on_stream_start if overrides else None
        overrides = cls.on_token_received is not _BASE.on_token_received
        self.token = handler.on_token_received if overrides else None
        overrides = cls.on_stream_reset is not _BASE.on_stream_reset
        self.reset = handler.on_stream_reset if overrides else None
        self.complete = handler.on_stream_complete
        self.error = handler.on_stream_error


class HandlerObserver(abc.ObserverBase[StreamEvent]):
    """An ``Observer[StreamEvent]`` that dispatches to handlers, each call isolated.

    One instance serves one subscription (it accumulates the `Response`). Thread-safe for
    the reactivex contract (calls serialized by the source).

    Attributes:
        handler_errors: Number of handler callback calls that raised.
        response: The `Response` so far (final once the stream completed).
        finished: True after ``on_completed`` or ``on_error``.
    """

    def __init__(
        self, handlers: Sequence[StreamHandler], *, on_handler_error: HandlerErrorCallback | None = None
    ) -> None:
        for handler in handlers:
            if not isinstance(handler, StreamHandler):
                raise ConfigurationError(
                    f"handlers must be StreamHandler instances, got {type(handler).__name__}"
                )
        self._slots = [_Slot(h) for h in handlers]
        self._on_handler_error = on_handler_error
        self._acc = ResponseAccumulator()
        self._index = 0
        self._lock = threading.Lock()
        self._errors = 0
        self.finished = False

    @property
    def handler_errors(self) -> int:
        """Number of handler callback calls that raised so far."""
        with self._lock:
            return self._errors

    @property
    def response(self) -> Response:
        """The `Response` accumulated so far."""
        return self._acc.snapshot()

    def on_next(self, value: StreamEvent) -> None:
        """Dispatch one event to every handler (isolated)."""
        if self.finished:
            return
        self._acc.add(value)
        kind = type(value)
        index = -1
        if kind is TextDelta:
            index = self._index
            self._index += 1
        elif kind is StreamReset:
            self._index = 0
        for slot in self._slots:
            if slot.event is not None:
                self._call(slot, "on_event", slot.event, value)
            if kind is TextDelta:
                if slot.token is not None:
                    self._call(slot, "on_token_received", slot.token, value.text, index)  # type: ignore[union-attr]
            elif kind is StreamStart:
                if slot.start is not None:
                    self._call(slot, "on_stream_start", slot.start, value)
            elif kind is StreamReset and slot.reset is not None:
                self._call(slot, "on_stream_reset", slot.reset, value)

    def on_error(self, error: Exception) -> None:
        """Call every handler's ``on_stream_error`` (isolated)."""
        if self.finished:
            return
        self.finished = True
        for slot in self._slots:
            self._call(slot, "on_stream_error", slot.error, error)

    def on_completed(self) -> None:
        """Call every handler's ``on_stream_complete`` with the final `Response` (isolated)."""
        if self.finished:
            return
        self.finished = True
        response = self._acc.snapshot()
        for slot in self._slots:
            self._call(slot, "on_stream_complete", slot.complete, response)

    def _call(self, slot: _Slot, name: str, callback: Callable[..., object], *args: object) -> None:
        try:
            callback(*args)
        except Exception as exc:
            self._failed(slot.handler, name, exc)

    def _failed(self, handler: StreamHandler, name: str, exc: Exception) -> None:
        with self._lock:
            self._errors += 1
            count = self._errors
        handler_name = type(handler).__name__
        logger.warning(
            "rxstream: handler %s.%s raised %s (handler error #%d); other handlers continue",
            handler_name,
            name,
            type(exc).__name__,
            count,
        )
        message = f"{handler_name}.{name} raised {type(exc).__name__}"
        error = HandlerError(message, handler=handler, callback=name)
        error.__cause__ = exc
        for report in (handler.on_handler_error, self._on_handler_error):
            if report is None:
                continue
            try:
                report(error)
            except Exception as again:
                logger.warning(
                    "rxstream: on_handler_error of %s raised %s; ignored", handler_name, type(again).__name__
                )


class Attachment(abc.DisposableBase):
    """The subscription made by `attach`: dispose it to cancel the request.

    Attributes:
        observer: The `HandlerObserver` that dispatches to the handlers.
    """

    def __init__(self, observer: HandlerObserver) -> None:
        self.observer = observer
        self._subscription = SingleAssignmentDisposable()

    @property
    def handler_errors(self) -> int:
        """Number of handler callback calls that raised so far."""
        return self.observer.handler_errors

    @property
    def finished(self) -> bool:
        """Whether the stream completed or failed."""
        return self.observer.finished

    @property
    def is_disposed(self) -> bool:
        """Whether `dispose` was called."""
        return self._subscription.is_disposed

    def dispose(self) -> None:
        """Dispose the subscription: the request is cancelled and its connection closed."""
        self._subscription.dispose()


def attach(
    source: Observable[StreamEvent],
    *handlers: StreamHandler,
    on_handler_error: HandlerErrorCallback | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Attachment:
    """Subscribe several handlers to ONE subscription of ``source`` (one request).

    Each handler callback call is isolated (see the module docstring): a raising handler
    is logged, counted and reported as a `HandlerError`; every other handler keeps
    receiving events, and the stream is not affected.

    Args:
        source: A stream, e.g. ``rxs.from_anthropic(...)`` (optionally piped).
        *handlers: `StreamHandler` instances, called in this order for every event.
        on_handler_error: Called with each `HandlerError` (after the handler's own
            ``on_handler_error``).
        scheduler: Subscribe-time scheduler passed to ``source.subscribe``.

    Returns:
        An `Attachment`: ``dispose()`` cancels the request (the connection is closed).

    Raises:
        ConfigurationError: ``source`` is not an Observable, a handler is not a
            `StreamHandler`, or no handler is given.

    Example:
        >>> sub = attach(stream, PrintHandler(), LoggingHandler())  # doctest: +SKIP
    """
    if not isinstance(source, Observable):
        raise ConfigurationError(f"source must be an Observable[StreamEvent], got {type(source).__name__}")
    if not handlers:
        raise ConfigurationError("attach needs at least one StreamHandler")
    observer = HandlerObserver(list(handlers), on_handler_error=on_handler_error)
    attachment = Attachment(observer)
    attachment._subscription.disposable = source.subscribe(observer, scheduler=scheduler)
    return attachment


class PrintHandler(StreamHandler):
    """Write the answer text to a file as it arrives (stdout by default).

    Args:
        file: Text file to write to; default ``sys.stdout`` (looked up at each write).
        end: Written when the stream ends (completed or failed).
        flush: Flush after every token.
    """

    def __init__(self, file: TextIO | None = None, *, end: str = "\n", flush: bool = True) -> None:
        self.file = file
        self.end = end
        self.flush = flush

    def _write(self, text: str) -> None:
        out = self.file if self.file is not None else sys.stdout
        out.write(text)
        if self.flush:
            out.flush()

    def on_token_received(self, token: str, index: int) -> None:
        """Write the token."""
        self._write(token)

    def on_stream_reset(self, reset: StreamReset) -> None:
        """Start a new line: the text written so far was discarded by a retry."""
        if reset.discarded_text:
            self._write("\n")

    def on_stream_complete(self, response: Response) -> None:
        """Write ``end``."""
        self._write(self.end)

    def on_stream_error(self, error: BaseException) -> None:
        """Write ``end``."""
        self._write(self.end)


class CollectHandler(StreamHandler):
    """Keep every event and the outcome of one stream (handy in tests and notebooks).

    Attributes:
        events: Every event received, in order.
        response: The final `Response` once the stream completed, else ``None``.
        error: The stream's error once it failed, else ``None``.
        done: Set when the stream completed or failed.
    """

    def __init__(self) -> None:
        self.events: list[StreamEvent] = []
        self.response: Response | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    @property
    def text(self) -> str:
        """The text of the events received so far (a `StreamReset` discards earlier text)."""
        acc = ResponseAccumulator()
        for event in list(self.events):
            acc.add(event)
        return acc.text

    def on_event(self, event: StreamEvent) -> None:
        """Keep the event."""
        self.events.append(event)

    def on_stream_complete(self, response: Response) -> None:
        """Keep the final response."""
        self.response = response
        self.done.set()

    def on_stream_error(self, error: BaseException) -> None:
        """Keep the error."""
        self.error = error
        self.done.set()


class LoggingHandler(StreamHandler):
    """Log each stream's lifecycle (start, reset, completion, error) — never its text.

    Records carry ids, model, stop reason, token counts and character counts only. It keeps
    no state, so one instance can serve many concurrent streams.

    Args:
        logger: Logger to use; default ``logging.getLogger("rxstream")``.
        level: Level of lifecycle records; errors are logged at ``WARNING`` or above.
    """

    def __init__(self, logger: logging.Logger | None = None, *, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger("rxstream")
        self.level = level

    def on_stream_start(self, metadata: StreamStart) -> None:
        """Log the start: stream id, provider, model, request id."""
        self.logger.log(
            self.level,
            "stream %s started: provider=%s model=%s request_id=%s",
            metadata.stream_id,
            metadata.provider,
            metadata.model,
            metadata.request_id,
        )

    def on_stream_reset(self, reset: StreamReset) -> None:
        """Log a restart by a retry (with the number of discarded characters)."""
        self.logger.log(
            self.level,
            "stream %s reset for attempt %d: %d characters discarded",
            reset.stream_id,
            reset.attempt,
            len(reset.discarded_text),
        )

    def on_stream_complete(self, response: Response) -> None:
        """Log completion: stop reason, token usage, character count."""
        self.logger.log(
            self.level,
            "stream completed: request_id=%s stop_reason=%s input_tokens=%d output_tokens=%d chars=%d",
            response.request_id,
            response.stop_reason,
            response.usage.input_tokens,
            response.usage.output_tokens,
            len(response.text),
        )

    def on_stream_error(self, error: BaseException) -> None:
        """Log the error's type, status and retryability (not its message)."""
        status = error.status_code if isinstance(error, ProviderError) else None
        retryable = error.retryable if isinstance(error, StreamError) else None
        chars = len(error.partial.text) if isinstance(error, StreamError) else 0
        self.logger.log(
            max(self.level, logging.WARNING),
            "stream failed: %s status=%s retryable=%s partial_chars=%d",
            type(error).__name__,
            status,
            retryable,
            chars,
        )

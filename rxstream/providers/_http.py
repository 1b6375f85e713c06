"""HTTP plumbing shared by the SSE providers (Anthropic, OpenAI Chat, OpenAI Responses).

The official SDK does what it is for — auth, base URL, headers, retries of the initial
request, HTTP status errors — through its public raw-response API
(``client.<resource>.with_streaming_response.create(...)``). We then read the body bytes
ourselves, decode SSE with `rxstream.providers._sse.SSEDecoder` and hand each event to a
pure normaliser.

Cancellation of a sync read: measured with all three SDKs, ``response.close()`` from another
thread does not interrupt a read blocked on a stalled socket, while ``socket.shutdown``
does within milliseconds. So the abort callback shuts the socket down (found through the
httpcore ``network_stream`` response extension) and the reading thread closes the response.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from asyncio.trsock import TransportSocket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol

from reactivex import Observable, abc

from rxstream._sdk_internals import httpx_pending_socket
from rxstream.errors import (
    ProviderError,
    StreamDecodeError,
    StreamError,
    StreamInterruptedError,
    parse_retry_after,
)
from rxstream.events import StreamEvent
from rxstream.providers._source import Control, session_observable
from rxstream.providers._sse import SSEDecoder

logger = logging.getLogger("rxstream")

__all__ = [
    "SSENormaliser",
    "async_sse_session",
    "is_async_client",
    "map_sdk_error",
    "sse_observable",
    "sync_sse_session",
]


class SSENormaliser(Protocol):
    """A pure normaliser of one SSE stream (no I/O, no Rx, no clock)."""

    request_id: str | None

    def feed_sse(self, event: str | None, data: bytes) -> list[StreamEvent]:
        """Normalise one SSE event; raise a `StreamError` for an in-band error."""
        ...

    def finish(self) -> list[StreamEvent]:
        """End of body; raise `StreamInterruptedError` if the stream was not complete."""
        ...


def is_async_client(client: Any) -> bool:
    """Return whether an Anthropic/OpenAI SDK client is async (``AsyncAnthropic``, ``AsyncOpenAI``, ...).

    Both SDKs derive their async clients from ``_base_client.AsyncAPIClient``.
    """
    return any(cls.__name__ == "AsyncAPIClient" for cls in type(client).__mro__)


def _header(headers: Any, *names: str) -> str | None:
    for name in names:
        try:
            value = headers.get(name)
        except Exception:
            return None
        if value:
            return str(value)
    return None


def _retry_after(headers: Any) -> float | None:
    ms = parse_retry_after(_header(headers, "retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    return parse_retry_after(_header(headers, "retry-after"))


def map_sdk_error(exc: BaseException, provider: str) -> StreamError | None:
    """Map an Anthropic/OpenAI SDK exception to our tree (None if it is not an SDK error).

    Only non-secret fields are used: status code, the body's ``error.type`` and
    ``error.message``, the request id and ``retry-after``. The SDK exception becomes
    ``__cause__``.
    """
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    err: StreamError
    if isinstance(status, int) and response is not None:
        body = getattr(exc, "body", None)
        error_type, message = _error_fields(body)
        headers = getattr(response, "headers", {})
        request_id = getattr(exc, "request_id", None) or _header(headers, "request-id", "x-request-id")
        should_retry = _header(headers, "x-should-retry")
        retryable = None if should_retry is None else should_retry == "true"
        text = f"{provider} returned HTTP {status}"
        if error_type:
            text += f" ({error_type})"
        if message:
            text += f": {message}"
        if request_id:
            text += f" [request id {request_id}]"
        err = ProviderError(
            text,
            status_code=status,
            error_type=error_type,
            request_id=request_id,
            retry_after=_retry_after(headers),
            retryable=retryable,
            provider=provider,
        )
    elif type(exc).__name__ in ("APIConnectionError", "APITimeoutError"):
        err = StreamInterruptedError(
            f"{provider}: {type(exc).__name__} while opening the stream", provider=provider
        )
    else:
        return None
    err.__cause__ = exc
    return err


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            error_type = inner.get("type") or inner.get("code")
            message = inner.get("message")
            return (
                str(error_type) if error_type is not None else None,
                str(message) if message is not None else None,
            )
    return None, None


def _socket_of(http_response: Any) -> socket.socket | TransportSocket | None:
    # httpcore2's network_stream extension; async clients give asyncio's TransportSocket.
    extensions = getattr(http_response, "extensions", None) or {}
    stream = extensions.get("network_stream")
    if stream is None:
        return None
    try:
        sock = stream.get_extra_info("socket")
    except Exception:
        return None
    return sock if isinstance(sock, socket.socket | TransportSocket) else None


def _shutdown(sock: socket.socket | TransportSocket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


STREAM_ID_HEADER = "x-rxstream-stream-id"
"""Request header carrying the subscription's stream id (lets disposal find its connection)."""


def with_stream_id_header(params: dict[str, Any], stream_id: str) -> dict[str, Any]:
    """Return ``params`` with ``extra_headers`` extended by the `STREAM_ID_HEADER`."""
    headers = dict(params.get("extra_headers") or {})
    headers[STREAM_ID_HEADER] = stream_id
    return {**params, "extra_headers": headers}


def abort_pending_request(client: Any, stream_id: str) -> bool:
    """Shut down the socket of a request that is still waiting for its response headers.

    A sync SDK call blocks in httpcore until the headers arrive, and no public API exposes
    the connection before that. This looks up the request by its `STREAM_ID_HEADER` in the
    client's httpcore connection pool (`rxstream._sdk_internals.httpx_pending_socket`: private
    attributes of httpx2/httpcore2 2.x, canary-tested) and shuts its socket down, so the
    blocked call fails at once and the server sees the disconnect. Returns whether a socket
    was found; any layout change in those libraries makes it return False (disposal then
    takes effect when the headers arrive).
    """
    sock = httpx_pending_socket(client, STREAM_ID_HEADER.encode(), stream_id.encode())
    if sock is None:
        return False
    _shutdown(sock)
    return True


def _abort_while_reading(http_response: Any, control: Control) -> None:
    """Register the socket shutdown that makes a blocked read return on disposal.

    It acts only while the response is open: once httpx2 has read the body to the end it
    closes the response and returns the connection to the pool, where another request may
    be using it (and the session calls ``control.release()`` right after).
    """
    sock = _socket_of(http_response)
    if sock is None:
        return

    def abort() -> None:
        if not getattr(http_response, "is_closed", False):
            _shutdown(sock)

    control.on_abort(abort)


_BODY_EXCERPT = 200


class _BodyCheck:
    """Notices a 200 response that is not an event stream (e.g. a JSON body).

    Some proxies and OpenAI-compatible servers answer a streaming request with one JSON
    object (often an error) and ``Content-Type: application/json``. Without this check the
    stream would end with "connection dropped?" and be retried; it is a decode error that
    quotes the body's start (at most 200 characters; bodies never carry request secrets).
    """

    __slots__ = ("_head", "_provider", "_response", "seen")

    def __init__(self, http_response: Any, provider: str) -> None:
        self._response = http_response
        self._provider = provider
        self._head = b""
        self.seen = False

    def no_event(self, chunk: bytes) -> None:
        if len(self._head) < _BODY_EXCERPT:
            self._head += chunk[: _BODY_EXCERPT - len(self._head)]

    def at_end(self) -> None:
        if self.seen or not self._head.strip():
            return
        content_type = _header(getattr(self._response, "headers", {}), "content-type") or "no content type"
        if "text/event-stream" in content_type:
            return  # an SSE body without a complete event: the normaliser reports the truncation
        excerpt = self._head.decode("utf-8", "replace")
        raise StreamDecodeError(
            f"{self._provider}: expected a text/event-stream body, got {content_type}: {excerpt[:120]!r}",
            raw=excerpt,
            provider=self._provider,
        )


def _is_read_error(exc: BaseException) -> bool:
    # httpx2/httpcore2 transport errors (ReadError, RemoteProtocolError, ...) and socket errors.
    module = type(exc).__module__ or ""
    return isinstance(exc, OSError) or module.startswith(("httpx", "httpcore", "h11", "anyio"))


def sync_sse_session(
    open_stream: Callable[[], Any],
    normaliser: SSENormaliser,
    control: Control,
    provider: str,
    request_id_headers: tuple[str, ...],
    client: Any = None,
) -> Iterator[StreamEvent]:
    """Run one request with a sync SDK client and yield normalised events.

    Args:
        open_stream: Returns the SDK's ``with_streaming_response.create(...)`` context manager;
            its request must carry `STREAM_ID_HEADER` (see `with_stream_id_header`) for
            disposal while the response headers are pending to reach the socket.
        normaliser: Pure normaliser for this stream.
        control: Cancellation state of this subscription.
        provider: Provider name for error messages.
        request_id_headers: Response headers that carry the request id.
        client: The SDK client (used to find the pending connection on disposal).
    """
    manager = open_stream()
    if client is not None:

        def abort_pending() -> None:
            abort_pending_request(client, control.stream_id)

        control.on_abort(abort_pending)
    try:
        api_response = manager.__enter__()
    except Exception as exc:
        if control.cancelled:
            return
        mapped = map_sdk_error(exc, provider)
        if mapped is not None:
            raise mapped from exc
        raise
    try:
        http_response = api_response.http_response
        _abort_while_reading(http_response, control)
        if control.cancelled:
            return
        normaliser.request_id = _header(http_response.headers, *request_id_headers)
        decoder = SSEDecoder()
        events_of = decoder.iter_feed  # lazy: a chunk's first event is not held back by the rest
        feed = normaliser.feed_sse
        check = _BodyCheck(http_response, provider)
        try:
            for chunk in http_response.iter_bytes():
                for sse in events_of(chunk):
                    check.seen = True
                    yield from feed(sse.event, sse.data)
                if not check.seen:
                    check.no_event(chunk)
        except StreamError:
            raise
        except Exception as exc:
            if control.cancelled:
                return
            if _is_read_error(exc):
                raise StreamInterruptedError(
                    f"{provider} connection dropped mid-stream ({type(exc).__name__})", provider=provider
                ) from exc
            raise
        if control.cancelled:
            return
        control.release()  # the body is read: the connection may already be back in the pool
        for sse in decoder.flush():
            check.seen = True
            yield from feed(sse.event, sse.data)
        check.at_end()
        yield from normaliser.finish()
    finally:
        control.release()
        with contextlib.suppress(Exception):
            manager.__exit__(None, None, None)


async def async_sse_session(
    open_stream: Callable[[], Any],
    normaliser: SSENormaliser,
    control: Control,
    provider: str,
    request_id_headers: tuple[str, ...],
) -> AsyncIterator[StreamEvent]:
    """Async twin of `sync_sse_session`; cancellation is task cancellation."""
    manager = open_stream()
    try:
        api_response = await manager.__aenter__()
    except Exception as exc:
        mapped = map_sdk_error(exc, provider)
        if mapped is not None:
            raise mapped from exc
        raise
    try:
        http_response = api_response.http_response
        _abort_while_reading(http_response, control)
        normaliser.request_id = _header(http_response.headers, *request_id_headers)
        decoder = SSEDecoder()
        events_of = decoder.iter_feed  # lazy: a chunk's first event is not held back by the rest
        feed = normaliser.feed_sse
        check = _BodyCheck(http_response, provider)
        try:
            async for chunk in http_response.aiter_bytes():
                for sse in events_of(chunk):
                    check.seen = True
                    for event in feed(sse.event, sse.data):
                        yield event
                if not check.seen:
                    check.no_event(chunk)
        except StreamError:
            raise
        except Exception as exc:
            if _is_read_error(exc):
                raise StreamInterruptedError(
                    f"{provider} connection dropped mid-stream ({type(exc).__name__})", provider=provider
                ) from exc
            raise
        control.release()
        for sse in decoder.flush():
            check.seen = True
            for event in feed(sse.event, sse.data):
                yield event
        check.at_end()
        for event in normaliser.finish():
            yield event
    finally:
        control.release()
        with contextlib.suppress(BaseException):
            await manager.__aexit__(None, None, None)


def sse_observable(
    *,
    client: Any,
    create: Callable[..., Any],
    params: dict[str, Any],
    make_normaliser: Callable[[str], SSENormaliser],
    provider: str,
    request_id_headers: tuple[str, ...],
    scheduler: abc.SchedulerBase | None,
) -> Observable[StreamEvent]:
    """The cold Observable of an SSE provider: one ``create(**params)`` per subscription.

    Args:
        client: The SDK client; async clients run on the asyncio loop, sync ones on
            ``scheduler`` (see `rxstream.providers._source.session_observable`).
        create: The resource's ``with_streaming_response.create``.
        params: Request parameters (``stream=True`` included). Sync requests also carry the
            `STREAM_ID_HEADER`, so disposal can reach a connection still waiting for headers.
        make_normaliser: Builds a fresh pure normaliser for a stream id.
        provider: Provider name for errors.
        request_id_headers: Response headers that carry the request id.
        scheduler: The source's scheduler argument.
    """
    if is_async_client(client):

        def async_session(control: Control) -> AsyncIterator[StreamEvent]:
            return async_sse_session(
                lambda: create(**params),
                make_normaliser(control.stream_id),
                control,
                provider,
                request_id_headers,
            )

        return session_observable(async_session=async_session, scheduler=scheduler, provider=provider)

    def sync_session(control: Control) -> Iterator[StreamEvent]:
        request = with_stream_id_header(params, control.stream_id)
        return sync_sse_session(
            lambda: create(**request),
            make_normaliser(control.stream_id),
            control,
            provider,
            request_id_headers,
            client=client,
        )

    return session_observable(sync_session=sync_session, scheduler=scheduler, provider=provider)

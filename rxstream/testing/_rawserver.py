r"""A loopback HTTP/1.1 server that answers every request with exactly the bytes it is given.

`RawBytesServer` is the test kit's tool for wire garbage: where the `ProviderEmulator`
renders well-formed provider streams, this server plays whatever a `RawReply` says — any
status, headers and content type, a body as a list of pieces with `Pause` delays between
them, chunked / length / close-delimited framing, and an ending that completes the reply,
closes the connection (an incomplete body), resets it (TCP RST) or stalls until the client
gives up. It records every request (secret headers redacted) and every exchange: bytes
written, whether the reply completed, whether the client went away first.

One daemon thread accepts; one daemon thread per connection reads requests and writes
replies, keeping the connection alive between replies as HTTP/1.1 does (the SDKs pool
connections). Protocol facts used: RFC 9112 (message framing: ``Content-Length``,
``Transfer-Encoding: chunked`` with ``<hex size>\r\n<data>\r\n`` chunks and a
``0\r\n\r\n`` terminator, close-delimited bodies).

Example:
    >>> from rxstream.testing import RawBytesServer, RawReply, Pause
    >>> reply = RawReply(body=[b"event: ping\n", Pause(0.01), b"data: {}\n\n"], ending="close")
    >>> with RawBytesServer(reply) as server:  # doctest: +SKIP
    ...     client = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="x")
"""

from __future__ import annotations

import collections
import contextlib
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from rxstream.testing._endpoints import ProviderEndpoints

__all__ = [
    "Ending",
    "Framing",
    "Pause",
    "RawBytesServer",
    "RawExchange",
    "RawReply",
    "RawRequest",
    "RawResponder",
]

Framing = Literal["chunked", "length", "close"]
"""How the body is delimited: ``Transfer-Encoding: chunked``, ``Content-Length`` or connection close."""

Ending = Literal["complete", "close", "reset", "stall"]
"""How the reply ends after its last piece.

``complete``: the body is properly terminated (chunked terminator; for ``close`` framing the
connection is closed, which is the terminator); ``close``: the connection is closed with no
terminator (a chunked or length body is then incomplete); ``reset``: closed with a TCP RST
(``SO_LINGER`` 0); ``stall``: nothing more is sent until the client disconnects or the server
stops.
"""

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "x-amz-security-token"}
)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Server Error"}
_MAX_HEAD = 1 << 20


@dataclass(frozen=True)
class Pause:
    """A delay between two body pieces, in seconds (the client is watched meanwhile)."""

    seconds: float


@dataclass(frozen=True)
class RawReply:
    """The exact reply to one request.

    Attributes:
        body: Body pieces, each written with one ``sendall`` (and, when chunked, as one
            HTTP chunk; empty pieces are skipped there, since an empty chunk would end the
            body), with `Pause` items sleeping in between.
        status: HTTP status code.
        content_type: The ``content-type`` header, or ``None`` for none (e.g.
            ``"text/event-stream"``, ``"application/vnd.amazon.eventstream"``,
            ``"application/json"``).
        headers: More ``(name, value)`` headers, written in order after ``content-type``.
        framing: Body delimitation, see :data:`Framing`.
        ending: How the reply ends, see :data:`Ending`.
        content_length: For ``length`` framing: the ``Content-Length`` written; ``None``
            means the true total of ``body``.
        headers_delay: Seconds to wait after the request before the status line.
        raw_head: When set, written verbatim instead of the status line and headers
            (``status`` is still recorded; ``framing`` still decides chunk encoding).
    """

    body: Sequence[bytes | Pause] = ()
    status: int = 200
    content_type: str | None = "text/event-stream; charset=utf-8"
    headers: Sequence[tuple[str, str]] = ()
    framing: Framing = "chunked"
    ending: Ending = "complete"
    content_length: int | None = None
    headers_delay: float = 0.0
    raw_head: bytes | None = None

    def head(self) -> bytes:
        """Return the status line and headers (``raw_head`` when set)."""
        if self.raw_head is not None:
            return self.raw_head
        lines = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Status')}"]
        if self.content_type is not None:
            lines.append(f"content-type: {self.content_type}")
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.framing == "chunked":
            lines.append("transfer-encoding: chunked")
        elif self.framing == "length":
            total = sum(len(p) for p in self.body if isinstance(p, bytes))
            lines.append(f"content-length: {total if self.content_length is None else self.content_length}")
        else:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


RawResponder = Callable[["RawRequest"], RawReply]
"""``responder(request) -> RawReply``, called on the connection's thread."""


@dataclass(frozen=True)
class RawRequest:
    """One request as received.

    Attributes:
        method: ``"POST"``, ``"GET"``, ...
        path: The request target, query included.
        headers: ``(lower-case name, value)`` pairs in order; the values of
            ``authorization``, ``x-api-key``, ``api-key``, ``cookie`` and
            ``x-amz-security-token`` are replaced by ``"<redacted>"``.
        body: The request body bytes.
        received_at: ``time.monotonic()`` when the body had been read.
    """

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    received_at: float

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True)
class RawExchange:
    """A snapshot of one request and its reply; times are ``time.monotonic()`` seconds.

    Attributes:
        request: The request.
        status: The reply's status.
        bytes_written: Body bytes sent (framing excluded).
        completed: Every piece and the ending were written (``stall`` never completes).
        client_disconnected: The client went away before the reply was over.
        ended_at: When the reply was over (``None`` while it runs).
    """

    request: RawRequest
    status: int
    bytes_written: int
    completed: bool
    client_disconnected: bool
    ended_at: float | None

    @property
    def ended(self) -> bool:
        """Whether the reply is over, however it ended."""
        return self.ended_at is not None


@dataclass
class _Exchange:
    request: RawRequest
    status: int
    bytes_written: int = 0
    completed: bool = False
    client_disconnected: bool = False
    ended_at: float | None = None

    def snapshot(self) -> RawExchange:
        return RawExchange(
            self.request,
            self.status,
            self.bytes_written,
            self.completed,
            self.client_disconnected,
            self.ended_at,
        )


class _Gone(Exception):
    """The client closed or reset the connection."""


class _Stopping(Exception):
    """The server is stopping."""


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    thread: threading.Thread | None = None
    buffer: bytearray = field(default_factory=bytearray)


class RawBytesServer(ProviderEndpoints):
    """Loopback HTTP/1.1 server that plays `RawReply` bytes (see the module docstring).

    Args:
        default: Reply for requests when the queue is empty and there is no responder;
            ``None`` means an empty ``200`` event stream.
        responder: ``responder(request) -> RawReply`` for requests the queue does not serve.
        host: Interface to bind; keep the loopback default in tests.
        port: Port to bind; ``0`` picks a free one.

    Replies are taken in order: the oldest `enqueue`-d one, else ``responder``, else
    ``default``. Use it as a context manager, or call `start` and `stop`. Point the official
    SDKs at `anthropic_base_url`, `openai_base_url` or `bedrock_endpoint_url`.
    """

    def __init__(
        self,
        default: RawReply | None = None,
        *,
        responder: RawResponder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Configure the server; nothing listens until `start`."""
        self._default = default if default is not None else RawReply()
        self._responder = responder
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: collections.deque[RawReply] = collections.deque()
        self._exchanges: list[_Exchange] = []
        self._conns: set[_Conn] = set()
        self._connections_accepted = 0
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Bind, listen and start the accept thread.

        Raises:
            RuntimeError: When already started.
        """
        if self._accept_thread is not None:
            raise RuntimeError("RawBytesServer is already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        listener.listen(128)
        self._port = listener.getsockname()[1]
        self._listener = listener
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="rxstream-rawserver-accept", daemon=True
        )
        self._accept_thread.start()

    def stop(self) -> None:
        """Close every connection at once (running replies included) and join all threads (idempotent)."""
        thread = self._accept_thread
        if thread is None:
            return
        with self._lock:
            self._stopping = True
            conns = list(self._conns)
        assert self._wake_w is not None
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=10.0)
        for conn in conns:
            if conn.thread is not None:
                conn.thread.join(timeout=10.0)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None
        self._accept_thread = None

    def __enter__(self) -> RawBytesServer:
        """Start the server; see `start`."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server; see `stop`."""
        self.stop()

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server.

        Raises:
            RuntimeError: Before `start`.
        """
        if self._accept_thread is None:
            raise RuntimeError("RawBytesServer is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    # -- replies and records --------------------------------------------------------------

    def enqueue(self, *replies: RawReply) -> None:
        """Queue replies; each request takes the oldest one before the responder."""
        with self._lock:
            self._queue.extend(replies)

    def dequeue_all(self) -> list[RawReply]:
        """Remove and return the replies still queued."""
        with self._lock:
            replies = list(self._queue)
            self._queue.clear()
        return replies

    @property
    def requests(self) -> list[RawRequest]:
        """Every request so far, oldest first."""
        with self._lock:
            return [e.request for e in self._exchanges]

    @property
    def exchanges(self) -> list[RawExchange]:
        """Snapshots of every exchange so far, oldest first."""
        with self._lock:
            return [e.snapshot() for e in self._exchanges]

    @property
    def open_connections(self) -> int:
        """Connections the client has not closed yet (pooled keep-alive ones included)."""
        with self._lock:
            return len(self._conns)

    @property
    def connections_accepted(self) -> int:
        """Connections accepted since `start`."""
        with self._lock:
            return self._connections_accepted

    def wait_for_end(self, index: int = -1, timeout: float = 5.0) -> RawExchange:
        """Block until exchange ``index`` (negative counts from the end) is over.

        Args:
            index: Position in `exchanges`; if it does not exist yet, wait for it.
            timeout: Seconds to wait.

        Returns:
            The snapshot of the ended exchange.

        Raises:
            TimeoutError: If it has not ended within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                n = len(self._exchanges)
                if -n <= index < n and self._exchanges[index].ended_at is not None:
                    return self._exchanges[index].snapshot()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"exchange {index} did not end within {timeout}s")
                self._changed.wait(remaining)

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> list[RawRequest]:
        """Block until at least ``count`` requests have been received; return them all.

        Raises:
            TimeoutError: If fewer arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._exchanges) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._exchanges)} of {count} requests within {timeout}s")
                self._changed.wait(remaining)
            return [e.request for e in self._exchanges]

    def wait_until_idle(self, timeout: float = 5.0) -> None:
        """Block until every exchange has ended and the client closed every connection.

        Raises:
            TimeoutError: If that does not happen within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._conns or any(e.ended_at is None for e in self._exchanges):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._conns)} connection(s) still open after {timeout}s")
                self._changed.wait(remaining)

    # -- server threads -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake_r
        assert listener is not None and wake is not None
        while True:
            ready, _, _ = select.select([listener, wake], [], [])
            if wake in ready:
                return
            try:
                sock, _ = listener.accept()
            except OSError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock)
            with self._changed:
                if self._stopping:
                    sock.close()
                    return
                self._conns.add(conn)
                self._connections_accepted += 1
                conn.thread = threading.Thread(
                    target=self._serve, args=(conn,), name="rxstream-rawserver-conn", daemon=True
                )
                conn.thread.start()

    def _serve(self, conn: _Conn) -> None:
        try:
            while True:
                request = self._read_request(conn)
                if request is None:
                    return
                if not self._reply(conn, request):
                    return
        except (_Gone, _Stopping, OSError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.sock.close()
            with self._changed:
                self._conns.discard(conn)
                self._changed.notify_all()

    def _wait_readable(self, conn: _Conn, timeout: float | None) -> bool:
        """Wait for client data/EOF; raise `_Stopping` on stop; True if readable."""
        assert self._wake_r is not None
        ready, _, _ = select.select([conn.sock, self._wake_r], [], [], timeout)
        if self._wake_r in ready:
            raise _Stopping
        return conn.sock in ready

    def _recv(self, conn: _Conn) -> None:
        self._wait_readable(conn, None)
        try:
            data = conn.sock.recv(65536)
        except OSError as exc:
            raise _Gone from exc
        if not data:
            raise _Gone
        conn.buffer += data

    def _read_until(self, conn: _Conn, marker: bytes) -> bytes:
        while (end := conn.buffer.find(marker)) < 0:
            if len(conn.buffer) > _MAX_HEAD:
                raise _Gone
            self._recv(conn)
        out = bytes(conn.buffer[: end + len(marker)])
        del conn.buffer[: end + len(marker)]
        return out

    def _read_exact(self, conn: _Conn, n: int) -> bytes:
        while len(conn.buffer) < n:
            self._recv(conn)
        out = bytes(conn.buffer[:n])
        del conn.buffer[:n]
        return out

    def _read_request(self, conn: _Conn) -> RawRequest | None:
        try:
            head = self._read_until(conn, b"\r\n\r\n")
        except _Gone:
            return None  # the client closed an idle connection
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 2:
            raise _Gone
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers.append((name, "<redacted>" if name in _SECRET_HEADERS else value))
        values = dict(headers)
        if values.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self._read_until(conn, b"\r\n").split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._read_until(conn, b"\r\n")
                    break
                body += self._read_exact(conn, size)
                self._read_exact(conn, 2)
            raw = bytes(body)
        else:
            raw = self._read_exact(conn, int(values.get("content-length", "0") or "0"))
        return RawRequest(parts[0], parts[1], tuple(headers), raw, time.monotonic())

    def _next_reply(self, request: RawRequest) -> RawReply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self._responder is not None:
            return self._responder(request)
        return self._default

    def _reply(self, conn: _Conn, request: RawRequest) -> bool:
        """Write one reply; return whether the connection stays open for another request."""
        reply = self._next_reply(request)
        exchange = _Exchange(request, reply.status)
        with self._changed:
            self._exchanges.append(exchange)
            self._changed.notify_all()
        keep = False
        try:
            keep = self._write_reply(conn, reply, exchange)
        except _Gone:
            self._update(exchange, client_disconnected=True)
        finally:
            self._update(exchange, ended_at=time.monotonic())
        return keep and request.header("connection") != "close"

    def _write_reply(self, conn: _Conn, reply: RawReply, exchange: _Exchange) -> bool:
        if reply.headers_delay > 0:
            self._pause(conn, reply.headers_delay)
        self._send(conn, reply.head())
        chunked = reply.framing == "chunked"
        for piece in reply.body:
            if isinstance(piece, Pause):
                self._pause(conn, piece.seconds)
                continue
            if chunked:
                if not piece:
                    continue
                self._send(conn, b"%x\r\n" % len(piece) + piece + b"\r\n")
            else:
                self._send(conn, piece)
            with self._changed:
                exchange.bytes_written += len(piece)
                self._changed.notify_all()
        if reply.ending == "stall":
            self._wait_readable(conn, None)
            self._check_alive(conn)
            raise _Gone  # the client sent bytes mid-reply (not HTTP/1.1 without pipelining)
        if reply.ending == "reset":
            self._update(exchange, completed=True)
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.sock.close()
            return False
        if reply.ending == "close":
            self._update(exchange, completed=True)
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)
            return False
        if chunked:
            self._send(conn, b"0\r\n\r\n")
        self._update(exchange, completed=True)
        if reply.framing == "close":
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_WR)
            return False
        return True

    def _send(self, conn: _Conn, data: bytes) -> None:
        try:
            conn.sock.sendall(data)
        except OSError as exc:
            raise _Gone from exc

    def _pause(self, conn: _Conn, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._wait_readable(conn, remaining):
                self._check_alive(conn)
                return  # the client sent data early (pipelining is not expected): stop waiting

    def _check_alive(self, conn: _Conn) -> None:
        """Raise `_Gone` if the readable socket is at EOF or reset."""
        try:
            data = conn.sock.recv(65536, socket.MSG_PEEK)
        except OSError as exc:
            raise _Gone from exc
        if not data:
            raise _Gone

    def _update(self, exchange: _Exchange, **changes: object) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(exchange, key, value)
            self._changed.notify_all()

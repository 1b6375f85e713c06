"""A loopback HTTP server that speaks the providers' streaming wire formats.

:class:`ProviderEmulator` runs uvicorn (h11, no lifespan, no access log) in a
daemon thread on ``127.0.0.1`` and a free port. Point the official SDKs at it:

>>> with ProviderEmulator(ResponseScript(text="Hi there")) as emu:  # doctest: +SKIP
...     client = anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="x")
...     with client.messages.stream(model="m", max_tokens=10, messages=[...]) as s:
...         s.get_final_message()

Routes (all ``POST``; each is `rxstream.providers.ProviderSpec.route` of its provider):

================================================  ======================
path                                              provider
================================================  ======================
``/v1/messages``                                  ``anthropic``
``/v1/chat/completions``                          ``openai``
``/v1/responses``                                 ``openai-responses``
``/model/{modelId}/converse-stream``              ``bedrock``
``/model/{modelId}/invoke-with-response-stream``  ``bedrock-invoke``
================================================  ======================

Each request takes one script: the next one queued with
:meth:`ProviderEmulator.enqueue`, else ``responder(provider, body)``, else the
default script. Anthropic and OpenAI requests without ``"stream": true`` get a
400 in the provider's error format.

Streaming: response headers go out at once; then, per wire event, the
script's delay is slept and the event's bytes are passed to the ASGI ``send``
(split into 1..64-byte pieces with ``write_split_seed``). ``send`` waits while
uvicorn's write buffer is above its high-water mark, so a client that stops
reading blocks the writer (watch ``ConnectionRecord.events_written``). A task
waits for ``http.disconnect`` alongside the writer, so a client that goes away
is seen at once, even during a stall or a delay, and the writer is cancelled.

Faults: ``error_event`` replaces the rest of the stream with the provider's
in-stream error form after ``after_events`` events; ``drop`` closes the
connection without the terminating chunk (clients see an incomplete chunked
body); ``stall`` stops writing for ``stall_seconds`` (or until the client
leaves) and then carries on; ``http_error`` answers with the provider's JSON
error and no stream.

:meth:`ProviderEmulator.stop` (and leaving the ``with`` block) aborts every
open connection at once, streams included; their records end with neither
``completed`` nor ``client_disconnected`` set.

Forward-compatible unknown events (``unknown_event_after``): Anthropic and
Bedrock InvokeModel ``unknown_future_event``; OpenAI Chat an Azure-style
content-filter chunk with ``"object": ""``; OpenAI Responses
``response.unknown_future_event``; Bedrock Converse an ``unknownFutureEvent``
message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn

from rxstream.events import ProviderName
from rxstream.providers import PROVIDERS
from rxstream.testing._anthropic import AnthropicStream
from rxstream.testing._bedrock import BedrockConverseStream, BedrockInvokeStream
from rxstream.testing._content import Ids, output_tokens
from rxstream.testing._endpoints import ProviderEndpoints
from rxstream.testing._openai import ChatCompletionsStream, ResponsesStream
from rxstream.testing._wire import HttpReply, RequestProblem, WireEvent, WireStream, dumps
from rxstream.testing.scripts import Fault, ResponseScript

__all__ = [
    "ConnectionRecord",
    "ProviderEmulator",
    "ProviderName",
    "RecordedRequest",
    "Responder",
]


Responder = Callable[[str, dict[str, Any]], ResponseScript]
"""``responder(provider, body) -> ResponseScript``: builds a script per request."""

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]

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
assert set(_STREAMS) == set(PROVIDERS), "every registered provider needs an emulated wire format"


def _route_pattern(route: str) -> re.Pattern[str]:
    """``/model/{modelId}/converse-stream`` → a regex whose group 1 is the model id."""
    return re.compile("^" + re.escape(route).replace(re.escape("{modelId}"), "([^/]+)") + "$")


_ROUTES: list[tuple[re.Pattern[str], ProviderName]] = [
    (_route_pattern(spec.route), spec.name) for spec in PROVIDERS.values()
]


def _route(path: str) -> tuple[ProviderName | None, str | None]:
    """The provider of ``path`` and the model id in it (Bedrock), or ``(None, None)``."""
    for pattern, name in _ROUTES:
        match = pattern.match(path)
        if match:
            return name, urllib.parse.unquote(match[1]) if pattern.groups else None
    return None, None


@dataclass(frozen=True)
class RecordedRequest:
    """One request the emulator received (never its headers or credentials).

    Attributes:
        provider: The route it hit (see :data:`ProviderName`).
        path: The request path, e.g. ``/v1/messages``.
        body: The parsed JSON body.
        model: ``body["model"]``, or the Bedrock ``modelId`` from the path.
        received_at: ``time.monotonic()`` when the body had been read.
    """

    provider: str
    path: str
    body: dict[str, Any]
    model: str | None
    received_at: float


@dataclass(frozen=True)
class ConnectionRecord:
    """A snapshot of one response, taken when it was read from the emulator.

    Times are ``time.monotonic()`` seconds.

    Attributes:
        provider: The route (see :data:`ProviderName`).
        path: The request path.
        status: The HTTP status sent.
        started_at: When the request body had been read.
        ended_at: When the response ended (``None`` while it is running).
        events_written: Wire events completely handed to the server so far.
        bytes_written: Body bytes handed to the server so far.
        completed: Every byte of the response, terminating chunk included,
            was sent.
        client_disconnected: The client went away before the end.
        disconnected_at: When the emulator saw the client go away.
    """

    provider: str
    path: str
    status: int
    started_at: float
    ended_at: float | None
    events_written: int
    bytes_written: int
    completed: bool
    client_disconnected: bool
    disconnected_at: float | None

    @property
    def ended(self) -> bool:
        """Whether the response is over (completed, dropped or abandoned)."""
        return self.ended_at is not None


@dataclass
class _Conn:
    provider: str
    path: str
    started_at: float
    status: int = 0
    ended_at: float | None = None
    events_written: int = 0
    bytes_written: int = 0
    completed: bool = False
    client_disconnected: bool = False
    disconnected_at: float | None = None

    def snapshot(self) -> ConnectionRecord:
        return ConnectionRecord(
            provider=self.provider,
            path=self.path,
            status=self.status,
            started_at=self.started_at,
            ended_at=self.ended_at,
            events_written=self.events_written,
            bytes_written=self.bytes_written,
            completed=self.completed,
            client_disconnected=self.client_disconnected,
            disconnected_at=self.disconnected_at,
        )


class _DropConnection(Exception):
    """Raised out of the ASGI app so uvicorn closes the socket mid-response."""


class _ClientGone(Exception):
    """Raised in the writer when the client has disconnected."""


class _DropLogFilter(logging.Filter):
    """Hides uvicorn's traceback for the emulator's deliberate connection drops.

    Also hides asyncio's ``socket.send() raised exception.`` warning when it comes from the
    emulator's own thread: it is logged for every write after a client went away (a
    disposed stream), which is the expected end of a cancelled response, not a fault.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "asyncio":
            return not (
                record.threadName == "rxstream-emulator" and record.msg == "socket.send() raised exception."
            )
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _DropConnection)


_DROP_FILTER = _DropLogFilter()


class _Server(uvicorn.Server):
    """uvicorn's server with a main loop that wakes at once on shutdown.

    Upstream polls ``should_exit`` every 0.1 s; here the 1-second tick that
    refreshes the ``date`` header is kept and :meth:`wake` ends the loop.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None

    def wake(self) -> None:
        """Ask the main loop to re-check ``should_exit`` (call in the server loop)."""
        if self._wake is not None:
            self._wake.set()

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)


class ProviderEmulator(ProviderEndpoints):
    """Loopback server that streams scripted replies in the real wire formats.

    Args:
        default: Script for requests when the queue is empty and there is no
            responder; ``None`` means ``ResponseScript()``.
        responder: ``responder(provider, body) -> ResponseScript``, called in
            the server thread for each request the queue does not serve.
        host: Interface to bind; keep the loopback default in tests.
        port: Port to bind; ``0`` picks a free one (read it from :attr:`url`).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        default: ResponseScript | None = None,
        *,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Configure the emulator; nothing listens until :meth:`start`."""
        self._default = default
        self._responder = responder
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: collections.deque[ResponseScript] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._conns: list[_Conn] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Bind the port, start uvicorn in a daemon thread and wait until it listens.

        Raises:
            RuntimeError: When already started, or the server fails to start
                within 10 seconds.
        """
        if self._thread is not None:
            raise RuntimeError("ProviderEmulator is already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # Protocol IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY only on accepted sockets whose
        # proto says TCP (asyncio/base_events.py `_set_nodelay`); without it Nagle + delayed ACK
        # hold the first small event of a reused connection ~40 ms.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)
        logging.getLogger("asyncio").addFilter(_DROP_FILTER)
        config = uvicorn.Config(
            self._app,
            host=self._host,
            port=self._port,
            http="h11",
            interface="asgi3",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
            # Real APIs keep idle connections open far longer than uvicorn's 5 s default; a
            # short keep-alive makes a pooled client race the server's close on reuse.
            timeout_keep_alive=300,
        )
        server = _Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name="rxstream-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._thread = None
                sock.close()
                raise RuntimeError("ProviderEmulator failed to start") from self._error
            time.sleep(0.005)

    def _run(self, server: _Server, sock: socket.socket) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._shutdown = asyncio.Event()
            await server.serve(sockets=[sock])

        try:
            asyncio.run(serve())
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc

    def stop(self) -> None:
        """Abort running streams, stop the server and join its thread (idempotent)."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._abort_all, server)
        thread.join(timeout=10.0)
        self._thread = None
        self._server = None

    def _abort_all(self, server: _Server) -> None:
        # Runs in the server loop. Streams see the shutdown flag first; then every
        # socket is aborted, so a client that stopped reading cannot hold the
        # shutdown (a graceful close would wait for its buffer to drain).
        if self._shutdown is not None:
            self._shutdown.set()
        for protocol in list(server.server_state.connections):
            transport = getattr(protocol, "transport", None)
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        server.wake()

    def __enter__(self) -> ProviderEmulator:
        """Start the server; see :meth:`start`."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server; see :meth:`stop`."""
        self.stop()

    # -- addresses ----------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server.

        Raises:
            RuntimeError: Before :meth:`start`.
        """
        if self._thread is None:
            raise RuntimeError("ProviderEmulator is not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    # -- scripts and records ------------------------------------------------

    def enqueue(self, *scripts: ResponseScript) -> None:
        """Queue scripts; each request takes the oldest one before the responder."""
        with self._lock:
            self._queue.extend(scripts)

    def dequeue_all(self) -> list[ResponseScript]:
        """Remove and return the scripts still queued (handy between tests)."""
        with self._lock:
            scripts = list(self._queue)
            self._queue.clear()
        return scripts

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Snapshots of every response so far, oldest first."""
        with self._lock:
            return [c.snapshot() for c in self._conns]

    def wait_for_disconnect(self, index: int = -1, timeout: float = 5.0) -> ConnectionRecord:
        """Block until connection ``index`` has ended, however it ended.

        Args:
            index: Position in :attr:`connections`; negative values count from
                the end. If that connection does not exist yet, wait for it.
            timeout: Seconds to wait.

        Returns:
            The snapshot of the ended connection.

        Raises:
            TimeoutError: If it has not ended within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                n = len(self._conns)
                if -n <= index < n and self._conns[index].ended_at is not None:
                    return self._conns[index].snapshot()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"connection {index} did not end within {timeout}s")
                self._changed.wait(remaining)

    def _update(self, conn: _Conn, **changes: Any) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(conn, key, value)
            self._changed.notify_all()

    def _next_script(self, provider: str, body: dict[str, Any]) -> ResponseScript:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self._responder is not None:
            return self._responder(provider, body)
        return self._default if self._default is not None else ResponseScript()

    # -- ASGI -----------------------------------------------------------------

    async def _app(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            return
        raw = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body", False):
                break
        ids = Ids()
        raw_path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        path = raw_path.split("?", 1)[0]
        provider, model = _route(path)
        if provider is None or scope["method"] != "POST":
            body = dumps({"error": {"message": f"no emulated route for {path}"}})
            await self._send_reply(send, None, HttpReply(404, [], body.encode()))
            return
        wire = _STREAMS[provider]
        request_id = wire.new_request_id(ids)
        path = scope["path"]
        conn = _Conn(provider=provider, path=path, started_at=time.monotonic())
        try:
            body_obj = json.loads(raw)
        except ValueError:
            body_obj = None
        if not isinstance(body_obj, dict):
            with self._changed:
                self._conns.append(conn)
            reply = wire.error_reply(400, "The request body is not a JSON object.", request_id=request_id)
            await self._send_reply(send, conn, reply)
            return
        if model is None and isinstance(body_obj.get("model"), str):
            model = body_obj["model"]
        with self._changed:
            self._requests.append(RecordedRequest(provider, path, json.loads(raw), model, conn.started_at))
            self._conns.append(conn)
        problem = wire.validate(body_obj, model)
        if problem is None and wire.stream_flag and body_obj.get("stream") is not True:
            problem = RequestProblem(
                'rxstream.testing.ProviderEmulator only emulates streaming: send "stream": true.', "stream"
            )
        if problem is not None:
            reply = wire.error_reply(400, problem.message, request_id=request_id, problem=problem)
            await self._send_reply(send, conn, reply)
            return
        try:
            script = self._next_script(provider, body_obj)
        except Exception as exc:  # a broken responder is reported, not fatal
            reply = wire.error_reply(500, f"responder failed: {exc!r}", request_id=request_id)
            await self._send_reply(send, conn, reply)
            return
        fault = script.fault
        if fault is not None and fault.kind == "http_error":
            reply = wire.error_reply(
                fault.status,
                fault.message,
                error_type=fault.error_type,
                retry_after=fault.retry_after,
                request_id=request_id,
            )
            await self._send_reply(send, conn, reply)
            return
        script = limit_output(script, wire.max_tokens(body_obj))
        stream = wire(script, body_obj, ids, request_id)
        await self._stream(receive, send, conn, stream, script)

    async def _send_reply(self, send: _Send, conn: _Conn | None, reply: HttpReply) -> None:
        headers = [(k.encode(), v.encode()) for k, v in reply.headers]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        if not any(k == b"content-type" for k, _ in headers):
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})
        if conn is not None:
            self._update(
                conn,
                status=reply.status,
                bytes_written=len(reply.body),
                completed=True,
                ended_at=time.monotonic(),
            )

    async def _stream(
        self,
        receive: _Receive,
        send: _Send,
        conn: _Conn,
        stream: WireStream,
        script: ResponseScript,
    ) -> None:
        events = _plan(stream, script)
        if script.headers_delay > 0:
            # The request was read but no response has started: a client that gives up now
            # is still seen (the disconnect watcher runs during the wait).
            early = asyncio.create_task(_wait_disconnect(receive, asyncio.Event()))
            done, _ = await asyncio.wait({early}, timeout=script.headers_delay)
            if early in done and not early.cancelled() and early.exception() is None:
                self._update(
                    conn, client_disconnected=True, disconnected_at=early.result(), ended_at=time.monotonic()
                )
                return
            early.cancel()
            with contextlib.suppress(BaseException):
                await early
        headers = [(b"content-type", stream.media_type.encode())]
        headers += [(k.encode(), v.encode()) for k, v in stream.headers()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        self._update(conn, status=200)
        assert self._shutdown is not None
        gone = asyncio.Event()
        writer = asyncio.create_task(self._write(send, conn, stream, events, script, gone))
        watcher = asyncio.create_task(_wait_disconnect(receive, gone))
        shutdown = asyncio.create_task(self._shutdown.wait())
        try:
            await asyncio.wait({writer, watcher, shutdown}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (writer, watcher, shutdown):
                if not task.done():
                    task.cancel()
            for task in (writer, watcher, shutdown):
                with contextlib.suppress(BaseException):
                    await task
            outcome = _outcome(writer, watcher, shutting_down=self._shutdown.is_set())
            if isinstance(outcome, float):
                self._update(
                    conn,
                    client_disconnected=True,
                    disconnected_at=outcome,
                    ended_at=time.monotonic(),
                )
            else:
                self._update(conn, completed=outcome is None, ended_at=time.monotonic())
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome is _SHUTDOWN:
            raise _DropConnection("emulator shutting down")

    async def _write(
        self,
        send: _Send,
        conn: _Conn,
        stream: WireStream,
        events: list[WireEvent],
        script: ResponseScript,
        gone: asyncio.Event,
    ) -> None:
        fault = script.fault
        cut: int | None = None
        if fault is not None and fault.kind in ("drop", "stall"):
            cut = min(fault.after_events, len(events))
        rng = random.Random(script.write_split_seed) if script.write_split_seed is not None else None
        for seq in range(len(events) + 1):
            if seq == cut and fault is not None:
                if fault.kind == "drop":
                    raise _DropConnection(f"scripted drop after {seq} events")
                await _stall(fault)
            if seq == len(events):
                break
            delay = script.first_event_delay if seq == 0 else script.event_delay
            if delay > 0:
                await asyncio.sleep(delay)
            data = stream.encode(events[seq], seq)
            for piece in _pieces(data, rng):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                with self._lock:
                    conn.bytes_written += len(piece)
            with self._lock:
                conn.events_written += 1
            # uvicorn's send() returns silently once the client is gone, so yield to
            # let the disconnect watcher run, and stop writing into the void.
            await asyncio.sleep(0)
            if gone.is_set():
                raise _ClientGone
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_SHUTDOWN = "shutdown"


def _outcome(
    writer: asyncio.Task[None], watcher: asyncio.Task[float], *, shutting_down: bool
) -> float | BaseException | str | None:
    """Return ``None`` (all sent), the writer's error, shutdown, or a disconnect time."""
    if writer.done() and not writer.cancelled():
        error = writer.exception()
        if not isinstance(error, _ClientGone):
            return error
    if shutting_down:
        return _SHUTDOWN
    if watcher.done() and not watcher.cancelled() and watcher.exception() is None:
        return watcher.result()
    return _SHUTDOWN


_WORDS = re.compile(r"\s*\S+")


def limit_output(script: ResponseScript, max_tokens: int | None) -> ResponseScript:
    """Cut ``script`` at ``max_tokens`` output tokens, as the real APIs do.

    When the script's output token count (its ``output_tokens``, else the ~4
    characters/token estimate) exceeds ``max_tokens``, the answer keeps its first
    ``max_tokens`` words (each word, with the whitespace before it, counts as one token;
    thinking first, then text), tool calls and refusal are dropped, ``output_tokens``
    becomes ``max_tokens`` and the stop reason ``max_tokens`` (Anthropic ``max_tokens``,
    OpenAI ``length`` / ``incomplete``, Bedrock ``max_tokens``). Faults are kept.

    Args:
        script: The script chosen for the request.
        max_tokens: The request's output token limit, or ``None`` (no limit).

    Returns:
        ``script`` itself when it fits, else the cut copy.
    """
    if max_tokens is None or output_tokens(script) <= max_tokens:
        return script
    budget = max_tokens
    thinking_words = _WORDS.findall(script.thinking)[:budget]
    budget -= len(thinking_words)
    text_words = _WORDS.findall(script.text)[:budget]
    return script.model_copy(
        update={
            "thinking": "".join(thinking_words),
            "text": "".join(text_words),
            "tool_calls": [],
            "refusal": "",
            "stop_reason": "max_tokens",
            "stop_sequence": None,
            "output_tokens": max_tokens,
            "reasoning_tokens": min(script.reasoning_tokens, max_tokens),
        }
    )


def _plan(stream: WireStream, script: ResponseScript) -> list[WireEvent]:
    events = stream.events()
    if script.unknown_event_after is not None:
        events.insert(min(script.unknown_event_after, len(events)), stream.unknown_event())
    fault = script.fault
    if fault is not None and fault.kind == "error_event":
        events = events[: fault.after_events] + stream.error_events(fault)
    return events


def _pieces(data: bytes, rng: random.Random | None) -> list[bytes]:
    if rng is None:
        return [data]
    out: list[bytes] = []
    i = 0
    while i < len(data):
        n = rng.randint(1, 64)
        out.append(data[i : i + n])
        i += n
    return out


async def _stall(fault: Fault) -> None:
    if fault.stall_seconds is None:
        await asyncio.get_running_loop().create_future()
    else:
        await asyncio.sleep(fault.stall_seconds)


async def _wait_disconnect(receive: _Receive, gone: asyncio.Event) -> float:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return time.monotonic()

"""``rxstream serve``: a one-page chat in the browser, streamed over Server-Sent Events.

A Starlette app under uvicorn on ``127.0.0.1`` serves a plain HTML + JavaScript page (no build
step, no CDN: the files live in ``rxstream/cli/static``) and ``POST /api/chat``, which
answers with `rxstream.web.sse_response` in the ``rxstream`` protocol. Without an API key
the answers come from the embedded `rxstream.testing.ProviderEmulator` (demo replies, or
``RXSTREAM_EMULATOR_SCRIPT``), through the official SDK, exactly as in ``rxstream chat``.
The page shows thinking and tool calls as they stream, a stats line (TTFT, tokens/s,
tokens, stop reason) and a Stop button: it aborts the fetch, the server sees the client go,
disposes the stream, and the provider connection closes.

With ``--tools demo`` each question runs the agent tool loop (`rxstream.tool_loop`) with the
demo tools of ``rxstream run --tools`` (a calculator and a clock; on the emulator the demo model
calls both, then answers with their results). The same SSE endpoint then carries the loop's
whole event grammar (`IterationStart` … ``StreamStart`` … ``ToolCall*`` … ``StreamEnd`` …
`ToolResult`s … `IterationEnd`, repeated per model turn) and the page shows each iteration,
each tool call with its arguments as they stream and its result (or error result) in the same
box, then the final answer; the stats line sums the loop (iterations, tool calls, tokens).
Stop disposes the loop: the model connection closes, a running async tool is cancelled (a sync
tool's thread runs to its end, its result discarded — `rxstream.tool_loop`'s disposal rules).
Multi-turn history after a tool loop is kept as for plain turns: the page sends the final
answer's text as the assistant turn (the tool calls and results of earlier questions are not
sent back to the model).

Routes: ``GET /`` (the page), ``GET /static/{chat.js,chat.css}``, ``GET /api/info``
(provider, model, emulated, tools: the offered tool names or ``[]``), ``POST /api/chat``
(``{"messages": [{"role", "content"}]}`` → SSE) and, on the emulator only,
``GET /api/emulator`` (the emulator's connection records: shows that Stop closed the upstream
connection).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import socket
import sys
from importlib import resources
from typing import Any

from rxstream._extras import require
from rxstream.cli._chat import add_session_arguments, session_options
from rxstream.cli._session import Session, open_session
from rxstream.cli._tools import DEMO_TOOLS, loop_stream
from rxstream.errors import ConfigurationError
from rxstream.response import Response

__all__ = ["build_app", "cmd_serve", "register"]

_STATIC = {"chat.js": "text/javascript", "chat.css": "text/css"}


def _static(name: str) -> str:
    return resources.files("rxstream.cli").joinpath("static", name).read_text(encoding="utf-8")


def _history(session: Session, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn the page's ``{"role", "content": str}`` turns into the provider's message format."""
    spec = session.spec
    out: list[dict[str, Any]] = []
    for message in messages:
        text = str(message.get("content", ""))
        if message.get("role") == "assistant":
            out.extend(spec.render_assistant(Response(provider=spec.name, text=text)))
        else:
            out.append(spec.user_message(text))
    return out


def build_app(
    session: Session, emulator: Any = None, *, tools: str | None = None, max_iterations: int = 10
) -> Any:
    """The Starlette app of ``rxstream serve`` for one provider session.

    Args:
        session: The provider session (`rxstream.cli._session.open_session`).
        emulator: The embedded `ProviderEmulator` when running offline (enables
            ``GET /api/emulator``).
        tools: A tool set of ``rxstream run --tools`` (``"demo"``): each question runs the
            tool loop; ``None`` streams single answers.
        max_iterations: Tool loop: most model turns that may call tools (>= 1).

    Returns:
        A ``starlette.applications.Starlette`` ASGI app.

    Raises:
        ConfigurationError: an unknown tool set or ``max_iterations < 1``; the ``web`` extra
            is missing.
    """
    require("sse_starlette", "web")
    if tools is not None and tools not in DEMO_TOOLS:
        raise ConfigurationError(f"unknown tool set {tools!r} (known: {', '.join(sorted(DEMO_TOOLS))})")
    if tools is not None and max_iterations < 1:
        raise ConfigurationError(f"--max-iterations must be at least 1, got {max_iterations}")
    tool_names = [t.name for t in DEMO_TOOLS[tools]] if tools is not None else []
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from rxstream.web import sse_response

    page = _static("chat.html")

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"cache-control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", status_code=404)
        return Response(_static(name), media_type=_STATIC[name], headers={"cache-control": "no-store"})

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "provider": session.provider,
                "model": session.model,
                "emulated": session.emulated,
                "tools": tool_names,
            }
        )

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
            messages = body["messages"]
            if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
                raise ValueError("messages must be a non-empty list")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        history = _history(session, messages[:-1])
        prompt = str(messages[-1].get("content", ""))
        turn = dataclasses.replace(session, history=history)
        stream = turn.stream(prompt) if tools is None else loop_stream(turn, tools, prompt, max_iterations)
        response: Response = sse_response(stream, protocol="rxstream")
        return response

    async def emulator_records(request: Request) -> Response:
        if emulator is None:
            return JSONResponse({"error": "not running on the emulator"}, status_code=404)
        return JSONResponse([dataclasses.asdict(record) for record in emulator.connections])

    return Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", static),
            Route("/api/info", info),
            Route("/api/chat", chat, methods=["POST"]),
            Route("/api/emulator", emulator_records),
        ]
    )


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    """``rxstream serve``: run the chat page on 127.0.0.1 until Ctrl+C; return the exit status."""
    uvicorn = require("uvicorn", "web")
    try:
        sock = _bind(args.port)
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        reason = "is busy (another program listens there)" if busy else f"cannot be used ({exc.strerror})"
        print(
            f"rxstream serve: port {args.port} on 127.0.0.1 {reason}; pick another with --port",
            file=sys.stderr,
        )
        return 1
    with sock, open_session(session_options(args)) as session:
        app = build_app(session, session.emulator, tools=args.tools, max_iterations=args.max_iterations)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        where = f"embedded emulator: {session.why_emulated}" if session.emulated else session.provider
        if args.tools:
            where += f"; tool loop: {args.tools} tools, at most {args.max_iterations} iterations"
        print(f"rxstream serve: {url}  ({where}; model {session.model}; Ctrl+C stops)", flush=True)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def register(sub: Any) -> None:
    """Add the ``serve`` sub-command to the ``rxstream`` parser's sub-parsers."""
    p = sub.add_parser("serve", help="chat in the browser (SSE), on 127.0.0.1")
    p.add_argument(
        "--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)"
    )
    p.add_argument(
        "--tools",
        choices=sorted(DEMO_TOOLS),
        default=None,
        help="run the agent tool loop for every question, shown live on the page "
        "(demo: a calculator and a clock, as in `rxstream run --tools demo`)",
    )
    p.add_argument(
        "--max-iterations",
        type=int,
        default=10,
        help="with --tools: most model turns that may call tools (default 10)",
    )
    add_session_arguments(p)
    p.set_defaults(func=cmd_serve)

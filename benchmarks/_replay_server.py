"""Replay server for benchmarks: serves pre-recorded response bodies from a separate process.

Usage: ``python benchmarks/_replay_server.py BODIES_DIR`` prints the port on stdout, then
serves ``POST <path>`` with the bytes of ``BODIES_DIR/<name>.bin`` where the route table in
``routes.json`` maps ``<path>|<model>`` (the body's ``model``, or Bedrock's model id in the
path) to names and content types. Bodies are written in 64 KiB
pieces so the server is never the bottleneck, and it runs in its own process so it does not
compete for the GIL with the client being measured.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import uvicorn


def make_app(root: Path) -> Any:
    routes: dict[str, dict[str, str]] = json.loads((root / "routes.json").read_text())
    bodies = {path: (root / spec["file"]).read_bytes() for path, spec in routes.items()}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        more = True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        model = ""
        with contextlib.suppress(ValueError, AttributeError):
            model = json.loads(raw).get("model", "")
        path_model = (
            urllib.parse.unquote(scope["path"].split("/")[2]) if scope["path"].startswith("/model/") else ""
        )
        path = f"{scope['path']}|{model or path_model}"
        spec = routes.get(path)
        if spec is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b"not found"})
            return
        body = bodies[path]
        headers = [
            (b"content-type", spec["content_type"].encode()),
            (b"request-id", b"req_bench"),
            (b"x-request-id", b"req_bench"),
            (b"x-amzn-requestid", b"req_bench"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        step = 65536
        for start in range(0, len(body), step):
            await send({"type": "http.response.body", "body": body[start : start + step], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def main() -> None:
    # Clients that stop at the first event close mid-body; asyncio then warns on every later
    # write ("socket.send() raised exception."), which is the expected end, not a fault.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    root = Path(sys.argv[1])
    # IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted sockets (`_set_nodelay` checks
    # the proto); with proto 0 Nagle + delayed ACK stall a reused connection's first event.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        make_app(root),
        log_level="error",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=600,
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

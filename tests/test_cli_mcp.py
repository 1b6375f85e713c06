"""``rxstream mcp`` in a subprocess, driven by the MCP SDK's own clients over stdio and streamable HTTP."""

from __future__ import annotations

import itertools
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from rxstream.cli import build_parser
from rxstream.cli._mcp import default_model, resolve_model
from rxstream.testing import ResponseScript

ANSWER = " ".join(f"token{i}" for i in range(300))


def server_env(tmp_path: Path) -> tuple[dict[str, str], str]:
    script = tmp_path / "script.json"
    script.write_text(ResponseScript(text=ANSWER, event_delay=0.002, first_event_delay=0.3).model_dump_json())
    config = tmp_path / "rxstream.toml"
    config.write_text("[profiles.mcp]\nmcp = { interval = 0.05, heartbeat = 0.1 }\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "AWS_"))}
    env["RXSTREAM_EMULATOR_SCRIPT"] = str(script)
    return env, str(config)


async def exercise(session: ClientSession) -> None:
    await session.initialize()
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) == {"ask", "compare", "list_models"}
    assert tools["ask"].input_schema["required"] == ["prompt"]
    models = await session.call_tool("list_models", {})
    assert models.structured_content is not None
    listed = models.structured_content["result"]
    assert {"model": f"emulator:{default_model('emulator')}", "emulated": True, "stream": True} in listed
    received: list[tuple[float, str]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, message or ""))

    result = await session.call_tool("ask", {"prompt": "hello"}, progress_callback=on_progress)
    assert not result.is_error
    assert result.structured_content == {"result": ANSWER}
    beats = [m for _, m in received if m.startswith("waiting for first token")]
    assert beats  # 0.3 s before the first token, heartbeat every 0.1 s
    assert "".join(m for _, m in received if m not in beats) == ANSWER
    assert all(b > a for a, b in itertools.pairwise(p for p, _ in received))
    compared = await session.call_tool("compare", {"prompt": "hello", "models": ["emulator", "openai:gpt-x"]})
    assert not compared.is_error and compared.structured_content is not None
    rows = compared.structured_content["results"]
    assert [(r["source"], r["text"], r["error"]) for r in rows] == [
        ("emulator", ANSWER, None),
        ("openai:gpt-x", ANSWER, None),
    ]
    assert compared.structured_content["similarities"][0]["ratio"] == 1.0


@pytest.mark.timeout(180)  # a cold subprocess imports fastmcp + SDKs: slow on a loaded 2-core box
async def test_stdio_transport(tmp_path: Path) -> None:
    env, config = server_env(tmp_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rxstream.cli", "mcp", "--config", config],
        env=env,
    )
    with open(tmp_path / "stderr.log", "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await exercise(session)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_line(proc: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        if line is None:
            raise AssertionError("server exited:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return seen


@pytest.mark.timeout(180)
async def test_streamable_http_transport(tmp_path: Path) -> None:
    env, config = server_env(tmp_path)
    port = free_port()
    command = [sys.executable, "-m", "rxstream.cli", "mcp", "--transport", "http", "--port", str(port)]
    command += ["--config", config]
    with subprocess.Popen(
        command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as proc:
        try:
            wait_for_line(proc, "Uvicorn running on", timeout=120)
            url = f"http://127.0.0.1:{port}/mcp"
            async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
                await exercise(session)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def test_model_spec_resolution() -> None:
    anthropic_default = default_model("anthropic")
    assert default_model("emulator") == anthropic_default
    assert resolve_model("openai:gpt-4o") == ("openai", "gpt-4o")
    assert resolve_model("anthropic") == ("anthropic", anthropic_default)
    assert resolve_model("emulator:") == ("emulator", anthropic_default)
    assert resolve_model(None) == ("emulator", anthropic_default)  # no keys: the emulator
    assert resolve_model("some-model") == ("emulator", "some-model")


def test_parser_has_the_mcp_command() -> None:
    args: Any = build_parser().parse_args(["mcp", "--transport", "http", "--config", "x.toml"])
    assert (args.transport, args.config, args.profile, args.port) == ("http", "x.toml", "mcp", 8000)


async def test_compare_in_memory_sends_heartbeats_and_checks_its_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastmcp import Client
    from fastmcp.exceptions import ToolError

    from rxstream.cli._mcp import build_server
    from rxstream.config import StreamConfig

    script = ResponseScript(text="same words", first_event_delay=0.5)
    monkeypatch.setenv("RXSTREAM_EMULATOR_SCRIPT", script.model_dump_json())
    config = StreamConfig.from_mapping({"profiles": {"mcp": {"mcp": {"heartbeat": 0.1}}}})
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with Client(build_server(config), progress_handler=on_progress) as mcp:
        result = await mcp.call_tool("compare", {"prompt": "x", "models": ["emulator", "openai"]})
        with pytest.raises(ToolError, match="at least two different"):
            await mcp.call_tool("compare", {"prompt": "x", "models": ["emulator", "emulator"]})
    assert result.structured_content is not None
    assert [r["text"] for r in result.structured_content["results"]] == ["same words", "same words"]
    assert messages and all(m.startswith("comparing 2 models, ") for m in messages)

"""``rxstream mcp``: an MCP server whose tools stream model answers as progress notifications.

Usage::

    rxstream mcp [--transport stdio|http] [--host 127.0.0.1] [--port 8000]
                 [--config FILE] [--profile mcp] [--max-tokens 1024] [--emulator]

Tools:

* ``ask(prompt, model=None)``: streams the answer with `rxstream.mcp.stream_to_context`
  (the profile's ``mcp`` settings: interval, heartbeat, mode) after
  ``rso.apply_config(config, profile, provider=..., model=...)`` (timeouts, retries,
  per-model ``stream = false`` / ``chunk_delay_ms``); returns the final text. ``model`` is
  ``"provider:model"``, ``"provider"`` or a model name for the default provider
  (the first with an API key, else the embedded emulator).
* ``compare(prompt, models)``: asks every model concurrently with
  `rxstream.compare_streams` (each with its own resolved profile) and returns per model the
  time to first token, total time, tokens/s, token counts, stop reason, text or error, and the
  pairwise text similarity; heartbeats (``"comparing 3 models, 4.0 s"``) while they run.
* ``list_models()``: the providers and default models this server can use, whether each
  runs on the emulator, and whether it streams.

Without API keys every provider runs on the embedded emulator (the official SDK against
127.0.0.1), so the server works on a fresh clone. ``RXSTREAM_EMULATOR_SCRIPT`` replaces the
emulator's demo answers (see ``rxstream run``). Nothing is written to stdout except the MCP
protocol (stdio transport); logs go to stderr.
"""

# No ``from __future__ import annotations`` here: FastMCP resolves the tools' annotations
# (``ctx: Context``), and ``Context`` is imported inside `build_server` (optional extra).
import argparse
import asyncio
import contextlib
import dataclasses
import os
import threading
from typing import Any

from rxstream._extras import require
from rxstream.cli._session import (
    EMULATOR_ALIAS,
    PROVIDER_CHOICES,
    Session,
    SessionOptions,
    open_session,
    pick_provider,
)
from rxstream.config import StreamConfig
from rxstream.errors import ConfigurationError, StreamError
from rxstream.providers import get_spec

__all__ = ["build_server", "cmd_mcp", "register"]


class _Sessions:
    """One SDK client (or emulator) per provider, opened on first use, closed with the server."""

    def __init__(self, max_tokens: int, force_emulator: bool) -> None:
        self._max_tokens = max_tokens
        self._force_emulator = force_emulator
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._open: dict[str, Session] = {}

    def get(self, provider: str, model: str) -> Session:
        with self._lock:
            session = self._open.get(provider)
            if session is None:
                options = SessionOptions(
                    provider=provider, max_tokens=self._max_tokens, force_emulator=self._force_emulator
                )
                session = self._stack.enter_context(open_session(options))
                self._open[provider] = session
        return dataclasses.replace(session, model=model, history=[])

    def close(self) -> None:
        with self._lock:
            self._open.clear()
            self._stack.close()


def resolve_model(spec: str | None) -> tuple[str, str]:
    """``"provider:model"`` / ``"provider"`` / ``"model"`` / ``None`` → ``(provider, model)``.

    Raises:
        ConfigurationError: an unknown provider before the colon.
    """
    if spec and ":" in spec and spec.split(":", 1)[0] in PROVIDER_CHOICES:
        provider, model = spec.split(":", 1)
        return provider, model or default_model(provider)
    if spec in PROVIDER_CHOICES:
        return spec, default_model(spec)
    chosen, _ = pick_provider(None)
    provider = EMULATOR_ALIAS if emulated(chosen.name, False) else chosen.name
    return provider, spec or default_model(provider)


def default_model(provider: str) -> str:
    """The registry's default model (``"emulator"`` uses Anthropic's, on the emulator)."""
    return get_spec("anthropic" if provider == EMULATOR_ALIAS else provider).default_model


def emulated(provider: str, force_emulator: bool) -> bool:
    """Whether ``provider`` runs on the embedded emulator (no credentials, or asked for)."""
    if force_emulator or provider == EMULATOR_ALIAS:
        return True
    return not get_spec(provider).has_credentials(os.environ)


def build_server(
    config: StreamConfig | None = None,
    *,
    profile: str = "mcp",
    max_tokens: int = 1024,
    force_emulator: bool = False,
) -> Any:
    """Build the ``rxstream`` FastMCP server (tools ``ask`` and ``list_models``).

    Args:
        config: Streaming configuration (default: the shipped profiles).
        profile: The profile for every call (per-provider/per-model overrides still apply).
        max_tokens: Output token limit per answer.
        force_emulator: Use the embedded emulator even when API keys are set.

    Returns:
        A ``fastmcp.FastMCP`` server; its SDK clients close when its lifespan ends.

    Raises:
        ConfigurationError: the ``mcp`` extra is missing or ``profile`` is unknown.
    """
    require("fastmcp", "mcp")
    from fastmcp import Context, FastMCP
    from fastmcp.exceptions import ToolError

    from rxstream import operators as rso
    from rxstream.mcp import stream_to_context

    config = config or StreamConfig()
    config.profile(profile)  # unknown profile: fail now
    sessions = _Sessions(max_tokens, force_emulator)

    @contextlib.asynccontextmanager
    async def lifespan(server: Any) -> Any:
        try:
            yield {}
        finally:
            sessions.close()

    server = FastMCP(
        "rxstream",
        instructions="Ask language models; answers stream as progress notifications while generated.",
        lifespan=lifespan,
    )

    @server.tool(
        description=(
            "Ask a language model. The answer streams as progress notifications while it is "
            "generated and is returned as text. model: 'provider:model', a provider name "
            "(see list_models), or a model name for the default provider."
        )
    )
    async def ask(prompt: str, ctx: Context, model: str | None = None) -> str:
        """Ask a model; the answer streams as progress notifications and is returned as text.

        Args:
            prompt: The user message.
            ctx: The request's FastMCP context (injected, not part of the input schema).
            model: ``provider:model``, a provider name, or a model name (default provider).
        """
        try:
            provider, model_name = resolve_model(model)
            settings = config.for_model(provider, model_name, profile)
            operator = rso.apply_config(settings)
        except ConfigurationError as exc:
            raise ToolError(str(exc)) from exc
        session = await asyncio.to_thread(sessions.get, provider, model_name)
        stream = session.stream(prompt).pipe(operator)
        try:
            response = await stream_to_context(
                stream,
                ctx,
                interval=settings.mcp.interval,
                heartbeat=settings.mcp.heartbeat,
                mode=settings.mcp.mode,
            )
        except StreamError as exc:
            partial = exc.partial.text
            tail = f"\n\npartial answer ({len(partial)} characters):\n{partial}" if partial else ""
            raise ToolError(f"{type(exc).__name__}: {exc}{tail}") from exc
        return response.text

    @server.tool(
        description=(
            "Ask several models the same prompt concurrently and compare the answers: per model "
            "time to first token, total time, tokens/s, token counts, stop reason, text or error, "
            "and the pairwise text similarity. models: 2 or more model specs as for ask."
        )
    )
    async def compare(prompt: str, models: list[str], ctx: Context) -> dict[str, Any]:
        """Run `rxstream.compare_streams` over the models; heartbeats while they run.

        Args:
            prompt: The user message.
            models: Model specs (see ``ask``), each asked once.
            ctx: The request's FastMCP context (injected, not part of the input schema).
        """
        from rxstream.aio import to_async_iterator
        from rxstream.multi import compare_streams

        if len(models) < 2 or len(set(models)) != len(models):
            raise ToolError("compare needs at least two different model specs")
        try:
            resolved = [(spec, *resolve_model(spec)) for spec in models]
            settings = [config.for_model(p, m, profile) for _, p, m in resolved]
            operators = [rso.apply_config(s) for s in settings]
        except ConfigurationError as exc:
            raise ToolError(str(exc)) from exc
        sources = []
        for (spec, provider, model_name), operator in zip(resolved, operators, strict=True):
            session = await asyncio.to_thread(sessions.get, provider, model_name)
            sources.append((spec, session.stream(prompt).pipe(operator)))
        heartbeat = min(s.mcp.heartbeat for s in settings)
        items = to_async_iterator(compare_streams(sources))
        pending = asyncio.ensure_future(items.__anext__())
        loop = asyncio.get_running_loop()
        start, beats = loop.time(), 0
        try:
            while True:
                done, _ = await asyncio.wait({pending}, timeout=heartbeat)
                if done:
                    break
                beats += 1  # `progress` must increase with each notification
                await ctx.report_progress(
                    beats, None, f"comparing {len(models)} models, {loop.time() - start:.1f} s"
                )
            comparison = pending.result()
        finally:
            if not pending.done():
                pending.cancel()  # the client cancelled: dispose every request
            await items.aclose()  # type: ignore[attr-defined]  # to_async_iterator's object has it
        return {
            "results": comparison.to_records(),
            "similarities": [s.model_dump() for s in comparison.similarities],
        }

    @server.tool
    def list_models() -> list[dict[str, Any]]:
        """The providers and default models this server can use."""
        return [
            {
                "model": f"{provider}:{default_model(provider)}",
                "emulated": emulated(provider, force_emulator),
                "stream": config.for_model(provider, default_model(provider), profile).stream,
            }
            for provider in PROVIDER_CHOICES
        ]

    return server


def cmd_mcp(args: argparse.Namespace) -> int:
    """``rxstream mcp``: run the server on stdio or streamable HTTP until stopped."""
    config = StreamConfig.load_default(args.config)
    server = build_server(
        config, profile=args.profile, max_tokens=args.max_tokens, force_emulator=args.emulator
    )
    if args.transport == "stdio":
        server.run("stdio", show_banner=False)
    else:
        server.run("http", show_banner=False, host=args.host, port=args.port)
    return 0


def register(sub: Any) -> None:
    """Add the ``mcp`` sub-command to the ``rxstream`` parser's sub-parsers."""
    p = sub.add_parser("mcp", help="run an MCP server whose tools stream model answers")
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio", help="default: stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--config", default=None, help="a TOML or YAML StreamConfig file")
    p.add_argument("--profile", default="mcp", help="streaming profile (default: mcp)")
    p.add_argument("--max-tokens", type=int, default=1024, help="output token limit (default 1024)")
    p.add_argument("--emulator", action="store_true", help="use the embedded emulator even with API keys")
    p.set_defaults(func=cmd_mcp)

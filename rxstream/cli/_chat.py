"""``rxstream run`` and ``rxstream chat``: one response, or a chat loop, live in the terminal."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rxstream._live import render_live
from rxstream.cli._session import PROVIDERS, announce, console, open_session, pick_provider
from rxstream.errors import StreamError

__all__ = ["cmd_chat", "cmd_run", "register"]


def cmd_run(args: argparse.Namespace) -> int:
    """``rxstream run PROMPT``: stream one response, then print the summary line."""
    if getattr(args, "race", None):
        from rxstream.cli._compare import run_race

        return run_race(args)
    out = console()
    provider = pick_provider(args.provider)
    with open_session(provider, args.model, args.max_tokens, args.emulator) as session:
        announce(out, session)
        try:
            render_live(out, session.stream(args.prompt))
        except KeyboardInterrupt:
            out.print("\n[yellow]cancelled[/yellow]")
            return 130
        except StreamError as exc:
            out.print(f"\n[red]error:[/red] {exc}")
            return 1
    return 0


def cmd_chat(args: argparse.Namespace, read_line: Callable[[str], str] | None = None) -> int:
    """``rxstream chat``: a chat loop keeping the full history; Ctrl+C cancels a response."""
    out = console()
    provider = pick_provider(args.provider)
    ask = read_line or (lambda prompt: out.input(prompt))
    with open_session(provider, args.model, args.max_tokens, args.emulator) as session:
        announce(out, session)
        out.print("[dim]Ctrl+C cancels a response; Ctrl+D or /exit quits.[/dim]")
        while True:
            try:
                prompt = ask("[bold cyan]you>[/bold cyan] ").strip()
            except (EOFError, KeyboardInterrupt):
                out.print()
                return 0
            if not prompt:
                continue
            if prompt in ("/exit", "/quit"):
                return 0
            try:
                response = render_live(out, session.stream(prompt))
            except KeyboardInterrupt:
                out.print("\n[yellow]cancelled[/yellow]")
                continue
            except StreamError as exc:
                out.print(f"\n[red]error:[/red] {exc}")
                continue
            session.remember(prompt, response)


def register(sub: Any) -> None:
    """Add the ``run`` and ``chat`` sub-commands to the ``rxstream`` parser's sub-parsers."""
    for name, help_text in (("run", "stream one response"), ("chat", "interactive chat loop")):
        p = sub.add_parser(name, help=help_text)
        if name == "run":
            p.add_argument("prompt", help="the user message")
            p.add_argument(
                "--race", action="append", choices=PROVIDERS, help="race several sources (repeatable)"
            )
        p.add_argument("--provider", choices=PROVIDERS, default=None, help="default: first with an API key")
        p.add_argument("--model", default=None, help="model name (default per provider)")
        p.add_argument("--max-tokens", type=int, default=1024, help="output token limit (default 1024)")
        p.add_argument("--emulator", action="store_true", help="use the embedded emulator even with a key")
        p.set_defaults(func=cmd_run if name == "run" else cmd_chat)

"""``rxstream run`` and ``rxstream chat``: one response, or a chat loop.

``run`` writes the answer to stdout: live on a terminal, plain text streamed as it arrives
into a pipe or a file, or JSON Lines of the typed events with ``--json``. Notices, the stats
line and errors go to stderr. Other command modules reuse `add_session_arguments`,
`session_options`, `prepare_stream` and `describe_error`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from reactivex import Observable

from rxstream.cli._output import StreamOutcome, choose_mode, emit, summary_line
from rxstream.cli._profile import add_arguments as add_profile_arguments
from rxstream.cli._profile import operator_for
from rxstream.cli._session import (
    PROVIDER_CHOICES,
    Session,
    SessionOptions,
    announce,
    console,
    environment_help,
    open_session,
)
from rxstream.cli._tools import add_arguments as add_tool_arguments
from rxstream.cli._tools import run_tools
from rxstream.errors import ConfigurationError, StreamError, StreamInterruptedError
from rxstream.events import StreamEvent
from rxstream.operators import first_token_timeout, idle_timeout

__all__ = [
    "add_session_arguments",
    "cmd_chat",
    "cmd_run",
    "describe_error",
    "prepare_stream",
    "register",
    "session_options",
]


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """The provider options shared by the commands that open a provider session."""
    parser.add_argument(
        "--provider", choices=PROVIDER_CHOICES, default=None, help="default: first with credentials"
    )
    parser.add_argument("--model", default=None, help="model id (default per provider)")
    parser.add_argument(
        "--max-tokens", type=_positive_int, default=1024, help="output token limit (default 1024)"
    )
    parser.add_argument("--system", default=None, help="system prompt")
    parser.add_argument(
        "--base-url", default=None, help="server URL (Bedrock: endpoint URL); default: the SDK's"
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="fail if no token arrives within SECONDS, or the stream goes idle that long",
    )
    parser.add_argument(
        "--emulator", action="store_true", help="use the embedded emulator even with credentials"
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds > 0")
    return value


def session_options(args: argparse.Namespace) -> SessionOptions:
    """The `SessionOptions` of parsed arguments (missing attributes take their defaults)."""
    return SessionOptions(
        provider=getattr(args, "provider", None),
        model=getattr(args, "model", None),
        max_tokens=getattr(args, "max_tokens", 1024),
        system=getattr(args, "system", None),
        base_url=getattr(args, "base_url", None),
        force_emulator=getattr(args, "emulator", False),
    )


def prepare_stream(session: Session, prompt: str, timeout: float | None) -> Observable[StreamEvent]:
    """The stream answering ``prompt``, with first-token and idle timeouts when asked."""
    stream = session.stream(prompt)
    if timeout is not None:
        stream = stream.pipe(first_token_timeout(timeout), idle_timeout(timeout))
    return stream


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def describe_error(exc: BaseException, session: Session | None = None) -> str:
    """One line for a failed stream.

    HTTP errors keep `ProviderError`'s message (status, provider message, request id); a
    connection that failed before the stream started names the host and the root cause
    (e.g. ``Connection refused``).
    """
    if isinstance(exc, StreamInterruptedError) and exc.partial.provider is None:
        root = _root_cause(exc)
        where = f" to {session.host}" if session is not None else ""
        cause = f"{type(root).__name__}: {root}" if str(root) else type(root).__name__
        return f"{exc.provider or 'provider'}: cannot connect{where} ({cause})"
    if isinstance(exc, StreamError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _prompt_text(args: argparse.Namespace) -> str:
    prompt: str = args.prompt
    if prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise ConfigurationError(
            "the prompt is empty; give the question as an argument (or '-' to read stdin)"
        )
    return prompt


def cmd_run(args: argparse.Namespace) -> int:
    """``rxstream run PROMPT``: stream one response, then print the summary line on stderr."""
    if getattr(args, "tools", None):
        return run_tools(args)
    if getattr(args, "race", None):
        from rxstream.cli._compare import run_race

        return run_race(args)
    prompt = _prompt_text(args)
    mode = choose_mode(getattr(args, "json", False))
    err = console(stderr=True, plain=mode != "live")
    with open_session(session_options(args)) as session:
        announce(err, session)
        stream = prepare_stream(session, prompt, getattr(args, "timeout", None))
        if getattr(args, "record", None):
            from rxstream.cassette import record

            params = {"provider": session.provider, "model": session.model, "max_tokens": session.max_tokens}
            stream = stream.pipe(record(args.record, params=params))
        configured = operator_for(args, session.provider, session.model)
        if configured is not None:  # after recording: the cassette keeps the provider's own timing
            stream = stream.pipe(configured)
        try:
            outcome = emit(mode, stream, sys.stdout, console())
        except KeyboardInterrupt:
            err.print("cancelled", style="yellow")
            return 130
        return _report(err, session, outcome)


def _report(err: Any, session: Session, outcome: StreamOutcome) -> int:
    if outcome.closed:
        _silence_stdout()
        return 0
    if outcome.error is not None:
        err.print(f"error: {describe_error(outcome.error, session)}", style="red", markup=False)
        return 1
    err.print(summary_line(outcome.response, outcome.stats), style="dim", markup=False)
    return 0


def _silence_stdout() -> None:
    """The reader of stdout left: point stdout at devnull so the final flush is quiet."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def cmd_chat(args: argparse.Namespace, read_line: Callable[[str], str] | None = None) -> int:
    """``rxstream chat``: a chat loop keeping the full history; Ctrl+C cancels a response."""
    out = console()
    err = console(stderr=True)
    ask = read_line or (lambda prompt: out.input(prompt))
    with open_session(session_options(args)) as session:
        announce(err, session)
        err.print("[dim]Ctrl+C cancels a response; Ctrl+D or /exit quits.[/dim]")
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
            stream = prepare_stream(session, prompt, getattr(args, "timeout", None))
            try:
                outcome = emit("live", stream, sys.stdout, out)
            except KeyboardInterrupt:
                err.print("\ncancelled", style="yellow")
                continue
            if _report(err, session, outcome) == 0:
                session.remember(prompt, outcome.response)


def register(sub: Any) -> None:
    """Add the ``run`` and ``chat`` sub-commands to the ``rxstream`` parser's sub-parsers."""
    run = sub.add_parser(
        "run",
        help="stream one response",
        description="Stream one response: live on a terminal, plain text into a pipe, JSON Lines (--json).",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("prompt", help="the user message ('-' reads it from stdin)")
    add_session_arguments(run)
    run.add_argument(
        "--race", action="append", choices=PROVIDER_CHOICES, help="race several sources (repeatable)"
    )
    add_tool_arguments(run)
    add_profile_arguments(run)
    run.add_argument("--record", metavar="FILE", default=None, help="also write a cassette (JSON Lines)")
    run.add_argument("--json", action="store_true", help="write the typed events as JSON Lines to stdout")
    run.set_defaults(func=cmd_run)
    chat = sub.add_parser(
        "chat",
        help="interactive chat loop",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_session_arguments(chat)
    chat.set_defaults(func=cmd_chat)

"""The ``rxstream`` command: stream a response, chat, or run the provider emulator.

Usage::

    rxstream run "PROMPT" [--provider P] [--model M] [--max-tokens N] [--system S]
                 [--base-url URL] [--timeout SECONDS] [--json] [--emulator]
    rxstream run "PROMPT" --record FILE      # also write a cassette (rxstream.cassette)
    rxstream run "PROMPT" --tools demo       # the agent tool loop with two demo tools
    rxstream run "PROMPT" --profile NAME [--config FILE]   # a StreamConfig profile (rxstream.config)
    rxstream run "PROMPT" --race P --race Q  # the first to answer wins (rxstream.race_first_token)
    rxstream chat [same provider options]
    rxstream compare "PROMPT" [--provider P --provider Q ...]  # live columns, then a table
    rxstream replay FILE [--speed S]         # play a cassette with its recorded timing
    rxstream emulator [--port N] [--script FILE]
    rxstream --version
    rxstream mcp [--transport stdio|http] [--config FILE] [--profile NAME]
    rxstream serve [--port N] [--provider P] [--model M] [--max-tokens N] [--emulator]
    rxstream serve --tools demo [--max-iterations N]   # the tool loop in the browser

Providers are the registry's (`rxstream.providers.PROVIDERS`) plus ``emulator`` (the
Anthropic wire format on the embedded emulator). A provider without credentials runs on the
embedded emulator, through the same official SDK, and says so in one line on stderr — unless
a base URL is configured, then the missing key is an error. Without ``--provider``, the
first provider with credentials is used, else the emulator. ``RXSTREAM_EMULATOR_SCRIPT`` (a
`rxstream.testing.ResponseScript` as JSON, inline or a file path) replaces the emulator's
demo answers, e.g. to see how a dropped connection looks.

``run`` writes the answer to stdout: live on a terminal; into a pipe or a file, plain text
streamed as it arrives; with ``--json``, one typed event per line (JSON Lines). Notices, the
summary line (time to first token, output tokens/s, input/output tokens, stop reason) and
errors go to stderr. Exit status: 0 done, 1 the stream failed, 2 misuse or configuration,
130 cancelled. In ``chat``, Ctrl+C during a response cancels it (disposal closes the
connection) and drops the turn from the history.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rxstream.errors import ConfigurationError

__all__ = ["build_parser", "main"]

# One module per group of sub-commands; each has ``register(subparsers)`` that adds its
# parsers and sets ``func`` (``Callable[[argparse.Namespace], int]``) as their default.
COMMAND_MODULES = (
    "rxstream.cli._chat",
    "rxstream.cli._compare",
    "rxstream.cli._emulator",
    "rxstream.cli._mcp",
    "rxstream.cli._replay",
    "rxstream.cli._serve",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rxstream`` command."""
    from rxstream import __version__
    from rxstream.cli._session import environment_help

    parser = argparse.ArgumentParser(
        prog="rxstream",
        description="Stream LLM responses as reactive streams.",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rxstream {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rxstream`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except ConfigurationError as exc:
        print(f"rxstream: {exc}", file=sys.stderr)
        return 2
    return status

"""The ``rxstream`` command: stream a response live to the terminal, or chat.

Usage::

    rxstream run "PROMPT" [--provider P] [--model M] [--max-tokens N] [--emulator]
    rxstream chat [--provider P] [--model M] [--max-tokens N] [--emulator]
    rxstream serve [--port N] [--provider P] [--model M] [--max-tokens N] [--emulator]

Providers: ``anthropic``, ``openai``, ``openai-responses``, ``bedrock``, ``bedrock-invoke``
and ``emulator`` (the Anthropic wire format served by the embedded emulator). A provider
whose credentials are not in the environment (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``,
AWS credentials) runs on the embedded emulator, through the same official SDK, and says so
in one line. Without ``--provider``, the first provider with a key is used, else the emulator.
``RXSTREAM_EMULATOR_SCRIPT`` (a `rxstream.testing.ResponseScript` as JSON, inline or a file
path) replaces the emulator's demo answers, e.g. to see how a dropped connection looks.

After each response a summary line shows time to first token (TTFT, seconds), output
tokens per second, input/output tokens and the stop reason. In ``chat``, Ctrl+C during a
response cancels it (disposal closes the connection), prints "cancelled" and drops the turn
from the history; a dropped connection shows the partial text and the error.
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
COMMAND_MODULES = ("rxstream.cli._chat", "rxstream.cli._serve")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rxstream`` command."""
    parser = argparse.ArgumentParser(prog="rxstream", description="Stream LLM responses as reactive streams.")
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

"""``rxstream replay FILE``: play a recorded cassette live in the terminal, with its timing."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rxstream.cli._output import choose_mode, emit, summary_line
from rxstream.cli._session import console
from rxstream.errors import ConfigurationError

__all__ = ["cmd_replay", "register"]


def cmd_replay(args: argparse.Namespace) -> int:
    """``rxstream replay FILE [--speed S]``: the recorded answer, at its recorded pace.

    Prints one line about the recording (provider, model, rxstream version), the text live
    and the summary line; a recorded error is shown like a live one (exit status 1), a
    corrupted cassette as its valid prefix and the bad line (exit status 1).
    """
    from rxstream.cassette import read_cassette, replay

    mode = choose_mode(False)
    err = console(stderr=True, plain=mode != "live")
    try:
        cassette = read_cassette(args.file)
    except OSError as exc:
        raise ConfigurationError(f"cannot read {args.file!r}: {exc.strerror or exc}") from exc
    header = cassette.header
    err.print(
        f"replaying {args.file}: {header.get('provider') or '?'} · {header.get('model') or '?'}"
        f" · recorded with rxstream {header.get('rxstream_version') or '?'} · speed {args.speed:g}",
        style="dim",
        markup=False,
    )
    if cassette.end == "disposed" and cassette.problem is None:
        err.print("the recording was cancelled before the stream ended", style="dim")
    stream = replay(args.file, speed=args.speed)
    if cassette.end == "disposed" and cassette.problem is None:
        from reactivex import operators as ops

        stream = stream.pipe(ops.take(len(cassette.events)))  # end where the recording stopped
    try:
        outcome = emit(mode, stream, sys.stdout, console())
    except KeyboardInterrupt:
        err.print("cancelled", style="yellow")
        return 130
    if outcome.error is not None:
        err.print(f"error: {type(outcome.error).__name__}: {outcome.error}", style="red", markup=False)
        return 1
    err.print(summary_line(outcome.response, outcome.stats), style="dim", markup=False)
    return 0


def register(sub: Any) -> None:
    """Add the ``replay`` sub-command to the ``rxstream`` parser's sub-parsers."""
    p = sub.add_parser("replay", help="play a recorded cassette (rxstream run --record FILE)")
    p.add_argument("file", help="the cassette (JSON Lines)")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor; 0 = at once (default 1)")
    p.set_defaults(func=cmd_replay)

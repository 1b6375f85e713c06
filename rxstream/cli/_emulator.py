"""``rxstream emulator``: run the provider emulator standalone, for other processes and languages.

It listens on 127.0.0.1, prints one base URL per provider (as the environment variable its
SDK reads), and serves until Ctrl+C or SIGTERM. Every request gets the ``--script`` answer
(a `rxstream.testing.ResponseScript` as JSON), or the demo answers.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rxstream._extras import require
from rxstream.errors import ConfigurationError

__all__ = ["cmd_emulator", "register"]


def cmd_emulator(args: argparse.Namespace) -> int:
    """Serve until interrupted; return 0 after a clean stop."""
    require("uvicorn", "cli")
    from pydantic import ValidationError

    from rxstream.providers import PROVIDERS
    from rxstream.testing import ProviderEmulator, ResponseScript
    from rxstream.testing.demo import demo_responder

    script: ResponseScript | None = None
    if args.script is not None:
        try:
            script = ResponseScript.model_validate_json(Path(args.script).read_text())
        except (OSError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise ConfigurationError(
                f"--script {args.script}: not a readable ResponseScript JSON file ({first})"
            ) from exc
    emulator = ProviderEmulator(script, responder=None if script else demo_responder, port=args.port)
    try:
        emulator.start()
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from exc
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"rxstream emulator on {emulator.url} (Ctrl+C stops it)")
        for spec in PROVIDERS.values():
            variable = f"{spec.base_url_env}=" if spec.base_url_env else ""
            print(f"  {spec.name:<17} {variable}{emulator.base_url(spec.name)}")
        print("Any API key works; Bedrock needs a region (e.g. AWS_REGION=us-east-1) and any credentials.")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emulator.stop()
    return 0


def register(sub: Any) -> None:
    """Add the ``emulator`` sub-command to the ``rxstream`` parser's sub-parsers."""
    parser = sub.add_parser(
        "emulator",
        help="run the provider emulator standalone (prints base URLs)",
        description="Serve the five streaming wire formats on 127.0.0.1 until Ctrl+C.",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default 8765; 0 picks a free one)"
    )
    parser.add_argument(
        "--script", default=None, metavar="FILE", help="a ResponseScript JSON file answering every request"
    )
    parser.set_defaults(func=cmd_emulator)

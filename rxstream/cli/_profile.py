"""``--profile`` / ``--config`` for the streaming commands: ``rso.apply_config`` of a `StreamConfig`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from reactivex import Observable

from rxstream.config import StreamConfig
from rxstream.events import StreamEvent

__all__ = ["add_arguments", "operator_for"]


def add_arguments(parser: Any) -> None:
    """Add ``--profile NAME`` and ``--config FILE`` to a sub-command's parser."""
    parser.add_argument(
        "--profile", default=None, help="streaming profile (interactive, batch, ui, mcp, ...)"
    )
    parser.add_argument("--config", default=None, help="a TOML or YAML StreamConfig file")


def operator_for(
    args: argparse.Namespace, provider: str, model: str
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]] | None:
    """The configured operator for this provider/model, or ``None`` when neither option is given.

    Raises:
        ConfigurationError: unreadable/invalid config file or unknown profile.
    """
    profile = getattr(args, "profile", None)
    path = getattr(args, "config", None)
    if profile is None and path is None:
        return None
    from rxstream.operators import apply_config

    config = StreamConfig.load_default(path)
    return apply_config(config, profile, provider=provider, model=model)

"""``rxstream compare`` (several answers side by side) and ``rxstream run --race``.

``compare`` runs every ``--provider`` on its own request at once (`rxstream.compare_streams`)
and shows one live rich column per source, each with its own time to first token and
tokens/s, then prints the `rxstream.multi.Comparison` table. With no ``--provider`` it
compares two embedded-emulator tracks that differ in speed and wording. ``run --race P
--race Q`` answers with `rxstream.race_first_token` and says which source won. Ctrl+C
disposes the subscription (every connection closes) and exits with status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from reactivex import Observable
from reactivex import operators as ops

from rxstream.cli._session import (
    PROVIDER_CHOICES,
    Session,
    SessionOptions,
    announce,
    console,
    open_session,
)
from rxstream.errors import StreamError
from rxstream.events import StreamEvent
from rxstream.multi import Comparison, compare_streams, race_first_token
from rxstream.operators._stats import StatsTracker
from rxstream.response import ResponseAccumulator

__all__ = ["cmd_compare", "register", "run_race"]

FAST_TRACK = (
    "Streams are values over time. rxstream turns each model's answer into an Observable, "
    "so you can merge, race and compare them."
)
SLOW_TRACK = (
    "A streamed answer is a sequence of events that arrive over time, one small piece after "
    "another. rxstream represents every provider's response as a cold reactive Observable of "
    "typed events, which means several answers can be merged, raced against each other, or "
    "compared side by side once they have all finished."
)


def _track_responder(provider: str, body: dict[str, Any]) -> Any:
    from rxstream.testing import ResponseScript

    if body.get("model") == "emulator-fast":
        return ResponseScript(model=body["model"], text=FAST_TRACK, event_delay=0.03, first_event_delay=0.15)
    return ResponseScript(model="emulator-slow", text=SLOW_TRACK, event_delay=0.06, first_event_delay=0.6)


@contextlib.contextmanager
def _sessions(
    args: argparse.Namespace, providers: list[str], out: Any, emulators: list[Any] | None = None
) -> Iterator[dict[str, Session]]:
    """Open one session per provider (names made unique), or the two default emulator tracks.

    The default tracks' emulator is appended to ``emulators`` (its records show the closes).
    """
    with contextlib.ExitStack() as stack:
        sessions: dict[str, Session] = {}
        if not providers:
            import anthropic

            from rxstream.testing import ProviderEmulator

            emu = stack.enter_context(ProviderEmulator(responder=_track_responder))
            if emulators is not None:
                emulators.append(emu)
            client = anthropic.Anthropic(api_key="sk-ant-emulator", base_url=emu.anthropic_base_url)
            stack.callback(client.close)
            out.print(
                "[dim]no --provider: two embedded-emulator tracks on 127.0.0.1, "
                "fast and terse vs slow and wordy[/dim]"
            )
            from rxstream.providers import get_spec

            for track in ("fast", "slow"):
                sessions[track] = Session(
                    spec=get_spec("anthropic"),
                    model=f"emulator-{track}",
                    max_tokens=args.max_tokens,
                    system=None,
                    emulated=True,
                    why_emulated="no --provider",
                    client=client,
                    host="127.0.0.1",
                )
            yield sessions
            return
        for provider in providers:
            name = provider
            n = 2
            while name in sessions:
                name, n = f"{provider}#{n}", n + 1
            options = SessionOptions(
                provider=provider,
                model=args.model,
                max_tokens=args.max_tokens,
                system=getattr(args, "system", None),
                force_emulator=bool(getattr(args, "emulator", False)),
            )
            session = stack.enter_context(open_session(options))
            announce(out, session)
            sessions[name] = session
        yield sessions


class _Board:
    """Live per-source state for the columns (guarded by one lock; times from time.monotonic)."""

    def __init__(self, names: list[str]) -> None:
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.acc = {name: ResponseAccumulator() for name in names}
        self.stats = {name: StatsTracker() for name in names}
        self.ended: dict[str, float] = {}
        for tracker in self.stats.values():
            tracker.start(self.start)

    def restart(self) -> None:
        """Start every clock now (call right before subscribing)."""
        with self.lock:
            self.start = time.monotonic()
            for tracker in self.stats.values():
                tracker.start(self.start)

    def tap(self, name: str, source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def seen(event: StreamEvent) -> None:
            now = time.monotonic()
            with self.lock:
                self.acc[name].add(event)
                self.stats[name].observe(event, now)

        def ended(*_: Any) -> None:
            with self.lock:
                self.ended[name] = time.monotonic()

        return source.pipe(ops.do_action(seen, ended, ended))

    def render(self) -> Any:
        from rich.columns import Columns
        from rich.panel import Panel
        from rich.text import Text

        panels = []
        with self.lock:
            for name, acc in self.acc.items():
                now = self.ended.get(name, time.monotonic())
                stats = self.stats[name].snapshot(now)
                ttft = "-" if stats.time_to_first_token is None else f"{stats.time_to_first_token:.2f}s"
                rate = "-" if stats.tokens_per_second is None else f"{stats.tokens_per_second:.1f}"
                snapshot = acc.snapshot()
                panels.append(
                    Panel(
                        Text(snapshot.text),
                        title=f"{name} · {snapshot.model or '…'}",
                        subtitle=f"TTFT {ttft} · {rate} tok/s",
                        width=46,
                    )
                )
        return Columns(panels)


def cmd_compare(args: argparse.Namespace) -> int:
    """``rxstream compare PROMPT``: every provider at once, live columns, then the table."""
    out = console()
    try:
        return _compare(args, out)
    except KeyboardInterrupt:  # outside the wait (e.g. while drawing the last frame)
        out.print("\n[yellow]cancelled[/yellow]")
        return 130


def _compare(args: argparse.Namespace, out: Any) -> int:
    from rich.live import Live

    emulators: list[Any] = []
    with _sessions(args, list(args.provider or []), out, emulators) as sessions:
        board = _Board(list(sessions))
        sources = {name: board.tap(name, s.stream(args.prompt)) for name, s in sessions.items()}
        result: list[Comparison] = []
        failure: list[Exception] = []
        done = threading.Event()

        def on_error(error: Exception) -> None:
            failure.append(error)
            done.set()

        with Live(console=out, refresh_per_second=10, get_renderable=board.render) as live:
            board.restart()
            subscription = compare_streams(sources).subscribe(result.append, on_error, done.set)
            try:
                while not done.wait(0.05):
                    pass
            except KeyboardInterrupt:
                subscription.dispose()
                live.stop()
                closed = _closed_connections(emulators)
                out.print(f"\n[yellow]cancelled[/yellow]{closed}")
                return 130
            live.refresh()
        if failure:
            out.print(f"[red]error:[/red] {failure[0]}")
            return 1
        out.print()
        out.print(result[0])
        return 0


def _closed_connections(emulators: list[Any]) -> str:
    """How many of the default tracks' connections have ended (waits up to 2 s for them)."""
    if not emulators:
        return ""
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if all(r.ended for e in emulators for r in e.connections):
            break
        time.sleep(0.01)
    records = [r for e in emulators for r in e.connections]
    ended = sum(r.ended for r in records)
    cut = sum(r.client_disconnected for r in records)
    return f" (emulator: {ended} of {len(records)} connections closed, {cut} cut mid-stream)"


def run_race(args: argparse.Namespace) -> int:
    """``rxstream run PROMPT --race P --race Q``: the first source to answer wins."""
    from rxstream._live import render_live, summary_line

    out = console()
    with _sessions(args, list(args.race), out) as sessions:
        owner: dict[str, str] = {}

        first: list[str] = []

        def tagged(name: str, source: Observable[StreamEvent]) -> Observable[StreamEvent]:
            def note(event: StreamEvent) -> None:
                owner.setdefault(event.stream_id, name)

            return source.pipe(ops.do_action(note))

        def note_first(event: StreamEvent) -> None:
            if not first:
                first.append(event.stream_id)

        raced = race_first_token({name: tagged(name, s.stream(args.prompt)) for name, s in sessions.items()})
        raced = raced.pipe(ops.do_action(note_first))
        try:
            response, stats = render_live(out, raced)
        except KeyboardInterrupt:
            out.print("\n[yellow]cancelled[/yellow]")
            return 130
        except StreamError as exc:
            out.print(f"\n[red]error:[/red] {exc}")
            return 1
        out.print(summary_line(response, stats), style="dim", markup=False)
        winner = owner.get(first[0], "?") if first else "?"
        others = ", ".join(name for name in sessions if name != winner)
        out.print(f"[bold]winner: {winner}[/bold] ({response.model or '-'}); closed: {others}")
    return 0


def register(sub: Any) -> None:
    """Add the ``compare`` sub-command to the ``rxstream`` parser's sub-parsers."""
    p = sub.add_parser("compare", help="stream several providers side by side and compare the answers")
    p.add_argument("prompt", help="the user message")
    p.add_argument(
        "--provider",
        action="append",
        choices=PROVIDER_CHOICES,
        default=None,
        help="a source to compare (repeatable); default: two embedded-emulator tracks",
    )
    p.add_argument("--model", default=None, help="model name (default per provider)")
    p.add_argument("--max-tokens", type=int, default=1024, help="output token limit (default 1024)")
    p.add_argument("--emulator", action="store_true", help="use the embedded emulator even with a key")
    p.set_defaults(func=cmd_compare)

"""Record a stream to a cassette and replay it with its recorded timing.

A **cassette** is a JSON Lines file (one JSON object per line, UTF-8)::

    {"cassette":1,"rxstream_version":"0.1.0","provider":"anthropic","model":"...","params":{...}}
    {"t":0.12,"event":{"type":"stream_start","stream_id":"...","seq":0,...}}
    {"t":0.42,"event":{"type":"text_delta","stream_id":"...","seq":1,"text":"Hel"}}
    ...
    {"t":1.5,"end":"completed"}

* the **header** (line 1): format version, rxstream version, provider and model (from the
  `StreamStart`), and the request ``params`` given to `record`, with secrets removed
  (`redact`: keys such as ``api_key``, ``authorization``, ``headers`` are dropped and strings
  that look like API keys are masked);
* one **event** line per event: ``t`` is the offset in seconds from subscription on the
  scheduler's clock (microsecond resolution), ``event`` the event's own JSON
  (`rxstream.events.stream_event_adapter`);
* the **footer**: ``{"end": "completed"}``, ``{"end": "disposed"}`` (the subscriber left
  first), or ``{"end": "error", "error": {"class": ..., "message": ..., "attributes": ...,
  "partial": <Response JSON>}}``.

`record` buffers its writes and flushes them at the end, on error and on disposal, so a
process that dies mid-stream leaves a readable prefix (at most one torn last line).
`replay` reads a cassette into a cold Observable; a truncated or corrupted cassette gives its
valid prefix and then a `rxstream.errors.CassetteError` naming the bad line.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeAlias

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxstream import errors as _errors
from rxstream.errors import CassetteError, ConfigurationError, StreamError
from rxstream.events import StreamEvent, StreamStart, stream_event_adapter
from rxstream.response import Response, ResponseAccumulator

__all__ = ["CASSETTE_FORMAT", "Cassette", "PathOrFile", "read_cassette", "record", "redact", "replay"]

CASSETTE_FORMAT = 1
"""Version of the cassette format written in the header's ``cassette`` field."""

PathOrFile: TypeAlias = "str | os.PathLike[str] | IO[str]"
"""A file path, or an open text file (never closed by rxstream)."""

_SECRET_KEYS = re.compile(
    r"(api[-_]?key|authorization|^auth$|secret|password|credential|cookie|headers|signature|(^|[-_])token$)",
    re.IGNORECASE,
)
_SECRET_VALUES = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|AKIA[0-9A-Z]{12,}|Bearer\s+\S+)")
_ERROR_ATTRIBUTES = (
    "retryable",
    "provider",
    "status_code",
    "error_type",
    "request_id",
    "retry_after",
    "in_stream",
    "timeout",
    "raw",
    "max_buffered",
    "index",
    "tool_call_id",
    "name",
    "raw_arguments",
    "line",
    "source",
    "key",
    "seq",
    "waited",
)


def redact(value: Any) -> Any:
    """Return a JSON-compatible copy of ``value`` without secrets.

    Mapping keys that name credentials (``api_key``, ``authorization``, ``token``,
    ``secret``, ``password``, ``headers``, ``extra_headers``, ...) are dropped; strings that look
    like API keys (``sk-...``, ``AKIA...``, ``Bearer ...``) are replaced by ``"[redacted]"``;
    other non-JSON values become ``"<TypeName>"``.

    Example:
        >>> redact({"model": "m", "api_key": "sk-abcdefgh", "note": "key sk-abcdefgh"})
        {'model': 'm', 'note': 'key [redacted]'}
    """
    if isinstance(value, Mapping):
        return {str(k): redact(v) for k, v in value.items() if not _SECRET_KEYS.search(str(k))}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUES.sub("[redacted]", value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return f"<{type(value).__name__}>"


def _offset(now: datetime, start: datetime) -> float:
    delta = now - start
    return round(delta.days * 86_400 + delta.seconds + delta.microseconds / 1_000_000, 6)


def error_record(error: Exception) -> dict[str, Any]:
    """A JSON-compatible description of ``error`` (class, message, attributes, partial), redacted."""
    attributes: dict[str, Any] = {}
    for name in _ERROR_ATTRIBUTES:
        if name in vars(error):
            attributes[name] = redact(vars(error)[name])
    partial = error.partial if isinstance(error, StreamError) else Response()
    return {
        "class": type(error).__name__,
        "module": type(error).__module__,
        "message": _SECRET_VALUES.sub("[redacted]", str(error)),
        "attributes": attributes,
        "partial": partial.model_dump(mode="json"),
    }


def rebuild_error(record: Mapping[str, Any]) -> StreamError:
    """The error described by `error_record`, as its own class from `rxstream.errors`.

    Only `rxstream.errors.StreamError` subclasses are rebuilt by name (nothing is imported);
    any other class becomes a `StreamError` whose message starts with the class name.
    """
    name = str(record.get("class", "StreamError"))
    message = str(record.get("message", ""))
    cls = getattr(_errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, StreamError)):
        cls = StreamError
        message = f"{name}: {message}"
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.retryable = cls.retryable_default
    error.provider = None
    for key, value in dict(record.get("attributes") or {}).items():
        if key in _ERROR_ATTRIBUTES:
            setattr(error, key, value)
    error.partial = Response.model_validate(record.get("partial") or {})
    return error


class _Writer:
    """One subscription's cassette writer: header on the first line, then events, footer."""

    def __init__(self, target: PathOrFile, params: Mapping[str, Any] | None) -> None:
        self._owned = isinstance(target, str | os.PathLike)
        if isinstance(target, str | os.PathLike):
            self._file: IO[str] = open(os.fspath(target), "w", encoding="utf-8")  # noqa: SIM115
        else:
            self._file = target
        self._params = redact(dict(params)) if params else {}
        self._header_written = False
        self._closed = False

    def _line(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    def _header(self, provider: str | None, model: str | None) -> None:
        if self._header_written:
            return
        from rxstream import __version__

        self._header_written = True
        self._line(
            {
                "cassette": CASSETTE_FORMAT,
                "rxstream_version": __version__,
                "provider": provider,
                "model": model,
                "params": self._params,
            }
        )

    def event(self, event: StreamEvent, t: float) -> None:
        if self._closed:
            return
        first = not self._header_written
        if first:
            if isinstance(event, StreamStart):
                self._header(event.provider, event.model)
            else:
                self._header(None, None)
        self._file.write(f'{{"t":{t!r},"event":{stream_event_adapter.dump_json(event).decode()}}}\n')
        if first:  # the file identifies itself at once; later lines go through the buffer
            self._file.flush()

    def footer(self, t: float, end: str, error: Exception | None = None) -> None:
        if self._closed:
            return
        try:
            self._header(None, None)
            obj: dict[str, Any] = {"t": t, "end": end}
            if error is not None:
                obj["error"] = error_record(error)
            self._line(obj)
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._file.flush()
        finally:
            if self._owned:
                self._file.close()


def _check_target(path_or_file: object, needed: str) -> None:
    if isinstance(path_or_file, str | os.PathLike):
        return
    if not hasattr(path_or_file, needed):
        raise ConfigurationError(
            f"path_or_file must be a path or a text file with .{needed}(), got {type(path_or_file).__name__}"
        )


def record(
    path_or_file: PathOrFile,
    *,
    scheduler: abc.SchedulerBase | None = None,
    params: Mapping[str, Any] | None = None,
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Pass events through unchanged and write them to a cassette (see the module docstring).

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Each subscription writes one
    cassette: a path is opened (truncated) per subscription and closed at its end; an open
    file is written to and flushed, never closed. Each line is written (to the file's buffer)
    before the event is forwarded; the buffer is flushed at completion, on error and on
    disposal, and by the file itself when it fills, so a crash leaves a readable prefix.

    Args:
        path_or_file: Where to write: a path, or a text file opened for writing.
        scheduler: The clock for the time offsets (only ``scheduler.now`` is read). Default:
            the subscribe-time scheduler, else ``TimeoutScheduler`` (wall clock).
        params: Request parameters for the header (secrets removed by `redact`).

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, for a target that is neither a path nor writable.

    Emits:
        The source's events, completion and error unchanged (the footer is written first).
        An ``OSError`` opening a path is emitted through ``on_error``.

    Example:
        >>> stream.pipe(rso.record("answer.jsonl"), rso.final()).run()  # doctest: +SKIP
    """
    from rxstream.operators._core import check_scheduler, resolve_scheduler

    _check_target(path_or_file, "write")
    explicit = check_scheduler(scheduler)

    def _record(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = resolve_scheduler(explicit, subscribe_scheduler)
            start = clock.now
            lock = threading.Lock()
            try:
                writer = _Writer(path_or_file, params)
            except OSError as exc:
                observer.on_error(exc)
                return Disposable()

            def on_next(event: StreamEvent) -> None:
                with lock:
                    writer.event(event, _offset(clock.now, start))
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                with lock:
                    writer.footer(_offset(clock.now, start), "error", error)
                observer.on_error(error)

            def on_completed() -> None:
                with lock:
                    writer.footer(_offset(clock.now, start), "completed")
                observer.on_completed()

            def dispose() -> None:
                with lock:
                    writer.footer(_offset(clock.now, start), "disposed")

            upstream = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return CompositeDisposable(upstream, Disposable(dispose))

        return Observable(subscribe)

    return _record


@dataclass
class Cassette:
    """A parsed cassette.

    Attributes:
        header: The header object (``{}`` when the first line is bad).
        events: ``(offset_seconds, event)`` pairs in recorded order.
        end: ``"completed"``, ``"error"``, ``"disposed"`` or ``None`` (no footer).
        end_time: Offset in seconds of the footer (the terminal).
        error: The recorded error, rebuilt as its rxstream class with ``.partial``.
        problem: The `CassetteError` of the first bad line, if any (the valid lines before
            it are in ``events``).
    """

    header: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[float, StreamEvent]] = field(default_factory=list)
    end: str | None = None
    end_time: float = 0.0
    error: StreamError | None = None
    problem: CassetteError | None = None


def _parse(lines: list[str], source: str) -> Cassette:
    cassette = Cassette()
    acc = ResponseAccumulator()

    def bad(number: int, why: str, raw: str) -> Cassette:
        cassette.problem = CassetteError(why, line=number, source=source, raw=raw, partial=acc.snapshot())
        return cassette

    if not lines:
        return bad(1, "empty cassette (no header)", "")
    for number, raw in enumerate(lines, start=1):
        if not raw.endswith("\n"):
            return bad(number, "truncated line (no newline): the recording stopped mid-write", raw)
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            return bad(number, f"not valid JSON ({exc})", raw)
        if not isinstance(obj, dict):
            return bad(number, "not a JSON object", raw)
        if number == 1:
            if obj.get("cassette") != CASSETTE_FORMAT:
                return bad(number, f"not an rxstream cassette header (format {CASSETTE_FORMAT})", raw)
            cassette.header = obj
            continue
        if cassette.end is not None:
            return bad(number, "data after the footer", raw)
        t = obj.get("t")
        if isinstance(t, bool) or not isinstance(t, int | float) or t < 0:
            return bad(number, "missing or invalid time offset 't'", raw)
        if "event" in obj:
            try:
                event = stream_event_adapter.validate_python(obj["event"])
            except ValueError as exc:
                return bad(number, f"invalid event ({str(exc).splitlines()[0]})", raw)
            acc.add(event)
            cassette.events.append((float(t), event))
        elif obj.get("end") in ("completed", "disposed", "error"):
            cassette.end = str(obj["end"])
            cassette.end_time = float(t)
            if cassette.end == "error":
                cassette.error = rebuild_error(obj.get("error") or {})
        else:
            return bad(number, "neither an event nor a footer", raw)
    if cassette.end is None:
        return bad(len(lines) + 1, "no footer: the recording ended before the stream did", "")
    return cassette


def _read_lines(path_or_file: PathOrFile) -> tuple[list[str], str]:
    if isinstance(path_or_file, str | os.PathLike):
        with open(os.fspath(path_or_file), encoding="utf-8", newline="") as f:
            return f.readlines(), os.fspath(path_or_file)
    return io.StringIO(path_or_file.read(), newline="").readlines(), "<file>"


def read_cassette(path_or_file: PathOrFile) -> Cassette:
    """Parse a cassette; a bad line is reported in `Cassette.problem`, not raised.

    Raises:
        OSError: the path cannot be read.
    """
    lines, source = _read_lines(path_or_file)
    return _parse(lines, source)


def replay(
    path_or_file: PathOrFile,
    *,
    speed: float = 1.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[StreamEvent]:
    """Re-emit a recorded stream with its recorded timing, then its recorded terminal.

    A cold ``Observable[StreamEvent]``: each subscription reads the cassette (a path is
    read per subscription; an open file is read once, now) and schedules every event, and
    the terminal, at ``start + t / speed`` (absolute times: no drift), ``start`` being the
    subscription time on the scheduler. On ``TestScheduler`` the timing is exact: a recorded
    first token at 0.42 s gives a `rxstream.operators.stream_stats` TTFT of exactly 0.42 s.

    Args:
        path_or_file: A cassette path or an open text file.
        speed: Playback speed factor (>= 0.001; 2.0 plays twice as fast); ``0`` emits
            everything at once (in one scheduled action).
        scheduler: Where events are emitted. Default: the subscribe-time scheduler, else the
            shared ``TimeoutScheduler``.

    Returns:
        A cold Observable of the recorded events.

    Raises:
        ConfigurationError: at call time, for a ``speed`` that is not 0 or in [0.001, inf), a target
            that is neither a path nor readable, or a path that does not exist.

    Emits:
        The recorded events, then the recorded terminal: ``on_completed``, or the recorded
        error rebuilt as the same rxstream error class (message, attributes and
        ``.partial``). A ``"disposed"`` recording (the subscriber left before the source
        ended, e.g. a timeout fired) emits its events and then nothing, exactly like the
        source did, so a downstream timeout fires again as it did live. A truncated or corrupted cassette
        emits its valid prefix, then a `rxstream.errors.CassetteError` naming the line
        (``.line``), with the prefix's snapshot as ``.partial``.

    Example:
        >>> rxs.replay("answer.jsonl", speed=0).pipe(rso.final()).run().text  # doctest: +SKIP
    """
    from rxstream.operators._core import check_rate, check_scheduler, resolve_scheduler

    factor = 0.0 if speed == 0 and not isinstance(speed, bool) else check_rate("speed", speed)
    if 0 < factor < 0.001:
        raise ConfigurationError(f"speed must be 0 or at least 0.001, got {speed!r}")
    explicit = check_scheduler(scheduler)
    _check_target(path_or_file, "read")
    preread: list[str] | None = None
    if isinstance(path_or_file, str | os.PathLike):
        if not Path(path_or_file).is_file():
            raise ConfigurationError(f"no cassette at {os.fspath(path_or_file)!r}")
    else:
        preread, _ = _read_lines(path_or_file)

    def subscribe(
        observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        sched = resolve_scheduler(explicit, subscribe_scheduler)
        try:
            cassette = _parse(preread, "<file>") if preread is not None else read_cassette(path_or_file)
        except OSError as exc:
            observer.on_error(exc)
            return Disposable()
        start = sched.now
        entries = cassette.events
        # The terminal is due at its recorded offset (a bad cassette: right after its prefix).
        last_event = entries[-1][0] if entries else 0.0
        end_offset = cassette.end_time if cassette.problem is None else last_event
        timer = SerialDisposable()
        position = 0
        stopped = False

        def due(offset: float) -> datetime:
            return start if factor == 0 else start + timedelta(seconds=offset / factor)

        def terminal() -> None:
            if cassette.problem is not None:
                observer.on_error(cassette.problem)
            elif cassette.error is not None:
                observer.on_error(cassette.error)
            elif cassette.end == "completed":
                observer.on_completed()
            # "disposed": the source never ended while it was watched; neither does the replay

        def action(_: abc.SchedulerBase, __: Any = None) -> None:
            nonlocal position, stopped
            while not stopped:
                offset = entries[position][0] if position < len(entries) else end_offset
                when = due(offset)
                if when > sched.now:
                    timer.disposable = sched.schedule_absolute(when, action)
                    return
                if position >= len(entries):
                    stopped = True
                    terminal()
                    return
                position += 1
                observer.on_next(entries[position - 1][1])

        timer.disposable = sched.schedule(action)

        def dispose() -> None:
            nonlocal stopped
            stopped = True

        return CompositeDisposable(Disposable(dispose), timer)

    return Observable(subscribe)

"""Basic projections of an event stream: text, snapshots, final."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc
from reactivex import operators as ops

from rxstream.events import StreamEvent, TextDelta
from rxstream.response import Response, ResponseAccumulator, apply

__all__ = ["final", "snapshots", "text"]


def text() -> Callable[[Observable[StreamEvent]], Observable[str]]:
    """Project a stream to its text deltas.

    ``Observable[StreamEvent] -> Observable[str]``: each `TextDelta.text` (increments, not the
    accumulated text), in order. Errors and completion pass through unchanged.

    Example:
        >>> stream.pipe(rso.text()).subscribe(print)  # doctest: +SKIP
    """

    def _text(source: Observable[StreamEvent]) -> Observable[str]:
        return source.pipe(
            ops.filter(lambda e: type(e) is TextDelta),
            ops.map(_delta_text),
        )

    return _text


def _delta_text(event: StreamEvent) -> str:
    return event.text if isinstance(event, TextDelta) else ""


def snapshots() -> Callable[[Observable[StreamEvent]], Observable[Response]]:
    """Emit the accumulated `Response` after every event (``rxstream.response.apply``).

    ``Observable[StreamEvent] -> Observable[Response]``. Each snapshot is a new immutable
    object holding the whole text so far, so the cost per event grows with the text length:
    for UIs prefer ``throttle_snapshots(interval)``. `StreamReset` clears the snapshot.
    """

    def _snapshots(source: Observable[StreamEvent]) -> Observable[Response]:
        return source.pipe(ops.scan(apply, Response()))

    return _snapshots


def final() -> Callable[[Observable[StreamEvent]], Observable[Response]]:
    """Emit exactly one `Response`, the final one, when the source completes.

    ``Observable[StreamEvent] -> Observable[Response]``. Both
    ``stream.pipe(rso.final()).run()`` (blocking) and ``await stream.pipe(rso.final())``
    work. Errors pass through unchanged (they already carry ``.partial``). Runs on the
    source's scheduler; O(1) per text delta (uses `ResponseAccumulator`).
    """

    def _final(source: Observable[StreamEvent]) -> Observable[Response]:
        def subscribe(
            observer: abc.ObserverBase[Response], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            acc = ResponseAccumulator()

            def on_completed() -> None:
                observer.on_next(acc.snapshot())
                observer.on_completed()

            return source.subscribe(acc.add, observer.on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _final

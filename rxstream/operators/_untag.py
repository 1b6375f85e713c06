"""``untag``: the events of a `rxstream.merge_streams` output without their tags."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxstream._tagged import Tagged
from rxstream.events import StreamEvent

__all__ = ["untag"]


def untag() -> Callable[[Observable[Tagged]], Observable[StreamEvent]]:
    """Drop the tags: every source's events, interleaved as they arrived.

    ``Observable[Tagged] -> Observable[StreamEvent]``. The first error item becomes
    ``on_error`` (the source's own error, ``.partial`` intact), which disposes the merged
    subscription; use `for_source` to follow one track, or keep the `Tagged` items to let
    the others go on. No scheduler: it runs on the thread that emits.

    Marble (``x`` = an error item)::

        merged:    -ab-a-bx
        untag():   -ab-a-b#

    Returns:
        An operator for ``pipe``.

    Example:
        >>> merged.pipe(rso.untag()).subscribe(print)  # doctest: +SKIP
    """

    def _untag(source: Observable[Tagged]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(item: Tagged) -> None:
                if item.error is not None:
                    observer.on_error(item.error)
                elif item.event is not None:
                    observer.on_next(item.event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _untag

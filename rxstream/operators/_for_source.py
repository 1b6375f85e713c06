"""``for_source``: one track of a `rxstream.merge_streams` output, as plain events."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxstream._tagged import Tagged
from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent

__all__ = ["for_source"]


def for_source(name: str) -> Callable[[Observable[Tagged]], Observable[StreamEvent]]:
    """Keep the events of the source called ``name``; its error item becomes ``on_error``.

    ``Observable[Tagged] -> Observable[StreamEvent]``. Items of other sources are skipped.
    The output completes when the merged stream completes, or errors with the source's own
    error (its ``.partial`` intact) when ``name``'s error item arrives, which disposes the
    merged subscription. No scheduler: it runs on the thread that emits.

    Marble (``a``/``b`` of sources A and B, ``x`` = A's error item)::

        merged:              -ab-a-bx
        for_source("A"):     -a--a--#

    Args:
        name: The source's name as given to `rxstream.merge_streams`.

    Returns:
        An operator for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``name`` is not a non-empty string.

    Example:
        >>> merged.pipe(rso.for_source("cloud"), rso.final())  # doctest: +SKIP
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"name must be a non-empty string, got {name!r}")

    def _for_source(source: Observable[Tagged]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(item: Tagged) -> None:
                if item.source != name:
                    return
                if item.error is not None:
                    observer.on_error(item.error)
                elif item.event is not None:
                    observer.on_next(item.event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _for_source

"""``apply_config``: one operator that applies a `StreamProfile`'s chain of operators."""

from __future__ import annotations

from collections.abc import Callable

from reactivex import Observable, abc

from rxstream.config import StreamConfig, StreamProfile
from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent
from rxstream.operators._buffer_tokens import buffer_tokens
from rxstream.operators._coalesce_text import coalesce_text
from rxstream.operators._core import check_scheduler
from rxstream.operators._pausable import pausable
from rxstream.operators._retry import retry_stream
from rxstream.operators._smooth_text import smooth_text
from rxstream.operators._timeouts import first_token_timeout, idle_timeout, total_timeout

__all__ = ["apply_config", "hold_until_done"]

_Op = Callable[[Observable[StreamEvent]], Observable[StreamEvent]]


def hold_until_done() -> _Op:
    """Hold every event and release them all, in order, when the source ends.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``: what ``stream = false`` means
    (the request is the same; the caller sees the answer at once). On error the held
    events are emitted first, then the error (lossless). Synchronous, no scheduler.

    Marble::

        events:            S-a-b-E|
        hold_until_done(): -------(SabE|)
    """

    def _hold(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            held: list[StreamEvent] = []

            def release() -> None:
                events = held[:]
                held.clear()
                for event in events:
                    observer.on_next(event)

            def on_error(error: Exception) -> None:
                release()
                observer.on_error(error)

            def on_completed() -> None:
                release()
                observer.on_completed()

            return source.subscribe(held.append, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _hold


def _flatten_batches(source: Observable[list[StreamEvent]]) -> Observable[StreamEvent]:
    def subscribe(
        observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def on_next(batch: list[StreamEvent]) -> None:
            for event in batch:
                observer.on_next(event)

        return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

    return Observable(subscribe)


def profile_operators(
    profile: StreamProfile,
    *,
    valve: Observable[bool] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> list[_Op]:
    """The operators a profile stands for, in the order `apply_config` applies them."""
    ops: list[_Op] = []
    t = profile.timeouts
    if t.first_token is not None:
        ops.append(first_token_timeout(t.first_token, scheduler=scheduler))
    if t.idle is not None:
        ops.append(idle_timeout(t.idle, scheduler=scheduler))
    if t.total is not None:
        ops.append(total_timeout(t.total, scheduler=scheduler))
    if profile.retry is not None and profile.retry.max_attempts > 1:
        r = profile.retry
        ops.append(
            retry_stream(
                r.max_attempts,
                backoff=r.backoff,
                max_backoff=r.max_backoff,
                jitter=r.jitter,
                on_partial=r.on_partial,
                scheduler=scheduler,
            )
        )
    if profile.coalesce is not None:
        ops.append(coalesce_text(profile.coalesce.max_delay, profile.coalesce.max_chars, scheduler=scheduler))
    if profile.chunk_delay_ms > 0:
        chunking = profile.smooth.chunking if profile.smooth is not None else "word"
        ops.append(smooth_text(delay=profile.chunk_delay_ms / 1000, chunking=chunking, scheduler=scheduler))
    elif profile.smooth is not None:
        s = profile.smooth
        if s.chars_per_second is not None:
            ops.append(smooth_text(s.chars_per_second, chunking=s.chunking, scheduler=scheduler))
        else:
            ops.append(smooth_text(delay=s.delay, chunking=s.chunking, scheduler=scheduler))
    if profile.buffer_tokens is not None:
        batches = buffer_tokens(
            profile.buffer_tokens.n, max_delay=profile.buffer_tokens.max_delay, scheduler=scheduler
        )
        ops.append(lambda source: _flatten_batches(batches(source)))
    if not profile.stream:
        ops.append(hold_until_done())
    if valve is not None:
        ops.append(pausable(valve, max_buffered=profile.pause.max_buffered))
    return ops


def apply_config(
    config: StreamConfig | StreamProfile | None = None,
    profile: str | None = None,
    *,
    provider: str | None = None,
    model: str | None = None,
    valve: Observable[bool] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> _Op:
    """Apply a configured profile (with its provider/model overrides) as one operator.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. Resolves
    ``config.for_model(provider, model, profile)`` **when called** and chains, in order:
    ``first_token_timeout`` / ``idle_timeout`` / ``total_timeout`` (inside the retry, so a
    timeout is retried), ``retry_stream``, ``coalesce_text``, ``smooth_text`` (or
    ``chunk_delay_ms`` pacing), ``buffer_tokens`` (batches flattened back into events),
    `hold_until_done` when ``stream`` is false, then ``pausable(valve)`` when a valve is
    given. Each stage keeps its own documented marble, error and flush behaviour.

    Args:
        config: A `StreamConfig` (default: ``StreamConfig()``, the shipped profiles), or one
            already resolved `StreamProfile`.
        profile: Profile name; default: the one an override names, else
            ``config.default_profile`` (``"interactive"``).
        provider: Provider name for overrides (``"anthropic"``, ``"openai"``, ...).
        model: Model name for overrides (exact or ``fnmatch`` pattern in the config).
        valve: Optional pause valve (``True`` open) for ``pausable``; its bound is the
            profile's ``pause.max_buffered``.
        scheduler: Scheduler for every time-based stage (timeouts, retry waits, windows,
            pacing). Default: each stage's own default (subscribe-time scheduler, else the
            shared ``TimeoutScheduler``).

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, for an unknown profile, a wrong ``config`` type or
            a setting an operator rejects.

    Emits:
        Whatever the stages emit: `StreamTimeoutError` s, the retried stream, provider errors;
        every stage flushes held events before forwarding an error.

    Example:
        >>> stream.pipe(rso.apply_config(cfg, "batch", provider="openai", model="o3"))  # doctest: +SKIP
    """
    check_scheduler(scheduler)
    if config is None:
        config = StreamConfig()
    if isinstance(config, StreamConfig):
        resolved = config.for_model(provider, model, profile)
    elif isinstance(config, StreamProfile):
        if profile is not None:
            raise ConfigurationError(
                "apply_config: a StreamProfile is already resolved; do not name a profile"
            )
        resolved = config
    else:
        raise ConfigurationError(
            f"apply_config: config must be a StreamConfig or StreamProfile, got {type(config).__name__}"
        )
    stages = profile_operators(resolved, valve=valve, scheduler=scheduler)

    def _apply(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        for stage in stages:
            source = stage(source)
        return source

    return _apply

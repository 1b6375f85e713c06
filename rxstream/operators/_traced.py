"""``traced``: an OpenTelemetry GenAI span and metrics per subscription (extra ``otel``).

The Rx shell around `rxstream.telemetry.GenAIInstrumentation`; the telemetry module (and
with it ``opentelemetry-api``) is imported only when ``traced`` is called, so the core
works without the extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent
from rxstream.operators._core import check_scheduler, resolve_scheduler

__all__ = ["traced"]


def traced(
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    capture_content: bool = False,
    request_model: str | None = None,
    server_address: str | None = None,
    server_port: int | None = None,
    agent_name: str | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[StreamEvent]], Observable[StreamEvent]]:
    """Trace every subscription: one GenAI ``CLIENT`` span and the GenAI client metrics.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``: events pass through unchanged.
    Each subscription starts a span ``chat {model}`` (OpenTelemetry GenAI semantic
    conventions; attribute and metric names in `rxstream.telemetry`) that ends exactly
    once: on completion, on error (status ERROR, ``error.type`` = the rxstream error
    class) or on disposal before a terminal (``rxstream.cancelled=True``). Metrics:
    ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage``,
    ``gen_ai.client.operation.time_to_first_chunk`` and
    ``gen_ai.client.operation.time_per_output_chunk``, all timed on the scheduler clock.

    On a tool loop (`rxstream.tool_loop`, recognised by its first event, `IterationStart`)
    the subscription's span is an ``invoke_agent`` ``INTERNAL`` span with the loop's total
    usage, parent of one ``chat {model}`` ``CLIENT`` span per model turn (that turn's usage;
    metrics per turn) and one ``execute_tool {tool name}`` ``INTERNAL`` span per executed tool
    call (status ERROR for an error result); disposal or an error ends every open span. The
    tree and the semconv sections it follows are in `rxstream.telemetry` (``I``
    IterationStart, ``S``/``E`` a turn's StreamStart/StreamEnd, ``T`` a tool call, ``R`` its
    ToolResult, ``J`` IterationEnd)::

        events:        I-S-t-T-E---R-J-I-S-t-E-J|
        invoke_agent:  [------------------------]
        chat:          [-------]       [-----]
        execute_tool:          [---]

    Args:
        tracer_provider: OpenTelemetry ``TracerProvider``; default the global one.
        meter_provider: OpenTelemetry ``MeterProvider``; default the global one.
        capture_content: Also record the output text and tool calls on the ``chat`` span
            (``gen_ai.output.messages``) and, in a tool loop, each tool call's arguments,
            result and error message on its ``execute_tool`` span
            (``gen_ai.tool.call.arguments`` / ``.result``). Off by default: content may be
            sensitive.
        request_model: ``gen_ai.request.model``; default the model in `StreamStart`.
        server_address: ``server.address`` of the provider endpoint, when known.
        server_port: ``server.port``, when known (only with ``server_address``).
        agent_name: ``gen_ai.agent.name`` of a tool loop's ``invoke_agent`` span, which is then
            named ``invoke_agent {agent_name}``; ignored on a plain stream.
        scheduler: The clock (only ``scheduler.now`` is read). Default: the subscribe-time
            scheduler, else ``TimeoutScheduler`` (wall clock).

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``opentelemetry-api`` is missing
            (``pip install 'rxstream[otel]'``) or an argument has the wrong type.

    Emits:
        The source's events, completion and error unchanged; every span is ended before
        the terminal is forwarded.

    Example:
        >>> stream.pipe(rso.traced(), rso.final()).run()  # doctest: +SKIP
    """
    if not isinstance(capture_content, bool):
        raise ConfigurationError(f"capture_content must be a bool, got {type(capture_content).__name__}")
    if server_port is not None and (isinstance(server_port, bool) or not isinstance(server_port, int)):
        raise ConfigurationError(f"server_port must be an int, got {type(server_port).__name__}")
    if agent_name is not None and not isinstance(agent_name, str):
        raise ConfigurationError(f"agent_name must be a str, got {type(agent_name).__name__}")
    explicit = check_scheduler(scheduler)
    from rxstream.telemetry import GenAIInstrumentation

    instrumentation = GenAIInstrumentation(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
        request_model=request_model,
        server_address=server_address,
        server_port=server_port,
        agent_name=agent_name,
    )

    def _traced(source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        def subscribe(
            observer: abc.ObserverBase[StreamEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = resolve_scheduler(explicit, subscribe_scheduler)
            telemetry = instrumentation.start(clock.now)

            def on_next(event: StreamEvent) -> None:
                telemetry.observe(event, clock.now)
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                telemetry.fail(error, clock.now)
                observer.on_error(error)

            def on_completed() -> None:
                telemetry.complete(clock.now)
                observer.on_completed()

            def dispose() -> None:
                telemetry.cancel(clock.now)  # no-op when the stream already ended

            upstream = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return CompositeDisposable(Disposable(dispose), upstream)

        return Observable(subscribe)

    return _traced

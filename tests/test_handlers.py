"""Tests of rxstream.handlers and rxstream.sinks: dispatch, isolation, built-in handlers."""

from __future__ import annotations

import io
import logging
import sys
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

from rxstream.errors import ConfigurationError, HandlerError, ProviderError, StreamInterruptedError
from rxstream.events import StreamEnd, StreamEvent, StreamReset, StreamStart, TextDelta, Usage, UsageUpdate
from rxstream.handlers import (
    CollectHandler,
    HandlerObserver,
    LoggingHandler,
    PrintHandler,
    StreamHandler,
    attach,
)
from rxstream.response import Response

SECRET = "s3cr3t-payload"


def events(sid: str = "s") -> list[StreamEvent]:
    return [
        StreamStart(stream_id=sid, seq=0, provider="anthropic", model="m", request_id="req_1"),
        UsageUpdate(stream_id=sid, seq=1, usage=Usage(input_tokens=5)),
        TextDelta(stream_id=sid, seq=2, text="Hello"),
        TextDelta(stream_id=sid, seq=3, text=f" {SECRET}"),
        StreamEnd(stream_id=sid, seq=4, stop_reason="end_turn", usage=Usage(input_tokens=5, output_tokens=2)),
    ]


class Recorder(StreamHandler):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.handler_errors: list[HandlerError] = []

    def on_stream_start(self, metadata: StreamStart) -> None:
        self.calls.append(("start", metadata.request_id))

    def on_token_received(self, token: str, index: int) -> None:
        self.calls.append(("token", (token, index)))

    def on_stream_reset(self, reset: StreamReset) -> None:
        self.calls.append(("reset", reset.attempt))

    def on_stream_complete(self, response: Response) -> None:
        self.calls.append(("complete", response.text))

    def on_stream_error(self, error: BaseException) -> None:
        self.calls.append(("error", type(error).__name__))

    def on_event(self, event: StreamEvent) -> None:
        self.calls.append(("event", event.type))

    def on_handler_error(self, error: HandlerError) -> None:
        self.handler_errors.append(error)


class Exploding(Recorder):
    """Raises in on_token_received (with the payload in the message) and in on_stream_complete."""

    def on_token_received(self, token: str, index: int) -> None:
        super().on_token_received(token, index)
        raise ValueError(f"boom {token}")

    def on_stream_complete(self, response: Response) -> None:
        raise RuntimeError("complete failed")


def test_as_observer_calls_on_event_then_the_specific_callback() -> None:
    recorder = Recorder()
    reactivex.from_iterable(events()).subscribe(recorder.as_observer())
    assert recorder.calls == [
        ("event", "stream_start"),
        ("start", "req_1"),
        ("event", "usage_update"),
        ("event", "text_delta"),
        ("token", ("Hello", 0)),
        ("event", "text_delta"),
        ("token", (f" {SECRET}", 1)),
        ("event", "stream_end"),
        ("complete", f"Hello {SECRET}"),
    ]


def test_token_index_restarts_after_a_reset_and_the_response_is_cleared() -> None:
    recorder = Recorder()
    stream: list[StreamEvent] = [
        StreamStart(stream_id="a", seq=0, provider="p"),
        TextDelta(stream_id="a", seq=1, text="Hel"),
        StreamReset(stream_id="a", seq=2, attempt=2, discarded_text="Hel"),
        StreamStart(stream_id="b", seq=0, provider="p"),
        TextDelta(stream_id="b", seq=1, text="Hello"),
        StreamEnd(stream_id="b", seq=2, stop_reason="end_turn"),
    ]
    reactivex.from_iterable(stream).subscribe(recorder.as_observer())
    specific = [c for c in recorder.calls if c[0] != "event"]
    assert specific == [
        ("start", None),
        ("token", ("Hel", 0)),
        ("reset", 2),
        ("start", None),
        ("token", ("Hello", 0)),
        ("complete", "Hello"),
    ]


def test_errors_reach_on_stream_error_once() -> None:
    recorder = Recorder()
    error = StreamInterruptedError("dropped")
    reactivex.concat(reactivex.from_iterable(events()[:3]), reactivex.throw(error)).subscribe(
        recorder.as_observer()
    )
    assert recorder.calls[-1] == ("error", "StreamInterruptedError")
    assert not any(c[0] == "complete" for c in recorder.calls)


def test_a_raising_handler_is_isolated_and_siblings_receive_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad, good = Exploding(), Recorder()
    reported: list[HandlerError] = []
    subscriptions = [0]

    def factory(_: Any) -> Observable[StreamEvent]:
        subscriptions[0] += 1
        return reactivex.from_iterable(events())

    with caplog.at_level(logging.WARNING, logger="rxstream"):
        attachment = attach(reactivex.defer(factory), bad, good, on_handler_error=reported.append)

    assert subscriptions[0] == 1  # one request for all handlers
    assert ("complete", f"Hello {SECRET}") in good.calls
    assert len([c for c in good.calls if c[0] == "event"]) == 5
    assert attachment.handler_errors == 3  # two tokens + on_stream_complete
    assert attachment.finished
    assert [e.callback for e in reported] == ["on_token_received", "on_token_received", "on_stream_complete"]
    assert reported == bad.handler_errors  # the handler's own hook saw the same errors
    assert all(e.handler is bad for e in reported)
    assert isinstance(reported[0].__cause__, ValueError)
    assert len(caplog.records) == 3
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert all(r.exc_info is None for r in caplog.records)
    assert "Exploding.on_token_received raised ValueError" in caplog.records[0].getMessage()
    assert SECRET not in str(reported[1])


def test_a_raising_on_handler_error_is_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    class Worse(Exploding):
        def on_handler_error(self, error: HandlerError) -> None:
            raise RuntimeError("even worse")

    good = Recorder()

    def reporter(error: HandlerError) -> None:
        raise RuntimeError("reporter failed")

    with caplog.at_level(logging.WARNING, logger="rxstream"):
        attach(reactivex.from_iterable(events()), Worse(), good, on_handler_error=reporter)
    assert good.calls[-1] == ("complete", f"Hello {SECRET}")


def test_a_raising_handler_does_not_fail_the_source() -> None:
    observer = HandlerObserver([Exploding()])
    completed: list[bool] = []
    reactivex.from_iterable(events()).subscribe(observer)
    completed.append(observer.finished)
    assert completed == [True]
    assert observer.response.text == f"Hello {SECRET}"
    assert observer.handler_errors == 3


def test_attach_dispose_reaches_the_source() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        ReactiveTest.on_next(10, events()[0]), ReactiveTest.on_next(100, events()[2])
    )
    recorder = Recorder()
    attachment = attach(source, recorder, scheduler=scheduler)
    scheduler.advance_to(50)
    attachment.dispose()
    scheduler.start()
    assert source.subscriptions == [ReactiveTest.subscribe(0, 50)]
    assert attachment.is_disposed
    assert recorder.calls == [("event", "stream_start"), ("start", "req_1")]


@pytest.mark.parametrize(
    ("source", "handlers"),
    [(reactivex.empty(), ()), ([], (Recorder(),)), (reactivex.empty(), (object(),))],
)
def test_attach_validates_its_arguments(source: Any, handlers: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigurationError):
        attach(source, *handlers)


def test_print_handler_writes_text_to_a_file_and_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    attach(reactivex.from_iterable(events()), PrintHandler(out, end="|"))
    assert out.getvalue() == f"Hello {SECRET}|"
    attach(reactivex.from_iterable(events()), PrintHandler())
    assert capsys.readouterr().out == f"Hello {SECRET}\n"


def test_collect_handler_keeps_events_and_outcome() -> None:
    collect = CollectHandler()
    attach(reactivex.from_iterable(events()), collect)
    assert collect.events == events()
    assert collect.response is not None and collect.response.text == f"Hello {SECRET}"
    assert collect.text == f"Hello {SECRET}"
    assert collect.done.is_set() and collect.error is None

    failed = CollectHandler()
    error = ProviderError("overloaded", status_code=529)
    attach(reactivex.throw(error), failed)
    assert failed.error is error and failed.response is None and failed.done.is_set()


def test_logging_handler_logs_lifecycle_but_never_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="rxstream"):
        attach(reactivex.from_iterable(events()), LoggingHandler())
        error = ProviderError(f"overloaded {SECRET}", status_code=529)
        attach(
            reactivex.concat(reactivex.from_iterable(events()[:4]), reactivex.throw(error)), LoggingHandler()
        )
    messages = [r.getMessage() for r in caplog.records]
    assert any("started" in m and "req_1" in m for m in messages)
    assert any("completed" in m and "end_turn" in m and "output_tokens=2" in m for m in messages)
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failed and failed[0].levelno == logging.WARNING
    assert "ProviderError status=529 retryable=True" in failed[0].getMessage()
    assert all(SECRET not in m and "Hello" not in m for m in messages)


def test_rich_live_handler_renders_text_and_stats() -> None:
    from rich.console import Console

    from rxstream.sinks.terminal import RichLiveHandler

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100, color_system=None)
    scheduler = TestScheduler()
    handler = RichLiveHandler(console, scheduler=scheduler, refresh_per_second=50)
    source = scheduler.create_cold_observable(
        *[ReactiveTest.on_next(10 * (i + 1), e) for i, e in enumerate(events())],
        ReactiveTest.on_completed(60),
    )
    attach(source, handler, scheduler=scheduler)
    scheduler.start()
    rendered = out.getvalue()
    assert f"Hello {SECRET}" in rendered
    assert "2 tokens" in rendered
    assert "TTFT 20.00 s" in rendered  # first event at 10, first text at 30 (virtual seconds)


def test_rich_live_handler_shows_the_error_type() -> None:
    from rich.console import Console

    from rxstream.sinks.terminal import RichLiveHandler

    out = io.StringIO()
    handler = RichLiveHandler(Console(file=out, force_terminal=False, width=100, color_system=None))
    attach(
        reactivex.concat(reactivex.from_iterable(events()[:3]), reactivex.throw(StreamInterruptedError("x"))),
        handler,
    )
    assert "Hello" in out.getvalue()
    assert "stream failed: StreamInterruptedError" in out.getvalue()


def test_rich_live_handler_without_rich_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from rxstream.sinks.terminal import RichLiveHandler

    monkeypatch.setitem(sys.modules, "rich", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'rxstream\[cli\]'"):
        RichLiveHandler()

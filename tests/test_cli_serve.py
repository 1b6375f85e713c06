"""``rxstream serve --tools demo`` without a browser: the SSE event sequence of the tool loop.

The app (`rxstream.cli._serve.build_app`) runs under uvicorn on 127.0.0.1 on the embedded
emulator's demo model (it calls the calculator and the clock, then answers with their results);
`rxstream.web.from_sse` reads the ``rxstream``-protocol answer back into typed events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

import rxstream as rxs
from rxstream.cli._serve import build_app
from rxstream.cli._session import Session, SessionOptions, open_session
from rxstream.errors import ConfigurationError
from rxstream.events import (
    IterationEnd,
    IterationStart,
    StreamEvent,
    TextDelta,
    ToolCallEnd,
    ToolResult,
)
from rxstream.testing.tools import check_loop_grammar

PROMPT = "What is 12 * (3 + 4)?"


@pytest.fixture
def session() -> Iterator[Session]:
    with open_session(SessionOptions(provider="anthropic", force_emulator=True)) as opened:
        yield opened


def _ask(url: str, prompt: str = PROMPT) -> Any:
    return rxs.web.from_sse(
        url + "/api/chat", method="POST", json_body={"messages": [{"role": "user", "content": prompt}]}
    )


def test_tool_mode_streams_the_loop_events_in_order(session: Session, serve_asgi: Any) -> None:
    url = serve_asgi(build_app(session, session.emulator, tools="demo", max_iterations=4))
    info = httpx2.get(url + "/api/info", timeout=10).json()
    assert info["tools"] == ["calculator", "clock"] and info["emulated"] is True

    events: list[StreamEvent] = list(rxs.to_iterator(_ask(url)))

    check_loop_grammar(events)  # IterationStart … StreamStart … StreamEnd … ToolResult* … IterationEnd
    loop = [e for e in events if isinstance(e, IterationStart | ToolCallEnd | ToolResult | IterationEnd)]
    # Results come in completion order: within iteration 1 the two may swap.
    assert [e.type for e in loop] == [
        "iteration_start",
        "tool_call_end",
        "tool_call_end",
        "tool_result",
        "tool_result",
        "iteration_end",
        "iteration_start",
        "iteration_end",
    ]
    calls = {e.id: e for e in loop if isinstance(e, ToolCallEnd)}
    results = {e.tool_call_id: e for e in loop if isinstance(e, ToolResult)}
    assert results.keys() == calls.keys()  # every result answers a call of the same id
    assert all(results[i].name == calls[i].name and results[i].iteration == 1 for i in calls)
    calculator = next(r for r in results.values() if r.name == "calculator")
    assert calculator.output == "12 * (3 + 4) = 84" and not calculator.is_error
    starts = [e for e in loop if isinstance(e, IterationStart)]
    ends = [e for e in loop if isinstance(e, IterationEnd)]
    assert [e.iteration for e in starts] == [e.iteration for e in ends] == [1, 2]
    assert [e.stop_reason for e in ends] == ["tool_use", "end_turn"]
    final = "".join(e.text for e in events[events.index(starts[1]) :] if isinstance(e, TextDelta))
    assert "12 * (3 + 4) = 84" in final


def test_stop_mid_loop_closes_the_model_connection(session: Session, serve_asgi: Any) -> None:
    url = serve_asgi(build_app(session, session.emulator, tools="demo"))
    seen: list[StreamEvent] = []
    for event in rxs.to_iterator(_ask(url)):  # leaving the loop disposes the subscription
        seen.append(event)
        if isinstance(event, TextDelta) and any(isinstance(e, ToolResult) for e in seen):
            break  # the second model turn is streaming
    record = session.emulator.wait_for_disconnect(index=1, timeout=10)
    assert record.client_disconnected and not record.completed
    assert session.emulator.connections[0].completed
    assert not any(isinstance(e, IterationEnd) and e.iteration == 2 for e in seen)


def test_plain_mode_offers_no_tools_and_bad_options_fail_early(session: Session, serve_asgi: Any) -> None:
    url = serve_asgi(build_app(session, session.emulator))
    assert httpx2.get(url + "/api/info", timeout=10).json()["tools"] == []
    with pytest.raises(ConfigurationError, match="max-iterations"):
        build_app(session, tools="demo", max_iterations=0)
    with pytest.raises(ConfigurationError, match="unknown tool set"):
        build_app(session, tools="nope")


def test_serve_help_mentions_the_tool_mode(capsys: pytest.CaptureFixture[str]) -> None:
    from rxstream.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--tools {demo}" in out and "--max-iterations" in out

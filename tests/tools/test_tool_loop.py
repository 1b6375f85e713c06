"""The tool loop on all five wire APIs, through the official SDKs and the emulator.

Each test scripts the model's turns with `ToolConversation` (the turn is picked by the tool
results the request carries) and asserts on the events, the `ToolLoopResult` and the request
bodies the emulator recorded.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import boto3
import openai
import pytest
import reactivex
from botocore.config import Config
from reactivex import Observable

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import ConfigurationError, ProviderError, StreamError, StreamTimeoutError
from rxstream.events import StreamEvent
from rxstream.operators import ToolLoopResult
from rxstream.providers._tool_wire import CONVERSE_NO_TOOLS_TEXT
from rxstream.testing import (
    Fault,
    ProviderEmulator,
    ResponseScript,
    ScriptedToolCall,
    ToolConversation,
    check_loop_grammar,
    offered_tools,
    request_tool_results,
)

PROVIDERS = ["anthropic", "openai", "openai-responses", "bedrock", "bedrock-invoke"]
ROUTE: dict[str, str] = {}  # emulator route names equal provider names
ENTRIES: dict[str, Callable[..., Observable[StreamEvent]]] = {
    "anthropic": rxs.from_anthropic,
    "openai": rxs.from_openai,
    "openai-responses": rxs.from_openai_responses,
    "bedrock": rxs.from_bedrock,
    "bedrock-invoke": rxs.from_bedrock_invoke,
}


@rxs.tool
def get_weather(city: str, days: int = 1) -> dict[str, Any]:
    """Weather forecast for a city.

    Args:
        city: City name.
        days: Number of days to forecast.
    """
    return {"city": city, "days": days, "forecast": "sunny"}


@rxs.tool
async def get_time(tz: str) -> str:
    """The local time in a time zone.

    Args:
        tz: IANA time zone name.
    """
    return f"12:00 in {tz}"


def call(call_id: str, name: str, arguments: str) -> ScriptedToolCall:
    return ScriptedToolCall(id=call_id, name=name, arguments=arguments, fragment_size=5)


TWO_CALLS = ResponseScript(
    text="Checking both.",
    tool_calls=[
        call("call_A1", "get_weather", '{"city": "Zürich", "days": 2}'),
        call("call_B2", "get_time", '{"tz": "Asia/Tokyo"}'),
    ],
    stop_reason="tool_use",
    input_tokens=100,
    output_tokens=40,
)
ANSWER = ResponseScript(text="Sunny in Zürich; it is noon in Tokyo.", input_tokens=180, output_tokens=12)


# -- clients and requests per provider ----------------------------------------------------------


class Script:
    """The module emulator's responder: plays whichever conversation the test sets."""

    def __init__(self) -> None:
        self.conversation = ToolConversation([ANSWER])

    def __call__(self, provider: str, body: dict[str, Any]) -> ResponseScript:
        return self.conversation(provider, body)


SCRIPT = Script()


def play(conversation: ToolConversation) -> ToolConversation:
    SCRIPT.conversation = conversation
    return conversation


@pytest.fixture(scope="module")
def emu() -> Iterator[ProviderEmulator]:
    with ProviderEmulator(responder=SCRIPT) as emulator:
        yield emulator


class Clients:
    def __init__(self, emu: ProviderEmulator) -> None:
        self.emu = emu
        self.opened: list[Any] = []

    def client(self, provider: str) -> Any:
        if provider == "anthropic":
            c: Any = anthropic.Anthropic(
                api_key="sk-test", base_url=self.emu.anthropic_base_url, max_retries=0
            )
        elif provider in ("openai", "openai-responses"):
            c = openai.OpenAI(api_key="sk-test", base_url=self.emu.openai_base_url, max_retries=0)
        else:
            c = boto3.client(
                "bedrock-runtime",
                endpoint_url=self.emu.bedrock_endpoint_url,
                region_name="us-east-1",
                aws_access_key_id="test",
                aws_secret_access_key="test",
                config=Config(retries={"total_max_attempts": 1}),
            )
        self.opened.append(c)
        return c

    def close(self) -> None:
        for c in self.opened:
            c.close()


@pytest.fixture
def clients(emu: ProviderEmulator) -> Iterator[Clients]:
    emu.dequeue_all()
    made = Clients(emu)
    yield made
    made.close()


def user_message(provider: str, text: str) -> dict[str, Any]:
    if provider == "bedrock":
        return {"role": "user", "content": [{"text": text}]}
    return {"role": "user", "content": text}


def request_params(provider: str, history: list[Any]) -> dict[str, Any]:
    """What the entry point takes, with ``history`` as the conversation."""
    if provider == "anthropic":
        return {"model": "m", "max_tokens": 256, "messages": history}
    if provider == "openai":
        return {"model": "m", "messages": history}
    if provider == "openai-responses":
        return {"model": "m", "input": history}
    if provider == "bedrock":
        return {"modelId": "m", "messages": history}
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 256, "messages": history}
    return {"modelId": "m", "body": body}


def loop(
    clients: Clients, provider: str, history: list[Any] | None = None, **options: Any
) -> Observable[StreamEvent]:
    history = (
        history if history is not None else [user_message(provider, "Weather in Zürich, time in Tokyo?")]
    )
    options.setdefault("tools", [get_weather, get_time])
    return rxs.tool_loop(
        ENTRIES[provider], clients.client(provider), **options, **request_params(provider, history)
    )


class Collector:
    """Records what an Observable delivers; ``done`` is set by the terminal notification."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.errors: list[Exception] = []
        self.done = threading.Event()
        self.first = threading.Event()

    def on_next(self, item: Any) -> None:
        self.items.append(item)
        self.first.set()

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)
        self.done.set()

    def on_completed(self) -> None:
        self.done.set()


def run(stream: Observable[Any], timeout: float = 20) -> tuple[list[Any], Exception | None]:
    c = Collector()
    stream.subscribe(c.on_next, c.on_error, c.on_completed)
    assert c.done.wait(timeout), "the loop did not finish"
    return c.items, c.errors[0] if c.errors else None


def body_history(provider: str, body: dict[str, Any]) -> list[Any]:
    history = body["input"] if provider == "openai-responses" else body["messages"]
    assert isinstance(history, list)
    return history


# -- grammar ------------------------------------------------------------------------------------


# -- the two-tool, two-iteration run on all five wire APIs ---------------------------------------


def expected_tool_schemas(provider: str) -> Any:
    weather = get_weather.input_schema
    time_ = get_time.input_schema
    specs = [
        ("get_weather", "Weather forecast for a city.", weather),
        ("get_time", "The local time in a time zone.", time_),
    ]
    if provider in ("anthropic", "bedrock-invoke"):
        return [{"name": n, "description": d, "input_schema": s} for n, d, s in specs]
    if provider == "openai":
        return [
            {"type": "function", "function": {"name": n, "description": d, "parameters": s}}
            for n, d, s in specs
        ]
    if provider == "openai-responses":
        return [
            {"type": "function", "name": n, "description": d, "parameters": s, "strict": False}
            for n, d, s in specs
        ]
    return {
        "tools": [
            {"toolSpec": {"name": n, "description": d, "inputSchema": {"json": s}}} for n, d, s in specs
        ]
    }


WEATHER_OUT = '{"city":"Zürich","days":2,"forecast":"sunny"}'
TIME_OUT = "12:00 in Asia/Tokyo"


def expected_turn_items(provider: str) -> list[Any]:
    """The assistant turn and the tool results, as the second request must carry them."""
    a_args, b_args = {"city": "Zürich", "days": 2}, {"tz": "Asia/Tokyo"}
    if provider in ("anthropic", "bedrock-invoke"):
        return [
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking both."},
                    {"type": "tool_use", "id": "call_A1", "name": "get_weather", "input": a_args},
                    {"type": "tool_use", "id": "call_B2", "name": "get_time", "input": b_args},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_A1", "content": WEATHER_OUT},
                    {"type": "tool_result", "tool_use_id": "call_B2", "content": TIME_OUT},
                ],
            },
        ]
    if provider == "openai":
        return [
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "call_A1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Zürich", "days": 2}'},
                    },
                    {
                        "id": "call_B2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz": "Asia/Tokyo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_A1", "content": WEATHER_OUT},
            {"role": "tool", "tool_call_id": "call_B2", "content": TIME_OUT},
        ]
    if provider == "openai-responses":
        return [
            {"role": "assistant", "content": "Checking both."},
            {
                "type": "function_call",
                "call_id": "call_A1",
                "name": "get_weather",
                "arguments": '{"city": "Zürich", "days": 2}',
            },
            {
                "type": "function_call",
                "call_id": "call_B2",
                "name": "get_time",
                "arguments": '{"tz": "Asia/Tokyo"}',
            },
            {"type": "function_call_output", "call_id": "call_A1", "output": WEATHER_OUT},
            {"type": "function_call_output", "call_id": "call_B2", "output": TIME_OUT},
        ]
    return [
        {
            "role": "assistant",
            "content": [
                {"text": "Checking both."},
                {"toolUse": {"toolUseId": "call_A1", "name": "get_weather", "input": a_args}},
                {"toolUse": {"toolUseId": "call_B2", "name": "get_time", "input": b_args}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "call_A1",
                        "content": [{"text": WEATHER_OUT}],
                        "status": "success",
                    }
                },
                {
                    "toolResult": {
                        "toolUseId": "call_B2",
                        "content": [{"text": TIME_OUT}],
                        "status": "success",
                    }
                },
            ],
        },
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_two_tools_two_iterations(emu: ProviderEmulator, clients: Clients, provider: str) -> None:
    conversation = play(ToolConversation([TWO_CALLS, ANSWER]))
    start = len(emu.requests)
    events, error = run(loop(clients, provider))
    assert error is None
    check_loop_grammar(events)
    types = [e.type for e in events]
    assert types.count("iteration_start") == 2 and types.count("tool_result") == 2
    results = {e.tool_call_id: e for e in events if e.type == "tool_result"}
    assert results["call_A1"].output == WEATHER_OUT and not results["call_A1"].is_error
    assert results["call_B2"].output == TIME_OUT and results["call_B2"].name == "get_time"
    assert all(r.duration_s >= 0 for r in results.values())
    ends = [e for e in events if e.type == "iteration_end"]
    assert [e.stop_reason for e in ends] == ["tool_use", "end_turn"]

    route = ROUTE.get(provider, provider)
    requests = emu.requests[start:]
    assert len(requests) == 2 and conversation.served[-2:] == [(route, 0), (route, 1)]
    first, second = requests[0].body, requests[1].body
    tools_key = "toolConfig" if provider == "bedrock" else "tools"
    assert first[tools_key] == second[tools_key] == expected_tool_schemas(provider)
    assert offered_tools(route, first) == ["get_weather", "get_time"]
    assert request_tool_results(route, first) == []
    assert [r.tool_call_id for r in request_tool_results(route, second)] == ["call_A1", "call_B2"]
    history = body_history(provider, second)
    items = expected_turn_items(provider)
    assert history[-len(items) :] == items
    assert len(history) == 1 + len(items)

    result = rxs.operators.loop_result()(reactivex.from_iterable(events))
    summary = _only(result)
    assert summary.text == ANSWER.text
    assert summary.iterations == 2 and len(summary.responses) == 2
    assert summary.messages[: len(history)] == history
    assert summary.messages[-1] == _final_assistant(provider)

    # The history is accepted as the next call's starting history (SDK validation included).
    play(ToolConversation([ANSWER]))
    follow = [*summary.messages, user_message(provider, "And tomorrow?")]
    events2, error2 = run(loop(clients, provider, history=follow))
    assert error2 is None and events2[-1].type == "iteration_end"
    assert body_history(provider, emu.requests[-1].body) == follow


def _only(stream: Observable[ToolLoopResult]) -> ToolLoopResult:
    items, error = run(stream)
    assert error is None and len(items) == 1
    result = items[0]
    assert isinstance(result, ToolLoopResult)
    return result


def _final_assistant(provider: str) -> Any:
    if provider in ("anthropic", "bedrock-invoke"):
        return {"role": "assistant", "content": [{"type": "text", "text": ANSWER.text}]}
    if provider == "openai":
        return {"role": "assistant", "content": ANSWER.text}
    if provider == "openai-responses":
        return {"role": "assistant", "content": ANSWER.text}
    return {"role": "assistant", "content": [{"text": ANSWER.text}]}


# -- usage, final(), cold ------------------------------------------------------------------------


def test_usage_per_iteration_and_summed(emu: ProviderEmulator, clients: Clients) -> None:
    play(ToolConversation([TWO_CALLS, ANSWER]))
    events, error = run(loop(clients, "anthropic"))
    assert error is None
    ends = [e for e in events if e.type == "iteration_end"]
    assert [(u.usage.input_tokens, u.usage.output_tokens) for u in ends] == [(100, 40), (180, 12)]
    result = _only(loop(clients, "anthropic").pipe(rso.loop_result()))
    assert result.iteration_usage == tuple(e.usage for e in ends)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (280, 52)
    assert [r.usage for r in result.responses] == [e.usage for e in ends]


def test_final_gives_the_last_iteration(emu: ProviderEmulator, clients: Clients) -> None:
    play(ToolConversation([TWO_CALLS, ANSWER]))
    items, error = run(loop(clients, "openai").pipe(rso.final()))
    assert error is None
    assert items[0].text == ANSWER.text and items[0].tool_calls == () and items[0].complete


def test_cold_and_each_subscription_runs_from_the_start(emu: ProviderEmulator, clients: Clients) -> None:
    play(ToolConversation([TWO_CALLS, ANSWER]))
    start = len(emu.requests)
    stream = loop(clients, "anthropic")
    assert len(emu.requests) == start  # nothing sent before subscribe
    first, error1 = run(stream)
    second, error2 = run(stream)
    assert error1 is None and error2 is None
    assert [e.type for e in first] == [e.type for e in second]
    assert len(emu.requests) == start + 4
    assert [e.type for e in first] == [e.type for e in second]
    assert first[0].stream_id != second[0].stream_id
    assert len(emu.requests[start + 2].body["messages"]) == 1  # the second run starts over


# -- tool failures become error results ------------------------------------------------------------


@rxs.tool
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    return a / b


@pytest.mark.parametrize("provider", ["anthropic", "bedrock", "openai"])
def test_raising_invalid_unknown_and_timeout_are_error_results(
    emu: ProviderEmulator, clients: Clients, provider: str
) -> None:
    release = threading.Event()

    @rxs.tool
    async def slow() -> str:
        """Never answers in time."""
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
        return "late"

    turn = ResponseScript(
        tool_calls=[
            call("c1", "divide", '{"a": 1, "b": 0}'),
            call("c2", "divide", '{"a": "one", "b": 2}'),
            call("c3", "no_such_tool", "{}"),
            call("c4", "slow", "{}"),
        ],
        stop_reason="tool_use",
    )
    play(ToolConversation([turn, ANSWER]))
    start = len(emu.requests)
    try:
        events, error = run(loop(clients, provider, tools=[divide, slow], tool_timeout=0.3))
    finally:
        release.set()
    assert error is None
    results = {e.tool_call_id: e for e in events if e.type == "tool_result"}
    assert all(r.is_error for r in results.values())
    assert results["c1"].output == "ZeroDivisionError: float division by zero"
    assert results["c2"].output.startswith("invalid arguments for tool 'divide': a: Input should be")
    assert results["c3"].output == "unknown tool 'no_such_tool' (available: divide, slow)"
    assert results["c4"].output == "tool 'slow' timed out after 0.3 s"
    assert "Traceback" not in "".join(r.output for r in results.values())
    sent = request_tool_results(ROUTE.get(provider, provider), emu.requests[start + 1].body)
    assert [r.tool_call_id for r in sent] == ["c1", "c2", "c3", "c4"]  # the model's call order
    assert [r.output for r in sent] == [results[f"c{i}"].output for i in range(1, 5)]
    if provider != "openai":  # OpenAI has no error flag on tool messages
        assert all(r.is_error for r in sent)
    assert events[-1].type == "iteration_end" and events[-1].stop_reason == "end_turn"


def test_tool_error_message_and_sequential_calls(emu: ProviderEmulator, clients: Clients) -> None:
    order: list[str] = []

    @rxs.tool
    def lookup(key: str) -> str:
        """Look a key up."""
        order.append(key)
        if key == "missing":
            raise rxs.errors.ToolError("no such key: missing")
        return key.upper()

    turn = ResponseScript(
        tool_calls=[call("k1", "lookup", '{"key": "a"}'), call("k2", "lookup", '{"key": "missing"}')],
        stop_reason="tool_use",
    )
    play(ToolConversation([turn, ANSWER]))
    events, error = run(loop(clients, "anthropic", tools=[lookup], parallel_tool_calls=False))
    assert error is None
    assert order == ["a", "missing"]
    results = [(e.tool_call_id, e.output, e.is_error) for e in events if e.type == "tool_result"]
    assert results == [("k1", "A", False), ("k2", "no such key: missing", True)]


def test_truncated_tool_call_is_not_executed(emu: ProviderEmulator, clients: Clients) -> None:
    ran: list[str] = []

    @rxs.tool
    def note(text: str) -> str:
        """Take a note."""
        ran.append(text)
        return "ok"

    cut = ResponseScript(
        tool_calls=[call("n1", "note", '{"text": "a very long no')], stop_reason="max_tokens"
    )
    play(ToolConversation([cut]))
    events, error = run(loop(clients, "anthropic", tools=[note]))
    assert error is None and ran == []
    assert [e.type for e in events].count("tool_result") == 0
    assert events[-1].type == "iteration_end" and events[-1].stop_reason == "max_tokens"


# -- max_iterations -------------------------------------------------------------------------------


ALWAYS_TOOLS = [
    ResponseScript(
        tool_calls=[call(f"t{i}", "get_time", '{"tz": "UTC"}')], stop_reason="tool_use", text=f"step {i}"
    )
    for i in range(1, 5)
]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_max_iterations_with_final_answer(emu: ProviderEmulator, clients: Clients, provider: str) -> None:
    play(ToolConversation(ALWAYS_TOOLS, when_tools_disabled=ANSWER))
    start = len(emu.requests)
    events, error = run(loop(clients, provider, max_iterations=2))
    assert error is None
    check_loop_grammar(events)
    ends = [e for e in events if e.type == "iteration_end"]
    assert [e.stop_reason for e in ends] == ["tool_use", "tool_use", "end_turn"]
    assert [e.tool_call_id for e in events if e.type == "tool_result"] == ["t1", "t2"]
    requests = emu.requests[start:]
    assert len(requests) == 3
    last = requests[-1].body
    body = last
    if provider in ("anthropic", "bedrock-invoke"):
        assert body["tool_choice"] == {"type": "none"} and "tool_choice" not in requests[0].body
    elif provider in ("openai", "openai-responses"):
        assert body["tool_choice"] == "none"
    else:
        assert body["messages"][-1]["content"][-1] == {"text": CONVERSE_NO_TOOLS_TEXT}
        assert "toolConfig" in body
    assert "".join(e.text for e in events if e.type == "text_delta").endswith(ANSWER.text)


@pytest.mark.parametrize("provider", ["anthropic", "bedrock"])
def test_max_iterations_without_final_answer(emu: ProviderEmulator, clients: Clients, provider: str) -> None:
    play(ToolConversation(ALWAYS_TOOLS))
    start = len(emu.requests)
    result = _only(
        loop(clients, provider, max_iterations=2, final_answer_on_limit=False).pipe(rso.loop_result())
    )
    assert len(emu.requests) == start + 2
    assert result.iterations == 2 and result.stop_reason == "max_iterations"
    assert [r.tool_call_id for r in result.tool_results] == ["t1", "t2"]
    # the history ends with the last tool results, so it can be continued
    assert (
        request_tool_results(ROUTE.get(provider, provider), {"messages": result.messages})[-1].tool_call_id
        == "t2"
    )


# -- errors, retry via the turn hook ------------------------------------------------------------


def test_model_error_carries_partial_and_completed_iterations(
    emu: ProviderEmulator, clients: Clients
) -> None:
    broken = ANSWER.model_copy(
        update={"fault": Fault(kind="error_event", after_events=4, error_type="api_error")}
    )
    play(ToolConversation([TWO_CALLS, broken]))
    events, error = run(loop(clients, "anthropic"))
    assert isinstance(error, ProviderError)
    assert error.iterations is not None and error.iterations.iterations == 1
    assert {r.tool_call_id for r in error.iterations.tool_results} == {"call_A1", "call_B2"}
    assert error.partial.text and ANSWER.text.startswith(error.partial.text)
    assert events[-1].type != "iteration_end"


def test_turn_hook_retries_one_turn(emu: ProviderEmulator, clients: Clients) -> None:
    play(ToolConversation([TWO_CALLS, ANSWER]))
    emu.enqueue(ResponseScript(fault=Fault(kind="http_error", status=529, message="Overloaded")))
    start = len(emu.requests)
    stream = loop(clients, "anthropic", turn=lambda s: s.pipe(rso.retry_stream(3, backoff=0.01, jitter=0)))
    result = _only(stream.pipe(rso.loop_result()))
    assert result.text == ANSWER.text and result.iterations == 2
    assert len(emu.requests) == start + 3


def test_turn_hook_timeout_fails_the_loop(emu: ProviderEmulator, clients: Clients) -> None:
    stalled = ANSWER.model_copy(update={"fault": Fault(kind="stall", after_events=3)})
    play(ToolConversation([TWO_CALLS, stalled]))
    _events, error = run(loop(clients, "anthropic", turn=lambda s: s.pipe(rso.idle_timeout(0.3))))
    assert isinstance(error, StreamTimeoutError)
    assert isinstance(error, StreamError) and error.iterations is not None
    assert error.iterations.iterations == 1
    emu.wait_for_disconnect()


# -- disposal -------------------------------------------------------------------------------------


def test_dispose_while_a_slow_async_tool_runs(emu: ProviderEmulator, clients: Clients) -> None:
    started, cancelled = threading.Event(), threading.Event()

    @rxs.tool
    async def slow() -> str:
        """Takes forever."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    play(
        ToolConversation(
            [ResponseScript(tool_calls=[call("s1", "slow", "{}")], stop_reason="tool_use"), ANSWER]
        )
    )
    start = len(emu.requests)
    events: list[StreamEvent] = []
    terminal = threading.Event()
    subscription = loop(clients, "anthropic", tools=[slow]).subscribe(
        events.append, lambda e: terminal.set(), terminal.set
    )
    assert started.wait(10)
    seen = len(events)
    subscription.dispose()
    assert cancelled.wait(10)
    record = emu.wait_for_disconnect(start)
    assert record.completed  # the first turn had ended; its response is closed
    assert len(events) == seen and not terminal.is_set()
    assert len(emu.requests) == start + 1


def test_dispose_while_a_turn_streams_closes_the_connection(emu: ProviderEmulator, clients: Clients) -> None:
    stalled = ANSWER.model_copy(update={"fault": Fault(kind="stall", after_events=6)})
    play(ToolConversation([TWO_CALLS, stalled]))
    start = len(emu.requests)
    second_turn = threading.Event()
    events: list[StreamEvent] = []

    def on_next(e: StreamEvent) -> None:
        events.append(e)
        if e.type == "text_delta" and sum(x.type == "iteration_start" for x in events) == 2:
            second_turn.set()

    subscription = loop(clients, "anthropic").subscribe(on_next)
    assert second_turn.wait(10)
    subscription.dispose()
    seen = len(events)
    record = emu.wait_for_disconnect(start + 1)
    assert record.client_disconnected
    assert len(events) == seen


# -- async clients --------------------------------------------------------------------------------


async def test_async_client_runs_async_tools_on_the_running_loop(emu: ProviderEmulator) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    @rxs.tool
    async def where() -> str:
        """Which loop runs me."""
        loops.append(asyncio.get_running_loop())
        return "here"

    emu.dequeue_all()
    play(
        ToolConversation(
            [ResponseScript(tool_calls=[call("w1", "where", "{}")], stop_reason="tool_use"), ANSWER]
        )
    )
    client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=emu.anthropic_base_url, max_retries=0)
    try:
        stream = rxs.tool_loop(
            rxs.from_anthropic,
            client,
            tools=[where],
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "where?"}],
        )
        done: asyncio.Future[ToolLoopResult] = asyncio.get_running_loop().create_future()
        stream.pipe(rso.loop_result()).subscribe(done.set_result, done.set_exception)
        result = await asyncio.wait_for(done, 10)
    finally:
        await client.close()
    assert loops == [asyncio.get_running_loop()]
    assert result.text == ANSWER.text and result.tool_results[0].output == "here"


# -- misuse ---------------------------------------------------------------------------------------


def test_misuse_is_raised_at_call_time(clients: Clients) -> None:
    client = clients.client("anthropic")
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(ConfigurationError, match="entry points"):
        rxs.tool_loop(lambda c, **p: None, client, tools=[divide], messages=messages)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="two tools"):
        rxs.tool_loop(
            rxs.from_anthropic, client, tools=[divide, divide], model="m", max_tokens=1, messages=messages
        )
    with pytest.raises(ConfigurationError, match="tool_choice"):
        rxs.tool_loop(
            rxs.from_anthropic,
            client,
            tools=[divide],
            model="m",
            max_tokens=1,
            messages=messages,
            tool_choice={},
        )
    with pytest.raises(ConfigurationError, match="max_iterations"):
        rxs.tool_loop(
            rxs.from_anthropic, client, tools=[divide], max_iterations=0, model="m", messages=messages
        )
    with pytest.raises(ConfigurationError, match="tool_timeout"):
        rxs.tool_loop(
            rxs.from_anthropic, client, tools=[divide], tool_timeout=0, model="m", messages=messages
        )
    with pytest.raises(ConfigurationError, match="messages"):
        rxs.tool_loop(rxs.from_anthropic, client, tools=[divide], model="m", max_tokens=1)
    with pytest.raises(ConfigurationError):
        rxs.tool_loop(rxs.from_openai, client, tools=[divide], model="m", messages=messages)  # wrong client


def test_dispose_after_completion_leaves_the_pooled_connection_alone(
    emu: ProviderEmulator, clients: Clients
) -> None:
    # A completed stream is disposed again (AutoDetachObserver does it; so does a loop moving on
    # to its next turn). That must not shut down the socket the SDK returned to its pool, which
    # the next request on the same client is now using.
    client = clients.client("anthropic")
    params: dict[str, Any] = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "x"}]}
    play(ToolConversation([ANSWER]))
    first_done = threading.Event()
    first = rxs.from_anthropic(client, **params).subscribe(on_completed=first_done.set)
    assert first_done.wait(10)
    paused = ANSWER.model_copy(update={"fault": Fault(kind="stall", after_events=2, stall_seconds=0.3)})
    play(ToolConversation([paused]))
    second = Collector()
    rxs.from_anthropic(client, **params).subscribe(second.on_next, second.on_error, second.on_completed)
    assert second.first.wait(10)
    first.dispose()
    assert second.done.wait(10)
    assert second.errors == [] and second.items[-1].type == "stream_end"


def test_dispose_while_a_sync_tool_runs_discards_its_result(emu: ProviderEmulator, clients: Clients) -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    @rxs.tool
    def blocking() -> str:
        """Blocks its worker thread until released."""
        started.set()
        release.wait(30)
        finished.set()
        return "done"

    turn = ResponseScript(tool_calls=[call("b1", "blocking", "{}")], stop_reason="tool_use")
    play(ToolConversation([turn, ANSWER]))
    start = len(emu.requests)
    c = Collector()
    subscription = loop(clients, "anthropic", tools=[blocking]).subscribe(
        c.on_next, c.on_error, c.on_completed
    )
    assert started.wait(10)
    seen = len(c.items)
    subscription.dispose()
    release.set()  # the thread cannot be interrupted: it finishes, its result is discarded
    assert finished.wait(10)
    assert emu.wait_for_disconnect(start).completed
    assert len(c.items) == seen and not c.done.is_set()
    assert not any(e.type == "tool_result" for e in c.items)
    assert len(emu.requests) == start + 1


def test_every_provider_spec_carries_the_tool_hooks(emu: ProviderEmulator, clients: Clients) -> None:
    from rxstream.providers import PROVIDERS

    for name, spec in PROVIDERS.items():
        assert spec.render_tools and spec.render_tool_results and spec.disable_tools, name
    # the registry's entry point works as well as the public function
    play(ToolConversation([TWO_CALLS, ANSWER]))
    spec = PROVIDERS["openai"]
    params = request_params("openai", [user_message("openai", "x")])
    stream = rxs.tool_loop(
        spec.entry_point, clients.client("openai"), tools=[get_weather, get_time], **params
    )
    events, error = run(stream)
    assert error is None and events[-1].type == "iteration_end"


async def test_leaving_async_for_cancels_a_running_async_tool(emu: ProviderEmulator) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    @rxs.tool
    async def wait_forever() -> str:
        """Never returns."""
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    emu.dequeue_all()
    play(
        ToolConversation(
            [ResponseScript(tool_calls=[call("f1", "wait_forever", "{}")], stop_reason="tool_use")]
        )
    )
    client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=emu.anthropic_base_url, max_retries=0)
    try:
        stream = rxs.tool_loop(
            rxs.from_anthropic,
            client,
            tools=[wait_forever],
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "wait"}],
        )
        seen: list[str] = []
        async for event in rxs.to_async_iterator(stream):
            seen.append(event.type)
            if event.type == "stream_end":
                await asyncio.wait_for(started.wait(), 10)
                break
        await asyncio.wait_for(cancelled.wait(), 10)
    finally:
        await client.close()
    assert "tool_result" not in seen

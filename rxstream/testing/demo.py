"""Canned, human-paced replies for demos without an API key.

:func:`demo_responder` is a :data:`~rxstream.testing.emulator.Responder`: the
``rxstream`` command-line program runs a
:class:`~rxstream.testing.emulator.ProviderEmulator` with it when no API key
is set, so the terminal shows a realistic stream of words.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

from rxstream.testing.scripts import ResponseScript, ScriptedToolCall

__all__ = ["DEMO_TOOL_NAMES", "demo_responder", "last_user_text"]

DEMO_TOOL_NAMES = ("calculator", "clock")
"""The tools of ``rxstream run --tools demo``; a request offering them gets a tool turn."""

_TOPICS: list[tuple[tuple[str, ...], str]] = [
    (
        ("hello", "hi ", "hey", "good morning", "good evening"),
        "Hello! I'm the rxstream demo model, running entirely on your machine. "
        "Nothing you type here leaves this computer, and no API key is needed. "
        "Every word you see arrives as a separate streaming event, just as it would "
        "from a real provider. Ask me about streaming, reactive programming, or "
        "anything else to see how the events flow.",
    ),
    (
        ("rx", "reactive", "observable", "operator"),
        "Reactive programming treats a stream of values as something you can "
        "transform with operators, much like a list. An Observable is cold until "
        "somebody subscribes, and each subscription starts its own piece of work. "
        "Operators such as map, filter and buffer build a new Observable from an "
        "old one without running anything yet. In rxstream, every LLM response "
        "becomes an Observable of typed events, so retries, timeouts and UI "
        "updates are just operators in a pipe.",
    ),
    (
        ("stream", "token", "sse", "latency"),
        "Streaming lets a model show its answer while it is still being generated. "
        "The server sends small events over one long HTTP response, usually as "
        "server-sent events or, on Bedrock, as binary event-stream frames. "
        "Time to first token is what users feel most, so it pays to render text as "
        "soon as it arrives. A good client also copes with pauses, dropped "
        "connections and errors that arrive in the middle of a stream.",
    ),
    (
        ("weather", "rain", "sunny", "forecast"),
        "I can't look outside, so I have no live weather data for you. "
        "This demo runs offline and only pretends to be a language model. "
        "A real assistant would call a weather tool here and stream the result back. "
        "If you connect a real provider, tool calls show up as their own events.",
    ),
    (
        ("joke", "funny", "laugh"),
        "Why did the Observable break up with the Promise? "
        "Because the Promise could only commit once, and the Observable wanted "
        "something that kept on giving. "
        "The Promise said it had already resolved the matter. "
        "The Observable just completed and moved on.",
    ),
    (
        ("python", "asyncio", "thread"),
        "Python gives you several ways to handle streams: iterators, async "
        "generators, threads and callbacks. "
        "Reactive streams sit on top of these and let you choose where work runs "
        "with a scheduler. "
        "That keeps the core logic pure and makes timing easy to test with a "
        "virtual clock. "
        "rxstream follows this pattern, with the SDK doing the network work.",
    ),
]


def last_user_text(body: dict[str, Any]) -> str:
    """Return the text of the last user message in any supported request body.

    Understands Anthropic and Bedrock InvokeModel ``messages`` (string or
    ``[{"type": "text", "text"}]`` content), OpenAI Chat ``messages``
    (string or ``[{"type": "text", "text"}]``), OpenAI Responses ``input``
    (string or items with ``input_text`` parts) and Bedrock Converse
    ``messages`` (``[{"text"}]`` content).

    Args:
        body: The parsed JSON request body.

    Returns:
        The text, or ``""`` when there is no user message.
    """
    messages = body.get("messages")
    if messages is None:
        messages = body.get("input")
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            return _content_text(message.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
    return " ".join(parts)


def _reply(question: str) -> str:
    lowered = f" {question.lower()} "
    for keywords, answer in _TOPICS:
        if any(k in lowered for k in keywords):
            return answer
    shown = " ".join(question.split())
    if len(shown) > 80:
        shown = shown[:77].rstrip() + "..."
    if not shown:
        return (
            "I didn't catch a question there. "
            "This is the offline rxstream demo, so every answer is canned. "
            "Try asking about streaming, reactive programming or Python to see a "
            "longer reply arrive word by word."
        )
    return (
        f'You asked: "{shown}". '
        "I'm the offline rxstream demo model, so I can't really answer that, but "
        "I can show you what a streamed answer looks like. "
        "Each word you see is a separate event that travelled over a local HTTP "
        "connection. "
        "Set an API key to talk to a real model instead."
    )


def demo_responder(provider: str, body: dict[str, Any]) -> ResponseScript:
    """Build a realistic 3-6 sentence reply to the last user message.

    A few canned topics (greetings, reactive programming, streaming, weather,
    jokes, Python) get a themed answer; anything else gets a generic answer
    that quotes the question. Text streams one word per event every 30-50 ms
    (fixed per question), with input tokens estimated at ~4 characters per
    token and output tokens estimated from the reply.

    Args:
        provider: The emulated route (unused; every provider gets the same text).
        body: The parsed JSON request body.

    Returns:
        The script for this request.
    """
    question = last_user_text(body)
    text = _reply(question)
    seed = zlib.crc32(question.encode("utf-8"))
    model = body.get("model")
    script = ResponseScript(
        model=model if isinstance(model, str) and model else "rxstream-demo",
        text=text,
        chunking="words",
        chunk_size=1,
        event_delay=0.03 + (seed % 21) / 1000,
        first_event_delay=0.25,
        input_tokens=max(1, math.ceil(len(str(body)) / 4)),
    )
    return _with_demo_tools(provider, body, question, script)


_EXPRESSION = re.compile(r"[-+*/().\d\s]*\d[-+*/().\d\s]*[-+*/][-+*/().\d\s]*\d[-+*/().\d\s]*")


def _with_demo_tools(
    provider: str, body: dict[str, Any], question: str, script: ResponseScript
) -> ResponseScript:
    """A request offering the demo tools: first call both, then answer with their results."""
    from rxstream.testing.tools import offered_tools, request_tool_results, tools_disabled

    if not set(DEMO_TOOL_NAMES) <= set(offered_tools(provider, body)):
        return script
    results = request_tool_results(provider, body)
    if not results and not tools_disabled(provider, body):
        match = _EXPRESSION.search(question)
        expression = " ".join(match[0].split()) if match else "6 * 7"
        return script.model_copy(
            update={
                "text": "Let me work that out with my tools.",
                "tool_calls": [
                    ScriptedToolCall(
                        id="call_demo_calculator",
                        name="calculator",
                        arguments=json.dumps({"expression": expression}),
                    ),
                    ScriptedToolCall(id="call_demo_clock", name="clock", arguments='{"timezone": "UTC"}'),
                ],
                "stop_reason": "tool_use",
            }
        )
    outputs = [r.output for r in results]
    answer = "The tools answered: " + "; ".join(outputs) + "." if outputs else "I have no tool results."
    return script.model_copy(
        update={"text": answer + " That is all computed on your machine, no API key needed."}
    )

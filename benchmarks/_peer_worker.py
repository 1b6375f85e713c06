"""One contender process of `benchmarks/peers.py` (runs in the project venv or the peers venv).

Usage: ``python _peer_worker.py BASE_URL``. Reads one JSON command per line on stdin,
``{"contender": name, "scenario": "anthropic-text" | "openai-text"}``, runs that contender
once against the replay server at ``BASE_URL`` and answers one JSON line on stdout:
``{"seconds": float, "items": int}`` or ``{"error": str}``. Importing a peer library is
part of its first (warm-up) run, never of a timed one.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM: no network at import

KEY = "sk-bench"
# The replay server routes by path and model: run.py names each scenario's model after it.
MODEL = {"anthropic-text": "bench-anthropic-text", "openai-text": "bench-openai-text"}
LOOP = asyncio.new_event_loop()  # one loop for every async run: peers cache clients bound to it
PROMPT = "x"
MESSAGES = [{"role": "user", "content": PROMPT}]


def raw(base: str, scenario: str) -> Callable[[], int]:
    """The raw sync SDK: iterate ``create(stream=True)``."""
    if scenario == "anthropic-text":
        import anthropic

        a = anthropic.Anthropic(api_key=KEY, base_url=base, max_retries=0)
        return lambda: sum(
            1
            for _ in a.messages.create(model=MODEL[scenario], max_tokens=10, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        )
    import openai

    o = openai.OpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)
    return lambda: sum(
        1
        for _ in o.chat.completions.create(
            model=MODEL[scenario],
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )


def rxstream_final(base: str, scenario: str) -> Callable[[], int]:
    """rxstream: ``from_X(...).pipe(rso.final()).run()`` (typed events + the final Response)."""
    import rxstream as rxs
    from rxstream import operators as rso

    if scenario == "anthropic-text":
        import anthropic

        a = anthropic.Anthropic(api_key=KEY, base_url=base, max_retries=0)
        return lambda: len(
            rxs.from_anthropic(a, model=MODEL[scenario], max_tokens=10, messages=MESSAGES)
            .pipe(rso.final())
            .run()
            .text
        )
    import openai

    o = openai.OpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)
    return lambda: len(
        rxs.from_openai(o, model=MODEL[scenario], messages=MESSAGES).pipe(rso.final()).run().text
    )


def _langchain_model(base: str, scenario: str) -> Any:
    if scenario == "anthropic-text":
        from langchain_anthropic import ChatAnthropic

        return ChatAnthropic(model=MODEL[scenario], api_key=KEY, base_url=base, max_retries=0, max_tokens=10)  # type: ignore[call-arg]
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=MODEL[scenario], api_key=KEY, base_url=base + "/v1", max_retries=0, stream_usage=True
    )  # type: ignore[arg-type]


def langchain_stream(base: str, scenario: str) -> Callable[[], int]:
    """LangChain ``chat_model.stream(prompt)``: iterate the message chunks."""
    model = _langchain_model(base, scenario)
    return lambda: sum(1 for _ in model.stream(PROMPT))


def langchain_astream_events(base: str, scenario: str) -> Callable[[], int]:
    """LangChain ``astream_events(prompt, version="v2")`` on a fresh loop per run."""

    async def run() -> int:
        model = _langchain_model(base, scenario)
        n = 0
        async for _ in model.astream_events(PROMPT, version="v2"):
            n += 1
        return n

    return lambda: LOOP.run_until_complete(run())


def litellm_completion(base: str, scenario: str) -> Callable[[], int]:
    """LiteLLM ``completion(..., stream=True)``: iterate the chunks."""
    import litellm

    if scenario == "anthropic-text":
        kwargs: dict[str, Any] = {
            "model": "anthropic/" + MODEL[scenario],
            "api_base": base + "/v1/messages",
            "max_tokens": 10,
        }
    else:
        kwargs = {"model": "openai/" + MODEL[scenario], "api_base": base + "/v1"}

    def run() -> int:
        return sum(
            1
            for _ in litellm.completion(messages=MESSAGES, stream=True, api_key=KEY, max_retries=0, **kwargs)
        )

    return run


def pydantic_ai_run_stream(base: str, scenario: str) -> Callable[[], int]:
    """pydantic-ai ``Agent.run_stream`` with its real Anthropic / OpenAI model classes."""
    from pydantic_ai import Agent

    async def run() -> int:
        if scenario == "anthropic-text":
            from anthropic import AsyncAnthropic
            from pydantic_ai.models.anthropic import AnthropicModel
            from pydantic_ai.providers.anthropic import AnthropicProvider

            client: Any = AsyncAnthropic(api_key=KEY, base_url=base, max_retries=0)
            model: Any = AnthropicModel(MODEL[scenario], provider=AnthropicProvider(anthropic_client=client))
        else:
            from openai import AsyncOpenAI
            from pydantic_ai.models.openai import OpenAIChatModel
            from pydantic_ai.providers.openai import OpenAIProvider

            client = AsyncOpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)
            model = OpenAIChatModel(MODEL[scenario], provider=OpenAIProvider(openai_client=client))
        n = 0
        async with client:
            agent = Agent(model)
            async with agent.run_stream(PROMPT, model_settings={"max_tokens": 10}) as result:
                async for _ in result.stream_text(delta=True, debounce_by=None):
                    n += 1
        return n

    return lambda: LOOP.run_until_complete(run())


CONTENDERS: dict[str, Callable[[str, str], Callable[[], int]]] = {
    "raw": raw,
    "rxstream": rxstream_final,
    "langchain-stream": langchain_stream,
    "langchain-astream-events": langchain_astream_events,
    "litellm": litellm_completion,
    "pydantic-ai": pydantic_ai_run_stream,
}


def main() -> None:
    base = sys.argv[1]
    protocol = sys.stdout
    sys.stdout = sys.stderr  # libraries that print (LiteLLM does) must not break the protocol
    built: dict[tuple[str, str], Callable[[], int]] = {}
    for line in sys.stdin:
        command = json.loads(line)
        key = (command["contender"], command["scenario"])
        try:
            if key not in built:
                built[key] = CONTENDERS[key[0]](base, key[1])
            t0 = time.perf_counter()
            items = built[key]()
            answer: dict[str, Any] = {"seconds": time.perf_counter() - t0, "items": items}
        except Exception as exc:  # reported, the coordinator drops the contender
            answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(json.dumps(answer), file=protocol, flush=True)


if __name__ == "__main__":
    main()

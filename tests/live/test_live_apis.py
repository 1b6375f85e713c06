"""Opt-in tests against the real APIs. Skipped (visibly) unless RXSTREAM_LIVE=1 and a key is set.

Run: ``RXSTREAM_LIVE=1 ANTHROPIC_API_KEY=... OPENAI_API_KEY=... pytest tests/live -p no:randomly``.
With RXSTREAM_LIVE=1 the suite's loopback guard is lifted and these tests keep their keys.
"""

from __future__ import annotations

import os

import pytest

import rxstream as rxs
from rxstream import operators as rso

LIVE = os.environ.get("RXSTREAM_LIVE") == "1"
KEYS = {name: os.environ.get(name) for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")}


pytestmark = pytest.mark.live


@pytest.mark.skipif(
    not (LIVE and KEYS["ANTHROPIC_API_KEY"]),
    reason="live Anthropic test: set RXSTREAM_LIVE=1 and ANTHROPIC_API_KEY",
)
def test_live_anthropic_final() -> None:
    import anthropic

    with anthropic.Anthropic(api_key=KEYS["ANTHROPIC_API_KEY"]) as client:
        stream = rxs.from_anthropic(
            client,
            model=os.environ.get("RXSTREAM_ANTHROPIC_MODEL", "claude-haiku-4-5"),
            max_tokens=64,
            messages=[{"role": "user", "content": "Say hello in five words."}],
        )
        response = stream.pipe(rso.final()).run()
    assert response.text and response.complete and response.usage.output_tokens > 0


@pytest.mark.skipif(
    not (LIVE and KEYS["OPENAI_API_KEY"]), reason="live OpenAI test: set RXSTREAM_LIVE=1 and OPENAI_API_KEY"
)
def test_live_openai_final() -> None:
    import openai

    with openai.OpenAI(api_key=KEYS["OPENAI_API_KEY"]) as client:
        stream = rxs.from_openai(
            client,
            model=os.environ.get("RXSTREAM_OPENAI_MODEL", "gpt-4.1-mini"),
            messages=[{"role": "user", "content": "Say hello in five words."}],
        )
        response = stream.pipe(rso.final()).run()
    assert response.text and response.complete and response.usage.output_tokens > 0

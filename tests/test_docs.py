"""Every ```python block in README.md and docs/**/*.md runs, against the provider emulator.

Blocks of one page run in order in one namespace (a page is one story), compiled with
top-level ``await`` allowed (run on one event loop per page). The SDKs find the emulator
through their own environment variables — ``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL`` and
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (botocore's service-specific endpoint), with dummy keys —
so a block written for real use (``client = anthropic.Anthropic()``) runs unchanged; the
namespace also starts with ``client`` (Anthropic), ``openai_client`` and ``bedrock_client``.
Every request gets the demo responder's answer (no pacing). A block preceded by
``<!-- not-run: reason -->`` is not run; it is reported as a skipped test with that reason.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxstream.testing import ProviderEmulator, ResponseScript
from rxstream.testing.demo import demo_responder

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?:<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*\n)?```python\n(?P<code>.*?)```", re.DOTALL)
# Output some pages promise (checked, so the text of the page stays true).
EXPECTED_OUTPUT = {"docs/testing.md": ["Hello again.", "False True"]}


def blocks(page: Path) -> list[tuple[str, str | None]]:
    """(code, not-run reason or None) for each ```python block of a page."""
    return [(m["code"], m["reason"]) for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


RUNNABLE = [p for p in PAGES if any(reason is None for _, reason in blocks(p))]
NOT_RUN = [
    pytest.param(reason, id=f"{page_id(p)}#{i}")
    for p in PAGES
    for i, (_, reason) in enumerate(blocks(p))
    if reason is not None
]


def _fast_demo(provider: str, body: dict[str, Any]) -> ResponseScript:
    return demo_responder(provider, body).model_copy(update={"event_delay": 0.0, "first_event_delay": 0.0})


@pytest.fixture
def docs_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderEmulator]:
    with ProviderEmulator(responder=_fast_demo) as emu:
        for name, value in {
            "ANTHROPIC_BASE_URL": emu.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-docs",
            "OPENAI_BASE_URL": emu.openai_base_url,
            "OPENAI_API_KEY": "sk-docs",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": emu.bedrock_endpoint_url,
            "AWS_ACCESS_KEY_ID": "docs",
            "AWS_SECRET_ACCESS_KEY": "docs",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield emu


def namespace() -> dict[str, Any]:
    import anthropic
    import boto3
    import openai

    return {
        "__name__": "__docs__",
        "client": anthropic.Anthropic(max_retries=0),
        "openai_client": openai.OpenAI(max_retries=0),
        "bedrock_client": boto3.client("bedrock-runtime"),
    }


def run_page(page: Path) -> None:
    ns = namespace()
    loop = asyncio.new_event_loop()
    try:
        for i, (code, reason) in enumerate(blocks(page)):
            if reason is not None:
                continue
            compiled = compile(code, f"{page_id(page)}#{i}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(compiled, ns)
            if inspect.iscoroutine(result):
                loop.run_until_complete(result)
    finally:
        for value in ns.values():  # close the clients the page (or the namespace) opened
            close = getattr(value, "close", None)
            if type(value).__module__.startswith(("anthropic", "openai")) and callable(close):
                result = close()
                if inspect.iscoroutine(result):
                    loop.run_until_complete(result)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_python_blocks_run(
    page: Path, docs_env: ProviderEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    run_page(page)
    out = capsys.readouterr().out
    for expected in EXPECTED_OUTPUT.get(page_id(page), []):
        assert expected in out


@pytest.mark.parametrize("reason", NOT_RUN)
def test_not_run_blocks_are_reported(reason: str) -> None:
    pytest.skip(f"not run: {reason}")


def test_every_page_was_found() -> None:
    assert ROOT / "README.md" in PAGES and ROOT / "docs" / "testing.md" in PAGES
    assert all(reason for p in PAGES for _, reason in blocks(p) if reason is not None)

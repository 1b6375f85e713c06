"""The examples of docs/telemetry.md, docs/cassettes.md and docs/redis.md run (redis: a real server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rxstream.testing.redis_server import RedisServer

DOCS = Path(__file__).resolve().parent.parent / "docs"


def blocks(page: str, *, include_not_run_redis: bool = False) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    found = re.findall(r"(<!-- not-run: ([^\n]*?) -->\n)?```python\n(.*?)```", text, flags=re.DOTALL)
    return [
        code
        for marker, reason, code in found
        if not marker or (include_not_run_redis and "REDIS_URL" in reason)
    ]


@pytest.mark.parametrize("page", ["telemetry.md", "cassettes.md"])
def test_examples_run(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    runnable = blocks(page)
    assert runnable
    for code in runnable:
        exec(compile(code, page, "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "Traced answer." not in out  # content is not captured by default
    assert "True" in out or "CLIENT" in out


def test_redis_example_runs_against_a_real_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = RedisServer(tmp_path)
    try:
        monkeypatch.setenv("REDIS_URL", server.url)
        (code,) = blocks("redis.md", include_not_run_redis=True)
        exec(compile(code, "redis.md", "exec"), {"__name__": "__docs__"})
    finally:
        server.stop()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Published once, read anywhere."
    assert "Published once, read anywhere.".endswith(out[1])

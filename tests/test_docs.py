"""Code examples in docs/ that run offline are executed, so the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
RUNNABLE = ["testing.md"]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("page", RUNNABLE)
def test_python_examples_run(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks(DOCS / page)
    assert blocks
    for block in blocks:
        exec(compile(block, f"{page}", "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "Hello again." in out and "False True" in out

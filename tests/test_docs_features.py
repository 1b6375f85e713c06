"""The Python examples of docs/mcp.md, docs/structured-output.md and docs/configuration.md run offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"(<!-- not-run:[^\n]*-->\n)?```python\n(.*?)```", flags=re.DOTALL)


def runnable_blocks(page: str) -> list[str]:
    return [code for skip, code in BLOCK.findall((DOCS / page).read_text(encoding="utf-8")) if not skip]


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("structured-output.md", "partials; one of them"),
        ("configuration.md", "invalid rxstream config in"),
        ("mcp.md", "progress notifications for"),
    ],
)
def test_examples_run(page: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = runnable_blocks(page)
    assert blocks
    for code in blocks:
        exec(compile(code, page, "exec"), {"__name__": "__docs__"})
    assert expected in capsys.readouterr().out

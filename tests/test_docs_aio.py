"""Every python block of docs/asyncio.md and docs/multi.md runs offline (each block on its own)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

EXPECTED = {
    "asyncio.md": [
        "Hello from the loop.",
        "client disconnected: True",
        "Sync client, awaited.",
        "refused: True",
    ],
    "multi.md": ["quick Quick answer.", "loser closed: True", "The considered cloud answer.", "similarity"],
}


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_python_examples_run(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks(DOCS / page)
    assert len(blocks) >= 4
    for block in blocks:
        exec(compile(block, page, "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    for needle in EXPECTED[page]:
        assert needle in out, (needle, out)

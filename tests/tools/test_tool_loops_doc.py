"""The Python examples of docs/tool-loops.md run on the emulator and print what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tool-loops.md"


def test_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    printed = text.split("prints\n\n```\n", 1)[1].split("```", 1)[0]
    assert out.startswith(printed)
    assert out.endswith("multiply -> 42.0\n6 x 7 = 42.\n")

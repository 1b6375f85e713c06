"""rxstream.notebook: live display in a real Jupyter kernel (nbclient), and the notebooks in notebooks/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
import reactivex
from nbclient import NotebookClient

import rxstream as rxs
from rxstream.errors import ConfigurationError
from rxstream.events import (
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

SETUP = """
import anthropic, openai
import rxstream as rxs
from rxstream.testing import Fault, ProviderEmulator, ResponseScript
emu = ProviderEmulator().__enter__()
def ask(client_kind="sync"):
    if client_kind == "sync":
        client = anthropic.Anthropic(api_key="k", base_url=emu.anthropic_base_url, max_retries=0)
    else:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=emu.anthropic_base_url, max_retries=0)
    return rxs.from_anthropic(client, model="m", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
"""


class RecordingClient(NotebookClient):
    """Records every iopub message nbclient processes: (cell index, msg_type, content)."""

    def __init__(self, nb: Any, **kw: Any) -> None:
        super().__init__(nb, **kw)
        self.messages: list[tuple[int, str, dict[str, Any]]] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        self.messages.append((cell_index, msg["msg_type"], msg["content"]))
        return super().process_message(msg, cell, cell_index)


def run_cells(*sources: str, path: Path | None = None) -> tuple[Any, RecordingClient]:
    if path is not None:
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    else:
        nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
        cells = (SETUP, *sources, "emu.__exit__(None, None, None)")
        nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]  # type: ignore[no-untyped-call]
    client = RecordingClient(nb, timeout=50, kernel_name="python3", allow_errors=False)
    client.execute(cwd=str(path.parent if path else NOTEBOOKS))
    return nb, client


def live_displays(client: RecordingClient) -> dict[str, list[tuple[str, str]]]:
    """display id -> [(msg_type, markdown)] in arrival order, for display_data/update_display_data."""
    out: dict[str, list[tuple[str, str]]] = {}
    for _, kind, content in client.messages:
        if kind in ("display_data", "update_display_data"):
            display_id = content.get("transient", {}).get("display_id")
            if display_id and "text/markdown" in content["data"]:
                out.setdefault(display_id, []).append((kind, content["data"]["text/markdown"]))
    return out


def assert_live(updates: list[tuple[str, str]], answer: str) -> str:
    assert updates[0][0] == "display_data" and "waiting for the first token" in updates[0][1]
    assert len(updates) >= 3 and all(kind == "update_display_data" for kind, _ in updates[1:])
    last = updates[-1][1]
    assert answer in last and "TTFT" in last and "stop: end_turn" in last
    return last


@pytest.mark.parametrize("client_kind", ["sync", "async"])
def test_display_updates_one_handle_until_the_final_answer(client_kind: str) -> None:
    answer = " ".join(f"w{i}" for i in range(30))
    _, client = run_cells(
        f"emu.enqueue(ResponseScript(text={answer!r}, thinking='hmm', event_delay=0.01))\n"
        f"shown = rxs.notebook.display_stream(ask({client_kind!r}), interval=0.05)",
        "response = await shown.wait()\nprint(len(response.text), shown.updates)",
    )
    displays = live_displays(client)
    assert len(displays) == 1
    last = assert_live(next(iter(displays.values())), answer)
    assert "<details><summary>💭 Thinking</summary>" in last
    printed = "".join(c["text"] for _, kind, c in client.messages if kind == "stream")
    assert printed.startswith(f"{len(answer)} ")  # await shown.wait() gave the final Response


def test_error_is_shown_in_place_with_the_partial_text() -> None:
    _, client = run_cells(
        "emu.enqueue(ResponseScript(text='alpha beta gamma', fault=Fault(kind='drop', after_events=5)))\n"
        "try:\n"
        "    await rxs.notebook.display_stream_async(ask(), interval=0.05)\n"
        "except rxs.errors.StreamError as e:\n"
        "    print('caught', type(e).__name__)",
    )
    (updates,) = live_displays(client).values()
    last = updates[-1][1]
    assert "alpha" in last and "StreamInterruptedError" in last
    assert not any(kind == "error" for _, kind, _ in client.messages)
    printed = "".join(c["text"] for _, kind, c in client.messages if kind == "stream")
    assert printed == "caught StreamInterruptedError\n"


def test_stop_button_disposes_the_stream_and_closes_the_connection() -> None:
    _, client = run_cells(
        "emu.enqueue(ResponseScript(text=' '.join(['word'] * 300), event_delay=0.02))\n"
        "shown = rxs.notebook.display_stream(ask(), interval=0.05, stop_button=True)",
        "import asyncio\n"
        "while len(shown.response.text) < 20:\n"
        "    await asyncio.sleep(0.01)  # a cell waiting for text to arrive, as a user would\n"
        "shown._button.click()  # what pressing Stop does\n"
        "record = emu.wait_for_disconnect(timeout=10)\n"
        "print(record.client_disconnected, record.completed, shown.stopped)",
    )
    (updates,) = live_displays(client).values()
    assert "stopped (connection closed)" in updates[-1][1]
    printed = "".join(c["text"] for _, kind, c in client.messages if kind == "stream")
    assert printed == "True False True\n"


def test_misuse_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        rxs.notebook.display_stream("not a stream")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        rxs.notebook.display_stream(reactivex.empty(), interval=0)


def test_reprs_render_text_thinking_tools_and_usage_escaped() -> None:
    events: list[StreamEvent] = [
        StreamStart(stream_id="s", seq=0, provider="anthropic"),
        ThinkingDelta(stream_id="s", seq=1, text="<think>"),
        TextDelta(stream_id="s", seq=2, text="Hi <script>x</script>"),
        ToolCallStart(stream_id="s", seq=3, index=0, id="t", name="f"),
        ToolCallEnd(stream_id="s", seq=4, index=0, id="t", name="f", arguments={"a": 1}),
        StreamEnd(stream_id="s", seq=5, stop_reason="end_turn", usage=Usage(input_tokens=3, output_tokens=4)),
    ]
    response = reactivex.from_iterable(events).pipe(rxs.operators.final()).run()
    html = response._repr_html_()
    assert "&lt;script&gt;" in html and "<script>" not in html and "&lt;think&gt;" in html
    markdown = response._repr_markdown_()
    assert "Hi <script>" in markdown  # Markdown: the frontend sanitizes; the text is kept as is
    assert '"a": 1' in markdown and "3 in / 4 out tokens" in markdown and "stop: end_turn" in markdown
    stats = reactivex.from_iterable(events).pipe(rxs.operators.stream_stats()).run()
    assert "tokens" in stats._repr_markdown_() and stats._repr_html_().startswith("<small>")


@pytest.mark.parametrize(
    "name", ["01_quickstart.ipynb", "02_operators.ipynb", "04_asyncio_and_threads.ipynb"]
)
def test_notebook_runs_and_shows_a_live_display(name: str) -> None:
    _, client = run_cells(path=NOTEBOOKS / name)
    displays = live_displays(client)
    assert displays, "the notebook shows no live display"
    for updates in displays.values():
        assert updates[0][0] == "display_data" and len(updates) >= 2
        assert all(kind == "update_display_data" for kind, _ in updates[1:])
        assert "TTFT" in updates[-1][1]

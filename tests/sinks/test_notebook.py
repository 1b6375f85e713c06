"""rxstream.notebook: live display in a real Jupyter kernel (nbclient), and the notebooks in notebooks/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import nbformat
import pytest
import reactivex
from nbclient import NotebookClient

import rxstream as rxs
from rxstream._markdown import safe_markdown
from rxstream.errors import ConfigurationError, StreamInterruptedError
from rxstream.events import (
    IterationEnd,
    IterationStart,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
)
from rxstream.notebook import StreamDisplay
from rxstream.testing import Fault, ProviderEmulator, ResponseScript, ScriptedToolCall, ToolConversation

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
    assert "Hi &lt;script>x&lt;/script>" in markdown and "<script>" not in markdown  # shown, not run
    assert '"a": 1' in markdown and "3 in / 4 out tokens" in markdown and "stop: end_turn" in markdown
    stats = reactivex.from_iterable(events).pipe(rxs.operators.stream_stats()).run()
    assert "tokens" in stats._repr_markdown_() and stats._repr_html_().startswith("<small>")


def test_safe_markdown_keeps_markdown_and_code_but_no_raw_html() -> None:
    text = (
        "**Bold** <img src=x onerror=alert(1)> 1 < 2 <!-- c --> </b>\n"
        "```html\n<b>code</b>\n```\n"
        "<i>after</i>\n"
        "~~~\n<x>\n~~~~\n"
        "<y>"
    )
    assert safe_markdown(text) == (
        "**Bold** &lt;img src=x onerror=alert(1)> 1 < 2 &lt;!-- c --> &lt;/b>\n"
        "```html\n<b>code</b>\n```\n"
        "&lt;i>after&lt;/i>\n"
        "~~~\n<x>\n~~~~\n"
        "&lt;y>"
    )
    # a fence still open (streaming) is closed, so the sections after the text stay Markdown;
    # an info string with a backtick does not open a fence (CommonMark 0.31 §4.5)
    assert safe_markdown("```py\n<b>") == "```py\n<b>\n```"
    assert safe_markdown("````\n```\n<b>") == "````\n```\n<b>\n````"
    assert safe_markdown("```a`b\n<b>") == "```a`b\n&lt;b>"
    assert safe_markdown("plain text") == "plain text"


def loop_events() -> list[StreamEvent]:
    """A finished two-iteration tool loop whose model and tool output contain HTML."""
    usage = Usage(input_tokens=10, output_tokens=5)
    return [
        IterationStart(stream_id="L", seq=0, iteration=1),
        StreamStart(stream_id="L", seq=1, provider="anthropic"),
        TextDelta(stream_id="L", seq=2, text="Checking <b>now</b>."),
        ToolCallStart(stream_id="L", seq=3, index=1, id="t1", name="fetch"),
        ToolCallEnd(stream_id="L", seq=4, index=1, id="t1", name="fetch", arguments={"url": "<u>"}),
        ToolCallStart(stream_id="L", seq=5, index=2, id="t2", name="boom"),
        ToolCallEnd(stream_id="L", seq=6, index=2, id="t2", name="boom", arguments={}),
        StreamEnd(stream_id="L", seq=7, stop_reason="tool_use", usage=usage),
        ToolResult(
            stream_id="L", seq=8, iteration=1, tool_call_id="t1", name="fetch", output="<script>x</script>"
        ),
        ToolResult(
            stream_id="L",
            seq=9,
            iteration=1,
            tool_call_id="t2",
            name="boom",
            output="ValueError: no",
            is_error=True,
        ),
        IterationEnd(stream_id="L", seq=10, iteration=1, usage=usage, stop_reason="tool_use"),
        IterationStart(stream_id="L", seq=11, iteration=2),
        StreamStart(stream_id="L", seq=12, provider="anthropic"),
        TextDelta(stream_id="L", seq=13, text="Done: <script>alert(1)</script>"),
        StreamEnd(stream_id="L", seq=14, stop_reason="end_turn", usage=usage),
        IterationEnd(stream_id="L", seq=15, iteration=2, usage=usage, stop_reason="end_turn"),
    ]


def test_tool_loop_result_reprs_show_iterations_tool_results_and_totals_escaped() -> None:
    result = reactivex.from_iterable(loop_events()).pipe(rxs.operators.loop_result()).run()
    html = result._repr_html_()
    assert "<script>" not in html and "<b>now" not in html and "<u>" not in html
    assert "Iteration 1" in html and "Iteration 2" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html  # the tool result, in the call's section
    assert "Done: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "ValueError: no" in html and "❌ error" in html
    assert "2 iterations · 2 tool calls · 20 in / 10 out tokens · stop: end_turn" in html
    markdown = result._repr_markdown_()
    assert "<script>" not in markdown.replace("```\n<script>x</script>\n```", "")  # only as code
    assert "Checking &lt;b>now&lt;/b>." in markdown and "Done: &lt;script>alert(1)&lt;/script>" in markdown
    fetch = markdown.index("<code>fetch</code> → ✅ result")
    assert (
        fetch
        < markdown.index("```\n<script>x</script>\n```")
        < markdown.index("<code>boom</code> → ❌ error")
    )
    assert markdown.index("**Iteration 1**") < fetch < markdown.index("**Iteration 2**")
    assert "2 iterations · 2 tool calls · 20 in / 10 out tokens · stop: end_turn" in markdown
    assert (
        rxs.ToolLoopResult()
        ._repr_markdown_()
        .endswith("0 iterations · 0 tool calls · 0 in / 0 out tokens</small>")
    )


@rxs.tool
def shout(word: str) -> str:
    """Upper-case a word.

    Args:
        word: The word.
    """
    return f"<{word.upper()}>"


def show_shout_loop(answer: ResponseScript) -> StreamDisplay:
    """A real tool loop (sync client, the tool on the private loop) in `display_stream`, ended."""
    conversation = ToolConversation(
        [
            ResponseScript(
                tool_calls=[ScriptedToolCall(id="c1", name="shout", arguments='{"word": "hey"}')],
                stop_reason="tool_use",
            ),
            answer,
        ]
    )
    with ProviderEmulator(responder=conversation) as emu:
        client = anthropic.Anthropic(api_key="k", base_url=emu.anthropic_base_url, max_retries=0)
        loop = rxs.tool_loop(
            rxs.from_anthropic, client, tools=[shout], model="m", max_tokens=50,
            messages=[{"role": "user", "content": "shout hey"}],
        )  # fmt: skip
        shown = rxs.notebook.display_stream(loop, interval=0.05)
        assert shown._done.wait(10)
        client.close()
    return shown


def test_tool_loop_display_outside_a_kernel_shows_each_tool_result() -> None:
    shown = show_shout_loop(ResponseScript(text="It shouted HEY."))
    markdown = shown.markdown()
    assert shown.error is None and shown.response.text == "It shouted HEY."  # the last iteration
    assert "<code>shout</code> → ✅ result" in markdown and "```\n<HEY>\n```" in markdown
    assert markdown.index("**Iteration 1**") < markdown.index("<HEY>") < markdown.index("**Iteration 2**")
    assert "It shouted HEY." in markdown and "2 iterations · 1 tool call" in markdown
    assert "stop: end_turn" in markdown and "TTFT" in markdown
    loop_result = shown.loop_result
    assert loop_result is not None and loop_result.tool_results[0].output == "<HEY>"


def test_tool_loop_display_shows_an_error_in_place_after_the_earlier_iterations() -> None:
    shown = show_shout_loop(
        ResponseScript(text="It shouted HEY and then", fault=Fault(kind="drop", after_events=6))
    )
    markdown = shown.markdown()
    assert isinstance(shown.error, StreamInterruptedError)
    assert "```\n<HEY>\n```" in markdown  # the completed iteration stays
    assert markdown.index("<HEY>") < markdown.index("**Iteration 2**") < markdown.index("It shouted")
    assert markdown.rstrip().endswith(
        "StreamInterruptedError: " + str(shown.error).replace("<", "&lt;") + "**"
    )
    loop_result = shown.loop_result
    assert loop_result is not None and loop_result.iterations == 1


def assert_notebook_display(updates: list[tuple[str, str]]) -> str:
    assert updates[0][0] == "display_data" and len(updates) >= 2
    assert all(kind == "update_display_data" for kind, _ in updates[1:])
    assert "TTFT" in updates[-1][1]
    return updates[-1][1]


@pytest.mark.parametrize(
    "name", ["01_quickstart.ipynb", "02_operators.ipynb", "04_asyncio_and_threads.ipynb"]
)
def test_notebook_runs_and_shows_a_live_display(name: str) -> None:
    _, client = run_cells(path=NOTEBOOKS / name)
    displays = live_displays(client)
    assert displays, "the notebook shows no live display"
    for updates in displays.values():
        assert_notebook_display(updates)


def cell_outputs(nb: Any, marker: str) -> list[Any]:
    """The outputs of the one code cell whose source contains ``marker``."""
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    return list(cell.outputs)


def printed(client: RecordingClient) -> str:
    return "".join(c["text"] for _, kind, c in client.messages if kind == "stream")


def test_multiple_models_notebook() -> None:
    nb, client = run_cells(path=NOTEBOOKS / "03_multiple_models.ipynb")
    # merge (two tracks), race, speculative: four live displays, in the order they were made
    displays = list(live_displays(client).values())
    merge_fast, merge_strong, race, speculative = (assert_notebook_display(u) for u in displays)
    assert "Merging streams lets you read two answers" in merge_fast and "stop: end_turn" in merge_fast
    assert "the careful one answers better, and you see both as they arrive." in merge_strong
    assert "💭 Thinking" in merge_strong
    assert "I was first, so you are reading me" in race
    assert "Too late" not in race
    assert any("Draft: a provisional answer" in markdown for _, markdown in displays[3])
    assert "replaced the draft the moment its first token arrived." in speculative
    assert "Draft:" not in speculative and "stop: end_turn" in speculative
    out = printed(client)
    assert "claude-haiku-4-5: 13 words | claude-sonnet-4-5: 25 words" in out
    assert "winner: claude-haiku-4-5\nloser's connection closed by the client: True" in out
    assert "| answer from claude-sonnet-4-5" in out and "draft words discarded: 0" not in out
    (comparison,) = cell_outputs(nb, "comparison = await rxs.compare_streams")
    table = comparison["data"]["text/html"]
    assert comparison["output_type"] == "execute_result" and table.startswith("<table>")
    assert "<td>claude-haiku-4-5</td>" in table and "<td>claude-sonnet-4-5</td>" in table


def test_tool_loop_notebook() -> None:
    nb, client = run_cells(path=NOTEBOOKS / "05_tool_loop.ipynb")
    loop, failing = (assert_notebook_display(updates) for updates in live_displays(client).values())
    for name, output in (("get_weather", "Lisbon: 21 °C, sunny"), ("multiply", "42.0")):
        section = loop.index(f"<code>{name}</code> → ✅ result")
        assert loop.index("**Iteration 1**") < section < loop.index(output) < loop.index("**Iteration 2**")
    assert "It is 21 °C and sunny in Lisbon, and 6 times 7 is 42." in loop
    assert "2 iterations · 2 tool calls" in loop and "stop: end_turn" in loop
    assert (
        "<code>divide</code> → ❌ error" in failing and "ZeroDivisionError: float division by zero" in failing
    )
    assert "Dividing by zero is undefined: 1 / 0 has no answer." in failing
    assert "multiply -> '42.0'" in printed(client)
    (*_, result) = cell_outputs(nb, "result = await loop.pipe(rso.loop_result())")
    assert result["output_type"] == "execute_result"
    assert (
        "Iteration 2" in result["data"]["text/html"] and "Lisbon: 21 °C, sunny" in result["data"]["text/html"]
    )
    assert "**Iteration 1**" in result["data"]["text/markdown"]

"""Pure renderers of a `Response`, a `ToolLoopResult` and `StreamStats` as Markdown or HTML.

Used by `rxstream.sinks.notebook` and by the ``_repr_markdown_`` / ``_repr_html_`` methods of
`rxstream.Response`, `rxstream.ToolLoopResult` and `rxstream.operators.StreamStats`. No I/O,
no IPython import. Thinking, tool calls and tool results go in collapsible ``<details>``
sections (GitHub-flavoured Markdown and Jupyter's Markdown renderer both accept this HTML
element).

Model and tool output is never interpreted as HTML: the HTML renderers escape it, and the
Markdown renderers keep the answer's Markdown but neutralise raw HTML in it (`safe_markdown`),
because Jupyter renders the HTML inside Markdown output of a trusted notebook unsanitised
(JupyterLab ``renderMarkdown`` → ``renderHTML``, which sanitises only untrusted output).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rxstream.events import ToolResult
    from rxstream.operators._loop_result import ToolLoopResult
    from rxstream.operators._stats import StreamStats
    from rxstream.response import Response

__all__ = [
    "WAITING",
    "loop_html",
    "loop_markdown",
    "loop_stats_text",
    "response_html",
    "response_markdown",
    "safe_markdown",
    "stats_text",
]

WAITING = "⏳ *waiting for the first token…*"

MAX_RESULT_CHARS = 4000
"""Tool result output longer than this is cut in the rendering (never in the data)."""

# CommonMark 0.31 §4.5 fenced code blocks: up to 3 spaces of indentation, then 3+ backticks
# (whose info string has no backtick) or 3+ tildes.
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}(?=[^`]*$)|~{3,})")
# CommonMark 0.31 §6.5-6.6: an autolink or raw HTML (tag, closing tag, comment, processing
# instruction, declaration, CDATA) starts with "<" followed by a letter, "/", "!" or "?".
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def safe_markdown(text: str) -> str:
    """Keep the Markdown of model output but make every raw HTML tag literal text.

    Outside fenced code blocks, each ``<`` that could open an HTML tag or an autolink (a
    ``<`` followed by a letter, ``/``, ``!`` or ``?``) becomes ``&lt;``, which Markdown shows
    as a plain ``<``: the text can no longer contain raw HTML (CommonMark 0.31 §6.6). Fenced
    code is left alone (Markdown shows it verbatim). Inline code spans are escaped too,
    because whether a backtick opens a span depends on the whole inline parse; there such a
    ``<`` shows as ``&lt;`` (a cosmetic cost, never an injection). A fence still open at
    the end (a code block being streamed) is closed, so the sections rendered after the
    text (tool calls, the footer) are not swallowed by it.

    Example:
        >>> safe_markdown("Hi <script>x</script>, 1 < 2")
        'Hi &lt;script>x&lt;/script>, 1 < 2'
    """
    if "<" not in text and "```" not in text and "~~~" not in text:
        return text
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence is None:
            if match is not None:
                fence = match.group("fence")
                out.append(line)
            else:
                out.append(_TAG_START.sub("&lt;", line))
            continue
        out.append(line)
        closing = match.group("fence") if match is not None else ""
        if (
            closing
            and closing[0] == fence[0]
            and len(closing) >= len(fence)
            and not line.strip().strip(closing[0])
        ):
            fence = None
    if fence is not None:  # still streaming a code block: close it, so what follows stays Markdown
        out.append(fence)
    return "\n".join(out)


def _fenced(body: str, info: str = "") -> str:
    """A fenced code block holding ``body`` verbatim (the fence is longer than any inside)."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body}\n{fence}"


def _clip(output: str) -> str:
    if len(output) <= MAX_RESULT_CHARS:
        return output
    return f"{output[:MAX_RESULT_CHARS]}\n… ({len(output) - MAX_RESULT_CHARS} more characters)"


def stats_text(stats: StreamStats | None, response: Response | None = None) -> str:
    """One line: TTFT (s), output tokens/s, input/output tokens, stop reason (when known)."""
    parts: list[str] = []
    if stats is not None and stats.time_to_first_token is not None:
        parts.append(f"TTFT {stats.time_to_first_token:.2f} s")
    if stats is not None and stats.tokens_per_second is not None:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if response is not None:
        parts.append(f"{response.usage.input_tokens} in / {response.usage.output_tokens} out tokens")
    elif stats is not None:
        parts.append(f"{stats.output_tokens} tokens")
    if stats is not None:
        parts.append(f"{stats.elapsed:.2f} s")
    if response is not None and response.stop_reason is not None:
        parts.append(f"stop: {response.stop_reason}")
    return " · ".join(parts)


def _tool_arguments(arguments: object, raw: str) -> str:
    if arguments:
        return json.dumps(arguments, ensure_ascii=False, indent=2)
    return raw


def _result_state(result: ToolResult | None, complete: bool, in_loop: bool) -> str:
    if not complete:
        return " (streaming…)"
    if result is None:
        return " (running…)" if in_loop else ""
    if result.is_error:
        return f" → ❌ error ({result.duration_s * 1000:.1f} ms)"
    return f" → ✅ result ({result.duration_s * 1000:.1f} ms)"


def _join(parts: list[str], *, waiting: bool, error: str | None, footer: str | None) -> str:
    """The sections, then the waiting indicator (nothing yet, no error), the error and the footer."""
    if waiting and error is None:
        parts.append(WAITING)
    if error is not None:
        parts.append(f"> ⚠️ **{html.escape(error)}**")
    if footer:
        parts.append(f"---\n<small>{html.escape(footer)}</small>")
    return "\n\n".join(parts)


def response_markdown(
    response: Response,
    *,
    show_thinking: bool = True,
    show_tools: bool = True,
    waiting: bool = False,
    footer: str | None = None,
    error: str | None = None,
    results: Mapping[str, ToolResult] | None = None,
) -> str:
    """Render a snapshot as Markdown.

    Args:
        response: The snapshot.
        show_thinking: Add the thinking text in a collapsed ``<details>`` section.
        show_tools: Add each tool call (name, arguments so far) in a ``<details>`` section.
        waiting: Show the waiting indicator when there is no content yet.
        footer: A stats line shown under a rule, in small print.
        error: An error line shown after the partial content.
        results: In a tool loop: the `ToolResult` of each executed call by tool call id,
            shown in the call's section (a complete call without one is "running…").
            ``None`` outside a tool loop.

    Returns:
        Markdown text (with ``<details>`` HTML blocks); the answer text passes through
        `safe_markdown`.
    """
    parts: list[str] = []
    if show_thinking and response.thinking:
        parts.append(
            "<details><summary>💭 Thinking</summary>\n\n" + html.escape(response.thinking) + "\n\n</details>"
        )
    if response.text:
        parts.append(safe_markdown(response.text))
    if show_tools:
        for call in response.tool_calls:
            result = results.get(call.id) if results is not None else None
            state = _result_state(result, call.complete, results is not None)
            body = _fenced(_tool_arguments(call.arguments, call.raw_arguments), "json")
            if result is not None:
                label = "error" if result.is_error else "result"
                body += f"\n\n{label}:\n\n{_fenced(_clip(result.output))}"
            parts.append(
                f"<details open><summary>🔧 <code>{html.escape(call.name)}</code>{state}</summary>\n\n"
                f"{body}\n\n</details>"
            )
    has_content = bool(response.text or response.thinking or response.tool_calls)
    return _join(parts, waiting=waiting and not has_content, error=error, footer=footer)


def response_html(
    response: Response, *, footer: str | None = None, results: Mapping[str, ToolResult] | None = None
) -> str:
    """Render a snapshot as escaped HTML (model text is never interpreted as markup).

    ``results`` (tool loop only): the `ToolResult` of each call by tool call id, shown in
    the call's section.
    """
    parts: list[str] = ['<div class="rxstream-response">']
    if response.thinking:
        parts.append(
            "<details><summary>Thinking</summary>"
            f'<pre style="white-space:pre-wrap">{html.escape(response.thinking)}</pre></details>'
        )
    parts.append(f'<div style="white-space:pre-wrap">{html.escape(response.text)}</div>')
    for call in response.tool_calls:
        result = results.get(call.id) if results is not None else None
        state = _result_state(result, call.complete, results is not None)
        body = f"<pre>{html.escape(_tool_arguments(call.arguments, call.raw_arguments))}</pre>"
        if result is not None:
            label = "error" if result.is_error else "result"
            body += f'{label}:<pre style="white-space:pre-wrap">{html.escape(_clip(result.output))}</pre>'
        parts.append(
            f"<details open><summary>🔧 <code>{html.escape(call.name)}</code>{html.escape(state)}</summary>"
            f"{body}</details>"
        )
    if footer:
        parts.append(f"<hr><small>{html.escape(footer)}</small>")
    parts.append("</div>")
    return "".join(parts)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def loop_stats_text(result: ToolLoopResult, stats: StreamStats | None = None) -> str:
    """One line for a tool loop: iterations, tool calls, tokens of all iterations, stop reason.

    With ``stats`` (the whole loop's `StreamStats`), also TTFT, tokens/s and seconds.
    """
    parts: list[str] = []
    if stats is not None and stats.time_to_first_token is not None:
        parts.append(f"TTFT {stats.time_to_first_token:.2f} s")
    if stats is not None and stats.tokens_per_second is not None:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    parts.append(_plural(result.iterations, "iteration"))
    parts.append(_plural(len(result.tool_results), "tool call"))
    parts.append(f"{result.usage.input_tokens} in / {result.usage.output_tokens} out tokens")
    if stats is not None:
        parts.append(f"{stats.elapsed:.2f} s")
    if result.stop_reason is not None:
        parts.append(f"stop: {result.stop_reason}")
    return " · ".join(parts)


def _iterations(
    result: ToolLoopResult, current: Response | None
) -> tuple[list[Response], dict[str, ToolResult]]:
    responses = [*result.responses, *([current] if current is not None else [])]
    return responses, {r.tool_call_id: r for r in result.tool_results}


def loop_markdown(
    result: ToolLoopResult,
    *,
    current: Response | None = None,
    show_thinking: bool = True,
    show_tools: bool = True,
    waiting: bool = False,
    footer: str | None = None,
    error: str | None = None,
) -> str:
    """Render a tool loop as Markdown: each iteration's turn, its tool calls and their results.

    Args:
        result: The completed iterations (`rxstream.operators.LoopAccumulator.result`).
        current: The iteration in progress, if any (rendered after the completed ones).
        show_thinking: As `response_markdown`.
        show_tools: Show tool calls and their results (`ToolResult`) in ``<details>``
            sections.
        waiting: Show the waiting indicator while nothing has arrived yet.
        footer: A stats line shown under a rule, in small print.
        error: An error line shown after the partial content.

    Returns:
        Markdown text (with ``<details>`` HTML blocks).
    """
    responses, results = _iterations(result, current)
    parts: list[str] = []
    for number, response in enumerate(responses, start=1):
        body = response_markdown(
            response, show_thinking=show_thinking, show_tools=show_tools, results=results
        )
        parts.append(f"**Iteration {number}**" + (f"\n\n{body}" if body else ""))
    has_content = any(r.text or r.thinking or r.tool_calls for r in responses)
    return _join(parts, waiting=waiting and not has_content, error=error, footer=footer)


def loop_html(result: ToolLoopResult) -> str:
    """Render a finished tool loop as escaped HTML: iterations, tool calls with results, totals."""
    responses, results = _iterations(result, None)
    parts: list[str] = ['<div class="rxstream-tool-loop">']
    for number, response in enumerate(responses, start=1):
        parts.append(f"<div><b>Iteration {number}</b></div>")
        parts.append(response_html(response, results=results))
    parts.append(f"<hr><small>{html.escape(loop_stats_text(result))}</small></div>")
    return "".join(parts)

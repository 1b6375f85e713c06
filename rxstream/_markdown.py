"""Pure renderers of a `Response` (and its `StreamStats`) as Markdown or HTML, for notebooks.

Used by `rxstream.sinks.notebook` and by the ``_repr_markdown_`` / ``_repr_html_`` methods of
`rxstream.Response` and `rxstream.operators.StreamStats`. No I/O, no IPython import.
Thinking and tool calls go in collapsible ``<details>`` sections (GitHub-flavoured Markdown
and Jupyter's Markdown renderer both accept this HTML element).
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rxstream.operators._stats import StreamStats
    from rxstream.response import Response

__all__ = ["WAITING", "response_html", "response_markdown", "stats_text"]

WAITING = "⏳ *waiting for the first token…*"


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


def response_markdown(
    response: Response,
    *,
    show_thinking: bool = True,
    show_tools: bool = True,
    waiting: bool = False,
    footer: str | None = None,
    error: str | None = None,
) -> str:
    """Render a snapshot as Markdown.

    Args:
        response: The snapshot.
        show_thinking: Add the thinking text in a collapsed ``<details>`` section.
        show_tools: Add each tool call (name, arguments so far) in a ``<details>`` section.
        waiting: Show the waiting indicator when there is no content yet.
        footer: A stats line shown under a rule, in small print.
        error: An error line shown after the partial content.

    Returns:
        Markdown text (with ``<details>`` HTML blocks).
    """
    parts: list[str] = []
    if show_thinking and response.thinking:
        parts.append(
            "<details><summary>💭 Thinking</summary>\n\n" + html.escape(response.thinking) + "\n\n</details>"
        )
    if response.text:
        parts.append(response.text)
    if show_tools:
        for call in response.tool_calls:
            state = "" if call.complete else " (streaming…)"
            body = _tool_arguments(call.arguments, call.raw_arguments)
            parts.append(
                f"<details open><summary>🔧 <code>{html.escape(call.name)}</code>{state}</summary>\n\n"
                f"```json\n{body}\n```\n\n</details>"
            )
    has_content = bool(response.text or response.thinking or response.tool_calls)
    if waiting and not has_content and error is None:
        parts.append(WAITING)
    if error is not None:
        parts.append(f"> ⚠️ **{error}**")
    if footer:
        parts.append(f"---\n<small>{html.escape(footer)}</small>")
    return "\n\n".join(parts)


def response_html(response: Response, *, footer: str | None = None) -> str:
    """Render a snapshot as escaped HTML (model text is never interpreted as markup)."""
    parts: list[str] = ['<div class="rxstream-response">']
    if response.thinking:
        parts.append(
            "<details><summary>Thinking</summary>"
            f'<pre style="white-space:pre-wrap">{html.escape(response.thinking)}</pre></details>'
        )
    parts.append(f'<div style="white-space:pre-wrap">{html.escape(response.text)}</div>')
    for call in response.tool_calls:
        body = _tool_arguments(call.arguments, call.raw_arguments)
        parts.append(
            f"<details open><summary>🔧 <code>{html.escape(call.name)}</code></summary>"
            f"<pre>{html.escape(body)}</pre></details>"
        )
    if footer:
        parts.append(f"<hr><small>{html.escape(footer)}</small>")
    parts.append("</div>")
    return "".join(parts)

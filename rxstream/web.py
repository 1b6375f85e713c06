"""rxstream on the web: Server-Sent Events out (`to_sse`, `sse_response`) and in (`from_sse`).

Needs the ``web`` extra for `sse_response` and `from_sse` (``pip install 'rxstream[web]'``:
sse-starlette and httpx2). See `rxstream.sinks.web` for the two protocols (``"rxstream"``
and the Vercel AI SDK UI message stream, ``"ai-sdk"``) and their sources.

Example:
    >>> import rxstream as rxs
    >>> async def chat(request):  # a Starlette endpoint  # doctest: +SKIP
    ...     return rxs.web.sse_response(rxs.from_anthropic(client, **params), protocol="ai-sdk")
"""

from __future__ import annotations

from rxstream.sinks.web import AI_SDK_HEADERS, AiSdkEncoder, Protocol, from_sse, sse_response, to_sse

__all__ = ["AI_SDK_HEADERS", "AiSdkEncoder", "Protocol", "from_sse", "sse_response", "to_sse"]

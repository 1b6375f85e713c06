"""rxstream: LLM streaming responses as cold reactivex Observables of typed events.

Sources (each returns a cold ``reactivex.Observable[StreamEvent]``; nothing is sent until
``subscribe``; each subscription is one request; disposal closes the connection):

* `from_anthropic(client, **params)`: Anthropic Messages.
* `from_openai(client, **params)`: OpenAI Chat Completions and OpenAI-compatible servers.
* `from_openai_responses(client, **params)`: OpenAI Responses API.
* `from_bedrock(client, **params)`: AWS Bedrock ConverseStream (boto3 ``bedrock-runtime``).
* `from_bedrock_invoke(client, **params)`: Bedrock InvokeModelWithResponseStream (Anthropic models).
* `from_redis(redis, key, after_seq=None)`: a stream published with ``publish_to_redis``.
* `replay(path_or_file, speed=1.0)`: a recorded cassette (`rxstream.cassette`) with its timing.

asyncio and iteration (`rxstream.aio`): `to_async_iterator` (``async for`` with
backpressure), `to_iterator` (``for``), `from_async_iterable` (an async generator as a source).

Configuration (`rxstream.config`): `StreamConfig` / `StreamProfile` (profiles ``interactive``,
``batch``, ``ui``, ``mcp`` with per-provider/per-model overrides; ``rso.apply_config``).
MCP (`rxstream.mcp`, extra ``mcp``): ``stream_to_context``, ``structured_to_context``,
``streaming_tool``.

Several models at once (`rxstream.multi`): `merge_streams`, `race_first_token`,
`speculative`, `fallback`, `compare_streams`.

Tool loops: `tool_loop(entry, client, tools=[...], **params)` runs model turns and tool calls
(`Tool`, `tool`, `mcp_tools`) as one cold stream; ``rso.loop_result()`` gives `ToolLoopResult`.

Example:
    >>> import rxstream as rxs
    >>> from rxstream import operators as rso
    >>> response = rxs.from_anthropic(client, model="claude-sonnet-4-5", max_tokens=256,
    ...     messages=[{"role": "user", "content": "Hi"}]).pipe(rso.final()).run()  # doctest: +SKIP
"""

from __future__ import annotations

from rxstream import config, errors, events, handlers, mcp, notebook, operators, web
from rxstream.aio import from_async_iterable, to_async_iterator, to_iterator
from rxstream.cassette import replay
from rxstream.config import StreamConfig, StreamProfile
from rxstream.events import (
    IterationEnd,
    IterationStart,
    StopReason,
    StreamEnd,
    StreamEvent,
    StreamReset,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    ToolResult,
    Usage,
    UsageUpdate,
)
from rxstream.handlers import StreamHandler, attach
from rxstream.manager import StreamHandle, StreamManager
from rxstream.multi import (
    Comparison,
    Tagged,
    compare_streams,
    fallback,
    merge_streams,
    race_first_token,
    speculative,
)
from rxstream.providers.anthropic import from_anthropic
from rxstream.providers.bedrock import from_bedrock, from_bedrock_invoke
from rxstream.providers.openai_chat import from_openai
from rxstream.providers.openai_responses import from_openai_responses
from rxstream.response import Response, ToolCall, apply
from rxstream.sinks.redis import from_redis
from rxstream.tools import Tool, ToolLoopResult, mcp_tools, tool, tool_loop

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "IterationEnd",
    "IterationStart",
    "Response",
    "StopReason",
    "StreamConfig",
    "StreamEnd",
    "StreamEvent",
    "StreamHandle",
    "StreamHandler",
    "StreamManager",
    "StreamProfile",
    "StreamReset",
    "StreamStart",
    "Tagged",
    "TextDelta",
    "ThinkingDelta",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "ToolLoopResult",
    "ToolResult",
    "Usage",
    "UsageUpdate",
    "__version__",
    "apply",
    "attach",
    "compare_streams",
    "config",
    "errors",
    "events",
    "fallback",
    "from_anthropic",
    "from_async_iterable",
    "from_bedrock",
    "from_bedrock_invoke",
    "from_openai",
    "from_openai_responses",
    "from_redis",
    "handlers",
    "mcp",
    "mcp_tools",
    "merge_streams",
    "notebook",
    "operators",
    "race_first_token",
    "replay",
    "speculative",
    "to_async_iterator",
    "to_iterator",
    "tool",
    "tool_loop",
    "web",
]

"""Public test kit: a provider emulator that speaks the real streaming wire formats.

>>> from rxstream.testing import ProviderEmulator, ResponseScript
>>> with ProviderEmulator(ResponseScript(text="Hello!")) as emu:  # doctest: +SKIP
...     ...  # point anthropic/openai/boto3 clients at emu.*_base_url

See :mod:`rxstream.testing.emulator` for routes, faults and records,
:mod:`rxstream.testing.scripts` for what a script can say, :mod:`rxstream.testing.kit`
for event factories, the marble ``run`` and ``collect``, and :mod:`rxstream.testing.tools`
for multi-turn tool conversations. For wire garbage, `RawBytesServer` plays arbitrary bytes
(`RawReply`), `record_wire` gives a provider's valid stream as mutable wire events and
`encode_frame` builds AWS event-stream frames with chosen lengths, CRCs and headers.
"""

from __future__ import annotations

from rxstream.testing._eventstream import FrameHeader, encode_frame
from rxstream.testing._rawserver import (
    Pause,
    RawBytesServer,
    RawExchange,
    RawReply,
    RawRequest,
    RawResponder,
)
from rxstream.testing._recording import WireRecording, record_wire
from rxstream.testing._wire import WireEvent
from rxstream.testing.demo import demo_responder
from rxstream.testing.emulator import (
    ConnectionRecord,
    ProviderEmulator,
    ProviderName,
    RecordedRequest,
    Responder,
)
from rxstream.testing.kit import (
    check_grammar,
    collect,
    run,
    stream_end,
    stream_start,
    text_delta,
    thinking_delta,
    tool_call_start,
    usage_update,
)
from rxstream.testing.scripts import (
    Fault,
    FaultKind,
    ResponseScript,
    ScriptedToolCall,
    StopReason,
)
from rxstream.testing.tools import (
    RequestToolResult,
    ToolConversation,
    check_loop_grammar,
    offered_tools,
    request_tool_results,
    tools_disabled,
)

__all__ = [
    "ConnectionRecord",
    "Fault",
    "FaultKind",
    "FrameHeader",
    "Pause",
    "ProviderEmulator",
    "ProviderName",
    "RawBytesServer",
    "RawExchange",
    "RawReply",
    "RawRequest",
    "RawResponder",
    "RecordedRequest",
    "RequestToolResult",
    "Responder",
    "ResponseScript",
    "ScriptedToolCall",
    "StopReason",
    "ToolConversation",
    "WireEvent",
    "WireRecording",
    "check_grammar",
    "check_loop_grammar",
    "collect",
    "demo_responder",
    "encode_frame",
    "offered_tools",
    "record_wire",
    "request_tool_results",
    "run",
    "stream_end",
    "stream_start",
    "text_delta",
    "thinking_delta",
    "tool_call_start",
    "tools_disabled",
    "usage_update",
]

"""Public test kit: a provider emulator that speaks the real streaming wire formats.

>>> from rxstream.testing import ProviderEmulator, ResponseScript
>>> with ProviderEmulator(ResponseScript(text="Hello!")) as emu:  # doctest: +SKIP
...     ...  # point anthropic/openai/boto3 clients at emu.*_base_url

See :mod:`rxstream.testing.emulator` for routes, faults and records, and
:mod:`rxstream.testing.scripts` for what a script can say. For wire garbage,
`RawBytesServer` plays arbitrary bytes (`RawReply`), `record_wire` gives a provider's
valid stream as mutable wire events and `encode_frame` builds AWS event-stream frames
with chosen lengths, CRCs and headers.
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
    "demo_responder",
    "encode_frame",
    "offered_tools",
    "record_wire",
    "request_tool_results",
    "tools_disabled",
]

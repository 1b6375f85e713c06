"""Public test kit: a provider emulator that speaks the real streaming wire formats.

>>> from rxstream.testing import ProviderEmulator, ResponseScript
>>> with ProviderEmulator(ResponseScript(text="Hello!")) as emu:  # doctest: +SKIP
...     ...  # point anthropic/openai/boto3 clients at emu.*_base_url

See :mod:`rxstream.testing.emulator` for routes, faults and records, and
:mod:`rxstream.testing.scripts` for what a script can say.
"""

from __future__ import annotations

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
    "ProviderEmulator",
    "ProviderName",
    "RecordedRequest",
    "RequestToolResult",
    "Responder",
    "ResponseScript",
    "ScriptedToolCall",
    "StopReason",
    "ToolConversation",
    "demo_responder",
    "offered_tools",
    "request_tool_results",
    "tools_disabled",
]

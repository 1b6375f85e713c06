"""Public test kit: a provider emulator that speaks the real streaming wire formats.

>>> from rxstream.testing import ProviderEmulator, ResponseScript
>>> with ProviderEmulator(ResponseScript(text="Hello!")) as emu:  # doctest: +SKIP
...     ...  # point anthropic/openai/boto3 clients at emu.*_base_url

See :mod:`rxstream.testing.emulator` for routes, faults and records,
:mod:`rxstream.testing.scripts` for what a script can say, and :mod:`rxstream.testing.kit`
for event factories, the marble ``run`` and ``collect``.
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

__all__ = [
    "ConnectionRecord",
    "Fault",
    "FaultKind",
    "ProviderEmulator",
    "ProviderName",
    "RecordedRequest",
    "Responder",
    "ResponseScript",
    "ScriptedToolCall",
    "StopReason",
    "check_grammar",
    "collect",
    "demo_responder",
    "run",
    "stream_end",
    "stream_start",
    "text_delta",
    "thinking_delta",
    "tool_call_start",
    "usage_update",
]

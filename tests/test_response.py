"""`apply` (pure reducer) and `ResponseAccumulator` give the same Response; to_message shapes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rxstream.events import (
    StreamEnd,
    StreamEvent,
    StreamReset,
    StreamStart,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from rxstream.response import Response, ResponseAccumulator, apply

S = "s"


@st.composite
def streams(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = [
        StreamStart(stream_id=S, seq=0, provider="anthropic", model="m", response_id="msg")
    ]
    n_tools = 0
    for step in draw(
        st.lists(st.sampled_from(["text", "think", "sig", "tool", "usage", "reset"]), max_size=30)
    ):
        seq = len(events)
        if step == "text":
            events.append(TextDelta(stream_id=S, seq=seq, text=draw(st.text(max_size=5))))
        elif step == "think":
            events.append(ThinkingDelta(stream_id=S, seq=seq, text=draw(st.text(max_size=5))))
        elif step == "sig":
            events.append(ThinkingDelta(stream_id=S, seq=seq, signature="sig" + str(seq)))
        elif step == "usage":
            events.append(
                UsageUpdate(stream_id=S, seq=seq, usage=Usage(input_tokens=seq, output_tokens=2 * seq))
            )
        elif step == "reset":  # a new attempt: tool-call indexes start again at 0
            events.append(StreamReset(stream_id=S, seq=seq, attempt=2))
            n_tools = 0
        else:
            i = n_tools
            n_tools += 1
            events.append(ToolCallStart(stream_id=S, seq=seq, index=i, id=f"t{i}", name="f"))
            events.append(
                ToolCallDelta(
                    stream_id=S, seq=seq + 1, index=i, arguments_delta='{"a":', partial_arguments={}
                )
            )
            events.append(
                ToolCallDelta(
                    stream_id=S, seq=seq + 2, index=i, arguments_delta=" 1}", partial_arguments={"a": 1}
                )
            )
            if draw(st.booleans()):
                events.append(
                    ToolCallEnd(
                        stream_id=S,
                        seq=seq + 3,
                        index=i,
                        id=f"t{i}",
                        name="f",
                        arguments={"a": 1},
                        raw_arguments='{"a": 1}',
                    )
                )
    events.append(
        StreamEnd(
            stream_id=S, seq=len(events), stop_reason="end_turn", provider_details={"stop_reason": "stop"}
        )
    )
    return events


@settings(max_examples=200, deadline=None)
@given(streams())
def test_accumulator_equals_folding_apply(events: list[StreamEvent]) -> None:
    folded = Response()
    acc = ResponseAccumulator()
    for event in events:
        folded = apply(folded, event)
        acc.add(event)
        assert acc.snapshot() == folded


def test_to_message_formats() -> None:
    acc = ResponseAccumulator()
    events: list[StreamEvent] = [
        StreamStart(stream_id=S, seq=0, provider="anthropic"),
        ThinkingDelta(stream_id=S, seq=1, text="hm"),
        ThinkingDelta(stream_id=S, seq=2, signature="sig"),
        TextDelta(stream_id=S, seq=3, text="Hi"),
        ToolCallStart(stream_id=S, seq=4, index=0, id="t0", name="f"),
        ToolCallEnd(
            stream_id=S, seq=5, index=0, id="t0", name="f", arguments={"a": 1}, raw_arguments='{"a": 1}'
        ),
        StreamEnd(stream_id=S, seq=6, stop_reason="tool_use"),
    ]
    for event in events:
        acc.add(event)
    r = acc.snapshot()
    assert r.to_message() == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "sig"},
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "t0", "name": "f", "input": {"a": 1}},
        ],
    }
    assert r.to_message("openai") == {
        "role": "assistant",
        "content": "Hi",
        "tool_calls": [{"id": "t0", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}],
    }
    assert r.to_message("bedrock")["content"][-1] == {
        "toolUse": {"toolUseId": "t0", "name": "f", "input": {"a": 1}}
    }
    assert r.to_responses_input_items()[-1] == {
        "type": "function_call",
        "call_id": "t0",
        "name": "f",
        "arguments": '{"a": 1}',
    }

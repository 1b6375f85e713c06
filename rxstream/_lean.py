"""Lean construction of the per-delta events on the normalisers' hot path (internal).

A validated ``TextDelta(stream_id=..., seq=..., text=...)`` costs about 2.8 µs and
``TextDelta.model_construct(...)`` about 2.3 µs (it resolves every default through
``FieldInfo.get_default``, which deep-copies); the normaliser itself costs well under that.
The builders here produce the very same frozen pydantic objects — the same ``__dict__`` in
field order, the same fields-set, ``__pydantic_extra__`` and ``__pydantic_private__`` as
validation leaves them — for about 0.6 µs, by setting the four slots of
``pydantic.BaseModel`` directly, as ``model_construct`` does (``pydantic/main.py``).

They do not validate: callers pass values they have already checked (the normalisers test
every wire value with ``isinstance`` first; ids and sequence numbers are their own).
``tests/test_lean_events.py`` proves that an event built here cannot be told apart from the
validated one with the same arguments (equality, ``repr``, ``model_dump``,
``model_dump_json``, fields-set, hash, frozenness, pickling, copies).
"""

from __future__ import annotations

from typing import Any

from rxstream.events import TextDelta, ThinkingDelta, ToolCallDelta

__all__ = ["text_delta", "thinking_delta", "tool_call_delta"]

_new = object.__new__
_set = object.__setattr__


def text_delta(stream_id: str, seq: int, text: str) -> TextDelta:
    """The `TextDelta` that ``TextDelta(stream_id=stream_id, seq=seq, text=text)`` validates to."""
    event = _new(TextDelta)
    _set(
        event,
        "__dict__",
        {"stream_id": stream_id, "seq": seq, "provider_details": None, "type": "text_delta", "text": text},
    )
    _set(event, "__pydantic_fields_set__", {"stream_id", "seq", "text"})
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def thinking_delta(
    stream_id: str,
    seq: int,
    text: str,
    signature: str | None = None,
    provider_details: dict[str, Any] | None = None,
) -> ThinkingDelta:
    """The `ThinkingDelta` validation gives for these arguments (``None`` ones left unset)."""
    event = _new(ThinkingDelta)
    _set(
        event,
        "__dict__",
        {
            "stream_id": stream_id,
            "seq": seq,
            "provider_details": provider_details,
            "type": "thinking_delta",
            "text": text,
            "signature": signature,
        },
    )
    fields_set = {"stream_id", "seq", "text"}
    if signature is not None:
        fields_set.add("signature")
    if provider_details is not None:
        fields_set.add("provider_details")
    _set(event, "__pydantic_fields_set__", fields_set)
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def tool_call_delta(
    stream_id: str, seq: int, index: int, arguments_delta: str, partial_arguments: dict[str, Any] | None
) -> ToolCallDelta:
    """The `ToolCallDelta` validation gives for these arguments (``None`` partial left unset).

    ``partial_arguments`` is kept as is (validation would copy the dict): the argument
    buffer hands out a new parse, or repeats the previous one, and never mutates either.
    """
    event = _new(ToolCallDelta)
    _set(
        event,
        "__dict__",
        {
            "stream_id": stream_id,
            "seq": seq,
            "provider_details": None,
            "type": "tool_call_delta",
            "index": index,
            "arguments_delta": arguments_delta,
            "partial_arguments": partial_arguments,
        },
    )
    _set(
        event,
        "__pydantic_fields_set__",
        {"stream_id", "seq", "index", "arguments_delta", "partial_arguments"}
        if partial_arguments is not None
        else {"stream_id", "seq", "index", "arguments_delta"},
    )
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event

"""Events built by `rxstream._lean` cannot be told apart from validated ones.

The normalisers build their per-delta events without validation (`rxstream._lean`); users
see the same frozen pydantic models. For arbitrary field values, each lean event is checked
against the validated event with the same arguments: ``==`` both ways, ``repr``,
``model_dump`` (also ``exclude_unset``), ``model_dump_json``, fields-set, ``__dict__`` order,
hash, frozenness, pickling, ``copy``/``deepcopy``/``model_copy``, revalidation and the
discriminated-union round trip.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from rxstream._lean import text_delta, thinking_delta, tool_call_delta
from rxstream.events import TextDelta, ThinkingDelta, ToolCallDelta, stream_event_adapter

TEXT = st.text(max_size=20)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
DETAILS = st.one_of(st.none(), st.dictionaries(st.text(max_size=5), JSON_SCALAR, max_size=3))
SEQ = st.integers(min_value=0, max_value=2**40)


def assert_indistinguishable(lean: BaseModel, validated: BaseModel) -> None:
    assert type(lean) is type(validated)
    assert lean == validated and validated == lean
    assert (lean != validated) is False
    assert repr(lean) == repr(validated) and str(lean) == str(validated)
    assert list(lean.__dict__) == list(validated.__dict__)
    assert lean.model_dump() == validated.model_dump()
    assert lean.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    assert lean.model_dump(mode="json") == validated.model_dump(mode="json")
    assert lean.model_dump_json() == validated.model_dump_json()
    assert lean.model_fields_set == validated.model_fields_set
    assert lean.model_fields_set is not validated.model_fields_set
    assert lean.__pydantic_extra__ == validated.__pydantic_extra__
    assert lean.__pydantic_private__ == validated.__pydantic_private__
    # hash: equal when hashable, the same TypeError otherwise (dict-valued fields).
    try:
        expected_hash: int | None = hash(validated)
    except TypeError:
        expected_hash = None
    if expected_hash is None:
        with pytest.raises(TypeError):
            hash(lean)
    else:
        assert hash(lean) == expected_hash
    # frozen
    for obj in (lean, validated):
        with pytest.raises(ValidationError):
            obj.seq = 99  # type: ignore[attr-defined]
    # pickling and copies
    assert_same(pickle.loads(pickle.dumps(lean)), validated)
    assert_same(copy.copy(lean), copy.copy(validated))
    assert_same(copy.deepcopy(lean), copy.deepcopy(validated))
    assert_same(lean.model_copy(), validated.model_copy())
    assert_same(lean.model_copy(update={"seq": 7}), validated.model_copy(update={"seq": 7}))
    # revalidation and the union round trip
    assert_same(
        type(lean).model_validate(lean.model_dump()), type(validated).model_validate(validated.model_dump())
    )
    assert stream_event_adapter.validate_json(lean.model_dump_json()) == validated
    assert stream_event_adapter.validate_python(lean) == validated


def assert_same(a: BaseModel, b: BaseModel) -> None:
    assert type(a) is type(b)
    assert a == b
    assert repr(a) == repr(b)
    assert a.model_fields_set == b.model_fields_set
    assert a.model_dump_json() == b.model_dump_json()


def without_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


@given(stream_id=TEXT, seq=SEQ, text=TEXT)
def test_text_delta(stream_id: str, seq: int, text: str) -> None:
    assert_indistinguishable(
        text_delta(stream_id, seq, text), TextDelta(stream_id=stream_id, seq=seq, text=text)
    )


@given(
    stream_id=TEXT,
    seq=SEQ,
    text=TEXT,
    signature=st.one_of(st.none(), TEXT),
    details=DETAILS,
)
def test_thinking_delta(
    stream_id: str, seq: int, text: str, signature: str | None, details: dict[str, Any] | None
) -> None:
    validated = ThinkingDelta(
        **without_none(stream_id=stream_id, seq=seq, text=text, signature=signature, provider_details=details)
    )
    assert_indistinguishable(thinking_delta(stream_id, seq, text, signature, details), validated)


@given(
    stream_id=TEXT,
    seq=SEQ,
    index=st.integers(min_value=0, max_value=1000),
    fragment=TEXT,
    partial=DETAILS,
)
def test_tool_call_delta(
    stream_id: str, seq: int, index: int, fragment: str, partial: dict[str, Any] | None
) -> None:
    validated = ToolCallDelta(
        **without_none(
            stream_id=stream_id,
            seq=seq,
            index=index,
            arguments_delta=fragment,
            partial_arguments=partial,
        )
    )
    assert_indistinguishable(tool_call_delta(stream_id, seq, index, fragment, partial), validated)


@pytest.mark.parametrize(
    "lean",
    [
        text_delta("s", 0, "x"),
        thinking_delta("s", 0, "x", "sig", {"a": 1}),
        tool_call_delta("s", 0, 0, "{", {"a": 1}),
    ],
    ids=lambda e: type(e).__name__,
)
def test_builders_set_every_field(lean: BaseModel) -> None:
    """A field added to an event class must be added to its lean builder (this fails)."""
    assert list(lean.__dict__) == list(type(lean).model_fields)


def test_each_lean_event_has_its_own_fields_set() -> None:
    a, b = text_delta("s", 0, "x"), text_delta("s", 1, "y")
    assert a.model_fields_set is not b.model_fields_set

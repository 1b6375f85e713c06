"""``structured``: partial objects while the JSON streams, one validated final, typed failures."""

from __future__ import annotations

import itertools
import json
from typing import Any

import anthropic
import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter
from reactivex import Observable
from typing_extensions import TypedDict

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import ConfigurationError, OutputValidationError, StreamInterruptedError
from rxstream.events import (
    StreamEnd,
    StreamEvent,
    StreamReset,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
)
from rxstream.operators import FinalOutput, PartialOutput
from rxstream.operators._structured import StructuredParser
from rxstream.testing import ProviderEmulator, ResponseScript, ScriptedToolCall


class Item(BaseModel):
    name: str
    qty: int = 0
    tags: list[str] = []


class Order(BaseModel):
    customer: str = ""
    note: str = ""
    items: list[Item] = []
    total: float = 0.0
    paid: bool = False


class Required(BaseModel):
    title: str
    count: int


class Loose(TypedDict, total=False):
    title: str
    words: list[str]


ORDER = Order(
    customer='Ada "the first" Lovelace',
    note="line1\nline2 \u00e9\U0001f600 12.5e3",
    items=[Item(name="bolt", qty=12, tags=["m3", "steel"]), Item(name="nut", qty=-3)],
    total=1234.5e-2,
    paid=True,
)


def text_events(pieces: list[str], *, end: bool = True) -> list[StreamEvent]:
    events: list[StreamEvent] = [StreamStart(stream_id="s", seq=0, provider="anthropic", model="m")]
    events += [TextDelta(stream_id="s", seq=i + 1, text=p) for i, p in enumerate(pieces)]
    if end:
        events.append(StreamEnd(stream_id="s", seq=len(events), stop_reason="end_turn"))
    return events


def split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


def collect(source: Observable[Any]) -> tuple[list[Any], Exception | None]:
    out: list[Any] = []
    errors: list[Exception] = []
    source.subscribe(out.append, errors.append)
    return out, (errors[0] if errors else None)


def extends(old: Any, new: Any) -> bool:
    """Whether ``new`` is ``old`` with things appended (the monotonicity of partials)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and extends(v, new[k]) for k, v in old.items())
    if isinstance(old, list):
        return (
            isinstance(new, list)
            and len(new) >= len(old)
            and all(extends(a, b) for a, b in zip(old, new, strict=False))
        )
    if isinstance(old, str):
        return isinstance(new, str) and new.startswith(old)
    return bool(old == new)


def check_run(model: Any, text: str, pieces: list[str]) -> list[PartialOutput[Any]]:
    out, error = collect(reactivex.from_iterable(text_events(pieces)).pipe(rso.structured(model)))
    assert error is None
    *partials, last = out
    assert isinstance(last, FinalOutput)
    adapter = TypeAdapter(model)
    assert last.value == adapter.validate_json(text)
    assert last.raw_text == text and last.response.text == text
    assert all(isinstance(p, PartialOutput) for p in partials)
    for before, after in itertools.pairwise(partials):
        assert extends(before.data, after.data), (before.data, after.data)
        assert before.data != after.data
        assert after.chars > before.chars
    if model in (Order, Required):
        assert all(p.value is None or isinstance(p.value, model) for p in partials)
    return partials


def test_partials_are_monotone_and_final_equals_model_validate_json() -> None:
    text = ORDER.model_dump_json()
    partials = check_run(Order, text, [text[i : i + 3] for i in range(0, len(text), 3)])
    assert len(partials) > 10
    assert partials[0].value is not None  # every field has a default: a value from the first "{"
    final = reactivex.from_iterable(text_events([text])).pipe(rso.structured(Order))
    assert collect(final)[0][-1].value == Order.model_validate_json(text)


def test_strings_grow_and_numbers_appear_only_when_complete() -> None:
    text = '{"customer": "Ada", "total": 1234.5, "paid": true}'
    partials = check_run(Order, text, list(text))
    totals = [p.data.get("total") for p in partials if "total" in p.data]
    assert set(totals) == {1234.5}
    customers = [p.data["customer"] for p in partials if "customer" in p.data]
    assert customers[:3] == ["", "A", "Ad"]
    assert partials[-1].value == Order(customer="Ada", total=1234.5, paid=True)


def test_model_with_required_fields_gets_a_value_once_they_arrived() -> None:
    text = '{"title": "Hello world", "count": 42}'
    partials = check_run(Required, text, list(text))
    assert partials[0].value is None and partials[0].data == {}
    firsts = [p for p in partials if p.value is not None]
    assert firsts and firsts[0].value == Required(title="Hello world", count=42)


def test_typed_dict_total_false_validates_from_the_start() -> None:
    text = json.dumps({"title": "T", "words": ["alpha", "beta"]})
    partials = check_run(Loose, text, list(text))
    assert any(p.value == {"title": "T", "words": ["alpha", "be"]} for p in partials)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=40), st.booleans())
def test_chunk_boundaries_do_not_matter(cuts: list[int], indent: bool) -> None:
    text = ORDER.model_dump_json(indent=2 if indent else None)
    partials = check_run(Order, text, split(text, cuts))
    for p in partials:
        assert p.value is None or isinstance(p.value, Order)


def test_invalid_json_is_an_output_validation_error_with_the_raw_text() -> None:
    text = 'Sure! {"customer": "x"}'
    out, error = collect(
        reactivex.from_iterable(text_events([text[:7], text[7:]])).pipe(rso.structured(Order))
    )
    assert out == []
    assert isinstance(error, OutputValidationError)
    assert error.raw_text == text and error.source == "text"
    assert error.errors[0]["type"] == "json_invalid"
    assert error.partial.text == text and error.partial.complete
    assert not error.retryable


def test_schema_violation_names_the_field() -> None:
    text = '{"items": [{"name": "bolt", "qty": "many"}]}'
    out, error = collect(reactivex.from_iterable(text_events([text])).pipe(rso.structured(Order)))
    assert isinstance(error, OutputValidationError)
    assert error.errors[0]["loc"] == ("items", 0, "qty")
    assert "items.0.qty" in str(error)
    assert error.raw_text == text
    assert isinstance(error.__cause__, Exception)
    assert [type(o) for o in out] == [PartialOutput]


def test_upstream_error_flushes_the_last_partial_then_forwards_the_error() -> None:
    parser_text = '{"customer": "Ada Lovelace"'
    # Long enough that the last piece is not parsed eagerly.
    big = '{"note": "' + "x" * 20_000 + '", "customer": "Ada"'
    failure = StreamInterruptedError("dropped")
    for text in (parser_text, big):
        events = reactivex.from_iterable(text_events([text[:-3], text[-3:]], end=False))
        out, error = collect(reactivex.concat(events, reactivex.throw(failure)).pipe(rso.structured(Order)))
        assert error is failure
        assert out[-1].data == json.loads(text + "}")


def test_stream_reset_starts_over() -> None:
    events = [
        *text_events(['{"customer": "first'], end=False),
        StreamReset(stream_id="s", seq=9, attempt=2, discarded_text='{"customer": "first'),
        TextDelta(stream_id="s", seq=10, text='{"customer": "second"}'),
        StreamEnd(stream_id="s", seq=11, stop_reason="end_turn"),
    ]
    out, error = collect(reactivex.from_iterable(events).pipe(rso.structured(Order)))
    assert error is None
    assert [o.data for o in out[:-1]] == [{"customer": "first"}, {"customer": "second"}]
    assert out[-1].value == Order(customer="second")


def test_large_outputs_are_parsed_with_bounded_work() -> None:
    text = json.dumps({"note": "y" * 200_000})
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    parses = len(check_run(Order, text, pieces))
    # Eager up to 1 kB (256 deltas), then one parse per 1/16 growth: far below 50,000 deltas.
    assert parses < 1024 // 4 + 16 * 6


def tool_events(arguments: str, *, name: str = "record", other_first: bool = True) -> list[StreamEvent]:
    events: list[StreamEvent] = [StreamStart(stream_id="s", seq=0, provider="bedrock")]
    if other_first:
        events += [
            ToolCallStart(stream_id="s", seq=1, index=0, id="t0", name="other"),
            ToolCallDelta(stream_id="s", seq=2, index=0, arguments_delta='{"customer": "wrong"}'),
            ToolCallEnd(
                stream_id="s",
                seq=3,
                index=0,
                id="t0",
                name="other",
                arguments={"customer": "wrong"},
                raw_arguments='{"customer": "wrong"}',
            ),
        ]
    events.append(ToolCallStart(stream_id="s", seq=4, index=1, id="t1", name=name))
    events += [
        ToolCallDelta(stream_id="s", seq=5 + i, index=1, arguments_delta=arguments[i : i + 5])
        for i in range(0, len(arguments), 5)
    ]
    events.append(
        ToolCallEnd(
            stream_id="s",
            seq=999,
            index=1,
            id="t1",
            name=name,
            arguments=json.loads(arguments),
            raw_arguments=arguments,
        )
    )
    events.append(StreamEnd(stream_id="s", seq=1000, stop_reason="tool_use"))
    return events


def test_tool_source_reads_that_tools_arguments() -> None:
    arguments = ORDER.model_dump_json()
    out, error = collect(
        reactivex.from_iterable(tool_events(arguments)).pipe(rso.structured(Order, source="tool:record"))
    )
    assert error is None
    assert out[-1].value == ORDER
    assert out[-1].raw_text == arguments
    assert all(o.data.get("customer") != "wrong" for o in out[:-1])
    for before, after in itertools.pairwise(out[:-1]):
        assert extends(before.data, after.data)


def test_missing_tool_call_is_an_output_validation_error() -> None:
    events = tool_events('{"customer": "x"}', name="elsewhere")
    _out, error = collect(reactivex.from_iterable(events).pipe(rso.structured(Order, source="tool:record")))
    assert isinstance(error, OutputValidationError)
    assert error.errors[0]["type"] == "missing_tool_call"
    assert error.source == "tool:record"


@pytest.mark.parametrize("source", ["json", "tool:", "", 3])
def test_bad_source_is_a_configuration_error(source: Any) -> None:
    with pytest.raises(ConfigurationError, match="source"):
        rso.structured(Order, source=source)


def test_unsupported_model_is_a_configuration_error() -> None:
    class NotAModel:
        pass

    with pytest.raises(ConfigurationError, match="cannot validate"):
        rso.structured(NotAModel)


def test_parser_is_pure_and_resubscription_is_independent() -> None:
    parser = StructuredParser(TypeAdapter(dict[str, int]))
    assert parser.add(TextDelta(stream_id="s", seq=1, text='{"a": 1, "b')) == PartialOutput(
        {"a": 1}, {"a": 1}, 11
    )
    stream = reactivex.from_iterable(text_events(['{"a"', ": 1}"])).pipe(rso.structured(dict[str, int]))
    assert collect(stream)[0][-1].value == collect(stream)[0][-1].value == {"a": 1}


def test_end_to_end_through_the_anthropic_sdk_with_split_writes() -> None:
    text = ORDER.model_dump_json()
    script = ResponseScript(text=text, chunking="chars", chunk_size=7, write_split_seed=3)
    tool_script = ResponseScript(
        tool_calls=[ScriptedToolCall(id="toolu_1", name="record", arguments=text, fragment_size=5)],
        stop_reason="tool_use",
    )
    with ProviderEmulator() as emu:
        emu.enqueue(script, tool_script)
        client = anthropic.Anthropic(base_url=emu.anthropic_base_url, api_key="sk-test")
        try:
            for source in ("text", "tool:record"):
                stream = rxs.from_anthropic(
                    client, model="m", max_tokens=10_000, messages=[{"role": "user", "content": "order?"}]
                )
                out = stream.pipe(rso.structured(Order, source=source), rso_to_list()).run()
                assert out[-1].value == ORDER
                assert sum(isinstance(o, PartialOutput) for o in out) > 5
        finally:
            client.close()


def rso_to_list() -> Any:
    from reactivex import operators as ops

    return ops.to_list()


def test_digits_at_the_end_of_a_string_are_shown_not_held_back() -> None:
    """A trailing 'e1' inside a string looked like a number's tail and was cut: 'line' then 'lin'."""
    text = '{"note": "line1 and \\"e2\\" 3", "total": 12.5e1}'
    partials = check_run(Order, text, list(text))
    notes = [p.data["note"] for p in partials if "note" in p.data]
    assert "line1" in notes and 'line1 and "e2' in notes
    assert partials[-1].value == Order(note='line1 and "e2" 3', total=125.0)

"""``structured``: the answer (or one tool call's arguments) as a stream of validated partial objects.

Pure core: `StructuredParser` (no Rx, no clock) turns events into `PartialOutput` /
`FinalOutput` values; `structured` is the thin Rx shell around it.

Partial JSON is parsed with ``jiter.from_json(..., partial_mode="trailing-strings")`` (jiter
README, "partial_mode": an unfinished string is kept, an unfinished number/literal or key is
dropped) and validated with pydantic's partial validation,
``TypeAdapter.validate_python(data, experimental_allow_partial=True)`` (pydantic docs,
"Experimental → Partial validation": errors in the *last* item of a list/dict/TypedDict are
ignored). Partial validation does not relax a `BaseModel`'s required fields, so a model with
required fields gets its first ``value`` once each of them has arrived; ``data`` carries the
raw partial JSON from the first character on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, cast

import jiter
from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError
from reactivex import Observable, abc

from rxstream.errors import ConfigurationError, OutputValidationError
from rxstream.events import StreamEvent, StreamReset, TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart
from rxstream.response import Response, ResponseAccumulator

__all__ = ["FinalOutput", "PartialOutput", "StructuredOutput", "StructuredParser", "structured"]

T = TypeVar("T")

# While the JSON text is short, every delta is parsed; beyond that a parse happens once the
# text has grown by 1/_GROWTH_DIVISOR since the previous one. Parsing and validating L
# characters costs O(L) (validation dominates: ~50x the jiter parse for a list of models), so
# the total work stays O(n · _GROWTH_DIVISOR) and the cost *per delta* does not grow with the
# output size (benchmarks/structured.py measures it at 2 kB, 20 kB and 200 kB).
_EAGER_CHARS = 1024
_GROWTH_DIVISOR = 16
# Characters that may end an unfinished number (or sit inside one); see `_strip_open_scalar`.
_NUMBER_TAIL = frozenset("0123456789+-.eE")


@dataclass(frozen=True, slots=True)
class PartialOutput(Generic[T]):
    """The best partial object so far, emitted whenever the parsed JSON changes.

    Partials are monotone: each later ``data`` extends the earlier one (strings grow by
    appending, lists and objects gain items/keys, a number or literal appears only once it
    is complete), until a `StreamReset` starts over.

    Attributes:
        value: The latest partial that passed pydantic's partial validation, or ``None`` while
            none has (a `BaseModel` needs all its required fields first).
        data: The JSON parsed so far (``dict``/``list``/``str``/...), unvalidated.
        chars: Length of the JSON text received so far, in characters (code points).
    """

    value: T | None
    data: Any
    chars: int


@dataclass(frozen=True, slots=True)
class FinalOutput(Generic[T]):
    """The fully validated output, emitted once at completion.

    Attributes:
        value: ``TypeAdapter(model).validate_json(raw_text)``: for a `BaseModel` equal to
            ``Model.model_validate_json(raw_text)``.
        raw_text: The complete JSON text.
        response: The final `Response` of the stream.
    """

    value: T
    raw_text: str
    response: Response


StructuredOutput: TypeAlias = PartialOutput[T] | FinalOutput[T]
"""What `structured` emits: `PartialOutput` items, then one `FinalOutput`."""


def _strip_open_scalar(text: str) -> str:
    """Drop a trailing number-like run (with a digit) so a half-received number is never shown.

    ``{"n": 12`` could still become ``{"n": 123}``; showing 12 first would break
    monotonicity. Inside a string the same cut only delays a few characters of that string.
    A run without digits (``"the``) is left alone: no JSON number lacks a digit.
    """
    end = len(text)
    while end and text[end - 1] in _NUMBER_TAIL:
        end -= 1
    if end == len(text) or not any(c.isdigit() for c in text[end:]):
        return text
    return text[:end]


class StructuredParser(Generic[T]):
    """Incremental parser behind `structured`: events in, partial/final outputs out (pure).

    Args:
        adapter: Validates the output type.
        tool: ``None`` to read the answer text, else the tool name whose first call's
            arguments are the output.
        eager: Parse as deltas arrive (the `structured` schedule); ``False``: only
            accumulate, and parse when `flush` is called (a sink that sends at its own pace).

    Example:
        >>> from pydantic import TypeAdapter
        >>> from rxstream.events import TextDelta
        >>> p = StructuredParser(TypeAdapter(dict[str, int]))
        >>> p.add(TextDelta(stream_id="s", seq=1, text='{"a": 1, "b')).data
        {'a': 1}
    """

    def __init__(self, adapter: TypeAdapter[T], tool: str | None = None, *, eager: bool = True) -> None:
        self._adapter = adapter
        self._tool = tool
        self._eager = eager
        self.source = "text" if tool is None else f"tool:{tool}"
        self.reset()

    def reset(self) -> None:
        """Forget everything received (after a `StreamReset`)."""
        self._parts: list[str] = []
        self._length = 0
        self._parsed_length = 0
        self._index: int | None = None  # tool-call index being followed
        self._final_raw: str | None = None  # a finished tool call's raw arguments
        self._data: Any = None
        self._has_data = False
        self._value: T | None = None
        self._in_string = False  # the text received so far ends inside a JSON string
        self._escape = False  # ... right after a backslash in that string

    def _track(self, piece: str) -> None:
        """Follow whether the text ends inside a string (O(len(piece)); skipped without quotes)."""
        if not self._escape and '"' not in piece and "\\" not in piece:
            return
        in_string, escape = self._in_string, self._escape
        for char in piece:
            if escape:
                escape = False
            elif char == "\\":
                escape = in_string
            elif char == '"':
                in_string = not in_string
        self._in_string, self._escape = in_string, escape

    def text(self) -> str:
        """The JSON text received so far (joins the held pieces once)."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def add(self, event: StreamEvent) -> PartialOutput[T] | None:
        """Take one event; return a new partial when the parsed value changed, else ``None``."""
        kind = type(event)
        if kind is TextDelta:
            if self._tool is not None:
                return None
            piece = cast(TextDelta, event).text
        elif kind is ToolCallDelta:
            delta = cast(ToolCallDelta, event)
            if self._index is None or delta.index != self._index or self._final_raw is not None:
                return None
            piece = delta.arguments_delta
        elif kind is ToolCallStart:
            start = cast(ToolCallStart, event)
            if self._tool is not None and self._index is None and start.name == self._tool:
                self._index = start.index
            return None
        elif kind is ToolCallEnd:
            end = cast(ToolCallEnd, event)
            if self._index is not None and end.index == self._index and self._final_raw is None:
                raw = end.raw_arguments or self.text() or _to_json(end.arguments)
                self._final_raw = raw
                self._parts, self._length = [raw], len(raw)
                return self._parse() if self._eager else None
            return None
        elif kind is StreamReset:
            self.reset()
            return None
        else:
            return None
        if not piece:
            return None
        self._parts.append(piece)
        self._length += len(piece)
        self._track(piece)
        if not self._eager:
            return None
        pending = self._length - self._parsed_length
        if self._length > _EAGER_CHARS and pending * _GROWTH_DIVISOR < self._length:
            return None
        return self._parse()

    def has_unparsed(self) -> bool:
        """Whether text arrived since the last parse."""
        return self._length != self._parsed_length

    def flush(self) -> PartialOutput[T] | None:
        """Parse whatever arrived since the last parse; a partial if the value changed."""
        if self._length == self._parsed_length:
            return None
        return self._parse()

    def _parse(self) -> PartialOutput[T] | None:
        self._parsed_length = self._length
        text = self.text()
        if self._final_raw is None and not self._in_string:
            # A number at the very end may still grow; inside a string nothing is held back
            # (stripping there turned "line1" into "lin", shrinking a shown string).
            text = _strip_open_scalar(text)
        try:
            data = jiter.from_json(text.encode(), partial_mode="trailing-strings")
        except ValueError:
            return None  # nothing parseable yet (empty, or not JSON at all: reported at the end)
        if self._has_data and data == self._data:
            return None
        self._data, self._has_data = data, True
        with contextlib.suppress(ValidationError):  # else keep the previous best value
            self._value = self._adapter.validate_python(data, experimental_allow_partial=True)
        return PartialOutput(self._value, data, self._length)

    def finish(self, response: Response) -> FinalOutput[T]:
        """Validate the complete output.

        Raises:
            OutputValidationError: invalid JSON, a schema violation, or (``tool:NAME``) no
                finished call of that tool.
        """
        provider = response.provider
        if self._tool is not None and self._final_raw is None:
            raw = self.text()
            message = f"structured(source={self.source!r}): no finished call of {self._tool!r}"
            errors: list[dict[str, Any]] = [{"type": "missing_tool_call", "loc": (), "msg": message}]
            raise OutputValidationError(
                message, errors=errors, raw_text=raw, source=self.source, partial=response, provider=provider
            )
        raw = self.text()
        try:
            value = self._adapter.validate_json(raw)
        except ValidationError as exc:
            errors = cast(list[dict[str, Any]], exc.errors(include_url=False))
            first = errors[0] if errors else {}
            where = ".".join(str(p) for p in first.get("loc", ())) or "<root>"
            message = (
                f"structured(source={self.source!r}): output is not a valid {exc.title}: "
                f"{len(errors)} error(s), first at {where}: {first.get('msg', '')}"
            )
            raise OutputValidationError(
                message, errors=errors, raw_text=raw, source=self.source, partial=response, provider=provider
            ) from exc
        return FinalOutput(value, raw, response)


def _to_json(value: Any) -> str:
    """Compact JSON text of ``value`` (pydantic-core's serializer)."""
    from pydantic_core import to_json

    return to_json(value).decode()


def adapter_for(model: Any) -> TypeAdapter[Any]:
    """A `TypeAdapter` for ``model`` (or ``model`` itself); `ConfigurationError` if impossible."""
    if isinstance(model, TypeAdapter):
        return model
    try:
        return TypeAdapter(model)
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError) as exc:
        raise ConfigurationError(f"structured: cannot validate {model!r}: {exc}") from exc


def tool_name(source: object) -> str | None:
    """``"text"`` → ``None``; ``"tool:NAME"`` → ``"NAME"``; else `ConfigurationError`."""
    if source == "text":
        return None
    if isinstance(source, str) and source.startswith("tool:") and len(source) > len("tool:"):
        return source[len("tool:") :]
    raise ConfigurationError(f"structured: source must be 'text' or 'tool:NAME', got {source!r}")


def structured(
    model: type[T] | TypeAdapter[T], *, source: str = "text"
) -> Callable[[Observable[StreamEvent]], Observable[PartialOutput[T] | FinalOutput[T]]]:
    """Parse the answer as JSON while it streams: validated partial objects, then the final one.

    ``Observable[StreamEvent] -> Observable[PartialOutput[T] | FinalOutput[T]]``. Each time
    the JSON parsed so far changes, one `PartialOutput` (``data``: the raw partial JSON;
    ``value``: the latest partial that validates); at completion one `FinalOutput` with the
    fully validated value, then completion. Runs synchronously on the source's thread (no
    scheduler, no timers).

    Cost: every delta is parsed while the JSON is under 1 kB; beyond that a parse happens once
    the text has grown by 1/16 since the last one, so the cost per delta stays flat with the
    output size (see ``benchmarks/structured.py``) at the price of sparser partials for large
    outputs (one per ~1.3 kB at 20 kB, per ~12 kB at 200 kB). A sink that sends at its own
    pace can parse on demand instead (`StructuredParser` with ``eager=False``, as
    ``rxs.mcp.structured_to_context`` does).

    Marble (``a``-``c`` text deltas building ``{"k": "v"}``; ``p``/``q`` partials, ``F``
    the final output)::

        events:         S-a-b-c-E|
        structured(M):  --p-q----(F|)

    Args:
        model: The output type: a pydantic model, ``TypedDict``, dataclass, ``list[...]``
            or anything `pydantic.TypeAdapter` accepts (or a ready ``TypeAdapter``). For
            useful partials of a model with required fields, give fields defaults or use a
            ``TypedDict`` with ``total=False``.
        source: ``"text"`` (the answer text: Anthropic ``output_format``, OpenAI
            ``response_format``/``text.format``) or ``"tool:NAME"`` (the arguments of the first
            call of tool ``NAME``: forced tool use, e.g. Bedrock ``toolChoice``).

    Returns:
        An operator function for ``pipe``.

    Raises:
        ConfigurationError: at creation, if ``source`` is malformed or pydantic cannot build a
            validator for ``model``.

    Emits:
        `rxstream.errors.OutputValidationError` (pydantic's ``errors``, the full
        ``raw_text``, ``.partial`` = the final `Response`) when the finished JSON is invalid,
        breaks the schema, or the named tool was never called. A source error is forwarded
        unchanged after one last partial of what arrived. `StreamReset` restarts parsing.

    Example:
        >>> class Answer(BaseModel):  # doctest: +SKIP
        ...     title: str = ""
        ...     tags: list[str] = []
        >>> stream.pipe(rso.structured(Answer)).subscribe(print)  # doctest: +SKIP
    """
    tool = tool_name(source)
    adapter = cast(TypeAdapter[T], adapter_for(model))

    def _structured(events: Observable[StreamEvent]) -> Observable[PartialOutput[T] | FinalOutput[T]]:
        def subscribe(
            observer: abc.ObserverBase[PartialOutput[T] | FinalOutput[T]],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            parser = StructuredParser(adapter, tool)
            acc = ResponseAccumulator()

            def on_next(event: StreamEvent) -> None:
                acc.add(event)
                out = parser.add(event)
                if out is not None:
                    observer.on_next(out)

            def on_error(error: Exception) -> None:
                out = parser.flush()
                if out is not None:
                    observer.on_next(out)
                observer.on_error(error)

            def on_completed() -> None:
                try:
                    result = parser.finish(acc.snapshot())
                except OutputValidationError as exc:
                    observer.on_error(exc)
                    return
                observer.on_next(result)
                observer.on_completed()

            return events.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _structured

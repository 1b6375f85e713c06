"""Tools from Python functions: JSON Schema, docstrings, validation, rendering of results."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

import rxstream as rxs
from rxstream.errors import ConfigurationError, ToolError
from rxstream.tools import render_output


class Forecast(BaseModel):
    city: str
    celsius: float


def test_schema_and_descriptions_from_hints_and_docstring() -> None:
    @rxs.tool
    def forecast(
        city: str, unit: Literal["C", "F"] = "C", days: Annotated[int, Field(ge=1, le=7)] = 1
    ) -> Forecast:
        """Weather forecast for a city.

        Longer explanation that is part of the description.

        Args:
            city: City name, e.g. "Zürich".
            unit (str): Temperature unit,
                Celsius or Fahrenheit.
            days: Days ahead.

        Returns:
            The forecast.
        """
        return Forecast(city=city, celsius=21.5)

    assert forecast.name == "forecast"
    assert (
        forecast.description
        == "Weather forecast for a city.\n\nLonger explanation that is part of the description."
    )
    schema = forecast.input_schema
    assert schema["type"] == "object" and schema["required"] == ["city"]
    assert schema["additionalProperties"] is False and "title" not in schema
    props = schema["properties"]
    assert props["city"]["description"] == 'City name, e.g. "Zürich".'
    assert (
        props["unit"]["enum"] == ["C", "F"]
        and props["unit"]["description"] == "Temperature unit, Celsius or Fahrenheit."
    )
    assert props["days"]["minimum"] == 1 and props["days"]["maximum"] == 7
    assert forecast.call({"city": "Bern"}) == '{"city":"Bern","celsius":21.5}'
    assert forecast("Bern").celsius == 21.5  # the decorated function still works


def test_arguments_are_validated_before_the_call() -> None:
    calls: list[int] = []

    @rxs.tool(name="count", description="Count.")
    def counter(n: int) -> int:
        calls.append(n)
        return n

    assert counter.name == "count" and counter.description == "Count."
    assert counter.call({"n": "7"}) == "7"  # lax mode coerces like pydantic does
    with pytest.raises(
        ToolError, match=r"invalid arguments for tool 'count': n: Input should be a valid integer"
    ):
        counter.call({"n": "seven"})
    with pytest.raises(ToolError, match="n: Field required"):
        counter.call({})
    with pytest.raises(ToolError, match="extra: Extra inputs are not permitted"):
        counter.call({"n": 1, "extra": 2})
    assert calls == [7]


async def test_async_and_sync_tools_run_with_acall() -> None:
    @rxs.tool
    async def slow_echo(text: str) -> str:
        """Echo."""
        await asyncio.sleep(0)
        return text

    @rxs.tool
    def listing(n: int) -> list[int]:
        """A list."""
        return list(range(n))

    assert slow_echo.is_async and not listing.is_async
    assert await slow_echo.acall({"text": "hi"}) == "hi"
    assert await listing.acall({"n": 3}) == "[0,1,2]"
    with pytest.raises(ConfigurationError, match="async"):
        slow_echo.call({"text": "x"})


def test_render_output() -> None:
    assert render_output("text") == "text"
    assert render_output(Forecast(city="A", celsius=1)) == '{"city":"A","celsius":1.0}'
    assert render_output({"a": [1, None]}) == '{"a":[1,null]}'
    assert render_output(None) == "null"


def test_misuse() -> None:
    def variadic(*args: int) -> int:
        return 0

    with pytest.raises(ConfigurationError, match=r"\*args"):
        rxs.Tool.from_function(variadic)
    with pytest.raises(ConfigurationError, match="object"):
        rxs.Tool(name="x", description="", input_schema={"type": "string"}, handler=lambda a: a)
    plain = rxs.Tool(name="x", description="", input_schema={"type": "object"}, handler=lambda a: "ok")
    assert plain.call({}) == "ok" and repr(plain) == "Tool('x')"
    with pytest.raises(TypeError, match="not made from a function"):
        plain()

"""Tools a model may call: from Python functions (`tool`, `Tool.from_function`) or MCP servers.

A `Tool` has a ``name``, a ``description`` and the JSON Schema of its arguments object
(``input_schema``); `rxstream.tool_loop` renders these into each provider's request and calls
the tool with the model's arguments. For a function, the schema comes from pydantic (a model
built from the signature's type hints and defaults, with descriptions from the docstring's
Google-style ``Args:`` section) and the arguments are validated by that model before the call.

The result is rendered to text for the model: a ``str`` as it is, a pydantic model as its
JSON, anything else as JSON (``pydantic_core.to_json``).

Example:
    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     '''Add two integers.
    ...
    ...     Args:
    ...         a: The first number.
    ...         b: The second number.
    ...     '''
    ...     return a + b
    >>> add.input_schema["properties"]["a"]
    {'description': 'The first number.', 'title': 'A', 'type': 'integer'}
"""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, overload

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from rxstream.errors import ConfigurationError, ToolError

__all__ = ["Tool", "mcp_tools", "render_output", "tool"]

_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Example|Examples|Note|Notes)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def render_output(value: Any) -> str:
    """Render a tool's return value as the text sent to the model.

    Args:
        value: ``str`` (sent as it is), a pydantic model (its JSON) or any JSON-able value.

    Returns:
        The text.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return pydantic_core.to_json(value).decode("utf-8")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {argument: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None
    for line in lines:
        match = _SECTION.match(line)
        if match and not line.startswith((" ", "\t")):
            section = match[1]
            current, base_indent = None, None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        arg = _ARG_LINE.match(line.strip()) if indent <= base_indent else None
        if arg:
            current = arg[1].lstrip("*")
            args[current] = arg[2].strip()
        elif current is not None:
            args[current] = (args[current] + " " + line.strip()).strip()
    return "\n".join(summary).strip(), args


class Tool:
    """A tool the model may call.

    Build one with `Tool.from_function` / `tool`, or `mcp_tools` for an MCP server's tools;
    the constructor is for other sources (any sync or async callable taking the arguments
    object).

    Args:
        name: Tool name the model calls (providers allow ``[a-zA-Z0-9_-]{1,64}``).
        description: What the tool does, for the model.
        input_schema: JSON Schema of the arguments object (``{"type": "object", ...}``).
        handler: ``handler(arguments: dict) -> result``, sync or async. It may raise
            `rxstream.errors.ToolError` (its message goes to the model as an error result)
            or any exception (sent as ``"<Class>: <message>"``).

    Raises:
        ConfigurationError: empty name, or a schema that is not an object schema.
    """

    __slots__ = ("_function", "description", "handler", "input_schema", "is_async", "name")

    def __init__(
        self,
        *,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        handler: Callable[[dict[str, Any]], Any],
    ) -> None:
        if not name:
            raise ConfigurationError("a Tool needs a name")
        if not isinstance(input_schema, Mapping) or input_schema.get("type", "object") != "object":
            raise ConfigurationError(f"tool {name!r}: input_schema must be a JSON Schema of an object")
        self.name = name
        self.description = description
        self.input_schema: dict[str, Any] = dict(input_schema)
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        self._function: Callable[..., Any] | None = None

    @classmethod
    def from_function(
        cls, func: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """A tool from a plain sync or async function with type hints.

        Args:
            func: The function; its parameters are the tool's arguments (no ``*args`` /
                ``**kwargs``). Type hints and defaults give the JSON Schema (pydantic);
                the docstring's first part is the description, its ``Args:`` lines
                describe the parameters.
            name: Tool name (default: ``func.__name__``).
            description: Tool description (default: from the docstring).

        Returns:
            The `Tool`; calling it (``tool(...)``) still calls ``func``.

        Raises:
            ConfigurationError: variadic parameters, or a type pydantic cannot describe.
        """
        tool_name: str = name or str(getattr(func, "__name__", ""))
        doc_description, arg_docs = _parse_docstring(inspect.getdoc(func))
        signature = inspect.signature(func)
        try:
            hints = _type_hints(func)
        except Exception as exc:
            raise ConfigurationError(f"tool {tool_name!r}: cannot resolve the type hints ({exc})") from exc
        fields: dict[str, Any] = {}
        for param in signature.parameters.values():
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise ConfigurationError(f"tool {tool_name!r}: *args/**kwargs cannot be tool arguments")
            annotation = hints.get(param.name, Any)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, Field(default, description=arg_docs.get(param.name)))
        try:
            model = create_model(f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
            schema = model.model_json_schema()
        except Exception as exc:
            raise ConfigurationError(
                f"tool {tool_name!r}: pydantic cannot describe its parameters ({exc})"
            ) from exc
        schema.pop("title", None)
        names = list(signature.parameters)
        is_async = inspect.iscoroutinefunction(func)

        def validate(arguments: dict[str, Any]) -> dict[str, Any]:
            try:
                validated = model.model_validate(arguments)
            except ValidationError as exc:
                raise ToolError(
                    f"invalid arguments for tool {tool_name!r}: {_validation_text(exc)}"
                ) from None
            return {n: getattr(validated, n) for n in names}

        if is_async:

            async def async_handler(arguments: dict[str, Any]) -> Any:
                return await func(**validate(arguments))

            handler: Callable[[dict[str, Any]], Any] = async_handler
        else:

            def sync_handler(arguments: dict[str, Any]) -> Any:
                return func(**validate(arguments))

            handler = sync_handler
        result = cls(
            name=tool_name,
            description=description if description is not None else doc_description,
            input_schema=schema,
            handler=handler,
        )
        result._function = func
        return result

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the original function (tools from `from_function` only).

        Raises:
            TypeError: the tool was not made from a function.
        """
        if self._function is None:
            raise TypeError(f"tool {self.name!r} was not made from a function; use await tool.acall(args)")
        return self._function(*args, **kwargs)

    def call(self, arguments: Mapping[str, Any]) -> str:
        """Run a sync tool with the model's arguments and render the result (blocking).

        Raises:
            ToolError: invalid arguments, or the tool reported a failure.
            ConfigurationError: the tool is async (use `acall`).
        """
        if self.is_async:
            raise ConfigurationError(f"tool {self.name!r} is async: await tool.acall(arguments)")
        return render_output(self.handler(dict(arguments)))

    async def acall(self, arguments: Mapping[str, Any]) -> str:
        """Run the tool and render the result; a sync tool runs in a worker thread.

        Cancelling the awaiting task cancels an async tool; a sync tool's thread cannot be
        interrupted, it finishes and its result is discarded.

        Raises:
            ToolError: invalid arguments, or the tool reported a failure.
        """
        if self.is_async:
            value = await self.handler(dict(arguments))
            return render_output(value)
        return await asyncio.to_thread(self.call, arguments)

    def __repr__(self) -> str:
        kind = "async " if self.is_async else ""
        return f"Tool({kind}{self.name!r})"


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    return typing.get_type_hints(func, include_extras=True)


def _validation_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(x) for x in error.get("loc", ())) or "arguments"
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


@overload
def tool(func: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    func: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Decorator: turn a function into a `Tool` (see `Tool.from_function`).

    Use as ``@tool`` or ``@tool(name="...", description="...")``.

    Example:
        >>> @tool
        ... async def clock() -> str:
        ...     '''The current UTC time.'''
        ...     return "12:00"
        >>> clock
        Tool(async 'clock')
    """
    if func is not None:
        return Tool.from_function(func, name=name, description=description)

    def decorate(f: Callable[..., Any]) -> Tool:
        return Tool.from_function(f, name=name, description=description)

    return decorate


# -- MCP -----------------------------------------------------------------------------------------


def _field(obj: Any, *names: str) -> Any:
    """Read the first present attribute (mcp 2.x snake_case, mcp 1.x camelCase)."""
    fields = getattr(type(obj), "model_fields", None)
    for n in names:
        if (n in fields) if isinstance(fields, dict) else hasattr(obj, n):
            return getattr(obj, n)
    return None


def _mcp_text(result: Any) -> str:
    parts: list[str] = []
    for block in _field(result, "content") or []:
        text = getattr(block, "text", None)
        if isinstance(text, str):
            parts.append(text)
        elif isinstance(block, BaseModel):
            parts.append(block.model_dump_json(exclude_none=True, by_alias=True))
        else:
            parts.append(render_output(block))
    structured = _field(result, "structured_content", "structuredContent")
    if not parts and structured is not None:
        parts.append(render_output(structured))
    return "\n".join(parts)


async def mcp_tools(session: Any) -> list[Tool]:
    """The tools of an MCP server as `Tool`s whose call goes to the server.

    Args:
        session: An initialized ``mcp.ClientSession`` or a connected ``fastmcp.Client``
            (inside its ``async with``). Calls go through it, so the loop must run the tools
            on the session's event loop: subscribe to the tool loop from that loop.

    Returns:
        One async `Tool` per server tool, with the server's name, description and input
        schema. A result with ``isError`` (MCP "Tools" spec, "Error Handling") becomes an
        error result; its text content is the message.

    Raises:
        ConfigurationError: ``session`` is neither (install the extra: ``pip install
            'rxstream[mcp]'``).

    Example:
        >>> async with fastmcp.Client(server) as client:  # doctest: +SKIP
        ...     tools = await rxs.mcp_tools(client)
    """
    if hasattr(session, "call_tool_mcp") and hasattr(session, "list_tools"):
        listed = list(await session.list_tools())
        call: Callable[[str, dict[str, Any]], Awaitable[Any]] = lambda n, a: session.call_tool_mcp(n, a)  # noqa: E731
    elif hasattr(session, "call_tool") and hasattr(session, "list_tools"):
        listed = await _list_session_tools(session)
        call = lambda n, a: session.call_tool(n, a)  # noqa: E731
    else:
        raise ConfigurationError(
            "mcp_tools needs an mcp.ClientSession or a fastmcp.Client (pip install 'rxstream[mcp]')"
        )
    return [_mcp_tool(t, call) for t in listed]


async def _list_session_tools(session: Any) -> list[Any]:
    tools: list[Any] = []
    result = await session.list_tools()
    tools.extend(result.tools)
    cursor = _field(result, "next_cursor", "nextCursor")
    while cursor:
        from mcp import types

        result = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
        tools.extend(result.tools)
        cursor = _field(result, "next_cursor", "nextCursor")
    return tools


def _mcp_tool(spec: Any, call: Callable[[str, dict[str, Any]], Awaitable[Any]]) -> Tool:
    name = str(spec.name)
    schema = _field(spec, "input_schema", "inputSchema") or {"type": "object", "properties": {}}

    async def handler(arguments: dict[str, Any]) -> str:
        result = await call(name, arguments)
        text = _mcp_text(result)
        if _field(result, "is_error", "isError"):
            raise ToolError(text or f"tool {name!r} failed")
        return text

    return Tool(name=name, description=str(spec.description or ""), input_schema=schema, handler=handler)

"""Guards of the source functions: errors never vanish, bad parameters are caught early.

* `check_params`: the request parameters against the SDK method's own signature
  (``client.messages.create`` etc.), at call time — a typo such as ``max_token=`` is a
  `ConfigurationError` naming the parameter and the closest valid name.
* `check_scheduler`: ``scheduler=`` is ``None`` or a reactivex scheduler.
* `guard_create`: a ``TypeError`` / ``ValueError`` the SDK raises while building the request
  after subscription (e.g. a value that is not JSON-serialisable) becomes an
  `InvalidRequestError` — a `ConfigurationError` and a `StreamError`, so it reaches
  ``on_error`` with ``.partial`` like every other stream failure.

An error the subscriber does not handle (no ``on_error``, or one that raises) is logged once
by the source shell itself (`rxstream.providers._source`).
"""

from __future__ import annotations

import difflib
import inspect
import json
import weakref
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from reactivex import abc

from rxstream.errors import ConfigurationError, InvalidRequestError

__all__ = ["check_params", "check_scheduler", "guard_create"]


def check_scheduler(function: str, scheduler: object) -> None:
    """Raise `ConfigurationError` unless ``scheduler`` is ``None`` or a reactivex scheduler."""
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise ConfigurationError(
            f"{function}: scheduler must be a reactivex scheduler (e.g. ThreadPoolScheduler, "
            f"AsyncIOScheduler) or None, not {type(scheduler).__name__}"
        )


def check_params(
    function: str, method: Callable[..., Any], method_name: str, params: Mapping[str, Any]
) -> None:
    """Check ``params`` against ``method``'s signature (unknown and missing parameters).

    Args:
        function: The source function, for the message (``"from_anthropic"``).
        method: The SDK method the parameters are for (``client.messages.create``).
        method_name: Its dotted name, for the message.
        params: The keyword arguments the source will send.

    Raises:
        ConfigurationError: An unknown parameter (with the closest valid name) or a missing
            required one. Methods whose signature cannot be read are not checked.
    """
    shape = _shape(method)
    if shape is None:
        return
    names, required = shape
    for name in params:
        if name not in names:
            close = difflib.get_close_matches(name, sorted(names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(f"{function}: {method_name} has no parameter {name!r}{hint}")
    missing = [name for name in required if name not in params]
    if missing:
        raise ConfigurationError(f"{function}: {method_name} needs {', '.join(map(repr, missing))}")


_Shape = tuple[frozenset[str], tuple[str, ...]]
_shapes: weakref.WeakKeyDictionary[Callable[..., Any], _Shape | None] = weakref.WeakKeyDictionary()


def _shape(method: Callable[..., Any]) -> _Shape | None:
    """A method's parameter names and required keyword names (None: not checkable).

    ``inspect.signature`` costs 50-130 µs on an SDK ``create`` (dozens of parameters), paid
    on every ``from_X`` call; the shape is cached per underlying function (a bound method's
    ``__func__``, which the SDK defines once).
    """
    function = getattr(method, "__func__", None)
    if function is not None:
        try:
            return _shapes[function]
        except KeyError:
            pass
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        shape: _Shape | None = None
    else:
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            shape = None
        else:
            required = tuple(
                name
                for name, p in parameters.items()
                if p.default is inspect.Parameter.empty
                and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            )
            shape = (frozenset(parameters), required)
    if function is not None:
        _shapes[function] = shape
    return shape


def _bad_parameter(params: Mapping[str, Any]) -> str | None:
    """The first top-level parameter whose value JSON cannot encode (SDK-typed values allowed)."""
    for name, value in params.items():
        if name.startswith("extra_") or name == "timeout":
            continue
        try:
            json.dumps(value, default=_sdk_default)
        except (TypeError, ValueError):
            return name
    return None


def _sdk_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models (SDK types) are accepted by the SDKs
    if callable(dump):
        return dump()
    raise TypeError(type(value).__name__)


def _invalid(exc: Exception, provider: str, params: Mapping[str, Any]) -> InvalidRequestError:
    parameter = _bad_parameter(params)
    where = f" (parameter {parameter!r})" if parameter else ""
    err = InvalidRequestError(
        f"{provider}: the SDK rejected the request{where}: {type(exc).__name__}: {exc}",
        parameter=parameter,
        provider=provider,
    )
    err.__cause__ = exc
    return err


class _GuardedManager:
    """Proxy of the SDK's streaming-response context manager that maps TypeError/ValueError."""

    __slots__ = ("_manager", "_params", "_provider")

    def __init__(self, manager: Any, provider: str, params: Mapping[str, Any]) -> None:
        self._manager = manager
        self._provider = provider
        self._params = params

    def __enter__(self) -> Any:
        try:
            return self._manager.__enter__()
        except (TypeError, ValueError) as exc:
            raise _invalid(exc, self._provider, self._params) from exc

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        return self._manager.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> Any:
        try:
            return await self._manager.__aenter__()
        except (TypeError, ValueError) as exc:
            raise _invalid(exc, self._provider, self._params) from exc

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        return await self._manager.__aexit__(exc_type, exc, tb)


def guard_create(create: Callable[..., Any], provider: str) -> Callable[..., Any]:
    """Wrap ``with_streaming_response.create`` so parameter errors become `InvalidRequestError`.

    The error is raised where the session opens the request, so the source emits it through
    ``on_error`` with ``.partial`` (cost: one call per request, nothing per event).
    """

    def guarded(**params: Any) -> _GuardedManager:
        try:
            manager = create(**params)
        except (TypeError, ValueError) as exc:
            raise _invalid(exc, provider, params) from exc
        return _GuardedManager(manager, provider, params)

    return guarded

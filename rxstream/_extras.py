"""Optional-dependency checks: a missing extra becomes a `ConfigurationError` naming the install."""

from __future__ import annotations

import importlib
from types import ModuleType

from rxstream.errors import ConfigurationError

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise `ConfigurationError` telling which extra to install.

    Args:
        module: Importable module name, e.g. ``"anthropic"``.
        extra: The rxstream extra that provides it, e.g. ``"anthropic"``.

    Raises:
        ConfigurationError: the module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"{module!r} is not installed; run: pip install 'rxstream[{extra}]'"
        ) from exc

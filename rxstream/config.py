"""Streaming configuration: named profiles of operator settings, with per-provider and per-model overrides.

A `StreamConfig` holds named `StreamProfile` s (``interactive``, ``batch``, ``ui`` and ``mcp``
are always present; a file may change them or add more), and overrides per provider and per
model. `StreamConfig.for_model` resolves the settings of one (provider, model) pair;
``rxstream.operators.apply_config`` turns them into one operator.

Load a TOML or YAML file plus ``RXSTREAM_*`` environment variables with `StreamConfig.load`
(extra ``rxstream[config]``: pydantic-settings, PyYAML); building a `StreamConfig` in code
needs only pydantic. Every value is checked when the config is built: a bad one raises
`rxstream.errors.ConfigurationError` naming the file, the profile and the field.

TOML example (``rxstream.toml``)::

    default_profile = "interactive"

    [profiles.interactive]
    coalesce = { max_delay = 0.05 }
    timeouts = { first_token = 20 }

    [providers.anthropic.models."claude-3-haiku*"]   # exact name or fnmatch pattern
    stream = false                                   # hold the events, release them at once

    [providers.openai]
    chunk_delay_ms = 15                              # pace text: one word per 15 ms

Environment variables override the file, nested with ``__``:
``RXSTREAM_DEFAULT_PROFILE=batch``,
``RXSTREAM_PROFILES__MCP__TIMEOUTS__FIRST_TOKEN=90`` (pydantic-settings docs, "Parsing
environment variable values": ``env_nested_delimiter``). ``RXSTREAM_CONFIG`` names the file
`StreamConfig.load` reads when none is given.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rxstream._extras import require
from rxstream.errors import ConfigurationError

__all__ = [
    "SHIPPED_PROFILES",
    "CoalesceSettings",
    "McpSettings",
    "ModelOverride",
    "PauseSettings",
    "ProviderOverride",
    "RetrySettings",
    "SmoothSettings",
    "StreamConfig",
    "StreamProfile",
    "TimeoutSettings",
    "TokenBufferSettings",
]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CoalesceSettings(_Settings):
    """``rso.coalesce_text(max_delay, max_chars)``: merge bursts of deltas.

    Attributes:
        max_delay: Seconds a merge window stays open (> 0).
        max_chars: Close a window once it holds this many characters; ``None``: no limit.
    """

    max_delay: float = Field(gt=0)
    max_chars: int | None = Field(default=None, ge=1)


class SmoothSettings(_Settings):
    """``rso.smooth_text(...)``: release words/lines/graphemes at a steady pace.

    Attributes:
        chars_per_second: Pace in characters per second (> 0); exclusive with ``delay``.
        delay: Seconds between chunks (>= 0).
        chunking: ``"word"``, ``"line"`` or ``"grapheme"``.
    """

    chars_per_second: float | None = Field(default=None, gt=0)
    delay: float | None = Field(default=None, ge=0)
    chunking: Literal["word", "line", "grapheme"] = "word"

    @model_validator(mode="after")
    def _one_pace(self) -> SmoothSettings:
        if self.chars_per_second is not None and self.delay is not None:
            raise ValueError("give chars_per_second or delay, not both")
        return self


class TokenBufferSettings(_Settings):
    """``rso.buffer_tokens(n, max_delay)``: hold deltas and release them ``n`` at a time.

    ``apply_config`` flattens the batches back into events, so they leave in bursts of
    ``n`` at one instant (the output stays ``Observable[StreamEvent]``).

    Attributes:
        n: Deltas per batch (>= 1).
        max_delay: Release a partial batch after this many seconds; ``None``: only when full.
    """

    n: int = Field(ge=1)
    max_delay: float | None = Field(default=None, gt=0)


class TimeoutSettings(_Settings):
    """``rso.first_token_timeout`` / ``idle_timeout`` / ``total_timeout`` limits in seconds.

    ``None`` turns a timeout off. With a ``retry`` policy, a timeout is retried (timeouts are
    retryable errors).
    """

    first_token: float | None = Field(default=None, gt=0)
    idle: float | None = Field(default=None, gt=0)
    total: float | None = Field(default=None, gt=0)


class RetrySettings(_Settings):
    """``rso.retry_stream(...)`` policy.

    Attributes:
        max_attempts: Attempts in total (>= 1; 1 = no retry).
        backoff: First wait in seconds (>= 0), doubled per attempt.
        max_backoff: Longest wait in seconds (>= 0).
        jitter: Random fraction added to each wait (0..1).
        on_partial: ``"fail"`` (no retry once content arrived) or ``"restart"`` (emit a
            `StreamReset` and start over).
    """

    max_attempts: int = Field(default=3, ge=1)
    backoff: float = Field(default=0.5, ge=0)
    max_backoff: float = Field(default=30.0, ge=0)
    jitter: float = Field(default=0.2, ge=0, le=1)
    on_partial: Literal["fail", "restart"] = "fail"


class PauseSettings(_Settings):
    """``rso.pausable(valve, max_buffered=...)`` bound, used when ``apply_config`` gets a valve.

    Attributes:
        max_buffered: Events held while paused before the producer is blocked (>= 1).
    """

    max_buffered: int = Field(default=10_000, ge=1)


class McpSettings(_Settings):
    """How ``rxstream.mcp.stream_to_context`` reports a stream to an MCP client.

    Attributes:
        interval: At most one progress notification per this many seconds (> 0).
        heartbeat: Seconds between "waiting for first token" notifications (> 0).
        mode: ``"delta"`` (message = new text) or ``"snapshot"`` (message = all text so far).
    """

    interval: float = Field(default=0.25, gt=0)
    heartbeat: float = Field(default=5.0, gt=0)
    mode: Literal["delta", "snapshot"] = "delta"


class StreamProfile(_Settings):
    """One named set of streaming settings (the resolved result of `StreamConfig.for_model`).

    `rxstream.operators.apply_config` applies, in order: timeouts, retry, coalesce, smooth
    (or ``chunk_delay_ms``), token buffering, the ``stream=False`` hold, then the pause valve.

    Attributes:
        description: Free text.
        stream: ``False`` for models that must not stream: the same request runs, its events
            are held and released at once when it ends (errors after the held events).
        chunk_delay_ms: > 0 paces text with ``smooth_text(delay=chunk_delay_ms / 1000)``
            (replacing ``smooth``'s pace, keeping its ``chunking``); 0: off.
        coalesce: `CoalesceSettings`, or ``None`` (off).
        smooth: `SmoothSettings`, or ``None`` (off).
        buffer_tokens: `TokenBufferSettings`, or ``None`` (off).
        timeouts: `TimeoutSettings`.
        retry: `RetrySettings`, or ``None`` (no retry).
        pause: `PauseSettings`.
        stats_interval: Seconds between `StreamStats` ticks for sinks that show them
            (``rso.stream_stats(profile.stats_interval)``); ``None``: only the final one.
        mcp: `McpSettings`.
    """

    description: str = ""
    stream: bool = True
    chunk_delay_ms: float = Field(default=0.0, ge=0)
    coalesce: CoalesceSettings | None = None
    smooth: SmoothSettings | None = None
    buffer_tokens: TokenBufferSettings | None = None
    timeouts: TimeoutSettings = TimeoutSettings()
    retry: RetrySettings | None = None
    pause: PauseSettings = PauseSettings()
    stats_interval: float | None = Field(default=None, gt=0)
    mcp: McpSettings = McpSettings()


SHIPPED_PROFILES: Mapping[str, Mapping[str, Any]] = {
    "interactive": {
        "description": "A person reads along in a terminal: small merges, quick failure, safe retries.",
        "coalesce": {"max_delay": 0.03},
        "timeouts": {"first_token": 30.0, "idle": 60.0},
        "retry": {"max_attempts": 3, "on_partial": "fail"},
        "stats_interval": 1.0,
    },
    "batch": {
        "description": "No one watches: no pacing, long limits, retries restart the answer.",
        "timeouts": {"first_token": 120.0, "idle": 120.0, "total": 1800.0},
        "retry": {"max_attempts": 5, "backoff": 1.0, "max_backoff": 60.0, "on_partial": "restart"},
    },
    "ui": {
        "description": "A browser or app renders it: one update per frame, word-paced text.",
        "coalesce": {"max_delay": 0.016},
        "smooth": {"delay": 0.01, "chunking": "word"},
        "timeouts": {"first_token": 30.0, "idle": 60.0},
        "retry": {"max_attempts": 3, "on_partial": "fail"},
        "stats_interval": 0.5,
    },
    "mcp": {
        "description": "An MCP tool call: progress notifications every 0.25 s, heartbeats, no pacing.",
        "timeouts": {"first_token": 60.0, "idle": 60.0, "total": 600.0},
        "retry": {"max_attempts": 2, "on_partial": "fail"},
        "mcp": {"interval": 0.25, "heartbeat": 5.0, "mode": "delta"},
    },
}
"""The profiles every `StreamConfig` has (a config file changes them field by field)."""


class ModelOverride(_Settings):
    """Settings that replace the profile's for one model (unset fields keep the profile's).

    The other fields (``stream``, ``chunk_delay_ms``, ``coalesce``, ``smooth``,
    ``buffer_tokens``, ``timeouts``, ``retry``, ``pause``, ``stats_interval``, ``mcp``) are as
    in `StreamProfile`; nested settings merge field by field.

    Attributes:
        profile: Use this profile instead of the requested one.
    """

    profile: str | None = None
    stream: bool | None = None
    chunk_delay_ms: float | None = Field(default=None, ge=0)
    coalesce: CoalesceSettings | None = None
    smooth: SmoothSettings | None = None
    buffer_tokens: TokenBufferSettings | None = None
    timeouts: TimeoutSettings | None = None
    retry: RetrySettings | None = None
    pause: PauseSettings | None = None
    stats_interval: float | None = Field(default=None, gt=0)
    mcp: McpSettings | None = None


class ProviderOverride(ModelOverride):
    """Overrides for every model of one provider, plus per-model overrides.

    Attributes:
        models: Model name, or an ``fnmatch`` pattern (``"claude-3-haiku*"``), → its
            overrides. An exact name wins over patterns; patterns are tried in file order.
    """

    models: dict[str, ModelOverride] = {}


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged


class StreamConfig(_Settings):
    """Streaming profiles and per-provider/per-model overrides (see the module docstring).

    Attributes:
        default_profile: The profile used when none is named (``"interactive"``).
        profiles: Name → `StreamProfile`; the shipped ``interactive``, ``batch``, ``ui`` and
            ``mcp`` are always there, and given values merge into them field by field.
        providers: Provider name (``anthropic``, ``openai``, ``openai-responses``,
            ``bedrock``, ``bedrock-invoke``, ``emulator``) → `ProviderOverride`.

    Raises:
        ConfigurationError: via `load` / `from_mapping`, for any invalid value or unknown key.

    Example:
        >>> cfg = StreamConfig.from_mapping({"providers": {"openai": {"models": {"o1*": {"stream": False}}}}})
        >>> cfg.for_model("openai", "o1-mini").stream
        False
    """

    default_profile: str = "interactive"
    profiles: dict[str, StreamProfile] = Field(default_factory=dict, validate_default=True)
    providers: dict[str, ProviderOverride] = {}

    @field_validator("profiles", mode="before")
    @classmethod
    def _with_shipped(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, Any] = {name: dict(p) for name, p in SHIPPED_PROFILES.items()}
        for name, given in value.items():
            if isinstance(given, StreamProfile):
                given = given.model_dump(exclude_unset=True)
            if isinstance(given, Mapping) and isinstance(merged.get(name), Mapping):
                merged[name] = _deep_merge(merged[name], given)
            else:
                merged[name] = given
        return merged

    @model_validator(mode="after")
    def _profiles_exist(self) -> StreamConfig:
        known = sorted(self.profiles)
        if self.default_profile not in self.profiles:
            raise ValueError(f"default_profile {self.default_profile!r} is not a profile (known: {known})")
        for provider, override in self.providers.items():
            named = [("", override), *((f".models.{m!r}", o) for m, o in override.models.items())]
            for where, o in named:
                if o.profile is not None and o.profile not in self.profiles:
                    raise ValueError(
                        f"providers.{provider}{where}.profile {o.profile!r} is not a profile (known: {known})"
                    )
        return self

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "<mapping>") -> StreamConfig:
        """Validate a config given as a mapping (e.g. parsed JSON).

        Args:
            data: The config's keys (``default_profile``, ``profiles``, ``providers``).
            origin: Where it came from, for error messages.

        Raises:
            ConfigurationError: naming ``origin``, the profile/provider and the field.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc, origin) from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *, env: bool = True) -> StreamConfig:
        """Load a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file, then ``RXSTREAM_*`` variables.

        Uses pydantic-settings' ``TomlConfigSettingsSource`` / ``YamlConfigSettingsSource``
        and ``EnvSettingsSource`` (``env_prefix="RXSTREAM_"``, ``env_nested_delimiter="__"``;
        pydantic-settings docs, "Other settings source" and "Parsing environment variable
        values"). Later sources win, nested tables merge.

        Args:
            path: The file; default: ``$RXSTREAM_CONFIG``, else no file (shipped profiles and
                environment only).
            env: Read ``RXSTREAM_*`` environment variables.

        Raises:
            ConfigurationError: the extra is missing, the file does not exist, cannot be
                parsed, or holds an invalid value (the message names the file, the profile
                and the field).
        """
        settings = require("pydantic_settings", "config")
        if path is None:
            path = os.environ.get("RXSTREAM_CONFIG") or None
        file = Path(path) if path is not None else None
        origin = str(file) if file is not None else "<environment>"
        if file is not None:
            if not file.is_file():
                raise ConfigurationError(f"config file {origin} does not exist")
            if file.suffix.lower() not in (".toml", ".yaml", ".yml"):
                raise ConfigurationError(f"config file {origin}: use a .toml, .yaml or .yml file")
            if file.suffix.lower() != ".toml":
                require("yaml", "config")

        def customise(
            loader_cls: type[Any],
            settings_cls: type[Any],
            init_settings: Any,
            env_settings: Any,
            dotenv_settings: Any,
            file_secret_settings: Any,
        ) -> tuple[Any, ...]:
            sources: list[Any] = [init_settings]  # first wins: init, environment, file
            if env:
                sources.append(env_settings)
            if file is not None and file.suffix.lower() == ".toml":
                sources.append(settings.TomlConfigSettingsSource(settings_cls, toml_file=file))
            elif file is not None:
                sources.append(settings.YamlConfigSettingsSource(settings_cls, yaml_file=file))
            return tuple(sources)

        loader = type(
            "_StreamConfigSettings",
            (settings.BaseSettings, cls),
            {
                "model_config": settings.SettingsConfigDict(
                    env_prefix="RXSTREAM_", env_nested_delimiter="__", extra="forbid", frozen=True
                ),
                "settings_customise_sources": classmethod(customise),
            },
        )
        unreadable: tuple[type[Exception], ...] = (ValueError, OSError, *_yaml_errors())
        try:
            loaded = loader()
        except ValidationError as exc:
            raise _config_error(exc, origin + (" + RXSTREAM_* environment" if env else "")) from exc
        except unreadable as exc:  # TOMLDecodeError and SettingsError are ValueErrors
            raise ConfigurationError(f"config file {origin} cannot be read: {exc}") from exc
        return cls.model_validate(loaded.model_dump(exclude_unset=True))

    @classmethod
    def load_default(cls, path: str | os.PathLike[str] | None = None) -> StreamConfig:
        """`load` when a file is named or the ``config`` extra is installed, else the shipped defaults.

        For programs (``rxstream run``/``mcp``) that honour ``--config``, ``$RXSTREAM_CONFIG``
        and ``RXSTREAM_*`` variables when they can, and still work without the extra.

        Raises:
            ConfigurationError: as `load` (a named file always needs the extra).
        """
        import importlib.util

        if path is None and importlib.util.find_spec("pydantic_settings") is None:
            return cls()
        return cls.load(path)

    # ------------------------------------------------------------------ resolution

    def profile(self, name: str | None = None) -> StreamProfile:
        """The named profile (default: ``default_profile``), without overrides.

        Raises:
            ConfigurationError: unknown profile name.
        """
        name = name or self.default_profile
        try:
            return self.profiles[name]
        except KeyError:
            raise ConfigurationError(f"unknown profile {name!r} (known: {sorted(self.profiles)})") from None

    def overrides_for(self, provider: str | None, model: str | None) -> list[ModelOverride]:
        """The overrides that apply to (provider, model), weakest first: provider, then model."""
        if provider is None or provider not in self.providers:
            return []
        by_provider = self.providers[provider]
        found: list[ModelOverride] = [by_provider]
        if model is not None:
            match = by_provider.models.get(model)
            if match is None:
                match = next(
                    (o for pattern, o in by_provider.models.items() if fnmatch.fnmatchcase(model, pattern)),
                    None,
                )
            if match is not None:
                found.append(match)
        return found

    def for_model(self, provider: str | None, model: str | None, profile: str | None = None) -> StreamProfile:
        """Resolve the settings for one provider and model.

        Order (later wins, nested settings merge field by field): the profile — ``profile``,
        else the one an override names (model over provider), else ``default_profile`` —
        then the provider's overrides, then the model's.

        Raises:
            ConfigurationError: unknown profile, or a merged value that is invalid.
        """
        overrides = self.overrides_for(provider, model)
        named = next((o.profile for o in reversed(overrides) if o.profile is not None), None)
        base = self.profile(profile or named)
        if not overrides:
            return base
        data = base.model_dump()
        for override in overrides:
            changes = override.model_dump(exclude_unset=True, exclude={"profile", "models"})
            data = _deep_merge(data, changes)
        try:
            return StreamProfile.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc, f"overrides of {provider}/{model}") from exc


def _yaml_errors() -> tuple[type[Exception], ...]:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return ()
    return (yaml.YAMLError,)


def _config_error(exc: ValidationError, origin: str) -> ConfigurationError:
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        where = ".".join(loc) or "<root>"
        context = ""
        if len(loc) >= 2 and loc[0] == "profiles":
            context = f" (profile {loc[1]!r}, field {'.'.join(loc[2:]) or '<profile>'})"
        elif len(loc) >= 2 and loc[0] == "providers":
            context = f" (provider {loc[1]!r}, field {'.'.join(loc[2:]) or '<provider>'})"
        value = error.get("input")
        shown = "" if isinstance(value, Mapping | list) else f", got {value!r}"
        lines.append(f"  {where}{context}: {error['msg']}{shown}")
    return ConfigurationError(f"invalid rxstream config in {origin}:\n" + "\n".join(lines))

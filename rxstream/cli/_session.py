"""Provider sessions for the CLI commands: pick a provider, open its SDK client (or the emulator).

Everything provider-specific comes from the registry (`rxstream.providers.get_spec`); this
module never compares provider names.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from reactivex import Observable

from rxstream._extras import require
from rxstream.errors import ConfigurationError
from rxstream.events import StreamEvent
from rxstream.providers import PROVIDER_NAMES, PROVIDERS, ProviderSpec, get_spec
from rxstream.response import Response

__all__ = [
    "EMULATOR_ALIAS",
    "PROVIDER_CHOICES",
    "Session",
    "SessionOptions",
    "announce",
    "console",
    "environment_help",
    "open_session",
    "pick_provider",
]

EMULATOR_ALIAS = "emulator"
"""``--provider emulator``: the Anthropic wire format on the embedded emulator."""

PROVIDER_CHOICES = (*PROVIDER_NAMES, EMULATOR_ALIAS)


@dataclass(frozen=True)
class SessionOptions:
    """What the user asked for on the command line.

    Attributes:
        provider: A `ProviderName`, ``"emulator"``, or ``None`` (first with credentials).
        model: Model id, or ``None`` for the provider's default.
        max_tokens: Output token limit.
        system: System prompt, if any.
        base_url: Server URL (Bedrock: endpoint URL), or ``None`` for the SDK default.
        force_emulator: Use the embedded emulator even when credentials exist.
    """

    provider: str | None = None
    model: str | None = None
    max_tokens: int = 1024
    system: str | None = None
    base_url: str | None = None
    force_emulator: bool = False


def pick_provider(
    requested: str | None, environ: Mapping[str, str] | None = None
) -> tuple[ProviderSpec, bool]:
    """Return the spec to use and whether the emulator was asked for by name.

    Without a request: the first provider (registry order) with credentials or a configured
    base URL, else Anthropic on the emulator.

    Raises:
        ConfigurationError: ``requested`` is not a provider name.
    """
    env = os.environ if environ is None else environ
    if requested == EMULATOR_ALIAS:
        return PROVIDERS["anthropic"], True
    if requested:
        return get_spec(requested), False
    for spec in PROVIDERS.values():
        if spec.has_credentials(env) or (spec.base_url_env and env.get(spec.base_url_env)):
            return spec, False
    return PROVIDERS["anthropic"], False


@dataclass
class Session:
    """One provider connection for the CLI: builds a stream for a chat history.

    Attributes:
        spec: The provider's registry entry.
        model: Model id sent.
        max_tokens: Output token limit sent.
        system: System prompt sent, if any.
        emulated: Whether the client talks to the embedded emulator.
        why_emulated: The reason shown in the notice, when emulated.
        client: The SDK client.
        host: ``host[:port]`` the client talks to (for connection errors).
        history: Earlier turns in the provider's message format.
    """

    spec: ProviderSpec
    model: str
    max_tokens: int
    system: str | None
    emulated: bool
    why_emulated: str | None
    client: Any
    host: str
    history: list[dict[str, Any]] = field(default_factory=list)
    emulator: Any = None  # the embedded ProviderEmulator when emulated (rxstream serve shows its records)

    @property
    def provider(self) -> str:
        """The provider name."""
        return self.spec.name

    def request(self, prompt: str) -> dict[str, Any]:
        """The source parameters answering ``prompt`` after the history."""
        return self.spec.request(
            prompt, model=self.model, history=self.history, max_tokens=self.max_tokens, system=self.system
        )

    def stream(self, prompt: str) -> Observable[StreamEvent]:
        """Return the cold stream answering ``prompt`` after the history."""
        return self.spec.stream(self.client, self.request(prompt))

    def remember(self, prompt: str, response: Response) -> None:
        """Add a completed turn to the history, in this provider's message format."""
        self.history.append(self.spec.user_message(prompt))
        self.history.extend(self.spec.render_assistant(response))


def _emulator(stack: contextlib.ExitStack) -> Any:
    require("uvicorn", "cli")
    from rxstream.testing import ProviderEmulator, ResponseScript
    from rxstream.testing.demo import demo_responder

    scripted = os.environ.get("RXSTREAM_EMULATOR_SCRIPT")
    if scripted:
        # A ResponseScript as JSON (a file path or inline JSON): e.g. to demo faults.
        from pathlib import Path

        raw = Path(scripted).read_text() if not scripted.lstrip().startswith("{") else scripted
        return stack.enter_context(ProviderEmulator(ResponseScript.model_validate_json(raw)))
    return stack.enter_context(ProviderEmulator(responder=demo_responder))


def _host_of(client: Any, fallback: str) -> str:
    url = getattr(client, "base_url", None) or getattr(getattr(client, "meta", None), "endpoint_url", None)
    parts = urlsplit(str(url or fallback))
    return parts.netloc or str(url or fallback)


def _make_client(spec: ProviderSpec, base_url: str | None, **options: Any) -> Any:
    """Build the SDK client; SDK configuration errors become one-line `ConfigurationError`s."""
    try:
        return spec.client(base_url, **options)
    except ConfigurationError:
        raise
    except Exception as exc:  # botocore ProfileNotFound / NoRegionError, openai OpenAIError, ...
        hint = ""
        if spec.region_env and "region" in str(exc).lower():
            hint = f" (set {' or '.join(spec.region_env)})"
        elif "profile" in str(exc).lower():
            hint = " (check AWS_PROFILE and ~/.aws/config)"
        raise ConfigurationError(f"{spec.name}: {exc}{hint}") from exc


@contextlib.contextmanager
def open_session(options: SessionOptions, environ: Mapping[str, str] | None = None) -> Iterator[Session]:
    """Create the SDK client for the chosen provider (on the emulator when there are no credentials).

    A provider without credentials runs on the embedded emulator, unless a base URL is
    configured (``--base-url`` or the SDK's base-URL variable): then the missing key is an
    error, never a silent switch to the emulator.

    Raises:
        ConfigurationError: Unknown provider, a base URL without credentials, no region
            (Bedrock), an SDK configuration error (e.g. an unknown AWS profile), missing extra.
    """
    env = os.environ if environ is None else environ
    spec, by_name = pick_provider(options.provider, env)
    base_url = options.base_url
    configured_url = base_url or (env.get(spec.base_url_env) if spec.base_url_env else None)
    why: str | None = None
    if options.force_emulator or by_name:
        why = "--emulator given" if options.force_emulator else "--provider emulator given"
    elif not spec.has_credentials(env):
        if configured_url:
            source = "--base-url" if base_url else spec.base_url_env
            raise ConfigurationError(
                f"{spec.name}: {source} is set but {' or '.join(spec.credential_env)} is not; "
                "set the key (any value for a local server) or pass --emulator"
            )
        why = f"no credentials found ({' or '.join(spec.credential_env)} not set)"
    with contextlib.ExitStack() as stack:
        emu: Any = None
        if why is not None:
            emu = _emulator(stack)
            client = emu.client(spec.name)
        else:
            problem = None if base_url else spec.region_problem(env)
            if problem:
                raise ConfigurationError(problem)
            client = _make_client(spec, base_url)
        closer = getattr(client, "close", None)
        if callable(closer):
            stack.callback(closer)
        yield Session(
            spec=spec,
            model=options.model or spec.default_model,
            max_tokens=options.max_tokens,
            system=options.system,
            emulated=why is not None,
            why_emulated=why,
            client=client,
            host=_host_of(client, configured_url or spec.name),
            emulator=emu,
        )


def console(*, stderr: bool = False, plain: bool = False) -> Any:
    """A rich console on stdout (or stderr); ``plain`` disables colour and markup highlighting."""
    rich_console = require("rich.console", "cli")
    return rich_console.Console(
        highlight=False,
        file=sys.stderr if stderr else sys.stdout,
        no_color=plain or None,
        soft_wrap=plain,
    )


def announce(console: Any, session: Session) -> None:
    """Print the one-line notice that the embedded emulator answers (nothing otherwise)."""
    if session.emulated:
        console.print(
            f"[dim]{session.why_emulated}: using the embedded emulator "
            f"({session.provider} wire format, official SDK, 127.0.0.1)[/dim]"
        )


def environment_help() -> str:
    """The environment variables of every provider, for ``--help``."""
    lines = ["environment variables:"]
    for spec in PROVIDERS.values():
        names = [*spec.credential_env, *spec.region_env, *([spec.base_url_env] if spec.base_url_env else [])]
        lines.append(f"  {spec.name:<17} {', '.join(dict.fromkeys(names))}")
    lines.append("  RXSTREAM_EMULATOR_SCRIPT  a ResponseScript (JSON, inline or a file) for the emulator")
    lines.append("A provider without credentials runs on the embedded emulator and says so on stderr.")
    return "\n".join(lines)

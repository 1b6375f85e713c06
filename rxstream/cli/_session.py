"""Provider sessions for the CLI commands: pick a provider, open its SDK client (or the emulator)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reactivex import Observable

from rxstream._extras import require
from rxstream.events import StreamEvent
from rxstream.response import Response

__all__ = ["DEFAULT_MODELS", "PROVIDERS", "Session", "announce", "console", "open_session", "pick_provider"]

PROVIDERS = ("anthropic", "openai", "openai-responses", "bedrock", "bedrock-invoke", "emulator")

DEFAULT_MODELS = {
    "anthropic": "claude-sonnet-4-5",
    "openai": "gpt-4.1-mini",
    "openai-responses": "gpt-4.1-mini",
    "bedrock": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "bedrock-invoke": "anthropic.claude-3-5-haiku-20241022-v1:0",
    "emulator": "emulator-1",
}


def _has_credentials(provider: str) -> bool:
    if provider == "anthropic":
        return bool(os.environ.get("ANTHROPIC_API_KEY"))
    if provider in ("openai", "openai-responses"):
        return bool(os.environ.get("OPENAI_API_KEY"))
    if provider in ("bedrock", "bedrock-invoke"):
        return bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))
    return False


def pick_provider(requested: str | None) -> str:
    if requested:
        return requested
    for provider in ("anthropic", "openai"):
        if _has_credentials(provider):
            return provider
    return "emulator"


@dataclass
class Session:
    """One provider connection for the CLI: builds a stream for a chat history."""

    provider: str
    model: str
    max_tokens: int
    emulated: bool
    client: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    emulator: Any = None  # the embedded ProviderEmulator when emulated (rxstream serve shows its records)

    def stream(self, prompt: str) -> Observable[StreamEvent]:
        """Return the cold stream answering ``prompt`` after the history."""
        import rxstream

        wire = "anthropic" if self.provider == "emulator" else self.provider
        if wire == "anthropic":
            messages = [*self.history, {"role": "user", "content": prompt}]
            return rxstream.from_anthropic(
                self.client, model=self.model, max_tokens=self.max_tokens, messages=messages
            )
        if wire == "openai":
            messages = [*self.history, {"role": "user", "content": prompt}]
            return rxstream.from_openai(
                self.client, model=self.model, max_completion_tokens=self.max_tokens, messages=messages
            )
        if wire == "openai-responses":
            from rxstream.providers.openai_responses import from_openai_responses

            items = [*self.history, {"role": "user", "content": prompt}]
            return from_openai_responses(
                self.client, model=self.model, max_output_tokens=self.max_tokens, input=items
            )
        if wire == "bedrock":
            from rxstream.providers.bedrock import from_bedrock

            messages = [*self.history, {"role": "user", "content": [{"text": prompt}]}]
            return from_bedrock(
                self.client,
                modelId=self.model,
                messages=messages,
                inferenceConfig={"maxTokens": self.max_tokens},
            )
        import json

        from rxstream.providers.bedrock import from_bedrock_invoke

        messages = [*self.history, {"role": "user", "content": prompt}]
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": self.max_tokens,
            "messages": messages,
        }
        return from_bedrock_invoke(self.client, modelId=self.model, body=json.dumps(body))

    def remember(self, prompt: str, response: Response) -> None:
        """Add a completed turn to the history, in this provider's message format."""
        wire = "anthropic" if self.provider in ("emulator", "bedrock-invoke") else self.provider
        if wire == "bedrock":
            self.history.append({"role": "user", "content": [{"text": prompt}]})
            self.history.append(response.to_message("bedrock"))
        elif wire == "openai-responses":
            self.history.append({"role": "user", "content": prompt})
            self.history.extend(response.to_responses_input_items())
        else:
            self.history.append({"role": "user", "content": prompt})
            self.history.append(response.to_message("openai" if wire == "openai" else "anthropic"))


@contextlib.contextmanager
def open_session(
    provider: str, model: str | None, max_tokens: int, force_emulator: bool
) -> Iterator[Session]:
    """Create the SDK client for ``provider`` (on the emulator when there are no credentials)."""
    emulated = force_emulator or provider == "emulator" or not _has_credentials(provider)
    model = model or DEFAULT_MODELS[provider]
    with contextlib.ExitStack() as stack:
        base_url: str | None = None
        endpoint_url: str | None = None
        emu: Any = None
        if emulated:
            require("uvicorn", "cli")
            from rxstream.testing import ProviderEmulator
            from rxstream.testing.demo import demo_responder

            scripted = os.environ.get("RXSTREAM_EMULATOR_SCRIPT")
            if scripted:
                # A ResponseScript as JSON (a file path or inline JSON): e.g. to demo faults.
                from pathlib import Path

                from rxstream.testing import ResponseScript

                raw = Path(scripted).read_text() if not scripted.lstrip().startswith("{") else scripted
                emu = stack.enter_context(ProviderEmulator(ResponseScript.model_validate_json(raw)))
            else:
                emu = stack.enter_context(ProviderEmulator(responder=demo_responder))
            base_url = (
                emu.anthropic_base_url if provider in ("anthropic", "emulator") else emu.openai_base_url
            )
            endpoint_url = emu.bedrock_endpoint_url
        if provider in ("anthropic", "emulator"):
            anthropic = require("anthropic", "anthropic")
            key = "sk-ant-emulator" if emulated else None
            client: Any = (
                anthropic.Anthropic(api_key=key, base_url=base_url) if emulated else anthropic.Anthropic()
            )
        elif provider in ("openai", "openai-responses"):
            openai = require("openai", "openai")
            client = openai.OpenAI(api_key="sk-emulator", base_url=base_url) if emulated else openai.OpenAI()
        else:
            boto3 = require("boto3", "bedrock")
            if emulated:
                client = boto3.client(
                    "bedrock-runtime",
                    endpoint_url=endpoint_url,
                    region_name="us-east-1",
                    aws_access_key_id="emulator",
                    aws_secret_access_key="emulator",
                )
            else:
                client = boto3.client("bedrock-runtime")
        yield Session(
            provider=provider,
            model=model,
            max_tokens=max_tokens,
            emulated=emulated,
            client=client,
            emulator=emu,
        )


def console() -> Any:
    rich_console = require("rich.console", "cli")
    return rich_console.Console(highlight=False)


def announce(console: Any, session: Session) -> None:
    if session.emulated:
        why = "no API key found" if not _has_credentials(session.provider) else "--emulator given"
        wire = "anthropic" if session.provider == "emulator" else session.provider
        console.print(
            f"[dim]{why}: using the embedded emulator ({wire} wire format, official SDK, 127.0.0.1)[/dim]"
        )

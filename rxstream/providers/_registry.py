"""The provider registry: one `ProviderSpec` per wire API, the only place that knows them all.

Everything that differs between providers *outside* the stream itself lives here: the name
(`ProviderName`, the value of `rxstream.events.StreamStart.provider`), the pip extra, the
default model, the credentials it reads, how to build its SDK client (sync and async, with a
``base_url``), how to build a request from a prompt and a history, how to render a finished
`rxstream.Response` back into that history, and its source function. The tool hooks
(``render_tools``, ``render_tool_results``, ``disable_tools``) are the renderers of
`rxstream.providers._tool_wire` (each cites the provider doc section of its shape), used by
`rxstream.tool_loop`.

Callers (CLI, `rxstream.Response.to_message`, the emulator's routes, tests, benchmarks) look a
spec up with `get_spec` and never compare provider names themselves.

Example:
    >>> from rxstream.providers import get_spec
    >>> spec = get_spec("openai")
    >>> spec.request("Hi", model="gpt-4.1-mini", max_tokens=64)["max_completion_tokens"]
    64
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, cast, get_args

from reactivex import Observable, abc

from rxstream._extras import require
from rxstream.errors import ConfigurationError
from rxstream.events import ProviderName
from rxstream.providers import _tool_wire as tw

if TYPE_CHECKING:
    from rxstream.events import StreamEvent
    from rxstream.response import Response

__all__ = ["PROVIDERS", "PROVIDER_NAMES", "ProviderName", "ProviderSpec", "get_spec"]


PROVIDER_NAMES: tuple[ProviderName, ...] = get_args(ProviderName)
"""Every `ProviderName`, in registry order."""

Message: TypeAlias = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    """Everything rxstream knows about one wire API, outside the stream itself.

    Attributes:
        name: The `ProviderName` (``StreamStart.provider`` of its streams).
        title: Human name, e.g. ``"Anthropic Messages"``.
        extra: The pip extra that installs its SDK (``pip install 'rxstream[EXTRA]'``).
        sdk_module: The SDK's import name (``anthropic``, ``openai``, ``boto3``).
        default_model: Model used when none is given (CLI, examples).
        credential_env: Environment variables that hold its credentials; any one suffices.
            Named in error messages.
        setting_env: Other environment variables it reads, for ``--help``.
        base_url_env: The environment variable the SDK reads its base URL from, if any
            (``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``, ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``).
        region_env: Environment variables that name the region, for APIs that need one
            (Bedrock: ``AWS_REGION``, ``AWS_DEFAULT_REGION``); empty otherwise.
        base_path: Path the SDK's ``base_url`` ends with on a server root (``"/v1"`` for
            OpenAI, whose SDK appends ``/chat/completions`` to ``.../v1``; ``""`` otherwise).
        route: The HTTP path of its streaming call (``{modelId}`` stands for the model).
        client_options_emulated: Extra client options that make the SDK talk to a loopback
            emulator (dummy key, region).
        entry_point: The source function, ``entry_point(client, scheduler=None, **params)``.
        make_client: ``make_client(base_url, max_retries, **options)`` builds the sync SDK
            client (see `client`).
        make_async_client: Same for the async client; ``None`` when the SDK has none (boto3).
        build_request: ``build_request(messages, model, max_tokens, system)`` returns the
            source's ``**params`` for a complete message list.
        user_message: Renders a user prompt as one history message.
        render_assistant: Renders a finished `Response` as the history items of its turn.
        http_body: The JSON body the SDK sends for the source's ``**params`` (for recording
            and replaying raw wire bytes; SDK-only options such as ``extra_headers`` are not
            expected).
        render_tools: Hook for the tool loop: ``render_tools(tools) -> request params``
            (tools with ``name``, ``description``, ``input_schema``).
        render_tool_results: Hook for the tool loop: ``render_tool_results(results) -> history
            items`` (`rxstream.events.ToolResult` values, in the model's call order).
        disable_tools: Hook for the tool loop: ``disable_tools(params) -> params`` that forbid
            tool calls for that one request (the provider's ``tool_choice`` "none").
    """

    name: ProviderName
    title: str
    extra: str
    sdk_module: str
    default_model: str
    credential_env: tuple[str, ...]
    setting_env: tuple[str, ...] = ()
    base_url_env: str | None = None
    region_env: tuple[str, ...] = ()
    base_path: str = ""
    route: str
    client_options_emulated: Mapping[str, Any] = field(default_factory=dict)
    entry_point: Callable[..., Observable[StreamEvent]]
    make_client: Callable[..., Any]
    make_async_client: Callable[..., Any] | None = None
    build_request: Callable[[list[Message], str, int, str | None], dict[str, Any]]
    user_message: Callable[[str], Message]
    render_assistant: Callable[[Response], list[Message]]
    http_body: Callable[[dict[str, Any]], dict[str, Any]]
    render_tools: Callable[..., Any] | None = None
    render_tool_results: Callable[..., Any] | None = None
    disable_tools: Callable[..., Any] | None = None

    # -- credentials -------------------------------------------------------------

    def has_credentials(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether one of `credential_env` is set and non-empty (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        return any(env.get(name) for name in self.credential_env)

    def missing_credentials_message(self) -> str:
        """A one-line hint naming the environment variables to set."""
        return f"{self.name}: no credentials found; set {' or '.join(self.credential_env)}"

    def region_problem(self, environ: Mapping[str, str] | None = None) -> str | None:
        """A one-line hint when the API needs a region and none is configured, else ``None``.

        Looks at `region_env`, then the SDK's own configuration files (boto3's session reads
        ``~/.aws/config``; no network).
        """
        if not self.region_env:
            return None
        env = os.environ if environ is None else environ
        if any(env.get(name) for name in self.region_env):
            return None
        try:
            boto3 = require("boto3", self.extra)
            if boto3.session.Session().region_name:
                return None
        except Exception:  # e.g. AWS_PROFILE names a profile that does not exist
            pass
        return f"{self.name}: no AWS region configured; set {' or '.join(self.region_env)}"

    # -- clients -----------------------------------------------------------------

    def client(self, base_url: str | None = None, *, max_retries: int | None = None, **options: Any) -> Any:
        """Build the sync SDK client (``anthropic.Anthropic``, ``openai.OpenAI``, boto3 client).

        Args:
            base_url: Server root URL, or ``None`` for the SDK's default (its env vars apply).
                For OpenAI, give the URL ending in ``/v1``; for Bedrock it is ``endpoint_url``.
            max_retries: Retries of the initial request, in the SDK's own option
                (``max_retries``; boto3 ``Config(retries={"total_max_attempts": n + 1})``);
                ``None`` keeps the SDK default.
            **options: Passed to the SDK constructor (``api_key``, ``region_name``, ...).

        Raises:
            ConfigurationError: The SDK is not installed (names the extra).
        """
        return self.make_client(base_url, max_retries, **options)

    def async_client(
        self, base_url: str | None = None, *, max_retries: int | None = None, **options: Any
    ) -> Any:
        """Build the async SDK client (``AsyncAnthropic``, ``AsyncOpenAI``); see `client`.

        Raises:
            ConfigurationError: The SDK has no async client (boto3), or is not installed.
        """
        if self.make_async_client is None:
            raise ConfigurationError(f"{self.name} has no async client; use a sync client")
        return self.make_async_client(base_url, max_retries, **options)

    # -- requests and history ----------------------------------------------------

    def request(
        self,
        prompt: str,
        *,
        model: str | None = None,
        history: Sequence[Message] = (),
        max_tokens: int = 1024,
        system: str | None = None,
    ) -> dict[str, Any]:
        """The source's ``**params`` for ``prompt`` after ``history``.

        Args:
            prompt: The user message text.
            model: Model id (default `default_model`).
            history: Earlier turns, as built by `user_message` and `render_assistant`.
            max_tokens: Output token limit (each API's own field name is used).
            system: System prompt, if any.

        Returns:
            Keyword arguments for `entry_point` (besides the client).
        """
        messages = [*history, self.user_message(prompt)]
        return self.build_request(messages, model or self.default_model, max_tokens, system)

    def stream(
        self, client: Any, params: Mapping[str, Any], *, scheduler: abc.SchedulerBase | None = None
    ) -> Observable[StreamEvent]:
        """Call `entry_point` (the cold source) with ``client`` and ``params``."""
        return self.entry_point(client, scheduler=scheduler, **params)

    def assistant_message(self, response: Response) -> Message:
        """The single assistant message of ``response`` (first item of `render_assistant`).

        For ``openai-responses``, tool calls are separate input items: use `render_assistant`.
        """
        for item in self.render_assistant(response):
            if item.get("role") == "assistant":
                return item
        return {"role": "assistant", "content": ""}


# -- Anthropic Messages ------------------------------------------------------------------------
# Request: https://docs.anthropic.com/en/api/messages (model, max_tokens, messages, system).


def _anthropic_client(base_url: str | None, max_retries: int | None, **options: Any) -> Any:
    sdk = require("anthropic", "anthropic")
    if max_retries is not None:
        options["max_retries"] = max_retries
    return sdk.Anthropic(base_url=base_url, **options)


def _anthropic_async_client(base_url: str | None, max_retries: int | None, **options: Any) -> Any:
    sdk = require("anthropic", "anthropic")
    if max_retries is not None:
        options["max_retries"] = max_retries
    return sdk.AsyncAnthropic(base_url=base_url, **options)


def _anthropic_request(
    messages: list[Message], model: str, max_tokens: int, system: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        params["system"] = system
    return params


def _anthropic_assistant(response: Response) -> list[Message]:
    """Messages API content blocks: thinking (with signature), text, tool_use."""
    blocks: list[dict[str, Any]] = []
    if response.thinking or response.thinking_signature:
        blocks.append(
            {
                "type": "thinking",
                "thinking": response.thinking,
                "signature": response.thinking_signature or "",
            }
        )
    if response.text:
        blocks.append({"type": "text", "text": response.text})
    blocks.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in response.tool_calls
    )
    return [{"role": "assistant", "content": blocks}]


def _plain_user(prompt: str) -> Message:
    return {"role": "user", "content": prompt}


# -- OpenAI Chat Completions -----------------------------------------------------------------
# Request: https://platform.openai.com/docs/api-reference/chat/create (max_completion_tokens).


def _openai_client(base_url: str | None, max_retries: int | None, **options: Any) -> Any:
    sdk = require("openai", "openai")
    if max_retries is not None:
        options["max_retries"] = max_retries
    return sdk.OpenAI(base_url=base_url, **options)


def _openai_async_client(base_url: str | None, max_retries: int | None, **options: Any) -> Any:
    sdk = require("openai", "openai")
    if max_retries is not None:
        options["max_retries"] = max_retries
    return sdk.AsyncOpenAI(base_url=base_url, **options)


def _openai_request(
    messages: list[Message], model: str, max_tokens: int, system: str | None
) -> dict[str, Any]:
    if system:
        messages = [{"role": "system", "content": system}, *messages]
    return {"model": model, "max_completion_tokens": max_tokens, "messages": messages}


def _openai_assistant(response: Response) -> list[Message]:
    """Chat assistant message: ``content`` plus ``tool_calls`` (function name, JSON arguments)."""
    message: dict[str, Any] = {"role": "assistant", "content": response.text or None}
    if response.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(c.arguments)},
            }
            for c in response.tool_calls
        ]
    return [message]


# -- OpenAI Responses ---------------------------------------------------------------------------
# Request: https://platform.openai.com/docs/api-reference/responses/create (input,
# instructions, max_output_tokens); function calls go back as ``function_call`` input items
# (https://platform.openai.com/docs/guides/function-calling).


def _responses_request(
    messages: list[Message], model: str, max_tokens: int, system: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model, "max_output_tokens": max_tokens, "input": messages}
    if system:
        params["instructions"] = system
    return params


def _responses_assistant(response: Response) -> list[Message]:
    items: list[dict[str, Any]] = []
    if response.text:
        items.append({"role": "assistant", "content": response.text})
    items.extend(
        {
            "type": "function_call",
            "call_id": c.id,
            "name": c.name,
            "arguments": c.raw_arguments or json.dumps(c.arguments),
        }
        for c in response.tool_calls
    )
    return items


# -- Bedrock ------------------------------------------------------------------------------------
# ConverseStream request: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
# InvokeModelWithResponseStream body for Claude: the Anthropic Messages body with
# ``anthropic_version: bedrock-2023-05-31`` (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html).

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"


def _bedrock_client(base_url: str | None, max_retries: int | None, **options: Any) -> Any:
    boto3 = require("boto3", "bedrock")
    if base_url is not None:
        options["endpoint_url"] = base_url
    if (
        "region_name" not in options
        and not os.environ.get("AWS_DEFAULT_REGION")
        and os.environ.get("AWS_REGION")
    ):
        options["region_name"] = os.environ["AWS_REGION"]  # botocore itself reads only AWS_DEFAULT_REGION
    if max_retries is not None:
        from botocore.config import Config

        retries = Config(retries={"total_max_attempts": max_retries + 1})
        options["config"] = options["config"].merge(retries) if "config" in options else retries
    return boto3.client("bedrock-runtime", **options)


def _converse_request(
    messages: list[Message], model: str, max_tokens: int, system: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "modelId": model,
        "messages": messages,
        "inferenceConfig": {"maxTokens": max_tokens},
    }
    if system:
        params["system"] = [{"text": system}]
    return params


def _converse_user(prompt: str) -> Message:
    return {"role": "user", "content": [{"text": prompt}]}


def _converse_assistant(response: Response) -> list[Message]:
    """Converse content blocks: reasoningContent, text, toolUse."""
    content: list[dict[str, Any]] = []
    if response.thinking or response.thinking_signature:
        reasoning: dict[str, Any] = {"text": response.thinking}
        if response.thinking_signature:
            reasoning["signature"] = response.thinking_signature
        content.append({"reasoningContent": {"reasoningText": reasoning}})
    if response.text:
        content.append({"text": response.text})
    content.extend(
        {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}} for c in response.tool_calls
    )
    return [{"role": "assistant", "content": content}]


def _invoke_request(
    messages: list[Message], model: str, max_tokens: int, system: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "anthropic_version": BEDROCK_ANTHROPIC_VERSION,
        "max_tokens": max_tokens,
        "messages": messages,
    }
    if system:
        body["system"] = system
    return {"modelId": model, "body": json.dumps(body, ensure_ascii=False)}


def _streaming_body(params: dict[str, Any]) -> dict[str, Any]:
    return {**params, "stream": True}


def _converse_body(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "modelId"}  # the model id is in the path


def _invoke_body(params: dict[str, Any]) -> dict[str, Any]:
    body = params["body"]
    return dict(body) if isinstance(body, dict) else cast(dict[str, Any], json.loads(body))


def _entry(module: str, function: str) -> Callable[..., Observable[StreamEvent]]:
    """The source function ``module.function``, imported on first call (avoids an import cycle)."""

    def call(
        client: Any, scheduler: abc.SchedulerBase | None = None, **params: Any
    ) -> Observable[StreamEvent]:
        import importlib

        target = getattr(importlib.import_module(f"rxstream.providers.{module}"), function)
        return cast("Observable[StreamEvent]", target(client, scheduler=scheduler, **params))

    call.__name__ = function
    call.__qualname__ = function
    return call


_OPENAI_EMULATED = {"api_key": "sk-emulator"}
_BEDROCK_EMULATED = {
    "region_name": "us-east-1",
    "aws_access_key_id": "emulator",
    "aws_secret_access_key": "emulator",
}
_BEDROCK_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK")
_BEDROCK_SETTINGS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_BEDROCK_REGION = ("AWS_REGION", "AWS_DEFAULT_REGION")
_BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"

PROVIDERS: dict[ProviderName, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="anthropic",
            title="Anthropic Messages",
            extra="anthropic",
            sdk_module="anthropic",
            default_model="claude-sonnet-4-5",
            credential_env=("ANTHROPIC_API_KEY",),
            base_url_env="ANTHROPIC_BASE_URL",
            route="/v1/messages",
            client_options_emulated={"api_key": "sk-ant-emulator"},
            entry_point=_entry("anthropic", "from_anthropic"),
            make_client=_anthropic_client,
            make_async_client=_anthropic_async_client,
            build_request=_anthropic_request,
            user_message=_plain_user,
            render_assistant=_anthropic_assistant,
            http_body=_streaming_body,
            render_tools=tw.anthropic_render_tools,
            render_tool_results=tw.anthropic_render_tool_results,
            disable_tools=tw.anthropic_disable_tools,
        ),
        ProviderSpec(
            name="openai",
            title="OpenAI Chat Completions",
            extra="openai",
            sdk_module="openai",
            default_model="gpt-4.1-mini",
            credential_env=("OPENAI_API_KEY",),
            base_url_env="OPENAI_BASE_URL",
            base_path="/v1",
            route="/v1/chat/completions",
            client_options_emulated=_OPENAI_EMULATED,
            entry_point=_entry("openai_chat", "from_openai"),
            make_client=_openai_client,
            make_async_client=_openai_async_client,
            build_request=_openai_request,
            user_message=_plain_user,
            render_assistant=_openai_assistant,
            http_body=_streaming_body,
            render_tools=tw.chat_render_tools,
            render_tool_results=tw.chat_render_tool_results,
            disable_tools=tw.openai_disable_tools,
        ),
        ProviderSpec(
            name="openai-responses",
            title="OpenAI Responses",
            extra="openai",
            sdk_module="openai",
            default_model="gpt-4.1-mini",
            credential_env=("OPENAI_API_KEY",),
            base_url_env="OPENAI_BASE_URL",
            base_path="/v1",
            route="/v1/responses",
            client_options_emulated=_OPENAI_EMULATED,
            entry_point=_entry("openai_responses", "from_openai_responses"),
            make_client=_openai_client,
            make_async_client=_openai_async_client,
            build_request=_responses_request,
            user_message=_plain_user,
            render_assistant=_responses_assistant,
            http_body=_streaming_body,
            render_tools=tw.responses_render_tools,
            render_tool_results=tw.responses_render_tool_results,
            disable_tools=tw.openai_disable_tools,
        ),
        ProviderSpec(
            name="bedrock",
            title="AWS Bedrock ConverseStream",
            extra="bedrock",
            sdk_module="boto3",
            default_model=_BEDROCK_MODEL,
            credential_env=_BEDROCK_CREDENTIALS,
            setting_env=_BEDROCK_SETTINGS,
            base_url_env="AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
            region_env=_BEDROCK_REGION,
            route="/model/{modelId}/converse-stream",
            client_options_emulated=_BEDROCK_EMULATED,
            entry_point=_entry("bedrock", "from_bedrock"),
            make_client=_bedrock_client,
            build_request=_converse_request,
            user_message=_converse_user,
            render_assistant=_converse_assistant,
            http_body=_converse_body,
            render_tools=tw.converse_render_tools,
            render_tool_results=tw.converse_render_tool_results,
            disable_tools=tw.converse_disable_tools,
        ),
        ProviderSpec(
            name="bedrock-invoke",
            title="AWS Bedrock InvokeModelWithResponseStream (Anthropic models)",
            extra="bedrock",
            sdk_module="boto3",
            default_model=_BEDROCK_MODEL,
            credential_env=_BEDROCK_CREDENTIALS,
            setting_env=_BEDROCK_SETTINGS,
            base_url_env="AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
            region_env=_BEDROCK_REGION,
            route="/model/{modelId}/invoke-with-response-stream",
            client_options_emulated=_BEDROCK_EMULATED,
            entry_point=_entry("bedrock", "from_bedrock_invoke"),
            make_client=_bedrock_client,
            build_request=_invoke_request,
            user_message=_plain_user,
            render_assistant=_anthropic_assistant,
            http_body=_invoke_body,
            render_tools=tw.anthropic_render_tools,
            render_tool_results=tw.anthropic_render_tool_results,
            disable_tools=tw.invoke_disable_tools,
        ),
    )
}
"""Every `ProviderSpec`, keyed by `ProviderName`."""


def get_spec(name: str) -> ProviderSpec:
    """Return the `ProviderSpec` of ``name``.

    Raises:
        ConfigurationError: ``name`` is not a `ProviderName` (the message lists them).
    """
    spec = PROVIDERS.get(name)  # type: ignore[call-overload]
    if spec is None:
        raise ConfigurationError(f"unknown provider {name!r}; choose one of {', '.join(PROVIDER_NAMES)}")
    return cast(ProviderSpec, spec)

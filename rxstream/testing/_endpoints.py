"""The provider addresses of a loopback test server (shared by the emulator and `RawBytesServer`).

Both servers answer every wire API on one ``http://HOST:PORT``; what differs per provider is
the path the SDK expects in front of its routes, which the registry knows
(`rxstream.providers.ProviderSpec.base_path`, e.g. ``/v1`` for OpenAI).
"""

from __future__ import annotations

from typing import Any

from rxstream.providers import get_spec

__all__ = ["ProviderEndpoints"]


class ProviderEndpoints:
    """Mixin: ``base_url(provider)``, ``client(provider)`` and the ``*_base_url`` properties.

    The class using it provides ``url`` (``http://HOST:PORT``, raising `RuntimeError` before
    the server started).
    """

    @property
    def url(self) -> str:  # pragma: no cover - provided by the server class
        raise NotImplementedError

    def base_url(self, provider: str) -> str:
        """The SDK ``base_url`` (Bedrock: ``endpoint_url``) for ``provider``'s client.

        ``url`` plus the provider's `rxstream.providers.ProviderSpec.base_path`, e.g.
        ``http://127.0.0.1:PORT/v1`` for OpenAI.

        Raises:
            rxstream.errors.ConfigurationError: ``provider`` is not a `ProviderName`.
            RuntimeError: Before the server started.
        """
        return self.url + get_spec(provider).base_path

    def client(self, provider: str, *, asynchronous: bool = False, **options: Any) -> Any:
        """The official SDK client of ``provider``, pointed at this server, without retries.

        Built by the registry (`rxstream.providers.ProviderSpec.client`) with dummy
        credentials; close it when done (``client.close()``, or ``await client.close()``).

        Args:
            provider: A `rxstream.events.ProviderName`.
            asynchronous: Build the async client (``AsyncAnthropic``, ``AsyncOpenAI``).
            **options: More SDK constructor options (override the defaults).

        Raises:
            rxstream.errors.ConfigurationError: Unknown provider, SDK not installed, or no
                async client for ``provider``.

        Example:
            >>> with ProviderEmulator() as emu:  # doctest: +SKIP
            ...     client = emu.client("openai")
        """
        spec = get_spec(provider)
        options = {"max_retries": 0, **spec.client_options_emulated, **options}
        factory = spec.async_client if asynchronous else spec.client
        return factory(self.base_url(provider), **options)

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.Anthropic`` (the SDK appends ``/v1/messages``)."""
        return self.base_url("anthropic")

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI`` (``url + "/v1"``, as the SDK expects)."""
        return self.base_url("openai")

    @property
    def bedrock_endpoint_url(self) -> str:
        """``endpoint_url`` for ``boto3.client("bedrock-runtime", ...)``."""
        return self.base_url("bedrock")

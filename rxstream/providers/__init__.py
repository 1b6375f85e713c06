"""Provider sources: one module per wire API (transport shell + pure normaliser + error map).

The registry (`PROVIDERS`, `get_spec`, `ProviderSpec`, `ProviderName`) holds what each wire
API needs outside its stream: client factory, request builder, history rendering, credentials.

Example:
    >>> from rxstream.providers import PROVIDERS, get_spec
    >>> get_spec("bedrock").credential_env[0]
    'AWS_ACCESS_KEY_ID'
    >>> sorted(PROVIDERS)[0]
    'anthropic'
"""

from rxstream.providers._registry import PROVIDER_NAMES, PROVIDERS, ProviderName, ProviderSpec, get_spec

__all__ = ["PROVIDERS", "PROVIDER_NAMES", "ProviderName", "ProviderSpec", "get_spec"]

"""``publish_to_redis``: the operator's facade entry; the body lives in `rxstream.sinks.redis`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rxstream.errors import PublishError

if TYPE_CHECKING:
    from rxstream.sinks.redis import RedisPublisher

__all__ = ["publish_to_redis"]


def publish_to_redis(
    redis: Any,
    key: str,
    *,
    maxlen: int | None = 10_000,
    ttl: float | None = 3600,
    on_publish_error: Callable[[PublishError], None] | None = None,
) -> RedisPublisher:
    """Pass events through and append each one to the Redis Stream ``key``.

    ``Observable[StreamEvent] -> Observable[StreamEvent]``; see
    `rxstream.sinks.redis.publish_to_redis` for the entry format, the writer and the
    publish-error channel (``on_publish_error`` and the returned operator's ``errors``).

    Args:
        redis: A ``redis.Redis`` or ``redis.asyncio.Redis`` client.
        key: The Redis Stream key.
        maxlen: Approximate cap on the stream length (``MAXLEN ~``); ``None``: no trimming.
        ttl: Seconds the key lives after the terminal entry; ``None``: forever.
        on_publish_error: Called with the `rxstream.errors.PublishError` when writing fails.

    Returns:
        A `rxstream.sinks.redis.RedisPublisher` (an operator function for ``pipe``).

    Raises:
        ConfigurationError: at call time, for a missing extra (``rxstream[redis]``) or bad
            arguments.

    Example:
        >>> stream.pipe(rso.publish_to_redis(client, "answer:42"), rso.final()).run()  # doctest: +SKIP
    """
    from rxstream.sinks.redis import publish_to_redis as publish

    return publish(redis, key, maxlen=maxlen, ttl=ttl, on_publish_error=on_publish_error)

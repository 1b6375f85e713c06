"""Resumable, multi-machine streams on Redis Streams (extra ``rxstream[redis]``).

``rso.publish_to_redis(redis, key)`` appends a stream's events to a Redis Stream as they
pass; ``rxs.from_redis(redis, key, after_seq=None)`` reads them back in any process, resuming
after the last ``seq`` it saw. Entry format, errors and scheduling: `rxstream.sinks.redis`.
"""

from __future__ import annotations

from rxstream.sinks.redis import RedisPublisher, from_redis, publish_to_redis

__all__ = ["RedisPublisher", "from_redis", "publish_to_redis"]

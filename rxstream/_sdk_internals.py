"""Every read of another library's private internals, in one place, each one canary-tested.

rxstream reaches past public APIs only where none gives what a guarantee needs: disposal must
shut the socket of a request still waiting for its response headers (no SDK exposes the
connection before the response exists), and an operator must know which asyncio loop a
reactivex ``AsyncIOScheduler`` runs on (reactivex 6.1 has no accessor). Each accessor below
names the private attributes it reads and the versions it was written against, and returns
``None`` / ``False`` when the layout differs, so the library degrades (disposal takes effect
when the headers arrive) instead of failing. ``tests/test_sdk_internals.py`` exercises every
accessor against the installed packages with real objects, so an upgrade that moves one of
these attributes turns a test red instead of silently degrading.

Written against: reactivex 6.1, httpx2/httpcore2 2.x (the ``anthropic`` 2.x and ``openai``
3.x SDKs), botocore 1.x with urllib3 2.x.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from reactivex.scheduler.eventloop import AsyncIOScheduler

__all__ = [
    "event_stream_operation",
    "event_stream_raw",
    "httpx_pending_socket",
    "scheduler_loop",
    "watch_botocore_connections",
]

logger = logging.getLogger("rxstream")


def scheduler_loop(scheduler: AsyncIOScheduler) -> asyncio.AbstractEventLoop:
    """The asyncio loop an ``AsyncIOScheduler`` schedules on.

    Reads ``AsyncIOScheduler._loop``: the constructor's ``loop`` argument, stored as is
    (reactivex 6.1, ``reactivex/scheduler/eventloop/asyncioscheduler.py``; no public accessor).
    """
    loop: asyncio.AbstractEventLoop = scheduler._loop
    return loop


def httpx_pending_socket(sdk_client: Any, header: bytes, value: bytes) -> socket.socket | None:
    """The socket of an SDK request still waiting in httpcore, found by one of its headers.

    Args:
        sdk_client: An ``anthropic`` / ``openai`` sync client (its ``_client`` is the
            ``httpx2.Client``).
        header: Lower-case header name the request carries.
        value: The header's value.

    Returns:
        The connection's socket, or None (no such request, or another layout).

    Private attributes read (httpx2 / httpcore2 2.x): ``SDKClient._client`` (the httpx2
    client), ``httpx2.Client._transport._pool`` (httpcore2 ``ConnectionPool``),
    ``ConnectionPool._requests`` (its ``PoolRequest`` list: ``.request.headers``,
    ``.connection``), ``HTTPConnection._connection._network_stream`` (the sync
    ``NetworkStream``; its public ``get_extra_info("socket")`` gives the socket).
    """
    marker = (header, value)
    try:
        pool = sdk_client._client._transport._pool
        for pool_request in list(pool._requests):
            if marker not in [(k.lower(), v) for k, v in pool_request.request.headers]:
                continue
            inner = getattr(pool_request.connection, "_connection", None)
            stream = getattr(inner, "_network_stream", None)
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                return sock
    except Exception:
        logger.debug("rxstream: could not reach a pending httpx2 connection", exc_info=True)
    return None


def event_stream_raw(event_stream: Any) -> Any | None:
    """The urllib3 ``HTTPResponse`` under a botocore ``EventStream`` (None if not reachable).

    Reads ``EventStream._raw_stream`` (botocore ``eventstream.py``: ``EventStream(raw_stream,
    output_shape, parser, operation_name)`` keeps it; set in ``parsers.py``
    ``_create_event_stream`` from ``endpoint.py`` ``convert_to_response_dict``). The
    response's own ``stream()``, ``connection`` and ``shutdown()`` (urllib3 ≥ 2.3) are public.
    """
    return getattr(event_stream, "_raw_stream", None)


def event_stream_operation(event_stream: Any, default: str) -> str:
    """The operation name a botocore ``EventStream`` was created for (``"ConverseStream"``...).

    Reads ``EventStream._operation_name`` (botocore ``eventstream.py``); ``default`` if absent.
    """
    name = getattr(event_stream, "_operation_name", None)
    return name if isinstance(name, str) else default


def watch_botocore_connections(client: Any, on_connection: Callable[[Any], None]) -> bool:
    """Report each urllib3 connection the client's endpoint pool hands out (once per pool).

    boto3 gives no handle on a request before its response exists; this wraps the pool's
    connection checkout so ``on_connection(conn)`` (called on the requesting thread, before
    the request is sent) can remember it. Idempotent per pool: the first caller's
    ``on_connection`` is kept, so it must dispatch per thread itself.

    Returns:
        True if the pool is watched, False when it cannot be reached (a proxy, a stubbed
        client, another botocore layout).

    Private attributes read (botocore 1.x, urllib3 2.x): ``client._endpoint.http_session``
    (botocore ``URLLib3Session``), its ``_manager`` (urllib3 ``PoolManager``; the pool comes
    from its public ``connection_from_url``), and the pool's ``_get_conn`` (urllib3
    ``HTTPConnectionPool._get_conn``), which is replaced by a wrapper.
    """
    try:
        manager = client._endpoint.http_session._manager
        pool = manager.connection_from_url(client.meta.endpoint_url)
        if getattr(pool, "_rxstream_watched", False):
            return True
        original = pool._get_conn
    except Exception:
        logger.debug("rxstream: could not reach the botocore connection pool", exc_info=True)
        return False

    def get_conn(*args: Any, **kwargs: Any) -> Any:
        conn = original(*args, **kwargs)
        on_connection(conn)
        return conn

    pool._get_conn = get_conn
    pool._rxstream_watched = True
    return True

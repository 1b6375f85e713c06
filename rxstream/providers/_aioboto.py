"""Async Bedrock transport: an aiobotocore ``bedrock-runtime`` client read on the asyncio loop.

``from_bedrock`` / ``from_bedrock_invoke`` dispatch here when given an aiobotocore client
(``AioSession().create_client("bedrock-runtime")``, extra ``rxstream[bedrock-async]``). The
request is ``await client.converse_stream(**params)`` (or
``invoke_model_with_response_stream``); the body is aiobotocore's ``AioEventStream``
(``aiobotocore/eventstream.py``), an async iterator of the same event dicts boto3 yields,
decoded from the ``application/vnd.amazon.eventstream`` frames of the aiohttp response. The
same pure normalisers as the sync path turn them into `StreamEvent`s. No thread is used: the
session runs as a task on the loop (`rxstream.providers._source`), disposal cancels that task
and the ``finally`` closes the aiohttp response (``AioEventStream.close()`` →
``ClientResponse.close()``), which closes the connection even while a read is stalled.

Version pin: aiobotocore pins botocore to a narrow range (aiobotocore 3.10: botocore
>= 1.43.x, < 1.43.118), older than the boto3 that ``rxstream[bedrock]`` installs, so
``rxstream[bedrock-async]`` is a separate extra (not in ``[all]``) and is tested in its own
virtualenv in ``.ci/run``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from rxstream.errors import StreamError, StreamInterruptedError
from rxstream.events import StreamEvent
from rxstream.providers._source import Control

__all__ = ["aio_event_stream_session"]

logger = logging.getLogger("rxstream")


async def aio_event_stream_session(
    open_stream: Callable[[], Awaitable[Any]],
    stream_key: str,
    normaliser: Any,
    control: Control,
    provider: str,
) -> AsyncIterator[StreamEvent]:
    """Run one aiobotocore streaming call and yield normalised events (the async session).

    Args:
        open_stream: Returns the awaitable ``client.converse_stream(**params)`` (or invoke).
        stream_key: ``"stream"`` (ConverseStream) or ``"body"`` (InvokeModelWithResponseStream).
        normaliser: A fresh `BedrockConverseNormaliser` / `BedrockInvokeNormaliser`.
        control: Cancellation state (cancellation itself is task cancellation).
        provider: ``"bedrock"`` or ``"bedrock-invoke"``.
    """
    from rxstream.providers.bedrock import _request_id, map_botocore_error

    try:
        response = await open_stream()
    except Exception as exc:
        mapped = map_botocore_error(exc, provider)
        if mapped is None:
            raise
        raise mapped from exc
    stream = response[stream_key]
    events = stream.__aiter__()
    try:
        normaliser.request_id = _request_id(response)
        feed = normaliser.feed
        try:
            async for event in events:
                for item in feed(event):
                    yield item
        except StreamError:
            raise
        except Exception as exc:
            if normaliser.ended:
                logger.debug("rxstream: %s error after the stream's end ignored", provider, exc_info=True)
                return
            mapped = map_botocore_error(exc, provider, request_id=normaliser.request_id)
            if mapped is None:
                raise
            if isinstance(mapped, StreamInterruptedError):
                mapped = StreamInterruptedError(
                    f"{provider} connection dropped mid-stream ({type(exc).__name__})", provider=provider
                )
            raise mapped from exc
        for item in normaliser.finish():
            yield item
    finally:
        with contextlib.suppress(BaseException):
            stream.close()  # sync: closes the aiohttp response and its connection
        with contextlib.suppress(BaseException):
            await events.aclose()

"""Streams that outlive a process: publish to, and resume from, a Redis Stream (extra ``redis``).

`RedisPublisher` (``rso.publish_to_redis``) passes events through and appends each one to
the Redis Stream ``key``; `from_redis` (``rxs.from_redis``) reads them back anywhere, as a
cold Observable that can resume after the last ``seq`` it saw. redis-py is imported only when
one of them is called; both accept a sync ``redis.Redis`` or an asyncio ``redis.asyncio.Redis``.

Entry format (Redis Streams, https://redis.io/docs/latest/develop/data-types/streams/;
``XADD``/``XRANGE``/``XREAD`` reference pages). Every entry has an auto id (``*``) and:

* an event entry: ``seq`` = the event's own ``seq`` (decimal), ``event`` = the event's JSON
  (`rxstream.events.stream_event_adapter`);
* the terminal entry (last): ``end`` = ``completed``, ``error`` or ``disposed`` (the producer's
  subscriber left before the stream ended), and for ``error`` a field ``error`` = JSON of the
  error's class, message, attributes and ``partial`` (`rxstream.cassette.error_record`,
  secrets masked).

Every ``XADD`` trims with ``MAXLEN ~ maxlen``; after the terminal entry the key gets
``EXPIRE ttl``. Nothing from the request (prompt, params, keys, headers) is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import queue
import threading
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.subject import Subject

from rxstream._extras import require
from rxstream.cassette import error_record, rebuild_error
from rxstream.errors import (
    ConfigurationError,
    IdleTimeout,
    PublishError,
    StreamCancelledError,
    StreamError,
    StreamInterruptedError,
    StreamNotFoundError,
)
from rxstream.events import StreamEvent, stream_event_adapter
from rxstream.response import ResponseAccumulator

__all__ = ["RedisPublisher", "from_redis", "publish_to_redis"]

logger = logging.getLogger("rxstream.redis")

_READ_SLICE = 0.25
"""Longest single ``XREAD BLOCK`` (seconds) of a sync reader: disposal is seen within it."""
_RANGE_BATCH = 1000
_BATCH = 512
"""Most entries written in one pipeline round trip."""


def _client_kind(client: object) -> str:
    """``"sync"`` or ``"async"`` for a redis-py client, else `ConfigurationError`."""
    redis = require("redis", "redis")
    import redis.asyncio as aioredis

    if isinstance(client, aioredis.Redis):
        return "async"
    if isinstance(client, redis.Redis):
        return "sync"
    raise ConfigurationError(
        f"redis must be a redis.Redis or redis.asyncio.Redis client, got {type(client).__name__}"
    )


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key:
        raise ConfigurationError("key must be a non-empty str")
    return key


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _field(fields: dict[Any, Any], name: str) -> Any:
    if name in fields:
        return fields[name]
    return fields.get(name.encode())


# ----------------------------------------------------------------------------- publishing


class RedisPublisher:
    """The ``publish_to_redis`` operator, with its publish-error channel.

    Call it on a source (or pass it to ``pipe``): ``Observable[StreamEvent] ->
    Observable[StreamEvent]``, events pass through unchanged and are never delayed by Redis.
    Each subscription queues its entries to one writer (a thread for a sync client, a task on
    the subscribing asyncio loop for an asyncio client) that sends whatever is queued in one
    pipelined round trip, in order.

    Attributes:
        errors: Hot Observable of `rxstream.errors.PublishError`, one per subscription whose
            writes failed (e.g. Redis went away); after the first failure that subscription
            stops writing while its local stream keeps flowing. Failures are also logged
            (logger ``rxstream.redis``, level WARNING) so they are never silent.
    """

    def __init__(
        self,
        client: Any,
        key: str,
        *,
        maxlen: int | None,
        ttl: float | None,
        on_publish_error: Callable[[PublishError], None] | None,
    ) -> None:
        self._kind = _client_kind(client)
        self._client = client
        self._key = key
        self._maxlen = maxlen
        self._ttl = None if ttl is None else max(1, math.ceil(ttl))
        self._on_publish_error = on_publish_error
        self._errors: Subject[PublishError] = Subject()
        self.errors: Observable[PublishError] = self._errors
        self._threads: list[threading.Thread] = []
        self._tasks: list[asyncio.Task[None]] = []

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every sync writer started so far wrote its terminal entry (or failed).

        Use it before a process exits, so that the last entries are not lost. Returns
        whether all of them finished within ``timeout`` seconds (``None``: no limit).
        """
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    async def wait_closed(self) -> None:
        """Await every asyncio writer started so far (the async counterpart of `join`)."""
        tasks = list(self._tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- the error channel
    def _report(self, error: PublishError) -> None:
        logger.warning("%s", error)
        if self._on_publish_error is not None:
            try:
                self._on_publish_error(error)
            except Exception:  # an error handler must not break the writer
                logger.exception("on_publish_error raised")
        try:
            self._errors.on_next(error)
        except Exception:
            logger.exception("a subscriber of RedisPublisher.errors raised")

    def _failure(self, exc: BaseException, seq: int | None, acc: ResponseAccumulator) -> PublishError:
        where = f"at seq {seq}" if seq is not None else "at the terminal entry"
        error = PublishError(
            f"publishing to redis key {self._key!r} failed {where}: {type(exc).__name__}; "
            "the local stream continues, later entries are not written",
            key=self._key,
            seq=seq,
            partial=acc.snapshot(),
        )
        error.__cause__ = exc
        return error

    # -- entries
    def _xadd(self, pipe: Any, fields: dict[str, str]) -> None:
        if self._maxlen is None:
            pipe.xadd(self._key, fields)
        else:
            pipe.xadd(self._key, fields, maxlen=self._maxlen, approximate=True)

    def _queue_entry(self, pipe: Any, item: _Item) -> None:
        self._xadd(pipe, item.fields)
        if item.terminal and self._ttl is not None:
            pipe.expire(self._key, self._ttl)

    def __call__(self, source: Observable[StreamEvent]) -> Observable[StreamEvent]:
        """Apply the operator to ``source``."""

        def subscribe(
            observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            writer = _SyncWriter(self) if self._kind == "sync" else _AsyncWriter(self)
            if not writer.start(observer):
                return Disposable()
            done = False

            def on_next(event: StreamEvent) -> None:
                writer.put(_Item.event(event))
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                nonlocal done
                done = True
                writer.put(_Item.end("error", error))
                observer.on_error(error)

            def on_completed() -> None:
                nonlocal done
                done = True
                writer.put(_Item.end("completed"))
                observer.on_completed()

            def dispose() -> None:
                if not done:
                    writer.put(_Item.end("disposed"))

            upstream = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            return CompositeDisposable(upstream, Disposable(dispose))

        return Observable(subscribe)


class _Item:
    __slots__ = ("event_obj", "fields", "seq", "terminal")

    def __init__(
        self, fields: dict[str, str], seq: int | None, terminal: bool, event_obj: StreamEvent | None
    ):
        self.fields = fields
        self.seq = seq
        self.terminal = terminal
        self.event_obj = event_obj

    @classmethod
    def event(cls, event: StreamEvent) -> _Item:
        payload = stream_event_adapter.dump_json(event).decode()
        return cls({"seq": str(event.seq), "event": payload}, event.seq, False, event)

    @classmethod
    def end(cls, end: str, error: Exception | None = None) -> _Item:
        fields = {"end": end}
        if error is not None:
            fields["error"] = json.dumps(error_record(error), ensure_ascii=False)
        return cls(fields, None, True, None)


class _SyncWriter:
    """A thread that drains a queue into pipelined XADDs (one round trip per batch)."""

    def __init__(self, owner: RedisPublisher) -> None:
        self._owner = owner
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._acc = ResponseAccumulator()

    def start(self, observer: abc.ObserverBase[StreamEvent]) -> bool:
        thread = threading.Thread(
            target=self._run, name=f"rxstream-redis-publish:{self._owner._key}", daemon=True
        )
        threads = self._owner._threads
        threads[:] = [t for t in threads if t.is_alive()]
        threads.append(thread)
        thread.start()
        return True

    def put(self, item: _Item) -> None:
        self._queue.put(item)

    def _run(self) -> None:
        owner, failed = self._owner, False
        while True:
            batch = [self._queue.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not failed:
                pipe = owner._client.pipeline(transaction=False)
                for item in batch:
                    owner._queue_entry(pipe, item)
                try:
                    pipe.execute()
                except Exception as exc:
                    failed = True
                    owner._report(owner._failure(exc, batch[0].seq, self._acc))
                finally:
                    with contextlib.suppress(Exception):  # a broken connection may fail to reset
                        pipe.reset()
            for item in batch:
                if item.event_obj is not None:
                    self._acc.add(item.event_obj)
            if batch[-1].terminal:
                return


class _AsyncWriter:
    """An asyncio task on the subscribing loop draining a queue into pipelined XADDs."""

    def __init__(self, owner: RedisPublisher) -> None:
        self._owner = owner
        self._acc = ResponseAccumulator()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self, observer: abc.ObserverBase[StreamEvent]) -> bool:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            observer.on_error(
                ConfigurationError(
                    "publish_to_redis with a redis.asyncio client must be subscribed on a running loop"
                )
            )
            return False
        self._task = self._loop.create_task(self._run())
        tasks = self._owner._tasks
        tasks[:] = [t for t in tasks if not t.done()]
        tasks.append(self._task)
        return True

    def put(self, item: _Item) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._queue.put_nowait(item)
        else:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def _run(self) -> None:
        owner, failed = self._owner, False
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if not failed:
                pipe = owner._client.pipeline(transaction=False)
                for item in batch:
                    owner._queue_entry(pipe, item)
                try:
                    await pipe.execute()
                except Exception as exc:
                    failed = True
                    owner._report(owner._failure(exc, batch[0].seq, self._acc))
                finally:
                    with contextlib.suppress(Exception):  # a broken connection may fail to reset
                        await pipe.reset()
            for item in batch:
                if item.event_obj is not None:
                    self._acc.add(item.event_obj)
            if batch[-1].terminal:
                return


def publish_to_redis(
    redis: Any,
    key: str,
    *,
    maxlen: int | None = 10_000,
    ttl: float | None = 3600,
    on_publish_error: Callable[[PublishError], None] | None = None,
) -> RedisPublisher:
    """Pass events through and append each one to the Redis Stream ``key`` (see the module).

    ``Observable[StreamEvent] -> Observable[StreamEvent]``. The local stream is never
    delayed or failed by Redis: entries are queued and written, in order, by one writer per
    subscription with one pipelined round trip per batch (``XADD key MAXLEN ~ maxlen * seq
    <seq> event <json>``), then the terminal entry and ``EXPIRE key ttl``.

    Args:
        redis: A ``redis.Redis`` (writer thread) or ``redis.asyncio.Redis`` (writer task on
            the asyncio loop running at subscription) client.
        key: The Redis Stream key.
        maxlen: Approximate cap on the stream length (``MAXLEN ~``); ``None``: no trimming.
        ttl: Seconds the key lives after the terminal entry (rounded up); ``None``: forever.
        on_publish_error: Called with the `PublishError` when writing fails (isolated: an
            exception in it is logged).

    Returns:
        A `RedisPublisher`: the operator, plus its ``errors`` Observable.

    Raises:
        ConfigurationError: at call time, when redis-py is missing (``rxstream[redis]``), for
            a client of another type, an empty key, or a non-positive ``maxlen``/``ttl``.

    Emits:
        The source's events, completion and error unchanged and undelayed. Publish failures
        never reach the stream: they go to ``on_publish_error``, ``.errors`` and the log.

    Example:
        >>> stream.pipe(rso.publish_to_redis(redis.Redis(), "answer:42"), rso.final()).run()  # doctest: +SKIP
    """
    key = _check_key(key)
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1):
        raise ConfigurationError(f"maxlen must be an int >= 1 or None, got {maxlen!r}")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0
    ):
        raise ConfigurationError(f"ttl must be a number of seconds > 0 or None, got {ttl!r}")
    if on_publish_error is not None and not callable(on_publish_error):
        raise ConfigurationError("on_publish_error must be callable")
    return RedisPublisher(redis, key, maxlen=maxlen, ttl=ttl, on_publish_error=on_publish_error)


# ----------------------------------------------------------------------------- consuming


class _Reader:
    """Per-subscription state shared by the sync and asyncio readers: parse, skip, emit."""

    def __init__(self, observer: abc.ObserverBase[StreamEvent], key: str, after_seq: int | None) -> None:
        self.observer = observer
        self.key = key
        self.after_seq = after_seq
        self.last_seq = after_seq
        self.last_id: Any = "0-0"
        self.acc = ResponseAccumulator()
        self.stopped = False

    def entries(self, entries: list[Any]) -> bool:
        """Handle ``[(id, fields), ...]``; True once the stream ended (terminal emitted)."""
        for entry_id, fields in entries:
            self.last_id = entry_id
            if self.stopped:
                return True
            end = _field(fields, "end")
            if end is not None:
                self.stopped = True
                self._terminal(_text(end), _field(fields, "error"))
                return True
            raw_seq = _field(fields, "seq")
            seq = int(_text(raw_seq)) if raw_seq is not None else None
            if seq is not None and self.after_seq is not None and seq <= self.after_seq:
                continue
            try:
                event = stream_event_adapter.validate_json(_field(fields, "event"))
            except ValueError as exc:
                self.stopped = True
                error = StreamInterruptedError(
                    f"redis key {self.key!r}: entry {_text(entry_id)} is not an rxstream event",
                    partial=self.acc.snapshot(),
                    retryable=False,
                )
                error.__cause__ = exc
                self.observer.on_error(error)
                return True
            self.acc.add(event)
            self.last_seq = event.seq
            self.observer.on_next(event)
        return False

    def _terminal(self, end: str, error_json: Any) -> None:
        if end == "completed":
            self.observer.on_completed()
        elif end == "error":
            try:
                record = json.loads(_text(error_json)) if error_json is not None else {}
            except ValueError:
                record = {}
            self.observer.on_error(rebuild_error(record))
        else:
            self.observer.on_error(
                StreamCancelledError(
                    f"redis key {self.key!r}: the producer's stream was disposed before it ended",
                    partial=self.acc.snapshot(),
                )
            )

    def fail_with(self, exc: Exception) -> None:
        """Emit ``exc``: a Redis or socket error as a lost connection, anything else unchanged."""
        from redis.exceptions import RedisError

        if isinstance(exc, RedisError | OSError):
            self.fail(exc)
        elif not self.stopped:
            self.stopped = True
            self.observer.on_error(exc)

    def fail(self, exc: BaseException) -> None:
        if self.stopped:
            return
        self.stopped = True
        resume = "from the start" if self.last_seq is None else f"with after_seq={self.last_seq}"
        error = StreamInterruptedError(
            f"redis key {self.key!r}: connection lost ({type(exc).__name__}); resume {resume}",
            partial=self.acc.snapshot(),
        )
        error.__cause__ = exc
        self.observer.on_error(error)

    def timeout(self, block: float, started: bool) -> None:
        if self.stopped:
            return
        self.stopped = True
        error: StreamError
        if not started:
            error = StreamNotFoundError(
                f"redis key {self.key!r}: no stream appeared within {block:g} s", key=self.key, waited=block
            )
        else:
            error = IdleTimeout(
                f"redis key {self.key!r}: no new entry within {block:g} s (last seq {self.last_seq})",
                timeout=block,
                partial=self.acc.snapshot(),
            )
        self.observer.on_error(error)


def from_redis(
    redis: Any,
    key: str,
    *,
    after_seq: int | None = None,
    block: float | None = 5.0,
) -> Observable[StreamEvent]:
    """Read a stream published by ``publish_to_redis``: history first, then live entries.

    A cold ``Observable[StreamEvent]``. Each subscription reads every entry with ``XRANGE``
    (in batches of 1,000), skipping events whose ``seq`` is at most ``after_seq``, then
    follows new entries with ``XREAD BLOCK`` from the last id it read, until the terminal
    entry. A consumer that reconnects with the last ``seq`` it saw continues without
    duplicated or missing events (``seq`` must be unique in the key, as it is for one
    source; after ``retry_stream(on_partial="restart")`` it is not). Any number of consumers
    may read one key at once; each gets the whole stream.

    Args:
        redis: A ``redis.Redis`` (a reader thread per subscription; events are emitted on it)
            or ``redis.asyncio.Redis`` client (a task on the asyncio loop running at
            subscription; events are emitted on the loop).
        key: The Redis Stream key.
        after_seq: Resume after the event with this ``seq``; ``None``: from the start.
        block: Seconds to wait for the key to appear, and then for each next entry;
            ``None`` waits forever.

    Returns:
        A cold Observable of the published events.

    Raises:
        ConfigurationError: at call time, when redis-py is missing (``rxstream[redis]``), for
            a client of another type, an empty key, a bad ``after_seq`` or ``block``.

    Emits:
        The events, then the recorded terminal: ``on_completed``; the producer's error
        rebuilt as the same rxstream class with its ``.partial``; `StreamCancelledError` when
        the producer was disposed first. Problems of the consumer itself:
        `StreamNotFoundError` (no key within ``block``), `IdleTimeout` (no entry within
        ``block``), `StreamInterruptedError` (Redis connection lost; the message tells the
        ``after_seq`` to resume with). ``.partial`` holds what this subscription received.

    Disposal stops a sync reader within 0.25 s (its longest single ``XREAD BLOCK``) and
    cancels an asyncio reader at once; the connection goes back to the client's pool.

    Example:
        >>> rxs.from_redis(redis.Redis(), "answer:42").pipe(rso.text()).subscribe(print)  # doctest: +SKIP
    """
    kind = _client_kind(redis)
    key = _check_key(key)
    if after_seq is not None and (
        isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < -1
    ):
        raise ConfigurationError(f"after_seq must be an int >= -1 or None, got {after_seq!r}")
    if block is not None and (
        isinstance(block, bool)
        or not isinstance(block, int | float)
        or not math.isfinite(block)
        or block <= 0
    ):
        raise ConfigurationError(f"block must be a number of seconds > 0 or None, got {block!r}")
    limit = None if block is None else float(block)

    def subscribe(
        observer: abc.ObserverBase[StreamEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        reader = _Reader(observer, key, after_seq)
        if kind == "sync":
            threading.Thread(
                target=_read_sync, args=(redis, reader, limit), name=f"rxstream-redis-read:{key}", daemon=True
            ).start()

            def stop() -> None:
                reader.stopped = True

            return Disposable(stop)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            observer.on_error(
                ConfigurationError(
                    "from_redis with a redis.asyncio client must be subscribed on a running loop"
                )
            )
            return Disposable()
        task = loop.create_task(_read_async(redis, reader, limit))

        def cancel() -> None:
            reader.stopped = True
            if not task.done():
                loop.call_soon_threadsafe(task.cancel)

        return Disposable(cancel)

    return Observable(subscribe)


def _streams(found: Any) -> list[Any]:
    """XREAD's reply as ``[(key, entries), ...]`` (a list in RESP2, a map in RESP3)."""
    return list(found.items()) if isinstance(found, dict) else list(found)


def _read_sync(client: Any, reader: _Reader, block: float | None) -> None:
    import time

    try:
        start = "-"
        while not reader.stopped:
            batch = client.xrange(reader.key, min=start, max="+", count=_RANGE_BATCH)
            if reader.entries(batch):
                return
            if len(batch) < _RANGE_BATCH:
                break
            start = "(" + _text(reader.last_id)
        started = reader.last_id != "0-0" or bool(client.exists(reader.key))
        waited_since = time.monotonic()
        while not reader.stopped:
            slice_s = _READ_SLICE if block is None else min(_READ_SLICE, block)
            found = client.xread({reader.key: reader.last_id}, count=_RANGE_BATCH, block=int(slice_s * 1000))
            if found:
                started = True
                waited_since = time.monotonic()
                for _name, entries in _streams(found):
                    if reader.entries(entries):
                        return
            elif block is not None and time.monotonic() - waited_since >= block:
                started = started or bool(client.exists(reader.key))
                reader.timeout(block, started)
                return
    except Exception as exc:
        reader.fail_with(exc)


async def _read_async(client: Any, reader: _Reader, block: float | None) -> None:
    loop = asyncio.get_running_loop()
    try:
        start = "-"
        while not reader.stopped:
            batch = await client.xrange(reader.key, min=start, max="+", count=_RANGE_BATCH)
            if reader.entries(batch):
                return
            if len(batch) < _RANGE_BATCH:
                break
            start = "(" + _text(reader.last_id)
        started = reader.last_id != "0-0" or bool(await client.exists(reader.key))
        waited_since = loop.time()
        while not reader.stopped:
            remaining = None if block is None else block - (loop.time() - waited_since)
            if remaining is not None and remaining <= 0:
                started = started or bool(await client.exists(reader.key))
                reader.timeout(block if block is not None else 0.0, started)
                return
            wait_ms = 0 if remaining is None else max(1, int(remaining * 1000))
            found = await client.xread({reader.key: reader.last_id}, count=_RANGE_BATCH, block=wait_ms)
            if found:
                started = True
                waited_since = loop.time()
                for _name, entries in _streams(found):
                    if reader.entries(entries):
                        return
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        reader.fail_with(exc)

"""Reliability regressions of the source shell and the transports (issue 7).

Each test reproduces a defect found by adversarial probing, through the official SDKs
against the emulator on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
import reactivex

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import StreamCancelledError, StreamDecodeError, StreamError
from rxstream.events import StreamEvent
from rxstream.providers._readers import ReaderPool
from rxstream.testing import Fault, ProviderEmulator, ResponseScript

KEY = "sk-test-reliability"

_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()


def _sync_stream_factory(
    emu: ProviderEmulator, provider: str
) -> Callable[[], reactivex.Observable[StreamEvent]]:
    if provider == "anthropic":
        client: Any = anthropic.Anthropic(api_key=KEY, base_url=emu.anthropic_base_url, max_retries=0)
        _CLIENTS.append(client)
        return lambda: rxs.from_anthropic(
            client, model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    client = openai.OpenAI(api_key=KEY, base_url=emu.openai_base_url, max_retries=0)
    _CLIENTS.append(client)
    if provider == "openai":
        return lambda: rxs.from_openai(client, model="m", messages=[{"role": "user", "content": "hi"}])
    return lambda: rxs.from_openai_responses(client, model="m", input="hi")


SSE_PROVIDERS = ["anthropic", "openai", "openai-responses"]


@pytest.mark.parametrize("provider", SSE_PROVIDERS)
def test_a_stream_started_from_on_completed_reuses_the_client_safely(provider: str) -> None:
    """Defect 1: the completed stream's disposal shut down the pooled connection's socket."""
    with ProviderEmulator(ResponseScript(text="one two three", chunk_size=4)) as emu:
        make = _sync_stream_factory(emu, provider)
        results: list[str] = []
        done = threading.Event()

        def start(n: int) -> None:
            if n == 10:
                done.set()
                return

            def on_completed() -> None:
                results.append("ok")
                start(n + 1)

            def on_error(error: Exception) -> None:
                results.append(repr(error))
                done.set()

            make().subscribe(on_completed=on_completed, on_error=on_error)

        start(0)
        assert done.wait(20)
        assert results == ["ok"] * 10


@pytest.mark.parametrize("provider", SSE_PROVIDERS)
def test_sequential_runs_on_one_client_never_fail(provider: str) -> None:
    with ProviderEmulator(ResponseScript(text="abc", chunk_size=1)) as emu:
        make = _sync_stream_factory(emu, provider)
        for _ in range(60):
            assert make().pipe(rso.final()).run().text == "abc"


def test_dispose_after_completion_does_not_touch_the_next_request() -> None:
    """Disposing a finished subscription late (user code) must not break the next stream."""
    with ProviderEmulator(ResponseScript(text="x" * 200, chunk_size=2)) as emu:
        make = _sync_stream_factory(emu, "anthropic")

        def one_round() -> None:
            done = threading.Event()
            sub = make().subscribe(on_completed=done.set, on_error=lambda e: done.set())
            assert done.wait(5)
            outcome: list[Any] = []
            ended = threading.Event()

            def on_error(error: Exception) -> None:
                outcome.append(error)
                ended.set()

            make().pipe(rso.final()).subscribe(
                on_next=outcome.append, on_error=on_error, on_completed=ended.set
            )
            sub.dispose()  # late disposal while the next request runs on the pooled connection
            assert ended.wait(5)
            assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome

        for _ in range(20):
            one_round()


def test_reader_pool_is_not_a_concurrency_cap() -> None:
    """Defect 4: 64 blocked readers stopped every other sync stream from starting."""
    pool = ReaderPool(idle_timeout=1.0)
    release = threading.Event()
    started = threading.Semaphore(0)

    def blocked() -> None:
        started.release()
        release.wait(10)

    for _ in range(100):
        pool.submit(blocked)
    for _ in range(100):
        assert started.acquire(timeout=5)
    ran = threading.Event()
    pool.submit(ran.set)
    assert ran.wait(2), "a 101st job did not start while 100 readers were blocked"
    release.set()


def test_many_paused_sync_streams_do_not_starve_a_new_one() -> None:
    """Defect 4: > 64 paused streams with full buffers held every thread of the shared pool."""
    long_text = "word " * 400
    with ProviderEmulator(ResponseScript(text=long_text, chunk_size=5)) as emu:
        client = anthropic.Anthropic(api_key=KEY, base_url=emu.anthropic_base_url, max_retries=0)
        _CLIENTS.append(client)
        subs = []
        for _ in range(70):
            valve = reactivex.subject.BehaviorSubject(False)
            stream = rxs.from_anthropic(
                client, model="m", max_tokens=4096, messages=[{"role": "user", "content": "hi"}]
            ).pipe(rso.pausable(valve, max_buffered=8))
            subs.append(stream.subscribe(on_error=lambda e: None))
        emu.enqueue(ResponseScript(text="fresh"))
        try:
            start = time.monotonic()
            fresh = rxs.from_anthropic(
                client, model="m", max_tokens=4096, messages=[{"role": "user", "content": "hi"}]
            )
            # The fresh stream gets its own reader; its text arrives although 70 readers are held.
            assert fresh.pipe(rso.final()).run().text in ("fresh", long_text)
            assert time.monotonic() - start < 5
        finally:
            for sub in subs:
                sub.dispose()


def test_run_reads_on_the_reader_pool_not_on_a_new_thread_per_call() -> None:
    """Issue 9: `Observable.run()` subscribes with reactivex's NewThreadScheduler, which starts
    a thread and an event loop per call (~180 µs before the request is sent); the reader pool
    hands the read to an idle thread (~40 µs). An explicit scheduler argument is honoured."""
    from reactivex import operators as ops
    from reactivex.scheduler import NewThreadScheduler

    with ProviderEmulator() as emu:
        make = _sync_stream_factory(emu, "anthropic")
        names: list[str] = []

        def where(_: StreamEvent) -> None:
            names.append(threading.current_thread().name)

        make().pipe(ops.do_action(where), rso.final()).run()
        assert names and all(name.startswith("rxstream-reader") for name in names)
        names.clear()
        client = _CLIENTS[-1]
        explicit = rxs.from_anthropic(
            client,
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            scheduler=NewThreadScheduler(),
        )
        explicit.pipe(ops.do_action(where), rso.final()).run()
        assert names and not any(name.startswith("rxstream-reader") for name in names)


class _JSONOn200(http.server.BaseHTTPRequestHandler):
    """Answers every POST with 200 and one JSON object, as some proxies do for stream=true."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"error": {"message": "streaming is not supported here"}}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("provider", SSE_PROVIDERS)
def test_a_json_body_on_a_200_is_a_decode_error_not_a_dropped_connection(provider: str) -> None:
    """Defect 6: a 200 application/json answer became a retryable StreamInterruptedError."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _JSONOn200)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        client: Any
        if provider == "anthropic":
            client = anthropic.Anthropic(api_key=KEY, base_url=base, max_retries=0)
            stream = rxs.from_anthropic(
                client, model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        else:
            client = openai.OpenAI(api_key=KEY, base_url=base + "/v1", max_retries=0)
            stream = (
                rxs.from_openai(client, model="m", messages=[{"role": "user", "content": "hi"}])
                if provider == "openai"
                else rxs.from_openai_responses(client, model="m", input="hi")
            )
        _CLIENTS.append(client)
        with pytest.raises(StreamDecodeError) as info:
            stream.pipe(rso.final()).run()
        assert info.value.retryable is False
        assert "application/json" in str(info.value)
        assert "not supported" in info.value.raw
        assert info.value.partial.text == ""
    finally:
        server.shutdown()
        server.server_close()


def test_a_raising_on_completed_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Defect 8: a raise in on_completed of a plain subscription vanished with nothing logged."""
    with ProviderEmulator(ResponseScript(text="hi")) as emu:
        make = _sync_stream_factory(emu, "anthropic")
        done = threading.Event()

        def boom() -> None:
            done.set()
            raise RuntimeError("handler bug")

        with caplog.at_level("ERROR", logger="rxstream"):
            make().subscribe(on_completed=boom)
            assert done.wait(5)
            deadline = time.monotonic() + 5
            while not any("handler bug" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the raise was not logged"
                time.sleep(0.01)


def test_asyncio_run_returning_gives_a_typed_terminal() -> None:
    """Defect 7: when asyncio.run returns, a still-running stream ended in silence."""
    with ProviderEmulator(ResponseScript(text="slow", fault=Fault(kind="stall", after_events=2))) as emu:
        seen: list[BaseException] = []

        async def main() -> None:
            client = anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.anthropic_base_url, max_retries=0)
            rxs.from_anthropic(
                client, model="m", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ).subscribe(on_error=seen.append)
            emu_wait = asyncio.get_running_loop().run_in_executor(None, _wait_request, emu)
            await emu_wait
            # Return with the stream still reading: asyncio.run cancels its task.

        asyncio.run(main())
        assert len(seen) == 1 and isinstance(seen[0], StreamCancelledError)
        emu.wait_for_disconnect(timeout=2)
        gc.collect()


def _wait_request(emu: ProviderEmulator) -> None:
    deadline = time.monotonic() + 5
    while not emu.connections and time.monotonic() < deadline:
        time.sleep(0.005)


def test_dispose_after_the_loop_closed_closes_the_connection() -> None:
    """Defect 7: dispose() after the loop closed raised and left the socket open."""
    with ProviderEmulator(ResponseScript(text="slow", fault=Fault(kind="stall", after_events=2))) as emu:
        loop = asyncio.new_event_loop()
        errors: list[BaseException] = []
        client = anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.anthropic_base_url, max_retries=0)
        stream = rxs.from_anthropic(
            client,
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            scheduler=reactivex.scheduler.eventloop.AsyncIOScheduler(loop),
        )
        sub = stream.subscribe(on_error=errors.append)

        async def until_streaming() -> None:
            while not emu.connections or emu.connections[-1].events_written == 0:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)

        loop.run_until_complete(asyncio.wait_for(until_streaming(), 5))
        loop.close()
        sub.dispose()  # must not raise; must shut the socket down
        record = emu.wait_for_disconnect(timeout=2)
        assert record.client_disconnected
        gc.collect()
        assert all(isinstance(e, StreamError) for e in errors)


def test_an_openai_chat_in_stream_rate_limit_is_retryable_with_status_429() -> None:
    """Defect 8: ``code: rate_limit_exceeded`` with ``type: requests`` was not retryable and had no status."""
    from rxstream.errors import ProviderError
    from rxstream.providers.openai_chat import OpenAIChatNormaliser

    norm = OpenAIChatNormaliser("rxs_test")
    data = b'{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}'
    with pytest.raises(ProviderError) as info:
        norm.feed_sse(None, data)
    assert info.value.retryable is True
    assert info.value.status_code == 429
    assert info.value.error_type == "rate_limit_exceeded"


def test_the_emulator_does_not_log_writes_to_disconnected_clients(caplog: pytest.LogCaptureFixture) -> None:
    """Defect 8: 'socket.send() raised exception.' was printed 108 times in a 2,000-stream soak."""
    with ProviderEmulator() as emu, caplog.at_level("WARNING"):
        make = _sync_stream_factory(emu, "anthropic")
        for _ in range(10):
            emu.enqueue(ResponseScript(text="w " * 20_000, chunk_size=2))
            first = threading.Event()

            def on_next(event: Any, first: threading.Event = first) -> None:
                first.set()

            sub = make().subscribe(on_next=on_next, on_error=lambda e: None)
            assert first.wait(5)
            sub.dispose()
            emu.wait_for_disconnect(timeout=5)
    assert not [r for r in caplog.records if "socket.send()" in r.getMessage()]


@pytest.mark.parametrize("operation", ["converse", "invoke"])
def test_bedrock_dispose_while_headers_pending_closes_the_connection(operation: str) -> None:
    """Issue 9: Bedrock disposal with the headers pending took effect only when they arrived."""
    import boto3

    with ProviderEmulator(ResponseScript(text="never", headers_delay=30)) as emu:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=emu.bedrock_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        stream = (
            rxs.from_bedrock(client, modelId="m", messages=[{"role": "user", "content": [{"text": "hi"}]}])
            if operation == "converse"
            else rxs.from_bedrock_invoke(
                client,
                modelId="m",
                body={
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 8,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            )
        )
        errors: list[BaseException] = []
        sub = stream.subscribe(on_error=errors.append)
        deadline = time.monotonic() + 5
        while not emu.connections and time.monotonic() < deadline:
            time.sleep(0.005)
        assert emu.connections, "the request did not arrive"
        t0 = time.monotonic()
        sub.dispose()
        record = emu.wait_for_disconnect(-1, timeout=2.0)
        assert record.client_disconnected and record.status == 0
        assert record.disconnected_at is not None and record.disconnected_at - t0 < 0.5
        assert errors == []
        client.close()

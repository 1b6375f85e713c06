"""Wire fuzzer: mutated provider streams through the official SDKs must still end cleanly.

Valid streams of all five wire formats (`rxstream.testing.record_wire`, the emulator's own
wire modules) are mutated — events dropped, duplicated, reordered, fields given wrong
types, JSON cut short, bytes flipped (CRCs and lengths included), invalid UTF-8 and
oversize lines inserted, the body truncated, split at arbitrary offsets and ended by a
clean terminator, a close or a reset — and served by `RawBytesServer` to the real
SDK-based sources, sync and async clients. For every case:

* exactly one terminal within `TERMINAL_DEADLINE` seconds, and no event after it;
* the terminal is ``on_completed`` or a typed `rxstream.errors.StreamError` whose
  ``.partial.text`` equals the text of the `TextDelta` events delivered;
* the server's reply ends (the client read it all or closed the connection), no thread
  or asyncio task is left behind, and file descriptors and RSS stay bounded.

Also here: the unmutated streams back to back on one client (each started from the previous
terminal), every field of every event type with a wrong-typed value, every odd
``retry-after`` value through ``rso.retry_stream``, and a stalled body through
``rso.idle_timeout`` (disposal must reach the blocked read: the server sees the close).

Examples per hypothesis test: `EXAMPLES` (env ``RXSTREAM_FUZZ_EXAMPLES``), derandomized so
a run is reproducible, without shrinking in the normal suite (``RXSTREAM_FUZZ_SHRINK=1``).
The wrong-type sweep gives every field of every event type one wrong value
(``RXSTREAM_FUZZ_EVERY_VALUE=1``: every value). ``python benchmarks/fuzz.py --examples N``
runs the same tests with thousands of examples.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import boto3
import openai
import pytest
from botocore.config import Config
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops

import rxstream as rxs
from rxstream import operators as rso
from rxstream.errors import IdleTimeout, ProviderError, StreamError
from rxstream.events import StreamEvent
from rxstream.response import Response
from rxstream.testing import (
    FrameHeader,
    RawBytesServer,
    RawReply,
    ResponseScript,
    ScriptedToolCall,
    WireEvent,
    WireRecording,
    encode_frame,
    record_wire,
)
from rxstream.testing._rawserver import Ending
from rxstream.testing._wire import dumps

EXAMPLES = int(os.environ.get("RXSTREAM_FUZZ_EXAMPLES", "30"))
SHRINK = os.environ.get("RXSTREAM_FUZZ_SHRINK") == "1"
EVERY_VALUE = os.environ.get("RXSTREAM_FUZZ_EVERY_VALUE") == "1"
TERMINAL_DEADLINE = float(os.environ.get("RXSTREAM_FUZZ_DEADLINE", "5"))
"""Seconds a case may take to reach its terminal (each needs tens of milliseconds at most)."""
BACK_TO_BACK = 10

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink] if SHRINK else [Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

SCRIPT = ResponseScript(
    text="Hé 雪 👋 fuzz",
    thinking="hmm",
    tool_calls=[ScriptedToolCall(id="call_1", name="f", arguments='{"a": [1, "ü"]}', fragment_size=6)],
    stop_reason="tool_use",
    chunking="chars",
    chunk_size=4,
)
SSE = ("anthropic", "openai", "openai-responses")
TARGETS = [(p, m) for p in SSE for m in ("sync", "async")] + [
    ("bedrock", "sync"),
    ("bedrock-invoke", "sync"),
]
TARGET_IDS = [f"{p}-{m}" for p, m in TARGETS]
RECORDINGS = {p: record_wire(p, SCRIPT) for p in (*SSE, "bedrock", "bedrock-invoke")}
WRONG_VALUES: list[Any] = [None, 0, -1, 2**64, 1.5, 1e308, True, "", "x", [], {}, [1], {"a": 1}]
_EVENTSTREAM_HEADERS = [(":content-type", "application/json"), (":message-type", "event")]


# -- the cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    """One mutated reply and how it was made (the repro)."""

    provider: str
    steps: list[str] = field(default_factory=list)
    body: bytes = b""
    pieces: list[bytes] = field(default_factory=list)
    ending: str = "complete"
    content_type: str | None = None  # None: the recording's

    def reply(self, recording: WireRecording) -> RawReply:
        return RawReply(
            body=list(self.pieces),
            content_type=self.content_type or recording.content_type,
            headers=recording.headers,
            ending="complete"
            if self.ending == "complete"
            else ("close" if self.ending == "close" else "reset"),
        )

    def __repr__(self) -> str:
        shown = self.body if len(self.body) <= 1500 else self.body[:700] + b"..." + self.body[-700:]
        return (
            f"Case({self.provider}, steps={self.steps}, ending={self.ending}, "
            f"content_type={self.content_type}, {len(self.pieces)} pieces, body={shown!r})"
        )


_ENDINGS: dict[str, Ending] = {"complete": "complete", "close": "close", "reset": "reset"}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (the value itself included)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += _paths(inner, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _reframe(
    event: WireEvent, payload: bytes, headers: list[tuple[str, str] | FrameHeader] | None = None
) -> bytes:
    if headers is None:
        headers = [(":event-type", event.name), *_EVENTSTREAM_HEADERS]
    return encode_frame(headers, payload)


def _corrupt_json(provider: str, recording: WireRecording, event: WireEvent, seq: int, cut: float) -> bytes:
    """The event with its JSON cut short at fraction ``cut`` (framing kept valid)."""
    if provider == "bedrock-invoke":
        raw = dumps(event.payload).encode()
        inner = raw[: int(len(raw) * cut)]
        return _reframe(WireEvent("chunk", None), dumps({"bytes": base64.b64encode(inner).decode()}).encode())
    if provider == "bedrock":
        raw = dumps(event.payload).encode()
        return _reframe(event, raw[: int(len(raw) * cut)])
    encoded = (
        recording.encode([event])[0]
        if provider != "openai-responses"
        else recording.encode([event] * (seq + 1))[-1]
    )
    start = encoded.index(b"data: ") + 6
    end = encoded.rindex(b"\n\n")
    return encoded[: start + int((end - start) * cut)] + b"\n\n"


EVENT_MUTATIONS = ["drop", "duplicate", "swap", "retype", "retype", "corrupt_json", "frame"]
_BAD_HEADERS: list[Callable[[WireEvent], list[tuple[str, str] | FrameHeader]]] = [
    lambda e: [(":message-type", "event"), (":content-type", "application/json")],  # no :event-type
    lambda e: [FrameHeader(":event-type", 4, b"\x00\x00\x00\x01"), *_EVENTSTREAM_HEADERS],  # int, not string
    lambda e: [FrameHeader.string(":event-type", b"\xff\xfe"), *_EVENTSTREAM_HEADERS],  # invalid UTF-8
    lambda e: [(":event-type", e.name), (":content-type", "application/json"), (":message-type", "weird")],
    lambda e: [(":exception-type", "throttlingException"), (":message-type", "exception")],
    lambda e: [(":event-type", e.name), FrameHeader(":message-type", 42, b"zz")],  # unknown type code
]


@st.composite
def cases(draw: st.DrawFn, provider: str) -> Case:
    recording = RECORDINGS[provider]
    case = Case(provider)
    events = list(recording.events)
    overrides: dict[int, bytes] = {}  # position -> encoded bytes that replace the event's own
    for _ in range(draw(st.integers(0, 3))):
        if not events:
            break
        i = draw(st.integers(0, len(events) - 1))
        kind = draw(
            st.sampled_from(["drop", "duplicate", "swap", "retype", "retype", "corrupt_json", "frame"])
        )
        if kind == "drop":
            case.steps.append(f"drop event {i} ({events[i].name})")
            del events[i]
            overrides = {k - (k > i): v for k, v in overrides.items() if k != i}
        elif kind == "duplicate":
            case.steps.append(f"duplicate event {i} ({events[i].name})")
            events.insert(i, events[i])
            overrides = {k + (k > i): v for k, v in overrides.items()}
        elif kind == "swap":
            j = draw(st.integers(0, len(events) - 1))
            case.steps.append(f"swap events {i} and {j}")
            events[i], events[j] = events[j], events[i]
            oi, oj = overrides.pop(i, None), overrides.pop(j, None)
            if oi is not None:
                overrides[j] = oi
            if oj is not None:
                overrides[i] = oj
        elif kind == "retype" and not isinstance(events[i].payload, str):
            path = draw(st.sampled_from(_paths(events[i].payload)))
            value = draw(st.sampled_from(WRONG_VALUES))
            case.steps.append(f"event {i} ({events[i].name}) field {list(path)} = {value!r}")
            if path or provider != "openai-responses":
                events[i] = WireEvent(
                    events[i].name, _replace(events[i].payload, path, value), events[i].exception
                )
            else:  # Responses encoding adds sequence_number to an object: write the value as is
                overrides[i] = f"event: {events[i].name}\ndata: {dumps(value)}\n\n".encode()
        elif kind == "corrupt_json" and not isinstance(events[i].payload, str):
            cut = draw(st.floats(0.0, 0.99))
            case.steps.append(f"event {i} ({events[i].name}) JSON cut at {cut:.2f}")
            overrides[i] = _corrupt_json(provider, recording, events[i], i, cut)
        elif kind == "frame" and provider.startswith("bedrock"):
            variant = draw(st.integers(0, len(_BAD_HEADERS) + 1))
            if variant < len(_BAD_HEADERS):
                case.steps.append(f"event {i} ({events[i].name}) headers variant {variant}")
                frame = recording.encode([events[i]])[0]
                headers_end = 12 + int.from_bytes(frame[4:8], "big")
                overrides[i] = _reframe(events[i], frame[headers_end:-4], _BAD_HEADERS[variant](events[i]))
            else:
                case.steps.append(f"event {i} ({events[i].name}) payload not JSON (valid CRCs)")
                overrides[i] = _reframe(events[i], b"\xff\x00not json")
    encoded = recording.encode(events)
    for i, data in overrides.items():
        if i < len(encoded):
            encoded[i] = data
    body = b"".join(encoded)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(body)))
        kind = draw(st.sampled_from(["truncate", "flip", "invalid_utf8", "oversize", "garbage"]))
        if kind == "truncate":
            case.steps.append(f"truncate at {at}")
            body = body[:at]
        elif kind == "flip" and body:
            at = min(at, len(body) - 1)
            mask = draw(st.integers(1, 255))
            case.steps.append(f"xor byte {at} with {mask:#x}")
            body = body[:at] + bytes([body[at] ^ mask]) + body[at + 1 :]
        elif kind == "invalid_utf8":
            junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00"]))
            case.steps.append(f"insert {junk!r} at {at}")
            body = body[:at] + junk + body[at:]
        elif kind == "oversize":
            size = draw(st.sampled_from([70_000, 1_000_000]))
            if provider.startswith("bedrock"):
                line = _reframe(WireEvent("unknownFutureEvent", None), b'{"p":"' + b"x" * size + b'"}')
            else:
                line = draw(st.sampled_from([b": ", b"data: ", b"event: "])) + b"x" * size + b"\n\n"
            case.steps.append(f"insert a {len(line)}-byte line at event boundary {at}")
            at = _event_boundary(encoded, at)
            body = body[:at] + line + body[at:]
        elif kind == "garbage":
            junk = draw(st.binary(min_size=1, max_size=24))
            case.steps.append(f"insert {junk!r} at {at}")
            body = body[:at] + junk + body[at:]
    case.body = body
    if draw(st.integers(0, 9)) == 0 and len(body) < 4000:
        case.pieces = [body[i : i + 1] for i in range(len(body))]
        case.steps.append("split at every offset")
    else:
        cuts = sorted(set(draw(st.lists(st.integers(0, max(0, len(body))), max_size=8))))
        bounds = [0, *cuts, len(body)]
        case.pieces = [body[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    case.ending = draw(st.sampled_from(["complete", "complete", "close", "reset"]))
    if draw(st.integers(0, 7)) == 0:
        case.content_type = draw(st.sampled_from(["application/json", "text/plain", "text/html"]))
    return case


def wrong_type_cases(provider: str, *, every_value: bool = False) -> list[Case]:
    """Each field of each event type (first occurrence) given a value of another type.

    One wrong value per field, rotating through `WRONG_VALUES` (skipping values of the
    field's own type); ``every_value`` tries them all.
    """
    recording = RECORDINGS[provider]
    seen: set[tuple[Any, ...]] = set()
    out: list[Case] = []
    k = 0
    for i, event in enumerate(recording.events):
        if isinstance(event.payload, str):
            continue
        for path in _paths(event.payload):
            # The Responses ``response`` object repeats in several events: try each field once.
            name = "response" if path[:1] == ("response",) and len(path) > 1 else event.name
            key = (name, *(p if isinstance(p, str) else 0 for p in path))
            if key in seen:
                continue
            seen.add(key)
            original = _get(event.payload, path)
            values = [v for v in WRONG_VALUES if type(v) is not type(original)]
            if not every_value:
                values = [values[k % len(values)]]
                k += 1
            for value in values:
                events = list(recording.events)
                step = f"event {i} ({event.name}) field {list(path)} = {value!r}"
                if path or provider != "openai-responses":
                    events[i] = WireEvent(event.name, _replace(event.payload, path, value), event.exception)
                    encoded = recording.encode(events)
                else:
                    encoded = recording.encode(events)
                    encoded[i] = f"event: {event.name}\ndata: {dumps(value)}\n\n".encode()
                body = b"".join(encoded)
                out.append(Case(provider, [step], body, [body]))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _event_boundary(encoded: list[bytes], at: int) -> int:
    total = 0
    for data in encoded:
        if total + len(data) > at:
            return total
        total += len(data)
    return total


# -- clients and running one case ----------------------------------------------------------------


@dataclass
class Outcome:
    events: list[StreamEvent] = field(default_factory=list)
    finals: list[Response] = field(default_factory=list)
    terminals: list[tuple[str, BaseException | None]] = field(default_factory=list)
    late_events: int = 0
    timed_out: bool = False


class Recorder(abc.ObserverBase[Response]):
    """Records the source's events (tapped) and what ``rso.final()`` gives the consumer."""

    def __init__(self, signal: Callable[[], None]) -> None:
        self.outcome = Outcome()
        self._signal = signal

    def observe(self, source: Observable[StreamEvent]) -> Observable[Response]:
        """The stream as a consumer sees it: ``source.pipe(rso.final())``, events tapped."""
        return source.pipe(ops.do_action(self.on_event), rso.final())

    def on_event(self, event: StreamEvent) -> None:
        if self.outcome.terminals:
            self.outcome.late_events += 1
        self.outcome.events.append(event)

    def on_next(self, response: Response) -> None:
        self.outcome.finals.append(response)

    def on_error(self, error: Exception) -> None:
        self.outcome.terminals.append(("error", error))
        self._signal()

    def on_completed(self) -> None:
        self.outcome.terminals.append(("completed", None))
        self._signal()


def make_source(provider: str, client: Any) -> Observable[StreamEvent]:
    if provider == "anthropic":
        return rxs.from_anthropic(
            client, model="m", max_tokens=64, messages=[{"role": "user", "content": "x"}]
        )
    if provider == "openai":
        return rxs.from_openai(client, model="m", messages=[{"role": "user", "content": "x"}])
    if provider == "openai-responses":
        return rxs.from_openai_responses(client, model="m", input="x")
    if provider == "bedrock":
        return rxs.from_bedrock(client, modelId="m", messages=[{"role": "user", "content": [{"text": "x"}]}])
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 64, "messages": []}
    return rxs.from_bedrock_invoke(client, modelId="m", body=json.dumps(body))


def sync_client(provider: str, server: RawBytesServer) -> Any:
    if provider == "anthropic":
        return anthropic.Anthropic(api_key="sk-fuzz", base_url=server.anthropic_base_url, max_retries=0)
    if provider.startswith("openai"):
        return openai.OpenAI(api_key="sk-fuzz", base_url=server.openai_base_url, max_retries=0)
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=server.bedrock_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="fuzz",
        aws_secret_access_key="fuzz",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=TERMINAL_DEADLINE),
    )


def async_client(provider: str, server: RawBytesServer) -> Any:
    """An async SDK client (create it on the loop that will use it)."""
    if provider == "anthropic":
        return anthropic.AsyncAnthropic(api_key="sk-fuzz", base_url=server.anthropic_base_url, max_retries=0)
    return openai.AsyncOpenAI(api_key="sk-fuzz", base_url=server.openai_base_url, max_retries=0)


def run_sync(stream: Observable[StreamEvent]) -> Outcome:
    done = threading.Event()
    recorder = Recorder(done.set)
    subscription = recorder.observe(stream).subscribe(recorder)
    if not done.wait(TERMINAL_DEADLINE):
        recorder.outcome.timed_out = True
        subscription.dispose()
    return recorder.outcome


async def run_async(stream: Observable[StreamEvent]) -> tuple[Outcome, set[asyncio.Task[Any]]]:
    """Run on the current loop; return the outcome and the tasks still running after it."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    before = asyncio.all_tasks()

    def signal() -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            done.set()
        else:
            loop.call_soon_threadsafe(done.set)

    recorder = Recorder(signal)
    subscription: abc.DisposableBase = recorder.observe(stream).subscribe(recorder)
    try:
        await asyncio.wait_for(done.wait(), TERMINAL_DEADLINE)
    except TimeoutError:
        recorder.outcome.timed_out = True
        subscription.dispose()
    others = asyncio.all_tasks() - before
    if others:
        await asyncio.wait(others, timeout=TERMINAL_DEADLINE)
    return recorder.outcome, {t for t in others if not t.done()}


# -- the invariants ----------------------------------------------------------------------------------


def _text(events: list[StreamEvent]) -> str:
    text = ""
    for event in events:
        if event.type == "stream_reset":
            text = ""
        elif event.type == "text_delta":
            text += event.text
    return text


def check_outcome(outcome: Outcome, case: Case) -> None:
    assert not outcome.timed_out, f"no terminal within {TERMINAL_DEADLINE}s: {case!r}"
    assert len(outcome.terminals) == 1, f"{len(outcome.terminals)} terminals: {case!r}"
    assert outcome.late_events == 0, f"events after the terminal: {case!r}"
    kind, error = outcome.terminals[0]
    if kind == "error":
        assert isinstance(error, StreamError), f"untyped error {error!r} ({type(error).__name__}): {case!r}"
        assert error.partial.text == _text(outcome.events), f"partial text differs: {case!r}"
        assert not outcome.finals, f"a final Response and an error: {case!r}"
    else:
        assert len(outcome.finals) == 1, f"{len(outcome.finals)} final responses: {case!r}"
        assert outcome.finals[0].text == _text(outcome.events), f"final text differs: {case!r}"


_SHARED_THREADS = (
    "rxstream-rawserver",  # the server's own
    "rxstream-reader",  # the sync sources' shared ReaderPool (idle threads are reused, then retire)
    "asyncio_",  # the harness loop's default executor (getaddrinfo); joined by Runner.close()
)


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.name.startswith(_SHARED_THREADS)}


def _pool_threads() -> int:
    """Reader threads still running a job (idle pool threads wait for the next stream)."""
    from rxstream.providers._source import default_scheduler

    return default_scheduler().pool.busy


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0  # pragma: no cover - not Linux


class Harness:
    """One server, one asyncio loop and one client per provider and mode, shared by the examples."""

    def __init__(self) -> None:
        self.server = RawBytesServer()
        self.server.start()
        self.runner = asyncio.Runner()
        self.clients: dict[tuple[str, str], Any] = {}

    def client(self, provider: str, mode: str = "sync") -> Any:
        key = (provider, mode)
        if key not in self.clients:
            if mode == "sync":
                self.clients[key] = sync_client(provider, self.server)
            else:
                self.clients[key] = async_client(provider, self.server)
        return self.clients[key]

    def violation(self, provider: str, mode: str, case: Case) -> str | None:
        """Run ``case``; return the broken invariant's message, or ``None``."""
        try:
            self.run(provider, mode, case)
        except AssertionError as exc:
            return str(exc).split("\nassert ")[0]
        return None

    def run(
        self,
        provider: str,
        mode: str,
        case: Case,
        *,
        replies: list[RawReply] | None = None,
        transform: Callable[[Observable[StreamEvent]], Observable[StreamEvent]] | None = None,
    ) -> Outcome:
        """Serve ``replies`` (default: the case's reply), check every invariant, return the outcome."""
        server = self.server
        server.dequeue_all()
        before = len(server.exchanges)
        threads = _threads()
        server.enqueue(*(replies or [case.reply(RECORDINGS[provider])]))
        stream = make_source(provider, self.client(provider, mode))
        if transform is not None:
            stream = stream.pipe(transform)
        if mode == "sync":
            outcome = run_sync(stream)
            leftover_tasks: set[asyncio.Task[Any]] = set()
        else:
            outcome, leftover_tasks = self.runner.run(run_async(stream))
        check_outcome(outcome, case)
        assert not leftover_tasks, f"asyncio tasks left behind {leftover_tasks}: {case!r}"
        for index in range(before, len(server.exchanges)):
            server.wait_for_end(index, timeout=TERMINAL_DEADLINE)  # read to the end, or closed
        for thread in _threads() - threads:
            thread.join(TERMINAL_DEADLINE)
            assert not thread.is_alive(), f"thread {thread.name} left behind: {case!r}"
        return outcome

    def close(self) -> None:
        for (_, mode), client in self.clients.items():
            if mode == "sync":
                client.close()
            else:
                self.runner.run(client.close())
        self.clients.clear()
        self.runner.close()
        gc.collect()  # boto3's close() leaves a pooled urllib3 connection to the GC
        self.server.wait_until_idle(timeout=TERMINAL_DEADLINE)
        self.server.stop()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """One harness for the module; its teardown checks threads, fds and RSS over the whole run."""
    fds, pool, rss, threads = _fds(), _pool_threads(), _rss_mb(), set(threading.enumerate())
    h = Harness()
    try:
        yield h
    finally:
        h.close()
    left = [t.name for t in set(threading.enumerate()) - threads if not t.name.startswith("rxstream-reader")]
    assert not left, f"threads left behind: {left}"
    assert _fds() <= fds + 2, f"file descriptors grew from {fds} to {_fds()}"
    deadline = time.monotonic() + TERMINAL_DEADLINE  # a reader returns just after its terminal
    while _pool_threads() > pool and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _pool_threads() <= pool, "reader pool threads stuck"
    assert _rss_mb() - rss < 200, f"RSS grew {rss:.0f} -> {_rss_mb():.0f} MB"


# -- the tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "mode"), TARGETS, ids=TARGET_IDS)
def test_valid_recorded_streams_complete_back_to_back_on_one_client(
    harness: Harness, provider: str, mode: str
) -> None:
    """The unmutated stream, 10 times in a row on one client, each started from the last terminal."""
    recording = RECORDINGS[provider]
    case = Case(provider, ["none"], recording.body(), recording.encode())
    harness.server.dequeue_all()
    for _ in range(BACK_TO_BACK):
        harness.server.enqueue(case.reply(recording))
    client = harness.client(provider, mode)
    if mode == "async":
        for _ in range(BACK_TO_BACK):
            outcome, leftover = harness.runner.run(run_async(make_source(provider, client)))
            check_outcome(outcome, case)
            assert not leftover
            assert outcome.terminals[0][0] == "completed" and _text(outcome.events) == SCRIPT.text
        return
    results: list[Outcome] = []
    all_done = threading.Event()

    def next_stream() -> None:
        if len(results) == BACK_TO_BACK:
            all_done.set()
            return
        recorder = Recorder(lambda: next_stream())
        results.append(recorder.outcome)
        recorder.observe(make_source(provider, client)).subscribe(recorder)

    next_stream()
    assert all_done.wait(TERMINAL_DEADLINE * 2)
    for outcome in results:
        check_outcome(outcome, case)
        error = outcome.terminals[0][1]
        assert error is None, f"{error!r} on a valid stream"
        assert _text(outcome.events) == SCRIPT.text


@pytest.mark.parametrize(("provider", "mode"), TARGETS, ids=TARGET_IDS)
def test_mutated_streams_end_with_one_typed_terminal(harness: Harness, provider: str, mode: str) -> None:
    @FUZZ_SETTINGS
    @given(case=cases(provider))
    def check(case: Case) -> None:
        harness.run(provider, mode, case)

    check()


@pytest.mark.parametrize("provider", [p for p, m in TARGETS if m == "sync"])
def test_every_field_with_a_wrong_type_ends_with_one_typed_terminal(harness: Harness, provider: str) -> None:
    every = wrong_type_cases(provider, every_value=EVERY_VALUE)
    violations = [v for case in every if (v := harness.violation(provider, "sync", case))]
    assert not violations, f"{len(violations)} violations:\n" + "\n".join(v[:600] for v in violations[:15])


RETRY_AFTER = ["0", "0.01", "0.3", "3600", "1e10", "1e400", "inf", "-inf", "nan", "-1", "abc", ""]


@pytest.mark.parametrize("provider", ["anthropic", "openai", "bedrock"])
def test_any_retry_after_header_ends_retry_stream_promptly(harness: Harness, provider: str) -> None:
    """A 429 whose ``retry-after`` is anything: ``retry_stream`` ends with the typed error, never stalls.

    The SSE providers share one header parser (``providers/_http.py``), the Bedrock ones another.
    """
    error = RECORDINGS[provider].error_reply(429, "slow down")
    retry = rso.retry_stream(max_attempts=2, backoff=0.01, max_backoff=0.02, max_retry_after=0.2)
    for value in RETRY_AFTER:
        reply = dataclasses.replace(error, headers=[*error.headers, ("retry-after", value)])
        body = b"".join(p for p in reply.body if isinstance(p, bytes))
        case = Case(provider, [f"HTTP 429, retry-after: {value!r}"], body, [body])
        outcome = harness.run(provider, "sync", case, replies=[reply] * 2, transform=retry)
        kind, raised = outcome.terminals[0]
        assert kind == "error" and isinstance(raised, ProviderError) and raised.status_code == 429, (
            raised,
            case,
        )


@pytest.mark.parametrize(("provider", "mode"), TARGETS, ids=TARGET_IDS)
def test_a_stalled_body_ends_with_idle_timeout_and_closes_the_connection(
    harness: Harness, provider: str, mode: str
) -> None:
    """Half a stream, then silence: ``idle_timeout`` fires, and disposal reaches the blocked read."""
    recording = RECORDINGS[provider]
    encoded = recording.encode()
    pieces = encoded[: len(encoded) // 2]
    body = b"".join(pieces)
    case = Case(provider, ["half the events, then stall"], body, pieces, ending="stall")
    reply = dataclasses.replace(recording.reply(pieces), ending="stall")
    outcome = harness.run(provider, mode, case, replies=[reply], transform=rso.idle_timeout(0.3))
    kind, raised = outcome.terminals[0]
    assert kind == "error" and isinstance(raised, IdleTimeout), (raised, case)
    exchange = harness.server.exchanges[-1]
    assert exchange.client_disconnected and not exchange.completed

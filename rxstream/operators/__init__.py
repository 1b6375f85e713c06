"""rxstream operators: use with ``pipe`` (docs alias ``from rxstream import operators as rso``).

Every operator is a factory that validates its arguments when called (raising
`rxstream.errors.ConfigurationError`) and returns ``Callable[[Observable[A]], Observable[B]]``.
Time-based operators take an optional ``scheduler`` (argument → subscribe-time scheduler →
``TimeoutScheduler``), read time only from ``scheduler.now``, and are lossless: whatever they
hold is emitted before the source's ``on_error``/``on_completed`` is forwarded.

Marble legend: one character per tick; ``S`` start, ``t``/``a``-``f`` deltas, ``T`` tool
call, ``U`` usage, ``E`` end, ``|`` completion, ``#`` error; ``(..)`` happens at one instant.

Projections:

* ``text()``: ``Observable[StreamEvent] -> Observable[str]``, the text deltas.
* ``snapshots()``: ``Observable[StreamEvent] -> Observable[Response]``, after every event.
* ``final()``: ``Observable[StreamEvent] -> Observable[Response]``, one value at completion::

      events:   -S--t--t--t--E-|
      final():  -------------R|

* ``throttle_snapshots(interval)``: the latest `Response`, at most once per interval
  (leading + trailing), always the final one::

      events:                  -a-bc------d-|
      throttle_snapshots(4):   -1---3-----4-|

* ``stream_stats(interval=None)``: `StreamStats` (TTFT, tokens/s, inter-token latency) per
  tick and a final ``done=True`` one; `StatsTracker` is the same without Rx::

      events:             -a-b-c-d-e|
      stream_stats(4):    ----s---s-(D|)

Tool loops (`rxstream.tool_loop`):

* ``loop_result()``: ``Observable[StreamEvent] -> Observable[ToolLoopResult]``, one value at
  completion (responses, final text, usage per iteration and summed, tool results, and the
  history in the provider's format)::

      loop:           -I-S-t-E-R-J-I-S-t-E-J|
      loop_result():  ----------------------(L|)

Re-chunking and pacing (events keep their order; text is never lost):

* ``coalesce_text(max_delay, max_chars=None)``: merge adjacent text (or thinking) deltas
  within a window into one delta::

      events:             S-a-b-----c-d-T-E|
      coalesce_text(4):   S-----A-------(CT)E|

* ``buffer_tokens(n, max_delay=None)``: lists of up to ``n`` same-kind deltas; other events
  as one-item lists::

      events:             -a-b-c-d-e-U-|
      buffer_tokens(3):   -----X-----(YZ)|

* ``smooth_text(chars_per_second=None, *, delay=None, chunking="word")``: words, lines or
  graphemes released at a steady pace (like the AI SDK's ``smoothStream``)::

      events:                  -a-------E|
      smooth_text(delay=2):    -1-2-----(3E)|

* ``rate_limit(tokens_per_second)``: at most N text deltas per second, nothing dropped::

      events:             -(abcU)|
      rate_limit(0.5):    -a-b-(cU|)

Timeouts (typed `StreamTimeoutError` with ``.partial``; upstream disposed first):

* ``first_token_timeout(seconds)``: no text/thinking/tool call within ``seconds``::

      events:                    S-------t-|
      first_token_timeout(5):    S----#

* ``idle_timeout(seconds)``: no event for ``seconds`` (one self re-arming timer)::

      events:              -a-b------c-|
      idle_timeout(3):     -a-b--#

* ``total_timeout(seconds)``: not finished ``seconds`` after subscription::

      events:              -a-b-c-d-e-|
      total_timeout(6):    -a-b-c#

Cancellation:

* ``take_until_cancelled(signal)``: complete and close the connection when an Observable,
  `asyncio.Event` or `threading.Event` fires::

      events:                     -a-b-c-d-e-|
      signal:                     ------c
      take_until_cancelled(sig):  -a-b--|

Structured output:

* ``structured(Model, *, source="text" | "tool:NAME")``: the answer text (or one tool call's
  arguments) parsed as JSON while it streams: `PartialOutput` items (validated partials),
  then one `FinalOutput`; invalid output → `OutputValidationError`::

      events:         S-a-b-c-E|
      structured(M):  --p-q----(F|)

Configuration:

* ``apply_config(config=None, profile=None, *, provider=None, model=None, valve=None)``: the
  chain a `rxstream.config.StreamProfile` names (timeouts → retry → coalesce → smooth /
  ``chunk_delay_ms`` → buffer_tokens → hold when ``stream = false`` → pausable), as one
  operator; see ``docs/configuration.md``::

      events:                       S-a-b-E|
      apply_config(stream=false):   -------(SabE|)

Telemetry (extra ``rxstream[otel]``; events pass through unchanged):

* ``traced(*, tracer_provider=None, meter_provider=None, capture_content=False)``: one
  OpenTelemetry GenAI ``CLIENT`` span per subscription, ended exactly once (completion,
  error or disposal), and the GenAI client metrics on the scheduler clock (see
  `rxstream.telemetry`).

Recording (see `rxstream.cassette`; replay with ``rxstream.replay``):

* ``record(path_or_file, *, scheduler=None)``: events pass through unchanged and are
  written to a JSON Lines cassette with their time offsets and the terminal.

Publishing (extra ``rxstream[redis]``; read back with ``rxstream.from_redis``):

* ``publish_to_redis(redis, key, *, maxlen=10_000, ttl=3600)``: events pass through
  undelayed and are appended, in order, to a Redis Stream (see `rxstream.redis`).

Retry and flow control:

* ``retry_stream(max_attempts=3, *, backoff=0.5, max_backoff=30.0, jitter=0.2,
  on_partial="fail")``: resubscribes (a new request) after a retryable error, waiting at
  least ``retry_after``; ``"restart"`` emits one `StreamReset` before the new attempt::

      attempt 1:  -S-t-#
      attempt 2:         <wait>-S-t-E|
      output:     -S-t---------RS-t-E|      (R = StreamReset(attempt=2, discarded_text="t"))

* ``pausable(valve, *, max_buffered=10_000)``: holds events while the valve's latest value is
  False and releases them in order; a full buffer blocks the producer (TCP backpressure for
  sync sources)::

      valve:    F-------T
      source:   -a-b-c-|
      output:   --------(abc|)

Several sources (`rxstream.merge_streams` emits `Tagged` items):

* ``for_source(name)``: ``Observable[Tagged] -> Observable[StreamEvent]``, one track; its
  error item becomes ``on_error``::

      merged:            -ab-a-bx
      for_source("A"):   -a--a--#

* ``untag()``: every track's events without tags; the first error item becomes ``on_error``::

      merged:    -ab-a-bx
      untag():   -ab-a-b#
"""

from __future__ import annotations

from rxstream.cassette import record
from rxstream.operators._apply_config import apply_config
from rxstream.operators._basic import final, snapshots, text
from rxstream.operators._buffer_tokens import buffer_tokens
from rxstream.operators._coalesce_text import coalesce_text
from rxstream.operators._for_source import for_source
from rxstream.operators._loop_result import ToolLoopResult, loop_result
from rxstream.operators._pausable import PausableBufferOverflow, pausable
from rxstream.operators._publish_redis import publish_to_redis
from rxstream.operators._rate_limit import rate_limit
from rxstream.operators._retry import retry_stream
from rxstream.operators._smooth_text import Chunking, smooth_text
from rxstream.operators._stats import StatsTracker, StreamStats, stream_stats
from rxstream.operators._structured import FinalOutput, PartialOutput, StructuredOutput, structured
from rxstream.operators._take_until_cancelled import CancelSignal, take_until_cancelled
from rxstream.operators._throttle_snapshots import throttle_snapshots
from rxstream.operators._timeouts import first_token_timeout, idle_timeout, total_timeout
from rxstream.operators._traced import traced
from rxstream.operators._untag import untag

__all__ = [
    "CancelSignal",
    "Chunking",
    "FinalOutput",
    "PartialOutput",
    "PausableBufferOverflow",
    "StatsTracker",
    "StreamStats",
    "StructuredOutput",
    "ToolLoopResult",
    "apply_config",
    "buffer_tokens",
    "coalesce_text",
    "final",
    "first_token_timeout",
    "for_source",
    "idle_timeout",
    "loop_result",
    "pausable",
    "publish_to_redis",
    "rate_limit",
    "record",
    "retry_stream",
    "smooth_text",
    "snapshots",
    "stream_stats",
    "structured",
    "take_until_cancelled",
    "text",
    "throttle_snapshots",
    "total_timeout",
    "traced",
    "untag",
]

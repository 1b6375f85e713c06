"""Producer and consumer processes of the split-deployment test (run as a script).

``python redis_worker.py produce URL KEY TEXT``: serve TEXT from a private emulator, slowly,
and publish the stream to Redis; exits when the terminal entry is written.
``python redis_worker.py consume URL KEY [AFTER_SEQ]``: print one JSON line per event read
with ``from_redis`` (``{"seq", "type", "text"}``), then ``{"end": ...}``.
"""

from __future__ import annotations

import json
import sys

import redis
from reactivex import operators as ops

import rxstream as rxs
from rxstream import operators as rso
from rxstream.events import StreamEvent, TextDelta


def produce(url: str, key: str, text: str) -> int:
    import anthropic  # only the producer needs the SDK and the emulator (consumers start faster)

    from rxstream.testing import ProviderEmulator, ResponseScript

    client = redis.Redis.from_url(url)
    publisher = rso.publish_to_redis(client, key)
    script = ResponseScript(text=text, event_delay=0.05)
    with (
        ProviderEmulator(script) as emu,
        anthropic.Anthropic(api_key="sk-emulator", base_url=emu.anthropic_base_url) as sdk,
    ):
        stream = rxs.from_anthropic(
            sdk, model="m", max_tokens=512, messages=[{"role": "user", "content": "go"}]
        )
        response = stream.pipe(publisher, rso.final()).run()
    publisher.join(30)
    client.close()
    print(json.dumps({"published": response.text}), flush=True)
    return 0


def consume(url: str, key: str, after_seq: int | None) -> int:
    client = redis.Redis.from_url(url)

    def show(event: StreamEvent) -> None:
        text = event.text if isinstance(event, TextDelta) else None
        print(json.dumps({"seq": event.seq, "type": event.type, "text": text}), flush=True)

    try:
        rxs.from_redis(client, key, after_seq=after_seq, block=30).pipe(
            ops.do_action(show), rso.final()
        ).run()
        print(json.dumps({"end": "completed"}), flush=True)
    except Exception as exc:
        print(json.dumps({"end": type(exc).__name__}), flush=True)
    finally:
        client.close()
    return 0


def main(argv: list[str]) -> int:
    if argv[1] == "produce":
        return produce(argv[2], argv[3], argv[4])
    return consume(argv[2], argv[3], int(argv[4]) if len(argv) > 4 else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

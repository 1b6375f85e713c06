"""A real ``redis-server`` per test (Debian package ``redis-server``; `.ci/run` installs it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rxstream.testing.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()

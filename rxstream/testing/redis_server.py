"""A throwaway ``redis-server`` process on a free loopback port (for tests and benchmarks).

Needs the ``redis-server`` executable (Debian/Ubuntu package ``redis-server``). No data is
persisted (``--save ""``, no AOF); the working directory is a temporary directory.

>>> with RedisServer() as server:  # doctest: +SKIP
...     client = redis.Redis.from_url(server.url)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RedisServer"]


class RedisServer:
    """Start ``redis-server`` on 127.0.0.1 (free port); ``stop()`` kills it (e.g. mid-stream).

    Args:
        directory: Working directory (log file ``redis.log``); default a new temp dir.
        startup_timeout: Seconds to wait for ``PING`` to answer.

    Attributes:
        port: The TCP port.
        url: ``redis://127.0.0.1:<port>/0`` for ``redis.Redis.from_url``.

    Raises:
        FileNotFoundError: ``redis-server`` is not installed.
        RuntimeError: the server did not answer within ``startup_timeout``.
    """

    def __init__(self, directory: Path | None = None, *, startup_timeout: float = 10.0) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server is not installed (Debian: apt-get install -y redis-server)")
        self._tmp = None if directory is not None else tempfile.TemporaryDirectory(prefix="rxstream-redis-")
        workdir = directory if directory is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = open(workdir / "redis.log", "wb")  # noqa: SIM115
        args = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir)]
        args += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + startup_timeout
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)  # polling a condition, with a deadline

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Kill the server (idempotent) and remove its temporary directory."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if not self._log.closed:
            self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

"""Reader threads for sync sources: an elastic pool that is never a concurrency cap.

A sync SDK client blocks a thread for the whole life of a stream (reading the socket, or
waiting inside ``pausable`` / ``to_iterator`` for the consumer). A CPU-sized pool is the
wrong tool for that: with reactivex's ``ThreadPoolScheduler(max_workers=64)`` the 65th
stream waited until another one ended, and 64 paused streams stopped every other sync
stream in the process.

`ReaderPool` hands each job to an idle thread when there is one (a ``SimpleQueue`` put and
one thread wake-up, ~15-30 µs) and otherwise starts a new daemon thread (~60-100 µs), so
the number of concurrently reading streams is bounded only by what the OS allows for
threads (``ulimit -u``, ``/proc/sys/kernel/threads-max``, 8 MiB of *virtual* stack per
thread by default; see docs/benchmarks.md for the measured limit). A thread idle for
``idle_timeout`` seconds exits, so a burst of 1,000 streams does not leave 1,000 threads
behind for long.

`ReaderScheduler` is the reactivex face of the pool: the default scheduler of every sync
source (``rxstream.providers._source.default_scheduler``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from reactivex import abc, typing
from reactivex.disposable import BooleanDisposable
from reactivex.scheduler import NewThreadScheduler

__all__ = ["ReaderPool", "ReaderScheduler"]

logger = logging.getLogger("rxstream")

_TState = TypeVar("_TState")

_Job = Callable[[], None]


class _Worker:
    __slots__ = ("jobs",)

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()


class ReaderPool:
    """Run blocking jobs on reused idle threads, or on new ones: no upper bound on threads.

    Args:
        idle_timeout: Seconds an idle thread waits for a new job before it exits.
        name: Thread name prefix (threads are daemon threads).

    Example:
        >>> pool = ReaderPool(idle_timeout=1.0)
        >>> done = threading.Event()
        >>> pool.submit(done.set)
        >>> done.wait(5)
        True
    """

    def __init__(self, idle_timeout: float = 30.0, name: str = "rxstream-reader") -> None:
        self._idle_timeout = idle_timeout
        self._name = name
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # a stack: the most recently idle (hottest) thread first
        self._count = 0

    @property
    def threads(self) -> int:
        """Threads currently alive in this pool (busy or idle)."""
        return self._count

    @property
    def busy(self) -> int:
        """Threads currently running a job (a stream reading, or a job about to start)."""
        with self._lock:
            return self._count - len(self._idle)

    def submit(self, job: _Job) -> None:
        """Run ``job()`` on an idle thread, or on a new thread if none is idle."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                self._count += 1
        if worker is not None:
            worker.jobs.put(job)
            return
        worker = _Worker()
        try:
            threading.Thread(
                target=self._work, args=(worker, job), name=f"{self._name}-{id(worker):x}", daemon=True
            ).start()
        except BaseException:
            with self._lock:
                self._count -= 1
            raise

    def _work(self, worker: _Worker, job: _Job) -> None:
        try:
            while True:
                try:
                    job()
                except BaseException:  # a job must never kill its thread silently
                    logger.exception("rxstream: a reader job raised")
                del job
                with self._lock:
                    self._idle.append(worker)
                try:
                    job = worker.jobs.get(timeout=self._idle_timeout)
                except queue.Empty:
                    with self._lock:
                        if worker in self._idle:
                            self._idle.remove(worker)
                            return
                    job = worker.jobs.get()  # popped concurrently: its job is on the way
        finally:
            with self._lock:
                self._count -= 1


class ReaderScheduler(NewThreadScheduler):
    """A reactivex scheduler whose immediate actions run on a `ReaderPool` thread.

    ``schedule`` (and ``schedule_relative`` with a due time ≤ 0) hands the action straight
    to the pool: no per-action event loop, no worker cap. Delayed and periodic actions use
    `reactivex.scheduler.NewThreadScheduler`'s behaviour. ``now`` is the wall clock.

    Example:
        >>> scheduler = ReaderScheduler()
        >>> done = threading.Event()
        >>> _ = scheduler.schedule(lambda sched, state: done.set())
        >>> done.wait(5)
        True
    """

    def __init__(self, pool: ReaderPool | None = None) -> None:
        super().__init__()
        self.pool = pool or ReaderPool()

    def schedule(
        self, action: typing.ScheduledAction[_TState], state: _TState | None = None
    ) -> abc.DisposableBase:
        """Run ``action(self, state)`` on a pool thread; disposing before it starts skips it."""
        cancelled = BooleanDisposable()

        def job() -> None:
            if not cancelled.is_disposed:
                self.invoke_action(action, state)

        self.pool.submit(job)
        return cancelled

    def schedule_relative(
        self,
        duetime: typing.RelativeTime,
        action: typing.ScheduledAction[_TState],
        state: _TState | None = None,
    ) -> abc.DisposableBase:
        """Run ``action`` after ``duetime`` (seconds or timedelta); at once on the pool if ≤ 0."""
        if self.to_seconds(duetime) <= 0:
            return self.schedule(action, state)
        return super().schedule_relative(duetime, action, state)

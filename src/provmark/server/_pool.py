"""The service's CPU side: a process pool warmed at start-up, a bounded admission
queue, and a deadline per request.

This module owns where the pixel work runs and how much of it may wait. Every job
runs in a worker process (spawned, not forked: the server's threads and the Numba
runtime do not survive a fork), never on the event loop. At start-up every worker
loads the kernels and runs each job once (:func:`provmark.server._work.init_worker`)
before the service reports ready, so the first request pays no compile or load time.
Admission is bounded: at most ``workers + queue`` requests hold a slot (uploading,
waiting or running); the next one is refused at once (the caller answers 503 with
``Retry-After``) instead of queueing without bound. A slot is given back when its
job has really finished, not when the client stopped waiting, so a timed-out job
still counts against the bound while it runs. A worker that dies (killed, out of
memory) breaks the pool: it is replaced by a new, warmed one and the requests
caught in it are answered 503.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import multiprocessing
import time
from concurrent.futures.process import BrokenProcessPool

from . import _work


class PoolFull(Exception):
    """No slot is free: ``workers + queue`` requests are already admitted."""

    def __init__(self, retry_after: int):
        super().__init__(f"the service is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class PoolBroken(Exception):
    """A worker died while running the job; the pool is being replaced."""


class Slot:
    """An admitted request's place; released once (explicitly, or when its job ends)."""

    def __init__(self, pool: WorkerPool):
        self._pool = pool
        self._released = False
        self.submitted = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._pool._admitted -= 1


class WorkerPool:
    """``workers`` warmed processes behind a bounded admission counter.

    Parameters
    ----------
    workers : int
        Worker processes.
    queue : int
        Requests admitted beyond one per worker (waiting for a worker, or uploading).
    max_pixels : int
        Pixel limit inside the workers.
    threads_per_worker : int
        Numba threads per worker.
    """

    def __init__(self, workers: int, queue: int, *, max_pixels: int, threads_per_worker: int = 1):
        self.workers = int(workers)
        self.capacity = int(workers) + int(queue)
        self.max_pixels = int(max_pixels)
        self.threads_per_worker = int(threads_per_worker)
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._admitted = 0
        self._running = 0
        self._restarting: asyncio.Task | None = None
        self._mean_seconds = 0.5  # running mean of job time, for Retry-After
        self.warm_seconds: list[float] = []
        self.pids: list[int] = []
        self.ready = False

    # ----------------------------------------------------------------- life cycle

    def _new_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_work.init_worker, initargs=(self.max_pixels, self.threads_per_worker))

    async def start(self, *, timeout: float = 300.0) -> None:
        """Start the workers and wait until each one has warmed up.

        Raises
        ------
        RuntimeError
            Not every worker answered within ``timeout`` seconds.
        """
        self.ready = False
        self._executor = self._new_executor()
        loop = asyncio.get_running_loop()
        seen: dict[int, float | None] = {}
        deadline = time.monotonic() + timeout
        # Workers start on demand: as many pings at once as workers makes the pool
        # start all of them (each warms up in its initializer before its first
        # job); ping until every one has answered, i.e. finished warming.
        while len(seen) < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(seen)} of {self.workers} workers started within "
                                   f"{timeout:g} s")
            futures = [loop.run_in_executor(self._executor, _work.ping)
                       for _ in range(self.workers)]
            for pid, warm in await asyncio.gather(*futures):
                seen[pid] = warm
        self.pids = sorted(seen)
        self.warm_seconds = [seen[p] for p in self.pids]
        self.ready = True

    async def close(self) -> None:
        """Stop taking work; wait for running jobs to finish, then stop the workers."""
        self.ready = False
        if self._restarting is not None and not self._restarting.done():
            await asyncio.gather(self._restarting, return_exceptions=True)
        if self._executor is not None:
            ex, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(None, ex.shutdown, True)

    async def _restart(self) -> None:
        old, self._executor = self._executor, None
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
        await self.start()

    # ----------------------------------------------------------------- admission

    @property
    def admitted(self) -> int:
        """Requests holding a slot now."""
        return self._admitted

    @property
    def running(self) -> int:
        """Jobs submitted to the workers and not finished."""
        return self._running

    def retry_after(self) -> int:
        """Seconds after which a refused request may find a free slot: the queue ahead
        of it divided among the workers, at the recent mean job time (at least 1)."""
        return max(1, math.ceil(self._mean_seconds * self.capacity / self.workers))

    def admit(self) -> Slot:
        """A slot for one request, or :class:`PoolFull` at once."""
        if self._admitted >= self.capacity:
            raise PoolFull(self.retry_after())
        self._admitted += 1
        return Slot(self)

    async def run(self, slot: Slot, fn, /, *args, timeout: float, **kwargs):
        """Run ``fn(*args, **kwargs)`` in a worker and return its result.

        The slot is released when the job ends, even if the caller stops waiting.

        Raises
        ------
        asyncio.TimeoutError
            Not finished within ``timeout`` seconds (the job keeps its slot until
            it ends).
        PoolBroken
            A worker died; the pool is being replaced.
        """
        if not self.ready or self._executor is None:
            slot.release()
            raise PoolBroken("the workers are restarting")
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        try:
            cf = self._executor.submit(fn, *args, **kwargs)
        except (BrokenProcessPool, RuntimeError):
            slot.release()
            self._schedule_restart()
            raise PoolBroken("a worker process died") from None
        slot.submitted = True
        self._running += 1

        def finished(f) -> None:
            self._running -= 1
            if not f.cancelled():
                f.exception()  # retrieved here: nobody awaits a job that timed out
            elapsed = time.monotonic() - t0
            self._mean_seconds += 0.1 * (elapsed - self._mean_seconds)
            slot.release()

        fut = asyncio.wrap_future(cf, loop=loop)
        fut.add_done_callback(finished)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except BrokenProcessPool:
            self._schedule_restart()
            raise PoolBroken("a worker process died while running the request") from None

    def _schedule_restart(self) -> None:
        if self._restarting is None or self._restarting.done():
            self.ready = False
            self._restarting = asyncio.get_running_loop().create_task(self._restart())


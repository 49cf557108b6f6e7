"""Micro-batching: concurrent requests are merged into one engine call, up to a max batch or a max
wait, then split back. Each request's z comes from its own seed, so its images do not depend on
what it was batched with (up to GEMM blocking, within one gray level)."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from gantool.contract import Z

log = logging.getLogger(__name__)


class EngineError(Exception):
    """The engine raised on a batch: every request of that batch gets this (logged once per batch)."""


class ShuttingDown(Exception):
    """A request arrived after stop(): it cannot be queued behind the worker's last batch."""


@dataclass
class Job:
    feeds: dict[str, np.ndarray]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)

    @property
    def n(self) -> int:
        return len(self.feeds[Z])


class MicroBatcher:
    """One worker task owns the engine; the engine runs in one thread so the event loop stays free."""

    def __init__(self, infer: Callable[[dict[str, np.ndarray]], np.ndarray], max_batch: int, max_wait_ms: float,
                 on_batch: Callable[[int], None] | None = None) -> None:
        self.infer, self.max_batch, self.max_wait = infer, max_batch, max_wait_ms / 1000.0
        self.on_batch = on_batch or (lambda n: None)
        self.queue: asyncio.Queue[Job | None] = asyncio.Queue()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="gantool-engine")
        self.task: asyncio.Task | None = None
        self._pending: Job | None = None
        self.served = 0  # engine calls made
        self.closed = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._worker())

    async def submit(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The raw output for these feeds; raises EngineError if the engine fails, ShuttingDown after stop()."""
        if self.closed:  # behind the stop marker a job would never be served
            raise ShuttingDown("the server is shutting down")
        if self.task is not None and self.task.done():  # cannot happen (_run fails jobs, not the worker): fail fast
            raise EngineError("the batcher stopped")
        job = Job(feeds, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def stop(self) -> None:
        """Finish every queued job, then stop the worker (graceful shutdown)."""
        self.closed = True
        await self.queue.put(None)
        if self.task is not None:
            await self.task
        self.pool.shutdown(wait=True)

    async def _collect(self, first: Job) -> tuple[list[Job], bool]:
        jobs, total, stop = [first], first.n, False
        deadline = time.perf_counter() + self.max_wait
        while total < self.max_batch:
            if self._pending is None:
                timeout = deadline - time.perf_counter()
                if timeout <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                if nxt is None:
                    stop = True
                    break
                self._pending = nxt
            if total + self._pending.n > self.max_batch or self._pending.feeds.keys() != first.feeds.keys():
                break  # it starts the next batch (labels and class weights run on different graphs)
            jobs.append(self._pending)
            total += self._pending.n
            self._pending = None
        return jobs, stop

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        stop = False
        while True:
            if self._pending is not None:
                first, self._pending = self._pending, None
            elif stop:
                break
            else:
                nxt = await self.queue.get()
                if nxt is None:
                    break
                first = nxt
            jobs, stopped = await self._collect(first)
            stop = stop or stopped
            jobs = [j for j in jobs if not j.future.cancelled()]  # the client went away
            if not jobs:
                continue
            await self._run(loop, jobs)

    async def _run(self, loop: asyncio.AbstractEventLoop, jobs: list[Job]) -> None:
        """One engine call for these jobs; whatever goes wrong fails these jobs only, never the worker."""
        total = sum(j.n for j in jobs)
        try:
            merged = {k: np.concatenate([j.feeds[k] for j in jobs]) for k in jobs[0].feeds}
            self.on_batch(total)
            self.served += 1
            out = await loop.run_in_executor(self.pool, self.infer, merged)
            if not isinstance(out, np.ndarray) or out.ndim < 1 or len(out) != total:
                raise TypeError(f"the engine returned {type(out).__name__} {getattr(out, 'shape', '')} for "
                                f"{total} images")
        except Exception as e:  # the engine failed: every job of the batch gets the error, logged once
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:500]  # one line (ORT errors span several)
            log.error("engine failed on a batch of %d images (%d requests): %s", total, len(jobs), reason)
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(EngineError(type(e).__name__))
            return
        i = 0
        for j in jobs:
            if not j.future.done():
                j.future.set_result(out[i:i + j.n])
            i += j.n

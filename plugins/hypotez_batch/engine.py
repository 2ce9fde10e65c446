"""The ``local`` engine: lanes that each take a chunk of rows at a time.

- A backend that implements the async side itself (an HTTP client) waits on the network: the
  job runs in this process with ``concurrency`` chunks in flight (default 16). Rate limits are
  the SDK's business: its bounded retries with backoff; a row that still fails is an error row.
- A backend that implements the blocking side (a local model) computes on this CPU: one lane
  runs it in this process (never two at once: local models are rarely thread-safe) and
  ``workers - 1`` more lanes each own a process of a spawn-started pool. Every process builds
  its backend once, from the same settings, through its own :class:`hypotez.Context`.

Chunks are handed out in input order from a short queue; results are written as each chunk
finishes. A cancelled job stops taking chunks; chunks in flight finish and are kept.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

from hypotez import ConfigError
from hypotez.batch import (
    BatchEngine,
    Job,
    Row,
    Worker,
    WorkerSpec,
    chunked,
    native_async,
    positive_int,
)

#: The async method whose origin tells a network backend from a local one, per capability.
METHODS = {"sentiment": "aanalyze", "chat": "achat", "vision": "adescribe"}
DEFAULT_CONCURRENCY = 16
#: Rows per chunk sent to a pool process when the task works row by row (ask, describe).
POOL_CHUNK = 4
#: A pool whose processes keep dying is given up after this many restarts.
MAX_RESTARTS = 3


def _workers(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return positive_int(value)


# -- in a pool process ---------------------------------------------------------------------------
_worker: Worker | None = None


def _init(spec: WorkerSpec) -> None:
    global _worker
    _worker = spec.build()
    _worker.warm_up()


def _work(rows: Sequence[Row]) -> list[dict[str, Any]]:
    assert _worker is not None, "the pool's initializer did not run"
    return _worker.run(rows)


# -- in this process -------------------------------------------------------------------------------
class LocalEngine(BatchEngine):
    """Runs a job on this machine; see the module docstring."""

    name = "local"
    options: ClassVar[dict[str, str]] = {
        "workers": "processes for a local model (default 'auto': one per CPU; network backends: 1)",
        "concurrency": f"requests in flight for a network backend (default {DEFAULT_CONCURRENCY})",
        "batch_size": "rows per call (default: the task's; 64 texts for sentiment)",
    }

    def __init__(self) -> None:
        #: The pool processes of the last job (their ids), for benchmarks and tests.
        self.worker_pids: list[int] = []

    async def arun(self, job: Job) -> None:
        task = job.task
        backend = await task.backend(job.context)  # fails here, once, if it cannot be built
        network = native_async(backend, METHODS.get(task.capability, ""))
        workers = job.option("workers", None, _workers)
        chosen = workers is not None
        if workers is None:
            workers = 1 if network else max(1, os.cpu_count() or 1)
        concurrency = job.option("concurrency", DEFAULT_CONCURRENCY, positive_int)
        default_size = task.batch_size if task.batch_size > 1 else (1 if network else POOL_CHUNK)
        size = job.option("batch_size", default_size, positive_int)
        # Starting processes costs seconds: not for a job a process finishes sooner.
        extra = workers - 1 if job.pending > size * 2 else 0
        local_lanes = concurrency if network else 1

        pool = None
        if extra:
            try:
                pool = _Pool(job, extra)
            except ConfigError:
                if chosen:
                    raise
                extra = 0  # plugins a process cannot load (objects): this process alone
        queue: asyncio.Queue[list[Row] | None] = asyncio.Queue(maxsize=2 * (local_lanes + extra))
        try:
            lanes = [self._local_lane(job, queue) for _ in range(local_lanes)]
            if pool is not None:
                lanes += [pool.lane(queue) for _ in range(extra)]
            # A lane that fails cancels the others (and the feeder): nothing is left waiting.
            async with asyncio.TaskGroup() as group:
                group.create_task(self._feed(job, queue, size, len(lanes)))
                for lane in lanes:
                    group.create_task(lane)
        finally:
            if pool is not None:
                await pool.close()
                self.worker_pids = pool.pids

    async def _feed(
        self, job: Job, queue: asyncio.Queue[list[Row] | None], size: int, lanes: int
    ) -> None:
        try:
            async for chunk in chunked(job.rows(), size):
                if job.cancelled:
                    break
                await queue.put(chunk)
        finally:
            for _ in range(lanes):
                await queue.put(None)

    async def _local_lane(self, job: Job, queue: asyncio.Queue[list[Row] | None]) -> None:
        while (chunk := await queue.get()) is not None:
            if job.cancelled:
                continue  # drain: the feeder stops soon
            await job.put(await job.task.arun(job.context, chunk))


class _Pool:
    """A spawn-started process pool, one worker per lane, rebuilt if a process dies."""

    def __init__(self, job: Job, size: int) -> None:
        import multiprocessing

        self.job, self.size = job, size
        self.spec = job.worker_spec()
        self.context = multiprocessing.get_context("spawn")
        self.restarts = 0
        self.pids: list[int] = []
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=self.context,
            initializer=_init,
            initargs=(self.spec,),
        )

    async def lane(self, queue: asyncio.Queue[list[Row] | None]) -> None:
        loop = asyncio.get_running_loop()
        job = self.job
        while (chunk := await queue.get()) is not None:
            if job.cancelled:
                continue
            executor = self.executor
            try:
                results = await loop.run_in_executor(executor, _work, chunk)
            except BrokenProcessPool as exc:
                # A process died (a crash in a model, out of memory): these rows become error
                # rows, and the pool starts again, a few times at most.
                results = [
                    job.task.failed(
                        row,
                        "the worker process died while working on this chunk of rows "
                        f"({exc or 'BrokenProcessPool'}); run the job again to retry them",
                    )
                    for row in chunk
                ]
                self._restart(executor)
            await job.put(results)

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        if broken is not self.executor:
            return  # another lane restarted it already
        broken.shutdown(wait=False, cancel_futures=True)
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            from hypotez import BackendError

            raise BackendError(
                f"The worker processes died {self.restarts} times; stopping. The rows finished "
                "so far are kept. Try workers=1 to see the backend's own error."
            )
        self.executor = self._start()

    async def close(self) -> None:
        from hypotez import portal

        executor = self.executor
        try:
            self.pids = sorted(p.pid for p in (executor._processes or {}).values() if p.pid)
        except AttributeError:
            self.pids = []
        await portal.to_thread(executor.shutdown, wait=True, cancel_futures=True)

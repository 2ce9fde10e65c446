"""The ``ray`` engine: Ray Data ``map_batches`` over a fixed pool of actors.

The driver (this process) reads the rows still to do, puts them in Ray's object store in blocks
(never all in this process's memory), and maps them with an actor pool: each actor makes a
:class:`hypotez.batch.Worker` from the job's settings when it starts, so it builds the backend
(loads the model) once and keeps it for every batch; models and clients are never pickled.
Results stream back to the driver as batches finish, and hypotez journals them as they arrive,
so a job stopped halfway resumes like any other.

Where it runs: the engine option ``address`` (``--ray-address``), else ``RAY_ADDRESS``, else a
local Ray started for the job (and stopped with the context). On a cluster, every node needs
hypotez with the backend's extra installed, and the files the rows name (images) must be
readable there; the input and output themselves are read and written by the driver (local paths
or URLs pyarrow opens).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any, ClassVar

from hypotez import MissingDependencyError
from hypotez.batch import BatchEngine, Job, Row, WorkerSpec, chunked, positive_int

INSTALL = "pip install 'hypotez[ray]'"
#: Rows per block put in the object store by the driver.
BLOCK_ROWS = 2048


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray", INSTALL) from exc
    return ray


class _Actor:
    """One Ray actor: a worker built once, then a call per batch of rows."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.worker = spec.build()
        self.worker.warm_up()

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        columns = batch.to_pydict()
        rows = [
            Row(number, json.loads(ident), value)
            for number, ident, value in zip(
                columns["number"], columns["id"], columns["value"], strict=True
            )
        ]
        results = self.worker.run(rows)
        return pa.table(
            {"result": [json.dumps(r, ensure_ascii=False, default=str) for r in results]}
        )


class RayEngine(BatchEngine):
    """See the module docstring."""

    name = "ray"
    options: ClassVar[dict[str, str]] = {
        "address": "the Ray cluster (ray://host:10001, auto); default RAY_ADDRESS, else a "
        "local Ray",
        "workers": "actors, each with its own backend (default: the cluster's CPUs)",
        "batch_size": "rows per actor call (default: the task's; 64 texts for sentiment)",
        "num_cpus": "CPUs each actor reserves (default 1)",
    }

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self._started = False  # we started a local Ray, so we stop it
        self._thread: Any = None  # the one thread that calls Ray

    def _connect(self, address: str | None, workers: int | None) -> Any:
        ray = _import_ray()
        for name in ("ray", "ray.data"):  # hypotez reports progress and problems itself
            logging.getLogger(name).setLevel(logging.ERROR)
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            kwargs: dict[str, Any] = {
                "address": address,
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
                "configure_logging": True,
            }
            if address is None:
                kwargs["num_cpus"] = workers or os.cpu_count() or 1
            ray.init(**kwargs)
            self._started = address is None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # hypotez draws its own
        context.print_on_execution_start = False
        return ray

    async def _call(self, func: Any, *args: Any) -> Any:
        """Run a Ray call on the engine's one Ray thread: object references are made, used
        and dropped on the same thread (Ray's reference counting is not fond of others)."""
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="hypotez-ray")
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def arun(self, job: Job) -> None:
        import warnings

        task = job.task
        workers = job.option("workers", None, positive_int)
        ray = await self._call(self._connect, job.option("address", None, str), workers)
        if workers is None:
            cpus = ray.cluster_resources().get("CPU", 1)
            workers = max(1, int(cpus // job.option("num_cpus", 1.0, float)))
        size = job.option("batch_size", task.batch_size, positive_int)
        spec = job.worker_spec()
        num_cpus = job.option("num_cpus", 1.0, float)
        # Enough blocks for every actor to have work from the start, none too large.
        rows_per_block = max(size, min(BLOCK_ROWS, job.pending // (workers * 4) or 1))
        run = _Run(ray)
        try:
            async for block in chunked(job.rows(), rows_per_block):
                await self._call(run.put, block)
            if not run.refs:
                return
            warnings.filterwarnings("ignore", module=r"ray\.data.*")  # fewer blocks than actors
            await self._call(run.start, spec, workers, size, num_cpus)
            while (found := await self._call(run.next)) is not None:
                await job.put(found)
                if job.cancelled:
                    break
        finally:
            await self._call(run.close)

    async def aclose(self) -> None:
        if self._started:
            ray = _import_ray()
            await self._call(ray.shutdown)
            self._started = False
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None


class _Run:
    """One job's blocks, dataset and result iterator, touched only on the Ray thread."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self.refs: list[Any] = []
        self.results: Iterator[list[dict[str, Any]]] | None = None

    def put(self, rows: list[Row]) -> None:
        import pyarrow as pa

        table = pa.table(
            {
                "number": pa.array([r.number for r in rows], pa.int64()),
                "id": pa.array([json.dumps(r.id) for r in rows], pa.string()),
                "value": pa.array([r.value for r in rows], pa.string()),
            }
        )
        self.refs.append(self.ray.put(table))

    def start(self, spec: WorkerSpec, workers: int, size: int, num_cpus: float) -> None:
        dataset = self.ray.data.from_arrow_refs(self.refs).map_batches(
            _Actor,
            fn_constructor_kwargs={"spec": spec},
            compute=self.ray.data.ActorPoolStrategy(size=workers),
            batch_size=size,
            num_cpus=num_cpus,
            batch_format="pyarrow",
        )
        self.results = _results(dataset)

    def next(self) -> list[dict[str, Any]] | None:
        assert self.results is not None
        return next(self.results, None)

    def close(self) -> None:
        if self.results is not None:
            close = getattr(self.results, "close", None)
            if close is not None:
                close()
        self.results = None
        self.refs.clear()


def _results(dataset: Any) -> Iterator[list[dict[str, Any]]]:
    for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield [json.loads(text) for text in batch.column("result").to_pylist()]

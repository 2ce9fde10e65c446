"""The batch engine protocol, and the job handle hypotez gives an engine.

An engine is a backend of the ``batch`` capability, registered through the
``register_batch_engines`` hook and built once per :class:`hypotez.Context`. hypotez reads the
input, skips the rows finished earlier, writes every result durably, shows progress and writes
the output; the engine only turns pending rows into results, wherever it likes:

- in this process or a pool of processes (``local``),
- on a cluster,
- through a vendor's batch service that answers hours later: such an engine sets ``remote = True``,
  keeps what it submitted in the job's record (:meth:`Job.update_meta`), and implements
  :meth:`BatchEngine.acollect`, :meth:`BatchEngine.astatus` and :meth:`BatchEngine.acancel`
  so that ``hypotez batch collect|status|cancel`` can follow the job from another process or
  another day.

Everything here is async: an engine implements :meth:`BatchEngine.arun` (and, if remote, the
others). Blocking work (a cluster's client, a process pool) goes through
:func:`hypotez.portal.to_thread` or an executor, never on the event loop.
"""

from __future__ import annotations

import abc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from hypotez.batch.tasks import Row, Task
from hypotez.errors import InputError
from hypotez.protocols import Backend

if TYPE_CHECKING:
    from hypotez.batch.workers import WorkerSpec
    from hypotez.context import Context


class BatchEngine(Backend):
    """Runs a batch job's pending rows. Implement :meth:`arun`; a remote engine also
    :meth:`acollect`, :meth:`astatus` and :meth:`acancel`."""

    #: The engine's options (``--workers``, ``--concurrency``, ``--batch-size`` and
    #: ``-E NAME=VALUE`` on the command line): name -> one line of help. Any other option is
    #: refused before the job starts.
    options: ClassVar[Mapping[str, str]] = {}
    #: True when the work is done by a service that finishes later (results are collected).
    remote: ClassVar[bool] = False

    @abc.abstractmethod
    async def arun(self, job: Job) -> None:
        """Turn every row of ``job.rows()`` into a result and hand results to ``job.put``
        (any order, any grouping). Stop early when ``job.cancelled`` becomes true. A remote
        engine may return before its results exist when ``job.wait`` is false."""

    async def acollect(self, job: Job, *, wait: bool = False) -> None:
        """Hand results that a service finished since the last look to ``job.put``; with
        ``wait``, until nothing is left to wait for. Local engines have nothing to collect."""

    async def astatus(self, job: Job) -> dict[str, Any]:
        """What the service says about the job now (shown by ``hypotez batch status``)."""
        return {}

    async def acancel(self, job: Job) -> None:
        """Ask the service to stop the job's work (results finished so far stay collectable)."""

    async def outstanding(self, job: Job) -> int:
        """Rows handed to the service whose results are not collected yet (remote engines):
        while there are any, the output is not written."""
        return 0


class Job:
    """A batch job as an engine sees it. Built by hypotez; engines only use it."""

    def __init__(
        self,
        *,
        id: str,
        task: Task,
        context: Context,
        options: Mapping[str, Any],
        wait: bool,
        total: int,
        pending: int,
        rows: Callable[[], AsyncIterator[Row]],
        put: Callable[[Sequence[Mapping[str, Any]]], Awaitable[None]],
        cancelled: Callable[[], bool],
        report: Callable[..., None],
        meta: Mapping[str, Any],
        update_meta: Callable[[Callable[[dict[str, Any]], Mapping[str, Any]]], Awaitable[Any]],
        state_dir: str,
        worker_spec: Callable[[], WorkerSpec],
    ) -> None:
        #: The job's id (``hypotez batch status ID``), stable across reruns.
        self.id = id
        #: What to do to each row (:mod:`hypotez.batch.tasks`).
        self.task = task
        #: The context the job runs in: settings, plugins, and backends built once.
        self.context = context
        #: The engine's options as given (checked against :attr:`BatchEngine.options`).
        self.options = dict(options)
        #: Whether the caller waits for a remote service to finish (``--no-wait``: no).
        self.wait = wait
        #: Rows in the input, and rows still to do at the start of this run.
        self.total, self.pending = total, pending
        #: A folder of the job's own where an engine may keep files (next to the output).
        self.state_dir = state_dir
        self._rows, self._put, self._cancelled = rows, put, cancelled
        self._report, self._update_meta = report, update_meta
        self._worker_spec = worker_spec
        self.meta: dict[str, Any] = dict(meta)
        self.cost_usd: float | None = None
        self._checked = 0.0
        self._cancel = False

    def rows(self) -> AsyncIterator[Row]:
        """The rows still to do, in input order, streamed from the input (call once)."""
        return self._rows()

    async def put(self, results: Sequence[Mapping[str, Any]]) -> None:
        """Record finished rows (complete output rows, from :meth:`Task.arun` or
        :meth:`Task.result`/:meth:`Task.failed`). Durable when this returns: a crash after it
        never loses them."""
        await self._put(results)

    @property
    def cancelled(self) -> bool:
        """True once ``hypotez batch cancel`` asked this job to stop (checked at most twice a
        second)."""
        now = time.monotonic()
        if not self._cancel and now - self._checked > 0.5:
            self._checked = now
            self._cancel = self._cancelled()
        return self._cancel

    def report(
        self, *, done: int | None = None, total: int | None = None, note: str | None = None
    ) -> None:
        """Progress a service reports (rows done of total there), and a short status note."""
        self._report(done=done, total=total, note=note)

    def add_cost(self, usd: float) -> None:
        """Add to the job's cost, for the summary (engines that know prices)."""
        self.cost_usd = (self.cost_usd or 0.0) + usd

    async def update_meta(
        self, change: Callable[[dict[str, Any]], Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Change the engine's part of the job's stored record (``meta``), atomically: a
        remote engine keeps its batch ids there, so another process can follow them."""
        self.meta = dict(await self._update_meta(change))
        return self.meta

    def option(
        self, name: str, default: Any = None, cast: Callable[[Any], Any] | None = None
    ) -> Any:
        """An engine option, cast (``int``, ``float``...); a bad value is an InputError."""
        if name not in self.options or self.options[name] is None:
            return default
        value = self.options[name]
        if cast is None:
            return value
        try:
            return cast(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Engine option {name}={value!r} is invalid: {exc}.") from None

    def worker_spec(self) -> WorkerSpec:
        """What another process needs to run this job's task (settings, plugins, task): see
        :class:`hypotez.batch.workers.WorkerSpec`. Models are never in it: each worker builds
        its own backend once."""
        return self._worker_spec()


def positive_int(value: Any) -> int:
    """A whole number >= 1 (for options such as workers and concurrency)."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number >= 1")
    number = int(value)
    if number < 1 or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("expected a whole number >= 1")
    return number


async def chunked(rows: AsyncIterator[Row], size: int) -> AsyncIterator[list[Row]]:
    """Group a stream of rows into lists of at most ``size``."""
    chunk: list[Row] = []
    async for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def native_async(backend: Any, method: str) -> bool:
    """True when ``backend`` implements the async side of ``method`` itself (an HTTP client,
    waiting on the network) rather than the blocking side (a local model, busy on this CPU).

    The protocols derive the missing side; a derived method wraps the protocol's declaration
    (``__wrapped__``), a backend's own method does not.
    """
    func = getattr(type(backend), method, None)
    if func is None:
        return True
    return getattr(func, "__wrapped__", None) is None


__all__ = ["BatchEngine", "Job", "chunked", "native_async", "positive_int"]

"""Running batch jobs: start or resume, follow, cancel, collect (async; blocking facades in
:mod:`hypotez.batch`).

A run reads the input three times, streaming: once to count rows and check ids, once to hand the
rows still to do to the engine, once to write the output in input order. Results go to the
job's journal as they finish (see :mod:`hypotez.batch.state`), and every job has a record in the
storage's ``batches`` collection, so ``hypotez batch list|status|cancel|collect`` find it from
any process.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from hypotez import portal
from hypotez.batch.engine import BatchEngine, Job
from hypotez.batch.output import output_format, write_rows
from hypotez.batch.progress import Progress, duration
from hypotez.batch.sources import Source, SourceError, is_url, open_source
from hypotez.batch.state import State
from hypotez.batch.tasks import Row, Task, make_task
from hypotez.errors import InputError, PluginError

COLLECTION = "batches"
CAPABILITY = "batch"
#: Where the job keeps its working folder when the output is a URL.
URL_STATE = "batch"


@attrs.frozen
class BatchSummary:
    """What a run (or a collect) did. ``str()`` gives the line the CLI prints."""

    job_id: str
    task: str
    engine: str
    output: str
    #: completed (output written), submitted (a service finishes it later), cancelled, or
    #: incomplete (rows left: run the same command again).
    status: str
    total: int
    #: Rows finished without an error in this run.
    done: int
    #: Rows finished with an error in this run.
    failed: int
    #: Rows finished by earlier runs and not done again.
    skipped: int
    #: Rows with no result yet.
    pending: int
    #: Error rows in the output, whichever run made them.
    errors: int
    seconds: float
    #: What this run cost where the engine knows prices (USD), else None.
    cost_usd: float | None = None

    @property
    def complete(self) -> bool:
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def __str__(self) -> str:
        rate = (
            f" ({(self.done + self.failed) / self.seconds:,.1f} rows/s)"
            if self.seconds > 0 and self.done + self.failed
            else ""
        )
        parts = [
            f"{self.status}: {self.done:,} done, {self.failed:,} failed, {self.skipped:,} "
            f"skipped, {self.pending:,} pending of {self.total:,} rows in "
            f"{duration(self.seconds)}{rate}"
        ]
        if self.cost_usd is not None:
            parts.append(f"cost ${self.cost_usd:,.4f}")
        if self.status == "completed":
            parts.append(
                f"output {self.output}" + (f" ({self.errors:,} error rows)" if self.errors else "")
            )
        elif self.status == "submitted":
            parts.append(f"collect with `hypotez batch collect {self.job_id}`")
        elif self.pending:
            parts.append("run the same command again to resume")
        return "; ".join(parts) + "."


# -- choosing things ----------------------------------------------------------------------------
def _task(task: str | Task, options: Mapping[str, Any]) -> Task:
    if isinstance(task, Task):
        if options:
            raise InputError(
                f"Give task options ({', '.join(options)}) to the task itself, or the task by name."
            )
        return task
    if not isinstance(task, str):
        raise InputError(f"task must be a task name or a hypotez.batch Task, not {task!r}.")
    return make_task(task, **{k: v for k, v in options.items() if v is not None})


@contextlib.asynccontextmanager
async def _context(context: Any, settings: Any) -> AsyncIterator[Any]:
    from hypotez.context import Context

    if context is not None:
        if settings is not None:
            raise InputError("Pass settings= or context=, not both (the context has settings).")
        if not isinstance(context, Context):
            raise InputError(f"context must be a hypotez.Context, not {type(context).__name__}.")
        yield context
        return
    ctx = await portal.to_thread(Context, settings)
    try:
        yield ctx
    finally:
        await ctx.aclose()


def engine_name(context: Any, name: str | None) -> str:
    """``name``, else the ``batch.engine`` option (``HYPOTEZ_BATCH_ENGINE``), else the available
    engine with the highest priority."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InputError(f"engine must be an engine name, not {name!r}.")
    chosen = name or context.settings.option("batch", "engine", None, str)
    return str(context.registry.select(CAPABILITY, chosen or None, context.settings).name)


async def _engine(context: Any, name: str | None) -> tuple[str, BatchEngine]:
    chosen = engine_name(context, name)
    engine = await context.aget(CAPABILITY, chosen)
    if not isinstance(engine, BatchEngine):
        raise PluginError(
            f"The batch engine {chosen!r} is a {type(engine).__name__}, not a "
            "hypotez.batch.BatchEngine; its plugin must return one."
        )
    return chosen, engine


def _engine_options(engine: BatchEngine, options: Mapping[str, Any] | None) -> dict[str, Any]:
    given = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(given) - set(engine.options))
    if unknown:
        known = ", ".join(f"{k} ({v})" for k, v in engine.options.items()) or "none"
        raise InputError(
            f"The {engine.name!r} engine has no option {', '.join(map(repr, unknown))}. Its "
            f"options: {known}."
        )
    return given


@attrs.define
class _Target:
    """The output as named (a path or a URL), the local file written, its working folder."""

    name: str
    local: Path
    state: State


def _target(output: str | os.PathLike[str], context: Any) -> _Target:
    text = os.fspath(output)
    if not text or "\0" in text:
        raise InputError(f"Output {text!r} is not a file name.")
    output_format(text)
    if is_url(text):
        import hashlib

        folder = (
            Path(context.settings.home) / URL_STATE / hashlib.sha256(text.encode()).hexdigest()[:16]
        )
        folder.mkdir(parents=True, exist_ok=True)
        local = folder / os.path.basename(text.rstrip("/"))
        return _Target(text, local, State(local))
    from hypotez.files import check_output

    local = check_output(Path(text).expanduser().absolute())
    return _Target(str(local), local, State(local))


def _source(
    task: Task,
    input: str | os.PathLike[str],
    column: str | None,
    id_column: str | None,
    context: Any,
) -> Source:
    if column is not None and (not isinstance(column, str) or not column):
        raise InputError(f"column must be a column name, not {column!r}.")
    return open_source(
        input,
        column=column or task.column,
        id_column=id_column,
        storage_of=lambda: context.get("storage"),
        images=task.name == "describe",
    )


def _spec(task: Task, source: Source, target: _Target) -> dict[str, Any]:
    return {
        "task": task.spec(),
        "input": source.location,
        "column": source.column,
        "id_column": source.id_column,
        "output": target.name,
    }


SAME_JOB = ("task", "input", "column", "id_column")


def _begin(state: State, spec: dict[str, Any], restart: bool) -> dict[str, Any]:
    """The job's description: the stored one when this resumes it, else a new one."""
    from hypotez.session import new_dialogue_id

    old = state.read_spec()
    if restart:
        state.reset()
        old = None
    if old is not None:
        differs = [k for k in SAME_JOB if old.get(k) != spec[k]]
        if differs:
            raise InputError(
                f"{spec['output']!r} belongs to another job (its {', '.join(differs)} differ: "
                f"it was {_what(old)}). Choose another output, or pass --restart to discard "
                "its results and start this job."
            )
        return old
    if state.output.exists() and not restart:
        raise InputError(
            f"{str(state.output)!r} exists and was not written by a hypotez batch job that can "
            "resume (no job description next to it). Choose another output, or pass --restart "
            "to replace it."
        )
    new = {
        "schema": 1,
        "job_id": new_dialogue_id(),
        "created": datetime.now(UTC).isoformat(),
        **spec,
    }
    state.write_spec(new)
    return new


def _what(spec: Mapping[str, Any]) -> str:
    task = dict(spec.get("task") or {})
    name = task.pop("name", "?")
    options = ", ".join(f"{k}={v!r}" for k, v in task.items() if v is not None)
    return f"{name}{f' ({options})' if options else ''} on {spec.get('input')!r}, column {spec.get('column')!r}"


# -- reading the input ------------------------------------------------------------------------
@attrs.define
class _Scan:
    total: int = 0
    finished: int = 0
    id_type: str = "int"
    keys: set[str] = attrs.Factory(set)
    pending: set[str] = attrs.Factory(set)


def _scan(source: Source, state: State, retry_errors: bool) -> _Scan:
    scan = _Scan()
    entries = state.entries
    for item in source.items():
        key = str(item.id)
        if key in scan.keys:
            raise SourceError(
                f"The id {item.id!r} appears more than once in {source.describe()!r} (again at "
                f"row {item.number}): ids must be unique, so that a rerun can skip finished "
                "rows. Fix the ids, or use row numbers as ids (--id-column '')."
            )
        scan.keys.add(key)
        scan.total += 1
        if not isinstance(item.id, int):
            scan.id_type = "string"
        entry = entries.get(key)
        if entry is not None and (entry.ok or not retry_errors):
            scan.finished += 1
        else:
            scan.pending.add(key)
    return scan


def _resolve(task: Task, source: Source, value: Any) -> Any:
    """An image path relative to the input file is relative to the input file's folder."""
    if task.name != "describe" or not isinstance(value, str) or source.kind == "images":
        return value
    if (
        value.startswith(("http://", "https://", "data:"))
        or is_url(value)
        or is_url(source.location)
    ):
        return value
    if source.kind == "dialogues":
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return value
    return str(Path(source.location).parent / path)


def _pending(source: Source, task: Task, pending: set[str]) -> Iterator[Row | dict[str, Any]]:
    for item in source.items():
        if str(item.id) not in pending:
            continue
        problem = item.problem or task.check(item.value)
        if problem is not None:
            yield task.failed(item.row(), problem)
        else:
            yield Row(item.number, item.id, _resolve(task, source, item.value))


def _output_rows(source: Source, state: State) -> Iterator[dict[str, Any]]:
    handles: dict[int, Any] = {}
    try:
        for item in source.items():
            entry = state.entries.get(str(item.id))
            if entry is None:
                raise InputError(
                    f"Row {item.number} (id {item.id!r}) of {source.describe()!r} has no result "
                    "yet: the input changed while the job ran. Run the same command again."
                )
            yield state.read(entry, handles)
    finally:
        for fh in handles.values():
            fh.close()


# -- records --------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _update_record(context: Any, job_id: str, change: Any) -> dict[str, Any]:
    storage = await context.aget("storage")

    def apply(old: dict[str, Any] | None) -> dict[str, Any]:
        record = dict(old or {"schema": 1, "id": job_id, "created": _now(), "meta": {}})
        record.update(change(record))
        record["updated"] = _now()
        return record

    stored: dict[str, Any] = await storage.aupdate_record(COLLECTION, job_id, apply)
    return stored


# -- running --------------------------------------------------------------------------------
@attrs.define
class _Prepared:
    context: Any
    task: Task
    source: Source
    target: _Target
    engine_name: str
    engine: BatchEngine
    options: dict[str, Any]


async def arun(
    task: str | Task,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    engine: str | None = None,
    column: str | None = None,
    id_column: str | None = "id",
    options: Mapping[str, Any] | None = None,
    restart: bool = False,
    retry_errors: bool = True,
    wait: bool = True,
    progress: bool | None = None,
    context: Any = None,
    settings: Any = None,
    **task_options: Any,
) -> BatchSummary:
    """Run ``task`` over every row of ``input`` into ``output`` (JSONL or Parquet), resuming
    the job already there: rows finished earlier are skipped (by id), error rows done again
    (``retry_errors=False`` keeps them). See :func:`hypotez.batch.run` for the arguments."""
    task_obj = _task(task, task_options)
    async with _context(context, settings) as ctx:
        prepared = await _prepare(ctx, task_obj, input, output, column, id_column, engine, options)
        state = prepared.target.state
        with state.locked():
            spec = await portal.to_thread(
                _begin, state, _spec(task_obj, prepared.source, prepared.target), restart
            )
            state.clear_cancel()
            return await _execute(
                prepared, spec, retry_errors=retry_errors, wait=wait, progress=progress
            )


async def _prepare(
    ctx: Any,
    task: Task,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    column: str | None,
    id_column: str | None,
    engine: str | None,
    options: Mapping[str, Any] | None,
) -> _Prepared:
    target = _target(output, ctx)
    source = _source(task, input, column, id_column, ctx)
    name, eng = await _engine(ctx, engine)
    return _Prepared(ctx, task, source, target, name, eng, _engine_options(eng, options))


def _worker_spec(prepared: _Prepared) -> Any:
    from hypotez.batch.workers import WorkerSpec, plugin_modules

    return WorkerSpec(
        prepared.context.settings,
        prepared.task.spec(),
        plugin_modules(prepared.context.plugin_manager),
    )


async def _execute(
    prepared: _Prepared,
    spec: Mapping[str, Any],
    *,
    retry_errors: bool,
    wait: bool,
    progress: bool | None,
    collect: bool = False,
) -> BatchSummary:
    import asyncio

    ctx, task, source, state = (
        prepared.context,
        prepared.task,
        prepared.source,
        prepared.target.state,
    )
    job_id = spec["job_id"]
    started = time.monotonic()
    await portal.to_thread(state.load)
    scan = await portal.to_thread(_scan, source, state, retry_errors and not collect)
    bar = Progress(scan.total, skipped=scan.finished, label=task.name, enabled=progress)
    counts = {"done": 0, "failed": 0}
    handled: set[str] = set()
    lock = asyncio.Lock()
    journal = state.open_journal()

    async def put(results: Sequence[Mapping[str, Any]]) -> None:
        if not results:
            return
        rows = [dict(r) for r in results]
        for row in rows:
            if "id" not in row:
                raise PluginError(f"A result without an id reached the job: {row!r}.")
        async with lock:
            await portal.to_thread(journal.append, rows)
        ok = sum(1 for r in rows if r.get("error") is None)
        counts["done"] += ok
        counts["failed"] += len(rows) - ok
        handled.update(str(r["id"]) for r in rows)
        bar.advance(ok, len(rows) - ok)

    async def rows() -> AsyncIterator[Row]:
        invalid: list[dict[str, Any]] = []
        async for item in portal.iterate_in_thread(lambda: _pending(source, task, scan.pending)):
            if isinstance(item, dict):
                invalid.append(item)
                if len(invalid) >= 256:
                    await put(invalid)
                    invalid = []
            else:
                yield item
        await put(invalid)

    async def update_meta(change: Any) -> dict[str, Any]:
        record = await _update_record(
            ctx, job_id, lambda r: {"meta": dict(change(dict(r.get("meta") or {})))}
        )
        return dict(record.get("meta") or {})

    record = await _update_record(
        ctx,
        job_id,
        lambda r: {
            "task": task.name,
            "input": source.location,
            "output": prepared.target.name,
            "state_dir": str(state.dir),
            "engine": prepared.engine_name,
            "options": prepared.options,  # collect and status use them too (poll interval...)
            "status": "running",
            "host": socket.gethostname(),
            "pid": os.getpid(),
        },
    )
    job = Job(
        id=job_id,
        task=task,
        context=ctx,
        options=prepared.options,
        wait=wait,
        total=scan.total,
        pending=len(scan.pending),
        rows=rows,
        put=put,
        cancelled=state.cancel_requested,
        report=bar.report,
        meta=record.get("meta") or {},
        update_meta=update_meta,
        state_dir=str(state.dir),
        worker_spec=lambda: _worker_spec(prepared),
    )
    status = "failed"
    try:
        with bar:
            if collect:
                await prepared.engine.acollect(job, wait=wait)
            elif scan.pending:
                await prepared.engine.arun(job)
        outstanding = await prepared.engine.outstanding(job) if prepared.engine.remote else 0
        missing = len(scan.keys.difference(state.entries))
        unretried = 0 if collect else len(scan.pending - handled)
        if job.cancelled or state.cancel_requested():
            status = "cancelled"
        elif outstanding:
            status = "submitted"
        elif missing or unretried:
            status = "incomplete"
        else:
            status = "completed"
        if status == "completed":
            journal.close()
            await portal.to_thread(
                write_rows,
                prepared.target.name,
                prepared.target.local,
                _output_rows(source, state),
                task.columns(),
                scan.id_type,
            )
    finally:
        journal.close()
        entries = state.entries
        ok_rows = sum(1 for k in scan.keys if (e := entries.get(k)) is not None and e.ok)
        errors = sum(1 for k in scan.keys if (e := entries.get(k)) is not None and not e.ok)
        if status == "completed":
            left = 0
        elif collect:
            left = len(scan.keys.difference(entries))
        else:
            left = len(scan.pending - handled)
        summary = BatchSummary(
            job_id=job_id,
            task=task.name,
            engine=prepared.engine_name,
            output=prepared.target.name,
            status=status,
            total=scan.total,
            done=counts["done"],
            failed=counts["failed"],
            skipped=scan.finished,
            pending=left,
            errors=errors,
            seconds=time.monotonic() - started,
            cost_usd=job.cost_usd,
        )
        cost = job.cost_usd

        def final(r: dict[str, Any]) -> dict[str, Any]:
            spent = r.get("cost_usd")
            if cost is not None:
                spent = (spent or 0.0) + cost
            return {
                "status": status,
                "total": scan.total,
                "done": ok_rows,
                "errors": errors,
                "pending": left,
                "cost_usd": spent,
                "pid": None,
            }

        with contextlib.suppress(Exception):  # the record must never hide the real error
            await _update_record(ctx, job_id, final)
    return summary


# -- following jobs -------------------------------------------------------------------------
async def alist(*, context: Any = None, settings: Any = None) -> list[dict[str, Any]]:
    """Every batch job's record, oldest first."""
    async with _context(context, settings) as ctx:
        storage = await ctx.aget("storage")
        records: list[dict[str, Any]] = await storage.alist_records(COLLECTION)
        return sorted(records, key=lambda r: str(r.get("created", "")))


async def _find(
    ctx: Any, job: str | os.PathLike[str]
) -> tuple[dict[str, Any], State, dict[str, Any]]:
    """A job's record, working folder and description, by job id or by output path."""
    from hypotez.models import validate_id

    storage = await ctx.aget("storage")
    text = os.fspath(job)
    record: dict[str, Any] | None = None
    with contextlib.suppress(InputError, KeyError):
        validate_id(text, "batch job")
        record = await storage.aget_record(COLLECTION, text)
    if record is None:
        state = _target(text, ctx).state if not Path(text).is_dir() else None
        spec = state.read_spec() if state is not None else None
        if spec is None:
            raise InputError(
                f"No batch job {text!r}: give a job id (`hypotez batch list` shows them) or the "
                "output file of a job."
            )
        try:
            record = await storage.aget_record(COLLECTION, spec["job_id"])
        except KeyError:
            record = {"id": spec["job_id"], "meta": {}, "status": "unknown"}
        return record, state, spec
    state_dir = record.get("state_dir")
    output = record.get("output") or ""
    state = _target(output, ctx).state if output else None
    if state is None or (state_dir and Path(state_dir) != state.dir):
        raise InputError(f"The record of batch job {text!r} is incomplete (no output).")
    spec = state.read_spec()
    if spec is None:
        raise InputError(
            f"Batch job {text!r} wrote to {output!r}, but its working folder {str(state.dir)!r} "
            "is gone (or this is another machine): its results cannot be collected here."
        )
    return record, state, spec


async def _reopen(ctx: Any, record: Mapping[str, Any], spec: Mapping[str, Any]) -> _Prepared:
    task = make_task(**spec["task"])
    return await _prepare(
        ctx,
        task,
        spec["input"],
        spec["output"],
        spec["column"],
        spec["id_column"],
        record.get("engine") or None,
        record.get("options") if isinstance(record.get("options"), dict) else None,
    )


def _handle(prepared: _Prepared, record: Mapping[str, Any], state: State) -> Job:
    """A job handle for status and cancel: no rows, no results."""

    async def no_rows() -> AsyncIterator[Row]:
        raise InputError("This job handle has no rows (status/cancel).")
        yield  # pragma: no cover

    async def no_put(results: Sequence[Mapping[str, Any]]) -> None:
        raise InputError("This job handle takes no results (status/cancel).")

    async def update_meta(change: Any) -> dict[str, Any]:
        new = await _update_record(
            prepared.context,
            record["id"],
            lambda r: {"meta": dict(change(dict(r.get("meta") or {})))},
        )
        return dict(new.get("meta") or {})

    return Job(
        id=record["id"],
        task=prepared.task,
        context=prepared.context,
        options=prepared.options,
        wait=False,
        total=int(record.get("total") or 0),
        pending=int(record.get("pending") or 0),
        rows=no_rows,
        put=no_put,
        cancelled=state.cancel_requested,
        report=lambda **_: None,
        meta=record.get("meta") or {},
        update_meta=update_meta,
        state_dir=str(state.dir),
        worker_spec=lambda: _worker_spec(prepared),
    )


async def astatus(
    job: str | os.PathLike[str], *, context: Any = None, settings: Any = None
) -> dict[str, Any]:
    """A job's record, with its progress on this machine and what its engine's service says
    now (``remote``)."""
    async with _context(context, settings) as ctx:
        record, state, spec = await _find(ctx, job)
        out = dict(record)
        out["running"] = _running(state)
        if not out["running"] and out.get("status") == "running":
            out["status"] = "interrupted"  # the process died without saying so
        prepared = await _reopen(ctx, record, spec)
        if prepared.engine.remote:
            out["remote"] = await prepared.engine.astatus(_handle(prepared, record, state))
        return out


def _running(state: State) -> bool:
    """Whether a process holds the job's lock right now."""
    import fcntl

    try:
        fd = os.open(state.dir / "lock", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


async def acancel(
    job: str | os.PathLike[str], *, context: Any = None, settings: Any = None
) -> dict[str, Any]:
    """Stop a job: a process running it stops after the rows in flight (they are kept), and a
    service's unfinished work is cancelled. Its finished results stay; rerun to resume."""
    async with _context(context, settings) as ctx:
        record, state, spec = await _find(ctx, job)
        running = _running(state)
        if running:
            state.request_cancel()
        prepared = await _reopen(ctx, record, spec)
        if prepared.engine.remote:
            await prepared.engine.acancel(_handle(prepared, record, state))
        status = "cancelling" if running else "cancelled"
        return await _update_record(ctx, record["id"], lambda r: {"status": status})


async def acollect(
    job: str | os.PathLike[str],
    *,
    wait: bool = False,
    progress: bool | None = None,
    context: Any = None,
    settings: Any = None,
) -> BatchSummary:
    """Bring in the results a service finished since the last look (``wait``: until it has
    finished them all), and write the output once every row has a result. Submits nothing."""
    async with _context(context, settings) as ctx:
        record, state, spec = await _find(ctx, job)
        prepared = await _reopen(ctx, record, spec)
        with state.locked():
            return await _execute(
                prepared, spec, retry_errors=False, wait=wait, progress=progress, collect=True
            )


__all__ = [
    "COLLECTION",
    "BatchSummary",
    "acancel",
    "acollect",
    "alist",
    "arun",
    "astatus",
    "engine_name",
]

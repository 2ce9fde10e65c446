"""Batch jobs: a task over every row of a dataset, resumable, on a pluggable engine.

    >>> from hypotez import batch
    >>> summary = batch.run("sentiment", "reviews.csv", "out.parquet")   # doctest: +SKIP
    >>> print(summary)                                                    # doctest: +SKIP
    completed: 10,000 done, 0 failed, 0 skipped, 0 pending of 10,000 rows in 9s ...

- **Tasks** (:mod:`hypotez.batch.tasks`): ``sentiment`` (a ``text`` per row, any analyzer),
  ``ask`` (a ``prompt`` per row, each its own exchange), ``describe`` (an ``image`` per row).
- **Inputs** (:mod:`hypotez.batch.sources`): JSONL, CSV/TSV, Parquet, text (a row per line), a
  folder of images, ``dialogues:`` (every stored turn). The ``id`` column is kept when present,
  else the row number (from 1) is the id.
- **Outputs**: JSONL or Parquet, one row per input row in input order: ``id``, the task's
  columns, ``backend``, ``model``, ``elapsed_ms``, ``error``.
- **Never lose work** (:mod:`hypotez.batch.state`): results are journaled as they finish; a
  rerun with the same output skips finished rows; a killed job loses only rows in flight; the
  output is replaced in one rename when every row has a result.
- **Engines** are plugins (hook ``register_batch_engines``): :class:`BatchEngine`.

Every operation is async (``arun``, ``acollect``...); the functions without the ``a`` run it on
hypotez's portal loop for blocking callers.
"""

from __future__ import annotations

import os
from typing import Any

from hypotez import portal
from hypotez.batch.engine import BatchEngine, Job, chunked, native_async, positive_int
from hypotez.batch.output import read_output
from hypotez.batch.runner import (
    COLLECTION,
    BatchSummary,
    acancel,
    acollect,
    alist,
    arun,
    astatus,
    engine_name,
)
from hypotez.batch.sources import SourceError
from hypotez.batch.state import BatchBusyError
from hypotez.batch.tasks import (
    TASKS,
    AskTask,
    DescribeTask,
    Row,
    SentimentTask,
    Task,
    make_task,
)
from hypotez.batch.workers import Worker, WorkerSpec


def run(
    task: str | Task,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    **kwargs: Any,
) -> BatchSummary:
    """Run (or resume) a batch job and wait for it; returns its :class:`BatchSummary`.

    Args:
        task: ``"sentiment"``, ``"ask"``, ``"describe"``, or a :class:`Task`.
        input: a JSONL, CSV/TSV, Parquet or text file (or a URL pyarrow opens), a folder of
            images, or ``"dialogues:"``.
        output: a ``.jsonl`` or ``.parquet`` file (or a URL pyarrow opens).
        engine: the engine's name (default: ``HYPOTEZ_BATCH_ENGINE``, else ``local``).
        column: the input column to read (default: the task's, ``text``/``prompt``/``image``).
        id_column: the column holding row ids (``None``: row numbers).
        options: the engine's options (``workers``, ``concurrency``, ``batch_size``...).
        restart: discard the results of an earlier run of another job on this output.
        retry_errors: do error rows of earlier runs again (default) or keep them.
        wait: wait for a remote service to finish (``False``: submit, collect later).
        progress: draw a progress bar on standard error (``None``: when it is a terminal).
        context, settings: the :class:`hypotez.Context` to use, or the settings to make one.
        **task_options: the task's options: ``analyzer`` (sentiment); ``chat``, ``model``,
            ``system``, ``temperature``, ``max_tokens``, ``json_schema``, ``store`` (ask);
            ``vision``, ``prompt``, ``detail``, ``json_schema``, ``model`` (describe).
    """
    return portal.run(arun(task, input, output, **kwargs))


def collect(job: str | os.PathLike[str], **kwargs: Any) -> BatchSummary:
    """See :func:`hypotez.batch.runner.acollect`."""
    return portal.run(acollect(job, **kwargs))


def status(job: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """See :func:`hypotez.batch.runner.astatus`."""
    return portal.run(astatus(job, **kwargs))


def cancel(job: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """See :func:`hypotez.batch.runner.acancel`."""
    return portal.run(acancel(job, **kwargs))


def list_jobs(**kwargs: Any) -> list[dict[str, Any]]:
    """See :func:`hypotez.batch.runner.alist`."""
    return portal.run(alist(**kwargs))


__all__ = [
    "COLLECTION",
    "TASKS",
    "AskTask",
    "BatchBusyError",
    "BatchEngine",
    "BatchSummary",
    "DescribeTask",
    "Job",
    "Row",
    "SentimentTask",
    "SourceError",
    "Task",
    "Worker",
    "WorkerSpec",
    "acancel",
    "acollect",
    "alist",
    "arun",
    "astatus",
    "cancel",
    "chunked",
    "collect",
    "engine_name",
    "list_jobs",
    "make_task",
    "native_async",
    "positive_int",
    "read_output",
    "run",
    "status",
]

"""Fine-tuning glue shared by the CLI and the seed API: prepare, submit, follow, remember.

``prepare`` turns sources (files, folders, in-memory examples, stored dialogues) into examples,
validates them and serialises the upload file. ``submit`` refuses anything that did not pass
validation, hands the examples to the session's trainer and saves the job's record. Every
status call refreshes that record (the fine-tuned model's name lands there on success).

Job records live in the storage's ``jobs`` collection as :class:`hypotez.JobRecord` (one record
per job id, so two processes saving different jobs at once lose nothing).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs
from hypotez.datasets import Dataset, concat, from_dialogues, from_items, load, sha256, to_jsonl
from hypotez.errors import BackendTimeoutError, InputError, TrainingDataError
from hypotez.files import atomic_write_text, locked
from hypotez.models import JobRecord, TrainingExample, validate_id
from hypotez.protocols import Storage, Trainer
from hypotez.validation import ValidationReport, validate

JOBS = "jobs"
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
#: How long :func:`export_jobs` waits for another process writing the same job-id file.
JOB_FILE_LOCK_TIMEOUT = 30.0


class HasTrainer(Protocol):
    """What the functions below need from a :class:`hypotez.Session`."""

    @property
    def trainer(self) -> Trainer: ...

    @property
    def storage(self) -> Storage: ...


def _examples(items: Iterable[TrainingExample]) -> tuple[TrainingExample, ...]:
    return tuple(items)


@attrs.frozen
class Prepared:
    """Examples, their validation report, and (when valid) the exact bytes to upload."""

    dataset: Dataset
    report: ValidationReport
    examples: tuple[TrainingExample, ...] = attrs.field(converter=_examples, factory=tuple)
    jsonl: bytes = b""
    #: What the caller asked of :func:`prepare` (model, limits, epochs, price), so that the same
    #: data can be checked again for another trainer.
    options: dict[str, Any] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def sha256(self) -> str:
        return sha256(self.jsonl)

    def raise_for_errors(self) -> None:
        self.report.raise_for_errors()


def gather(
    sources: Iterable[str | Path] = (),
    *,
    data: Iterable[Any] | None = None,
    storage: Storage | None = None,
    dialogues: bool | Mapping[str, Any] = False,
    system: str | None = None,
) -> Dataset:
    """All training data in one dataset: ``sources`` (files and folders), then in-memory
    ``data``, then stored dialogues when ``dialogues`` is true (a mapping gives the options of
    :func:`hypotez.datasets.from_dialogues`, e.g. ``{"sentiment": "positive"}``)."""
    parts = []
    paths = [sources] if isinstance(sources, str | Path) else list(sources)
    if paths:
        parts.append(load(paths, system=system))
    if data is not None:
        parts.append(from_items(data))
    if dialogues:
        if storage is None:
            raise InputError("Training on stored dialogues needs a storage.")
        options = dict(dialogues) if isinstance(dialogues, Mapping) else {}
        options.setdefault("system", system)
        parts.append(from_dialogues(storage, **options))
    if not parts:
        raise InputError("No training data given: pass files, a folder, examples or dialogues.")
    return concat(parts)


def prepare(
    dataset: Dataset | Iterable[Any],
    *,
    trainer: Trainer | None = None,
    model: str = "",
    max_tokens_per_example: int | None = None,
    epochs: int | None = None,
    price_per_million: float | None = None,
    min_examples: int | None = None,
) -> Prepared:
    """Validate ``dataset`` for ``model`` on ``trainer`` (its limits, its token counts); when
    valid, serialise the upload file. ``model`` defaults to the trainer's default model.

    Never raises for bad data: check ``ok`` or call ``raise_for_errors()``.
    """
    if not isinstance(dataset, Dataset):
        dataset = from_items(dataset)
    report = validate(
        dataset,
        trainer=trainer,
        model=model,
        max_tokens_per_example=max_tokens_per_example,
        min_examples=min_examples,
        epochs=epochs,
        price_per_million=price_per_million,
    )
    options = {
        "model": model,
        "max_tokens_per_example": max_tokens_per_example,
        "epochs": epochs,
        "price_per_million": price_per_million,
        "min_examples": min_examples,
    }
    if not report.ok:
        return Prepared(dataset, report, options=options)
    examples = dataset.examples()
    return Prepared(dataset, report, examples, to_jsonl(examples), options)


def submit(
    session: HasTrainer,
    prepared: Prepared,
    *,
    description: str = "",
    validation: Prepared | None = None,
    suffix: str | None = None,
    seed: int | None = None,
    metadata: Mapping[str, str] | None = None,
    epochs: int | None = None,
    **options: Any,
) -> JobRecord:
    """Start a job on the session's trainer with ``prepared`` data; save and return its record.

    Data prepared for another trainer (or for none) is checked again for this one first: each
    trainer has its own limits. Raises :class:`~hypotez.errors.TrainingDataError` (with the
    report) if the data, or the validation data, did not pass: nothing is uploaded then.
    """
    trainer = session.trainer
    prepared = _for_trainer(prepared, trainer)
    if validation is not None:
        validation = _for_trainer(validation, trainer)
    for what in (prepared, validation):
        if what is None:
            continue
        what.raise_for_errors()
        if to_jsonl(what.examples) != what.jsonl or not what.examples:
            raise TrainingDataError(
                "The prepared data was changed after validation; prepare it again."
            )
    model = prepared.report.model
    if epochs is None and prepared.report.cost is not None and not prepared.report.cost.epochs_auto:
        epochs = prepared.report.cost.epochs
    record = trainer.submit(
        prepared.examples,
        model=model,
        description=description,
        validation=validation.examples if validation else None,
        suffix=suffix,
        seed=seed,
        metadata=dict(metadata) if metadata else None,
        n_epochs=epochs,
        **options,
    )
    cost = prepared.report.cost
    meta = {
        **record.meta,
        "examples": len(prepared.examples),
        "training_sha256": prepared.sha256,
        "training_bytes": len(prepared.jsonl),
        "sources": list(prepared.dataset.sources[:20]),
    }
    if cost is not None:
        meta["estimated_tokens"] = cost.billed_tokens
        if cost.cost_usd is not None:
            meta["estimated_cost_usd"] = round(cost.cost_usd, 6)
    record = attrs.evolve(record, description=description or record.description, meta=meta)
    session.storage.save_job(record)
    return record


def _for_trainer(prepared: Prepared, trainer: Trainer) -> Prepared:
    """``prepared`` as checked for ``trainer``: limits differ per trainer, so data checked for
    another one (or for none) could be refused there, or worse, silently truncated."""
    if prepared.report.trainer == trainer.name:
        return prepared
    checked = prepare(prepared.dataset, trainer=trainer, **prepared.options)
    # The new report, with the bytes that were prepared: they are compared with the examples
    # below, so anything changed after validation is still refused.
    return attrs.evolve(prepared, report=checked.report) if checked.ok else checked


def train(
    session: HasTrainer,
    dataset: Dataset | Iterable[Any],
    *,
    model: str = "",
    description: str = "",
    **options: Any,
) -> JobRecord:
    """Prepare and submit in one call (the seed API's ``train``/``dynamic_train``), for the
    session's trainer (``model`` defaults to the trainer's default).

    Raises :class:`~hypotez.errors.TrainingDataError` with the report if the data is invalid.
    """
    prepared = prepare(dataset, trainer=session.trainer, model=model)
    prepared.raise_for_errors()
    return submit(session, prepared, description=description, **options)


# -- records ---------------------------------------------------------------------------------
def stored_job(storage: Storage, job_id: str) -> JobRecord | None:
    """The saved record of ``job_id``, or None."""
    try:
        return JobRecord.from_dict(storage.get_record(JOBS, validate_id(job_id, "job")))
    except KeyError:
        return None


def remember(storage: Storage, fresh: JobRecord) -> JobRecord:
    """Save what the trainer just reported, keeping what only we know (description, meta).

    One :meth:`~hypotez.Storage.update_record` step: a description saved by another process
    meanwhile (:func:`save_job_id`) is merged in, not overwritten.
    """

    def merge(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:
            return fresh.to_dict()
        old = JobRecord.from_dict(current)
        return attrs.evolve(
            fresh,
            description=fresh.description or old.description,
            training_file=fresh.training_file or old.training_file,
            validation_file=fresh.validation_file or old.validation_file,
            fine_tuned_model=fresh.fine_tuned_model or old.fine_tuned_model,
            meta={**old.meta, **fresh.meta},
        ).to_dict()

    return JobRecord.from_dict(storage.update_record(JOBS, validate_id(fresh.id, "job"), merge))


def status(session: HasTrainer, job_id: str) -> JobRecord:
    """The job's current state from the trainer; its saved record is refreshed."""
    # Checked here, before the id reaches a URL path or a folder name (".." included).
    return remember(session.storage, session.trainer.status(validate_id(job_id, "job")))


def cancel(session: HasTrainer, job_id: str) -> JobRecord:
    """Cancel the job; its saved record is refreshed."""
    return remember(session.storage, session.trainer.cancel(validate_id(job_id, "job")))


def events(session: HasTrainer, job_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The job's events, oldest first."""
    return session.trainer.events(validate_id(job_id, "job"), limit=limit)


def list_jobs(session: HasTrainer, *, remote: bool = False, limit: int = 20) -> list[JobRecord]:
    """Saved job records, oldest first; with ``remote``, the trainer's recent jobs are fetched
    and saved first (so jobs started elsewhere appear too)."""
    if remote:
        for record in session.trainer.list_jobs(limit=limit):
            remember(session.storage, record)
    return session.storage.list_jobs()


def wait(
    session: HasTrainer,
    job_id: str,
    *,
    interval: float = 5.0,
    max_interval: float = 60.0,
    backoff: float = 1.5,
    timeout: float | None = None,
    on_update: Callable[[JobRecord, list[dict[str, Any]]], None] | None = None,
    with_events: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> JobRecord:
    """Poll until the job reaches a final state (succeeded, failed, cancelled); return it.

    The pause between polls starts at ``interval`` and grows by ``backoff`` up to
    ``max_interval`` while nothing changes; it drops back to ``interval`` when the status
    changes. ``on_update(record, new_events)`` is called after every poll (``new_events`` is
    filled only ``with_events``). Every poll refreshes the saved record. After ``timeout``
    seconds :class:`~hypotez.errors.BackendTimeoutError` is raised; the job keeps running.
    """
    if interval <= 0 or max_interval < interval or backoff < 1:
        raise InputError("wait() needs 0 < interval <= max_interval and backoff >= 1.")
    started = clock()
    pause = interval
    last_status = None
    seen_events: set[str] = set()
    while True:
        record = status(session, job_id)
        new: list[dict[str, Any]] = []
        if with_events:
            for event in events(session, job_id):
                key = str(event.get("id") or (event.get("created"), event.get("message")))
                if key not in seen_events:
                    seen_events.add(key)
                    new.append(event)
        if on_update is not None:
            on_update(record, new)
        if record.status in FINAL_STATES:
            return record
        pause = interval if record.status != last_status else min(pause * backoff, max_interval)
        last_status = record.status
        if timeout is not None and clock() - started + pause > timeout:
            raise BackendTimeoutError(
                f"Fine-tuning job {job_id} is still {record.status} after {clock() - started:.0f} s. "
                f"It keeps running; run `hypotez train wait {job_id}` to keep waiting."
            )
        sleep(pause)


# -- the seed's save_job_id ----------------------------------------------------------------
def check_job_file_name(filename: str) -> str:
    """``filename`` if it is a plain ``.json`` file name (no folder, no ``..``); else InputError.

    The seed's job-id file is written into one folder (``$HYPOTEZ_HOME``): a name cannot lead
    out of it.
    """
    if (
        not isinstance(filename, str)
        or filename in ("", ".", "..")
        or any(c in filename for c in "/\\\0")
        or Path(filename).suffix.lower() != ".json"
        or len(filename.encode("utf-8", "surrogatepass")) > 255
    ):
        raise InputError(
            f"Job-id file name {filename!r} is not a plain file name ending in .json: use a name "
            "such as 'job_ids.json' (it is written in the data folder, $HYPOTEZ_HOME), or call "
            "hypotez.training.export_jobs(storage, path) to write the list elsewhere."
        )
    return filename


def save_job_id(
    storage: Storage,
    job_id: str,
    description: str,
    filename: str = "job_ids.json",
    *,
    export_dir: str | Path | None = None,
) -> JobRecord:
    """Remember ``job_id`` with ``description`` (the seed's ``save_job_id``), safely.

    The job is saved as one record in the storage's ``jobs`` collection, merged with what is
    already known about it in one :meth:`~hypotez.Storage.update_record` step, so two processes
    saving or refreshing it at once lose nothing. ``filename`` is the seed's JSON file, a plain
    file name: with ``export_dir`` every job record is also written to ``export_dir/filename``
    (see :func:`export_jobs`: entries of an existing file that are not job records are kept).
    """
    validate_id(job_id, "job")
    if not isinstance(description, str):
        raise InputError("The job description must be text.")
    check_job_file_name(filename)

    def describe(current: dict[str, Any] | None) -> dict[str, Any]:
        if current is None:
            return JobRecord(id=job_id, description=description).to_dict()
        return attrs.evolve(JobRecord.from_dict(current), description=description).to_dict()

    # One read-change-write step: a status refreshed by another process meanwhile is kept.
    record = JobRecord.from_dict(storage.update_record(JOBS, job_id, describe))
    if export_dir is not None:
        export_jobs(storage, Path(export_dir) / filename)
    return record


def _entry_id(entry: Any) -> Any:
    """The job id an entry of a job-id file is about (``job_id``, or the seed's ``id``)."""
    if not isinstance(entry, dict):
        return None
    key = entry.get("job_id", entry.get("id"))
    return key if isinstance(key, str) else None


def _read_job_file(folder: int, target: Path) -> list[Any]:
    """The entries of the job-id file at ``target`` (empty if there is none)."""
    from hypotez.files import read_file_at

    try:
        raw = read_file_at(folder, target.name, shown=target)
    except FileNotFoundError:
        return []
    try:
        entries = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        why = f"it is not valid JSON ({str(exc)[:200]})"
    else:
        if isinstance(entries, list):
            return entries
        why = f"it holds {type(entries).__name__}, not a JSON list"
    raise InputError(
        f"Cannot update the job-id file {str(target)!r}: {why}. It was left untouched; repair or "
        "move it, or choose another file name. (The job itself is saved: `hypotez train list`.)"
    )


def export_jobs(storage: Storage, path: str | Path) -> Path:
    """Write every job record to ``path`` as a JSON list, atomically (``job_id`` as in the seed).

    An existing file is updated, never thrown away: its entries for jobs the storage knows are
    replaced by their current records, every other entry (jobs saved by the seed or by hand) is
    kept as it was, and new jobs follow. A file that is not a JSON list is refused
    (:class:`~hypotez.errors.InputError`) and left untouched; so are links, FIFOs and devices.

    Writers of the same file take turns (an advisory lock on ``<path>.lock``), so the file a
    concurrent save leaves behind lists every job saved before it.
    """
    from hypotez.files import LockTimeoutError, OutputError, explain_os_error

    target = Path(path)
    if target.suffix.lower() != ".json":
        raise InputError(f"Job ids are exported as JSON: {str(target)!r} should end in .json.")
    try:
        _export_jobs(storage, target)
    except LockTimeoutError:
        raise
    except OSError as exc:
        raise OutputError(
            f"Cannot write the job-id file {str(target)!r}: {explain_os_error(exc)}. The file was "
            "left as it was; the job itself is saved (`hypotez train list`)."
        ) from None
    return target


def _export_jobs(storage: Storage, target: Path) -> None:
    from hypotez.files import open_file_at

    target.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        # Listing and writing must be one step: without the lock a process that listed before
        # another saved could rename its stale snapshot last and drop the other's job from the
        # file. The lock file is opened without following a link.
        lock_name = target.name + ".lock"
        fd = open_file_at(
            folder, lock_name, os.O_RDWR | os.O_CREAT, shown=target.with_name(lock_name)
        )
        try:
            with locked(fd, timeout=JOB_FILE_LOCK_TIMEOUT, what=repr(str(target))):
                fresh = {job.id: {"job_id": job.id, **job.to_dict()} for job in storage.list_jobs()}
                rows = []
                for entry in _read_job_file(folder, target):
                    key = _entry_id(entry)
                    rows.append(fresh.pop(key) if key in fresh else entry)
                rows.extend(fresh.values())
                text = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate: keep it, escaped
                    text = json.dumps(rows, ensure_ascii=True, indent=2) + "\n"
                atomic_write_text(target, text)  # refuses to replace a link, FIFO or device
        finally:
            os.close(fd)
    finally:
        os.close(folder)

"""The working folder of a batch job: what makes it resumable and crash-safe.

Next to the output ``out.parquet`` lives ``out.parquet.hypotez-batch/``:

- ``job.json``: what the job is (task and options, input, columns, job id), written atomically
  when the job starts. A rerun with the same output checks it is the same job.
- ``journal-NNNNNN-PID.jsonl``: the results, one output row per line, appended as rows finish
  (one ``write`` per group of rows, ``fsync`` at least every second and at the end). Each run
  appends to a new journal, so a line torn by a crash is only ever the last line of a journal;
  reading skips it. A killed job therefore loses at most the rows it was working on, and the
  results already written are never rewritten.
- ``lock``: held (``flock``) by the one process working on the job; the kernel releases it when
  that process dies, even by SIGKILL.
- ``cancel``: present when ``hypotez batch cancel`` asked a running job to stop.

The final output is assembled from the journals in input order, into a temporary file that
replaces the output in one rename (:mod:`hypotez.batch.output`): the output is complete or
absent, never truncated. The folder is kept afterwards, so that a rerun after adding rows to the
input works only on the new rows; delete it when the job is finished for good.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hypotez.errors import HypotezError, InputError
from hypotez.files import (
    atomic_write_bytes,
    describe_process,
    explain_os_error,
    fsync_dir,
    lock_holders,
)

SUFFIX = ".hypotez-batch"
SPEC = "job.json"
LOCK = "lock"
CANCEL = "cancel"
JOURNAL_PREFIX = "journal-"
#: The longest a finished row waits in the page cache before an fsync (a crash of the machine,
#: not of the process, can lose at most this much).
FSYNC_EVERY = 1.0


class BatchBusyError(HypotezError):
    """Another process is working on this job's output right now."""


class Entry(NamedTuple):
    """Where a finished row's result is: journal file, byte offset and length; ``ok`` when it
    has no error."""

    ok: bool
    file: int
    offset: int
    length: int


def state_dir(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


class State:
    """The working folder of the job writing ``output``."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.dir = state_dir(output)
        self._lock_fd: int | None = None
        self.files: list[Path] = []
        self.entries: dict[str, Entry] = {}
        self.torn = 0  # lines skipped because a crash cut them short

    # -- job.json ------------------------------------------------------------------------
    def read_spec(self) -> dict[str, Any] | None:
        path = self.dir / SPEC
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InputError(
                f"{str(path)!r} cannot be read ({exc}): it is this job's description. Remove "
                f"the folder {str(self.dir)!r} to start the job afresh."
            ) from None
        if not isinstance(data, dict):
            raise InputError(f"{str(path)!r} is not a job description; remove {str(self.dir)!r}.")
        return data

    def write_spec(self, spec: Mapping[str, Any]) -> None:
        self._mkdir()
        atomic_write_bytes(
            self.dir / SPEC, json.dumps(dict(spec), ensure_ascii=False, indent=2).encode()
        )

    def _mkdir(self) -> None:
        try:
            self.dir.mkdir(exist_ok=True)
        except FileExistsError:
            raise InputError(
                f"{str(self.dir)!r} exists and is not a folder: hypotez keeps a batch job's "
                "progress there. Move it away, or choose another output name."
            ) from None
        except OSError as exc:
            raise InputError(
                f"Cannot create {str(self.dir)!r} for the job's progress: {explain_os_error(exc)}."
            ) from None

    # -- the lock ------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the job's lock, or raise :class:`BatchBusyError` naming the process that does."""
        import fcntl

        self._mkdir()
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holders = lock_holders(fd)
                who = ", ".join(describe_process(p) for p in holders) or "another process"
                raise BatchBusyError(
                    f"{who} is working on {str(self.output)!r} right now. Wait for it to finish, "
                    "or stop it (Ctrl-C there, or `hypotez batch cancel`); running the same "
                    "command again then resumes where it stopped."
                ) from None
            self._lock_fd = fd
            try:
                yield
            finally:
                self._lock_fd = None
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # -- cancelling ----------------------------------------------------------------------
    def request_cancel(self) -> None:
        self._mkdir()
        (self.dir / CANCEL).write_bytes(b"")

    def cancel_requested(self) -> bool:
        return (self.dir / CANCEL).exists()

    def clear_cancel(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.dir / CANCEL).unlink()

    # -- journals ------------------------------------------------------------------------
    def journals(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(
            p
            for p in self.dir.iterdir()
            if p.name.startswith(JOURNAL_PREFIX) and p.suffix == ".jsonl"
        )

    def load(self) -> dict[str, Entry]:
        """Read every journal: key -> where its latest result is. A success is never replaced
        by a later error for the same id (a result collected twice, say)."""
        self.files = self.journals()
        self.entries = {}
        self.torn = 0
        for number, path in enumerate(self.files):
            self._load_one(number, path)
        return self.entries

    def _load_one(self, number: int, path: Path) -> None:
        entries = self.entries
        with open(path, "rb") as fh:
            offset = 0
            for line in fh:
                length = len(line)
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("torn")  # the last line of a run that was killed
                    data = json.loads(line)
                    key = str(data["id"])
                    ok = data.get("error") is None
                except (ValueError, KeyError, TypeError):
                    self.torn += 1
                    offset += length
                    continue
                old = entries.get(key)
                if old is None or ok or not old.ok:
                    entries[key] = Entry(ok, number, offset, length)
                offset += length

    def read(self, entry: Entry, handles: dict[int, Any]) -> dict[str, Any]:
        """The result an entry points at (``handles`` caches open journals)."""
        fh = handles.get(entry.file)
        if fh is None:
            fh = handles[entry.file] = open(self.files[entry.file], "rb")  # noqa: SIM115
        fh.seek(entry.offset)
        data: dict[str, Any] = json.loads(fh.read(entry.length))
        return data

    def reset(self) -> None:
        """Forget every result and the job description (``--restart``)."""
        for path in self.journals():
            path.unlink()
        for name in (SPEC, CANCEL):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / name).unlink()
        self.files, self.entries = [], {}

    def open_journal(self) -> Journal:
        self._mkdir()
        numbers = [int(p.name[len(JOURNAL_PREFIX) :].split("-")[0] or 0) for p in self.journals()]
        number = max(numbers, default=-1) + 1  # after every journal: later results win
        while True:
            path = self.dir / f"{JOURNAL_PREFIX}{number:06d}-{os.getpid()}.jsonl"
            try:
                fd = os.open(
                    path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600
                )
                break
            except FileExistsError:
                number += 1
        fsync_dir(self.dir)
        self.files = [*self.journals()]
        return Journal(self, path, fd, self.files.index(path))


class Journal:
    """One run's append-only journal. :meth:`append` is called from one thread at a time."""

    def __init__(self, state: State, path: Path, fd: int, number: int) -> None:
        self.state = state
        self.path = path
        self._fd: int | None = fd
        self._number = number
        self._offset = 0
        self._synced = time.monotonic()
        self._dirty = False

    def append(self, results: Sequence[Mapping[str, Any]]) -> None:
        """Write results (complete output rows) in one ``write``; record where each is."""
        if not results or self._fd is None:
            return
        lines = [
            json.dumps(r, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n"
            for r in results
        ]
        data = b"".join(lines)
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            raise HypotezError(
                f"Cannot write the job's results to {str(self.path)!r}: "
                f"{explain_os_error(exc)}. The results written so far are kept; run the same "
                "command again to resume."
            ) from None
        offset = self._offset
        entries = self.state.entries
        for result, line in zip(results, lines, strict=True):
            key = str(result["id"])
            ok = result.get("error") is None
            old = entries.get(key)
            if old is None or ok or not old.ok:
                entries[key] = Entry(ok, self._number, offset, len(line))
            offset += len(line)
        self._offset = offset
        self._dirty = True
        if time.monotonic() - self._synced >= FSYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._synced = time.monotonic()

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = None
            if self._offset == 0:  # nothing written: leave no empty journal behind
                with contextlib.suppress(OSError):
                    self.path.unlink()
                self.state.files = self.state.journals()


__all__ = ["SUFFIX", "BatchBusyError", "Entry", "Journal", "State", "state_dir"]

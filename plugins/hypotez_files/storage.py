"""File storage.

Layout under the root folder::

    dialogues/<id>.jsonl           line 1: the header; then one line per append_turns() call
    dialogues/<id>.jsonl.torn      bytes cut off a crashed append, kept for inspection
    records/<collection>/<id>.json one JSON document per record
    records/<collection>/.<id>.lock taken (``flock``) by ``update_record`` around its read-change-write

Appending opens the file with ``O_APPEND`` under an exclusive ``flock`` and writes one line in
one ``write()``: serialised between processes. A writer killed mid-line leaves an unterminated
tail; readers ignore it, and the next writer moves it to ``<id>.jsonl.torn`` before appending, so
nothing is glued to garbage and nothing is thrown away. A last line that is complete, valid
JSON without its final newline (an editor saved it so) is a turn: readers keep it and the next
writer adds the missing newline in the same ``write()`` as its own line.

Any other unparseable line makes the dialogue unreadable with a :class:`CorruptDataError` that
names the file and line, and makes appends fail the same way: hypotez never writes to such a
file. An append stays O(1): a storage object remembers how far it has checked each dialogue
file (its size and modification time), so it only reads lines added since; the first append of
a process to a dialogue it has not loaded reads the file once.

Nothing below the root is reached through a symbolic link: folders are opened one level at a
time with ``O_NOFOLLOW`` and files with ``O_NOFOLLOW`` in them, so a link planted inside the
storage is reported, never followed. Waiting for another process's lock is bounded
(``lock_timeout``); the error names the process holding it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import attrs
from hypotez import (
    CorruptDataError,
    Dialogue,
    DialogueInfo,
    DialogueNotFoundError,
    InputError,
    Storage,
    StorageError,
    Turn,
    validate_id,
)
from hypotez.files import (
    LockTimeoutError,
    NotARegularFileError,
    atomic_create_at,
    atomic_write_at,
    explain_os_error,
    json_bytes,
    locked,
    open_file_at,
    open_folder,
    read_file_at,
)

log = logging.getLogger(__name__)
_CHUNK = 1 << 20  # bytes read or copied at a time
#: How long an operation waits for another process's lock on a file, by default (seconds).
DEFAULT_LOCK_TIMEOUT = 30.0


def _is_id(name: str, what: str) -> bool:
    """Whether a file name found on disk is a valid id (anything else is not hypotez's)."""
    try:
        validate_id(name, what)
    except InputError:
        return False
    return True


@attrs.frozen
class _Checked:
    """How far a dialogue file was found valid: its identity, size, mtime and line count."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    lines: int


class FileStorage(Storage):
    name = "file"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        try:
            self.root = Path(root).expanduser().resolve()
        except (ValueError, RuntimeError, OSError) as exc:  # a NUL, an unknown ~user, a loop
            raise InputError(
                f"Storage folder {os.fspath(root)!r} is not a usable path ({exc}); give an "
                "absolute folder path or a file:/// URL."
            ) from None
        self.fsync = fsync
        if not lock_timeout > 0:  # also refuses NaN
            raise InputError(f"lock_timeout must be a number of seconds > 0, not {lock_timeout!r}.")
        self.lock_timeout = float(lock_timeout)
        self.url = self.root.as_uri()
        self._dialogues = self.root / "dialogues"
        self._records = self.root / "records"
        self._checked: dict[str, _Checked] = {}
        self._checked_lock = threading.Lock()
        self._writable = False  # check() succeeded once

    @classmethod
    def from_url(
        cls, url: str, *, fsync: bool = True, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> FileStorage:
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # "Invalid IPv6 URL": an unbalanced '[' or ']'
            raise InputError(
                f"Storage URL cannot be parsed ({exc}); use file:///absolute/path."
            ) from None
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                host = parts.hostname or "?"  # never the user:password@ part
                raise InputError(
                    f"file:// URL names host {host!r}: use file:///absolute/path (mount a "
                    "share and give its local path)."
                )
            return cls(url2pathname(parts.path), fsync=fsync, lock_timeout=lock_timeout)
        return cls(url, fsync=fsync, lock_timeout=lock_timeout)  # a plain path

    # -- paths and folders ---------------------------------------------------------------
    def _dialogue_path(self, dialogue_id: str) -> Path:
        return self._dialogues / f"{validate_id(dialogue_id)}.jsonl"

    def _record_path(self, collection: str, record_id: str) -> Path:
        validate_id(collection, "collection")
        return self._records / collection / f"{validate_id(record_id, 'record')}.json"

    @contextlib.contextmanager
    def _io(self, action: str, where: Path | str) -> Iterator[None]:
        """Turn file-system failures into hypotez errors that say what to do."""
        try:
            yield
        except NotARegularFileError as exc:
            raise CorruptDataError(str(exc)) from None
        except LockTimeoutError:
            raise
        except OSError as exc:
            raise StorageError(
                f"Cannot {action} {str(where)!r}: {explain_os_error(exc)}."
            ) from None

    @contextlib.contextmanager
    def _folder(self, *parts: str, create: bool) -> Iterator[int | None]:
        """The folder ``root/parts...`` opened without following links (None if missing)."""
        where = self.root.joinpath(*parts)
        fd: int | None = None
        with self._io("open the folder", where):
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            if create or self.root.is_dir():
                fd = open_folder(self.root, parts, create=create)
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    def _lock(self, fd: int, path: Path, *, shared: bool = False) -> Any:
        return locked(fd, shared=shared, timeout=self.lock_timeout, what=f"{str(path)!r}")

    # -- dialogues -----------------------------------------------------------------------
    def create_dialogue(self, info: DialogueInfo) -> None:
        path = self._dialogue_path(info.id)
        with self._io("create dialogue file", path), self._folder("dialogues", create=True) as d:
            assert d is not None
            created = atomic_create_at(
                d, path.name, json_bytes(info.to_dict()) + b"\n", durable=self.fsync
            )
        if not created:
            raise StorageError(
                f"Dialogue {info.id!r} already exists in {self.url}; pick another id."
            )

    def append_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        path = self._dialogue_path(dialogue_id)  # a bad id is an error even with no turns
        if not turns:
            return
        line = json_bytes({"turns": [t.to_dict() for t in turns]}) + b"\n"
        with self._io("append to", path), self._folder("dialogues", create=False) as d:
            if d is None:
                raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.")
            try:
                fd = open_file_at(d, path.name, os.O_RDWR | os.O_APPEND, shown=path)
            except FileNotFoundError:
                raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.") from None
            try:
                with self._lock(fd, path):
                    self._append_locked(fd, d, path, dialogue_id, line)
            finally:
                os.close(fd)

    def _append_locked(self, fd: int, d: int, path: Path, dialogue_id: str, line: bytes) -> None:
        checked, pending = self._check_for_append(fd, d, path, dialogue_id)
        data = pending + line
        before = checked.size
        try:
            written = os.write(fd, data)
        except OSError as exc:
            os.ftruncate(fd, before)  # nothing of ours may stay behind
            raise StorageError(
                f"Cannot append to {str(path)!r}: {explain_os_error(exc)}. Nothing was appended."
            ) from None
        if written != len(data):  # disk full: undo our partial line
            os.ftruncate(fd, before)
            raise StorageError(
                f"Short write to {str(path)!r} (the disk is full?); nothing was appended. Free "
                "some space and try again."
            )
        if self.fsync:  # durable against power loss, not only against a killed process
            os.fdatasync(fd)
        st = os.fstat(fd)
        self._remember(
            dialogue_id,
            _Checked(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, checked.lines + 1),
        )

    def _remember(self, dialogue_id: str, checked: _Checked | None) -> None:
        with self._checked_lock:
            if checked is None:
                self._checked.pop(dialogue_id, None)
            else:
                self._checked[dialogue_id] = checked

    def _check_for_append(
        self, fd: int, d: int, path: Path, dialogue_id: str
    ) -> tuple[_Checked, bytes]:
        """Check the lines not checked yet; move a torn tail aside. Called under the lock.

        Returns what is known to be valid (size = where our line goes) and the bytes to write
        before our line (a newline that a valid last line lacks, or nothing).
        """
        st = os.fstat(fd)
        with self._checked_lock:
            known = self._checked.get(dialogue_id)
        start, lines = 0, 0
        if known is not None and (known.dev, known.ino) == (st.st_dev, st.st_ino):
            if (known.size, known.mtime_ns) == (st.st_size, st.st_mtime_ns):
                return known, b""  # unchanged since we checked it (or wrote to it)
            if 0 < known.size < st.st_size and os.pread(fd, 1, known.size - 1) == b"\n":
                start, lines = known.size, known.lines  # other writers appended: check theirs
        end, lines, tail = self._check_lines(fd, path, dialogue_id, start, st.st_size, lines)
        if tail is not None and tail[1]:  # a complete last line without its newline
            return _Checked(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, lines + 1), b"\n"
        if lines == 0:
            raise CorruptDataError(
                f"{str(path)!r} has no complete line (not even its header): it is not a dialogue. "
                "Move it away; hypotez will not write to it."
            )
        if tail is not None:
            self._move_torn_tail(fd, d, path, end, st.st_size)
            st = os.fstat(fd)
        return _Checked(st.st_dev, st.st_ino, end, st.st_mtime_ns, lines), b""

    def _check_lines(
        self, fd: int, path: Path, dialogue_id: str, start: int, size: int, lines: int
    ) -> tuple[int, int, tuple[int, bool] | None]:
        """Parse every complete line in ``[start, size)``; CorruptDataError on a bad one.

        Returns the offset after the last complete line, the number of lines up to there, and
        for an unterminated tail ``(offset, valid)``: whether it is a complete, valid line.
        """
        offset = start
        with os.fdopen(os.dup(fd), "rb", buffering=_CHUNK) as fh:
            fh.seek(start)
            while offset < size:
                raw = fh.readline(size - offset)
                if not raw:
                    break
                if not raw.endswith(b"\n"):
                    # A complete line that lost its newline, or an append that never finished.
                    return (
                        offset,
                        lines,
                        (offset, self._valid_tail(path, lines + 1, raw, dialogue_id)),
                    )
                lines += 1
                self._parse_line(path, lines, raw[:-1], dialogue_id)
                offset += len(raw)
        return offset, lines, None

    def _valid_tail(self, path: Path, number: int, raw: bytes, dialogue_id: str) -> bool:
        try:
            self._parse_line(path, number, raw, dialogue_id)
        except CorruptDataError:
            return False
        return True

    def _parse_line(self, path: Path, number: int, raw: bytes, dialogue_id: str) -> Any:
        if number == 1:
            info = self._parse(path, 1, raw, DialogueInfo.from_dict)
            if info.id != dialogue_id:
                raise CorruptDataError(
                    f"{str(path)!r} holds dialogue {info.id!r}, not {dialogue_id!r}."
                )
            return info
        return self._parse(path, number, raw, lambda d: [Turn.from_dict(t) for t in d["turns"]])

    def _move_torn_tail(self, fd: int, d: int, path: Path, keep: int, size: int) -> None:
        """Move the bytes after ``keep`` (an append that never finished) to ``<id>.jsonl.torn``.

        Copied in chunks, so a crashed append of any size is moved, then cut off.
        """
        torn = open_file_at(
            d, f"{path.name}.torn", os.O_WRONLY | os.O_APPEND | os.O_CREAT, shown=f"{path}.torn"
        )
        try:
            pos = keep
            while pos < size:
                chunk = os.pread(fd, min(_CHUNK, size - pos), pos)
                if not chunk:
                    break
                os.write(torn, chunk)
                pos += len(chunk)
            os.write(torn, b"\n")
            os.fsync(torn)
        finally:
            os.close(torn)
        os.ftruncate(fd, keep)
        log.warning(
            "Moved an unfinished append (%d bytes) from %s to %s.torn", size - keep, path, path
        )

    def load_dialogue(self, dialogue_id: str) -> Dialogue:
        path = self._dialogue_path(dialogue_id)
        with self._io("read", path), self._folder("dialogues", create=False) as d:
            if d is None:
                raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.")
            try:
                fd = open_file_at(d, path.name, os.O_RDONLY, shown=path)
            except FileNotFoundError:
                raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.") from None
            try:
                with self._lock(fd, path, shared=True):
                    st = os.fstat(fd)
                    chunks = []
                    while chunk := os.read(fd, _CHUNK):
                        chunks.append(chunk)
            finally:
                os.close(fd)
        data = b"".join(chunks)
        pieces = data.split(b"\n")
        # The last piece is empty after a final newline. Otherwise it is a complete line that
        # lost its newline (kept), or an append that never finished: not part of the data (the
        # next append moves it aside).
        lines = pieces[:-1]
        tail = pieces[-1]
        if tail and self._valid_tail(path, len(pieces), tail, dialogue_id):
            lines.append(tail)
        if not lines:
            raise CorruptDataError(
                f"{str(path)!r} has no header line; it is not a hypotez dialogue."
            )
        info = self._parse_line(path, 1, lines[0], dialogue_id)
        turns: list[Turn] = []
        for number, raw in enumerate(lines[1:], start=2):
            turns.extend(self._parse_line(path, number, raw, dialogue_id))
        # What was checked here is what the next append finds, unless there is a tail to deal
        # with (or someone wrote to the file without its lock while we read it).
        if not tail and len(data) == st.st_size:
            self._remember(
                dialogue_id, _Checked(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, len(lines))
            )
        return Dialogue(info, turns)

    @staticmethod
    def _parse(path: Path, number: int, raw: bytes, build: Any) -> Any:
        try:
            return build(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise CorruptDataError(
                f"{str(path)!r} line {number} is not valid hypotez data ({str(exc)[:200]}). The "
                "file was left untouched, and hypotez will not write to it: repair or move it."
            ) from exc

    def list_dialogues(self) -> list[DialogueInfo]:
        infos = []
        with self._io("list", self._dialogues), self._folder("dialogues", create=False) as d:
            if d is None:
                return []
            names = sorted(e.name for e in os.scandir(d) if e.name.endswith(".jsonl"))
            for name in names:
                path = self._dialogues / name
                try:
                    fd = open_file_at(d, name, os.O_RDONLY, shown=path)
                except FileNotFoundError:
                    continue  # deleted while we listed
                except (NotARegularFileError, OSError) as exc:
                    log.warning("Skipping %s: %s", path, exc)
                    continue
                try:
                    with os.fdopen(fd, "rb") as fh:
                        header = fh.readline()
                    infos.append(DialogueInfo.from_dict(json.loads(header)))
                except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                    log.warning("Skipping %s: unreadable header (%s)", path, str(exc)[:200])
        return sorted(infos, key=lambda i: (i.created, i.id))

    def delete_dialogue(self, dialogue_id: str) -> None:
        path = self._dialogue_path(dialogue_id)
        with self._io("delete", path), self._folder("dialogues", create=False) as d:
            if d is None:
                raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.")
            try:
                os.unlink(path.name, dir_fd=d)  # a planted link is removed, never followed
            except FileNotFoundError:
                raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.") from None
            finally:
                self._remember(dialogue_id, None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path.name}.torn", dir_fd=d)

    def dialogue_exists(self, dialogue_id: str) -> bool:
        path = self._dialogue_path(dialogue_id)
        with self._io("look for", path), self._folder("dialogues", create=False) as d:
            if d is None:
                return False
            try:
                os.stat(path.name, dir_fd=d, follow_symlinks=False)
            except FileNotFoundError:
                return False
            return True

    # -- records -------------------------------------------------------------------------
    def _read_record(self, d: int, path: Path) -> dict[str, Any] | None:
        """The record at ``path`` in the open folder ``d``, or None if there is none."""
        try:
            raw = read_file_at(d, path.name, shown=path)
        except FileNotFoundError:
            return None
        return self._parse_record(path, raw)

    def put_record(self, collection: str, record_id: str, data: Mapping[str, Any]) -> None:
        path = self._record_path(collection, record_id)
        body = json_bytes(dict(data))
        with self._io("write record", path), self._folder("records", collection, create=True) as d:
            assert d is not None
            # Under the record's lock, so a replace cannot land between an update_record's read
            # and write (and be undone by it). Replace a record, never data we cannot read: that
            # is reported, and kept for repair.
            with self._record_lock(d, path):
                self._read_record(d, path)
                atomic_write_at(d, path.name, body, shown=str(path))

    @contextlib.contextmanager
    def _record_lock(self, d: int, path: Path) -> Iterator[None]:
        """Hold the record's lock: writers of one record take turns, so none loses a change.

        The lock file is never removed (unlinking it could leave two writers holding locks on
        two different files). Its name starts with a dot and ends in .lock: listings skip it.
        """
        name = f".{path.stem}.lock"
        fd = open_file_at(d, name, os.O_RDWR | os.O_CREAT, shown=path.with_name(name), mode=0o644)
        try:
            with self._lock(fd, path.with_name(name)):
                yield
        finally:
            os.close(fd)

    def update_record(
        self,
        collection: str,
        record_id: str,
        change: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:
        path = self._record_path(collection, record_id)
        with self._io("update record", path), self._folder("records", collection, create=True) as d:
            assert d is not None
            with self._record_lock(d, path):  # read, change and write as one step
                new = dict(change(self._read_record(d, path)))
                atomic_write_at(d, path.name, json_bytes(new), shown=str(path))
        return new

    def get_record(self, collection: str, record_id: str) -> dict[str, Any]:
        path = self._record_path(collection, record_id)
        with self._io("read record", path), self._folder("records", collection, create=False) as d:
            record = None if d is None else self._read_record(d, path)
        if record is None:
            raise DialogueNotFoundError(f"No {collection} record {record_id!r} in {self.url}.")
        return record

    @staticmethod
    def _parse_record(path: Path, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise CorruptDataError(
                f"Record {str(path)!r} is not valid JSON ({str(exc)[:200]}); it was left untouched."
            ) from exc
        if not isinstance(data, dict):
            raise CorruptDataError(
                f"Record {str(path)!r} is not a JSON object; it was left untouched."
            )
        return data

    def _record_names(self, d: int) -> list[str]:
        return sorted(
            e.name
            for e in os.scandir(d)
            if e.name.endswith(".json") and _is_id(e.name[: -len(".json")], "record")
        )

    def list_records(self, collection: str) -> list[dict[str, Any]]:
        folder = self._records / validate_id(collection, "collection")
        out = []
        with (
            self._io("list records in", folder),
            self._folder("records", collection, create=False) as d,
        ):
            if d is None:
                return []
            # Anything else (a temporary file of a write in progress) is not hypotez's.
            for name in self._record_names(d):
                record = self._read_record(d, folder / name)
                if record is not None:  # None: deleted while we listed
                    out.append(record)
        return out

    def list_dialogue_ids(self) -> list[str]:
        """Every ``<id>.jsonl`` in the dialogues folder, readable or not."""
        with self._io("list", self._dialogues), self._folder("dialogues", create=False) as d:
            if d is None:
                return []
            ids = [e.name[: -len(".jsonl")] for e in os.scandir(d) if e.name.endswith(".jsonl")]
        return sorted(i for i in ids if _is_id(i, "dialogue"))

    def check(self) -> None:
        """The dialogues folder exists (it is created) and this process may write in it."""
        if self._writable:
            return
        with self._io("write in", self._dialogues), self._folder("dialogues", create=True) as d:
            assert d is not None
            if not os.access(self._dialogues, os.W_OK):
                raise StorageError(
                    f"Cannot write in {str(self._dialogues)!r}: permission denied (or a "
                    "read-only file system). Choose another HYPOTEZ_HOME or HYPOTEZ_STORAGE, or "
                    "fix the folder's permissions."
                )
        self._writable = True

    def list_collections(self) -> list[str]:
        with self._io("list", self._records), self._folder("records", create=False) as d:
            if d is None:
                return []
            names = []
            for entry in os.scandir(d):
                if not _is_id(entry.name, "collection"):
                    continue
                if entry.is_symlink():
                    log.warning("Ignoring %s: a symbolic link", self._records / entry.name)
                elif entry.is_dir(follow_symlinks=False):
                    names.append(entry.name)
        return sorted(names)

    def list_record_ids(self, collection: str) -> list[str]:
        folder = self._records / validate_id(collection, "collection")
        with (
            self._io("list records in", folder),
            self._folder("records", collection, create=False) as d,
        ):
            if d is None:
                return []
            return [name[: -len(".json")] for name in self._record_names(d)]

    def delete_record(self, collection: str, record_id: str) -> None:
        path = self._record_path(collection, record_id)
        with (
            self._io("delete record", path),
            self._folder("records", collection, create=False) as d,
        ):
            try:
                if d is None:
                    raise FileNotFoundError
                os.unlink(path.name, dir_fd=d)
            except FileNotFoundError:
                raise DialogueNotFoundError(
                    f"No {collection} record {record_id!r} in {self.url}."
                ) from None

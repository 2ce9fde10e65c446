"""File storage.

Layout under the root folder::

    dialogues/<id>.jsonl           line 1: the header; then one line per append_turns() call
    dialogues/<id>.jsonl.torn      bytes cut off a crashed append, kept for inspection
    records/<collection>/<id>.json one JSON document per record
    records/<collection>/.<id>.lock taken (``flock``) by ``update_record`` around its read-change-write

Appending opens the file with ``O_APPEND`` under an exclusive ``flock`` and writes one line in
one ``write()``: O(1) whatever the dialogue's length, serialised between processes. A writer
killed mid-line leaves an unterminated tail; readers ignore it, and the next writer moves it to
``<id>.jsonl.torn`` before appending, so nothing is glued to garbage and nothing is thrown away.
Any other unparseable line makes the dialogue unreadable with a :class:`CorruptDataError` that
names the file and line; hypotez never rewrites, truncates or deletes its lines (finding a bad
line in the middle would cost a full read, so an append may still add a line after it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

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
from hypotez.files import atomic_create_bytes, atomic_write_bytes, locked

log = logging.getLogger(__name__)
_MAX_TAIL = 64 * 1024 * 1024  # a torn tail is at most one append; refuse to slurp more


def _dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _is_id(name: str, what: str) -> bool:
    """Whether a file name found on disk is a valid id (anything else is not hypotez's)."""
    try:
        validate_id(name, what)
    except InputError:
        return False
    return True


class FileStorage(Storage):
    name = "file"

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.fsync = fsync
        self.url = self.root.as_uri()
        self._dialogues = self.root / "dialogues"
        self._records = self.root / "records"

    @classmethod
    def from_url(cls, url: str, *, fsync: bool = True) -> FileStorage:
        parts = urlsplit(url)
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise InputError(
                    f"file:// URL {url!r} names host {parts.netloc!r}: use file:///absolute/path."
                )
            return cls(url2pathname(parts.path), fsync=fsync)
        return cls(url, fsync=fsync)  # a plain path

    # -- paths ---------------------------------------------------------------------------
    def _dialogue_path(self, dialogue_id: str) -> Path:
        return self._dialogues / f"{validate_id(dialogue_id)}.jsonl"

    def _record_path(self, collection: str, record_id: str) -> Path:
        validate_id(collection, "collection")
        return self._records / collection / f"{validate_id(record_id, 'record')}.json"

    # -- dialogues -----------------------------------------------------------------------
    def create_dialogue(self, info: DialogueInfo) -> None:
        path = self._dialogue_path(info.id)
        try:
            created = atomic_create_bytes(path, _dumps(info.to_dict()) + b"\n")
        except OSError as exc:
            raise StorageError(
                f"Cannot create dialogue file {str(path)!r}: {exc.strerror}."
            ) from exc
        if not created:
            raise StorageError(
                f"Dialogue {info.id!r} already exists in {self.url}; pick another id."
            )

    def append_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        path = self._dialogue_path(dialogue_id)  # a bad id is an error even with no turns
        if not turns:
            return
        line = _dumps({"turns": [t.to_dict() for t in turns]}) + b"\n"
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.") from None
        except OSError as exc:
            raise StorageError(f"Cannot open {str(path)!r} for appending: {exc.strerror}.") from exc
        try:
            with locked(fd):
                self._cut_torn_tail(fd, path)
                written = os.write(fd, line)
                if written != len(line):  # disk full: undo our partial line
                    os.ftruncate(fd, os.fstat(fd).st_size - written)
                    raise StorageError(
                        f"Short write to {str(path)!r} (disk full?); nothing was appended."
                    )
                if self.fsync:  # durable against power loss, not only against a killed process
                    os.fdatasync(fd)
        except OSError as exc:
            raise StorageError(f"Cannot append to {str(path)!r}: {exc.strerror}.") from exc
        finally:
            os.close(fd)

    def _cut_torn_tail(self, fd: int, path: Path) -> None:
        """If the last append crashed mid-line, move its bytes aside. Called under the lock."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        start = max(0, size - _MAX_TAIL)
        chunk = os.pread(fd, size - start, start)
        cut = chunk.rfind(b"\n")
        if cut < 0:
            raise CorruptDataError(
                f"{str(path)!r} has no complete line (not even its header): it is not a dialogue. "
                "Move it away; hypotez will not write to it."
            )
        keep = start + cut + 1
        with open(f"{path}.torn", "ab") as torn:
            torn.write(chunk[cut + 1 :] + b"\n")
            torn.flush()
            os.fsync(torn.fileno())
        os.ftruncate(fd, keep)
        log.warning(
            "Moved an unfinished append (%d bytes) from %s to %s.torn", size - keep, path, path
        )

    def load_dialogue(self, dialogue_id: str) -> Dialogue:
        path = self._dialogue_path(dialogue_id)
        try:
            with open(path, "rb") as fh, locked(fh.fileno(), shared=True):
                data = fh.read()
        except FileNotFoundError:
            raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.") from None
        except OSError as exc:
            raise StorageError(f"Cannot read {str(path)!r}: {exc.strerror}.") from exc
        # The last piece is empty after a final newline, or an unterminated tail: an append that
        # never finished, which is not part of the data (the next append moves it aside).
        lines = data.split(b"\n")[:-1]
        if not lines:
            raise CorruptDataError(
                f"{str(path)!r} has no header line; it is not a hypotez dialogue."
            )
        info = self._parse(path, 1, lines[0], DialogueInfo.from_dict)
        turns: list[Turn] = []
        for number, raw in enumerate(lines[1:], start=2):
            batch = self._parse(
                path, number, raw, lambda d: [Turn.from_dict(t) for t in d["turns"]]
            )
            turns.extend(batch)
        if info.id != dialogue_id:
            raise CorruptDataError(
                f"{str(path)!r} holds dialogue {info.id!r}, not {dialogue_id!r}."
            )
        return Dialogue(info, turns)

    @staticmethod
    def _parse(path: Path, number: int, raw: bytes, build: Any) -> Any:
        try:
            return build(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptDataError(
                f"{str(path)!r} line {number} is not valid hypotez data ({exc}). The file was left "
                "untouched: repair or move it."
            ) from exc

    def list_dialogues(self) -> list[DialogueInfo]:
        infos = []
        if not self._dialogues.is_dir():
            return []
        for path in self._dialogues.glob("*.jsonl"):
            try:
                with open(path, "rb") as fh:
                    header = fh.readline()
                infos.append(DialogueInfo.from_dict(json.loads(header)))
            except FileNotFoundError:
                continue  # deleted while we listed
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("Skipping %s: unreadable header (%s)", path, exc)
        return sorted(infos, key=lambda i: (i.created, i.id))

    def delete_dialogue(self, dialogue_id: str) -> None:
        path = self._dialogue_path(dialogue_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.") from None
        Path(f"{path}.torn").unlink(missing_ok=True)

    def dialogue_exists(self, dialogue_id: str) -> bool:
        return self._dialogue_path(dialogue_id).exists()

    # -- records -------------------------------------------------------------------------
    def put_record(self, collection: str, record_id: str, data: Mapping[str, Any]) -> None:
        path = self._record_path(collection, record_id)
        body = _dumps(dict(data))
        # Under the record's lock, so a replace cannot land between an update_record's read and
        # write (and be undone by it).
        with self._record_lock(path):
            # Replace a record, never data we cannot read: that is reported, and kept for repair.
            try:
                self._parse_record(path, path.read_bytes())
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"Cannot read record {str(path)!r}: {exc.strerror}.") from exc
            try:
                atomic_write_bytes(path, body)
            except OSError as exc:
                raise StorageError(f"Cannot write record {str(path)!r}: {exc.strerror}.") from exc

    @contextlib.contextmanager
    def _record_lock(self, path: Path) -> Iterator[None]:
        """Hold the record's lock: writers of one record take turns, so none loses a change.

        The lock file is never removed (unlinking it could leave two writers holding locks on
        two different files). Its name starts with a dot and ends in .lock: listings skip it.
        """
        lock = path.with_name(f".{path.stem}.lock")
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"Cannot open lock file {str(lock)!r}: {exc.strerror}.") from exc
        try:
            with locked(fd):
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
        with self._record_lock(path):  # read, change and write as one step
            try:
                current: dict[str, Any] | None = self._parse_record(path, path.read_bytes())
            except FileNotFoundError:
                current = None
            except OSError as exc:
                raise StorageError(f"Cannot read record {str(path)!r}: {exc.strerror}.") from exc
            new = dict(change(current))
            try:
                atomic_write_bytes(path, _dumps(new))
            except OSError as exc:
                raise StorageError(f"Cannot write record {str(path)!r}: {exc.strerror}.") from exc
        return new

    def get_record(self, collection: str, record_id: str) -> dict[str, Any]:
        path = self._record_path(collection, record_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise DialogueNotFoundError(
                f"No {collection} record {record_id!r} in {self.url}."
            ) from None
        return self._parse_record(path, raw)

    @staticmethod
    def _parse_record(path: Path, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise CorruptDataError(
                f"Record {str(path)!r} is not valid JSON ({exc}); it was left untouched."
            ) from exc
        if not isinstance(data, dict):
            raise CorruptDataError(
                f"Record {str(path)!r} is not a JSON object; it was left untouched."
            )
        return data

    def list_records(self, collection: str) -> list[dict[str, Any]]:
        folder = self._records / validate_id(collection, "collection")
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            if not _is_id(path.stem, "record"):
                continue  # a temporary file of a write in progress, or not hypotez's
            try:
                out.append(self._parse_record(path, path.read_bytes()))
            except FileNotFoundError:
                continue
        return out

    def list_collections(self) -> list[str]:
        if not self._records.is_dir():
            return []
        return sorted(
            p.name for p in self._records.iterdir() if p.is_dir() and _is_id(p.name, "collection")
        )

    def list_record_ids(self, collection: str) -> list[str]:
        folder = self._records / validate_id(collection, "collection")
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if _is_id(p.stem, "record"))

    def delete_record(self, collection: str, record_id: str) -> None:
        try:
            self._record_path(collection, record_id).unlink()
        except FileNotFoundError:
            raise DialogueNotFoundError(
                f"No {collection} record {record_id!r} in {self.url}."
            ) from None

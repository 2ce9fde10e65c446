"""Where a batch job's rows come from: JSONL, CSV/TSV, Parquet, plain text, a folder of images,
or ``dialogues:`` (every stored turn).

Every source streams its rows (a file of any size is never held in memory) and gives each a
1-based row number, an id (the ``id`` column when the file has one, else the row number) and the
value of the task's column. A problem with the whole input (missing file, unknown format, no such
column) raises :class:`SourceError` at once, naming the input and what to do; a problem with one
row (a line that is not JSON, a missing value) is that row's ``error``, and never stops the job.

Paths are local files or, for JSONL, CSV, Parquet and text, any URL that ``pyarrow.fs`` opens
(object stores such as Google Cloud Storage or Amazon's; pyarrow is then needed).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
from hypotez.batch.tasks import Row
from hypotez.datasets.readers import no_csv_field_limit
from hypotez.errors import InputError

#: Image suffixes picked up from a folder (the content is checked when a row is worked on).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".text": "text",
}
DIALOGUES = "dialogues:"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


class SourceError(InputError):
    """The input as a whole cannot be read: missing, unreadable, an unknown format, no such
    column, duplicate ids. Nothing was processed."""


@attrs.frozen
class Item:
    """A row as read: its position, its id, the value, and why it cannot be used (if so)."""

    number: int
    id: str | int
    value: Any
    problem: str | None = None

    def row(self) -> Row:
        return Row(self.number, self.id, self.value)


def is_url(path: str) -> bool:
    return bool(_URL.match(path)) and not path.startswith("file://")


def _normal_id(value: Any) -> str | int | None:
    """An id as kept in the output: text or a whole number; None when there is none."""
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value:  # NaN: a missing value in a data frame
            return None
        return int(value) if value.is_integer() else repr(value)
    text = str(value)
    return text if text.strip() else None


class Source:
    """A batch input. :meth:`items` streams its rows; ``describe()`` names it in messages."""

    kind: str = ""

    def __init__(self, location: str, column: str, id_column: str | None) -> None:
        self.location = location
        self.column = column
        self.id_column = id_column or None

    def describe(self) -> str:
        return self.location

    def fingerprint(self) -> dict[str, Any]:
        """Enough to tell the user later whether the input changed (size and time of a file)."""
        if is_url(self.location) or self.kind == "dialogues":
            return {"location": self.location}
        try:
            st = os.stat(self.location)
        except OSError:
            return {"location": self.location}
        return {"location": self.location, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def items(self) -> Iterator[Item]:
        raise NotImplementedError

    # -- shared by the tabular sources -----------------------------------------------------
    def _missing_column(self, columns: list[str]) -> SourceError:
        return SourceError(
            f"{self.describe()!r} has no {self.column!r} column (its columns: "
            f"{', '.join(map(repr, columns)) or 'none'}). Name the column to read with "
            "--column."
        )

    def _item(self, number: int, record: Any, has_id: bool) -> Item:
        if not isinstance(record, dict):
            return Item(number, number, None, f"row {number} is not an object with columns")
        ident: str | int = number
        if has_id:
            found = _normal_id(record.get(self.id_column))
            if found is None:
                return Item(number, number, None, f"row {number} has no {self.id_column!r} value")
            ident = found
        return Item(number, ident, record.get(self.column))


def _open_binary(location: str) -> IO[bytes]:
    """A local file or a URL pyarrow can open, for reading bytes."""
    if is_url(location):
        try:
            import pyarrow.fs as pafs
        except ImportError:
            raise SourceError(
                f"Reading {location!r} needs pyarrow: pip install 'hypotez[parquet]'."
            ) from None
        try:
            fs, path = pafs.FileSystem.from_uri(location)
            return fs.open_input_stream(path)
        except (OSError, ValueError) as exc:
            raise SourceError(f"Cannot open {location!r}: {exc}") from None
    try:
        return open(location, "rb")
    except FileNotFoundError:
        raise SourceError(f"Input {location!r} does not exist.") from None
    except IsADirectoryError:
        raise SourceError(
            f"Input {location!r} is a folder: a folder is input for the describe task only "
            "(its images)."
        ) from None
    except OSError as exc:
        from hypotez.files import explain_os_error

        raise SourceError(f"Cannot read {location!r}: {explain_os_error(exc)}.") from None


class JsonlSource(Source):
    """One JSON object per line; blank lines are skipped (they are not rows)."""

    kind = "jsonl"

    def items(self) -> Iterator[Item]:
        has_id: bool | None = None
        number = 0
        with _open_binary(self.location) as fh:
            for raw in fh:
                line = raw.strip()
                if not line:
                    continue
                number += 1
                try:
                    record = json.loads(line.removeprefix(b"\xef\xbb\xbf") if number == 1 else line)
                except (ValueError, RecursionError) as exc:
                    yield Item(number, number, None, f"row {number} is not valid JSON ({exc})")
                    continue
                if has_id is None:
                    has_id = (
                        self.id_column is not None
                        and isinstance(record, dict)
                        and self.id_column in record
                    )
                    if isinstance(record, dict) and self.column not in record:
                        raise self._missing_column(list(record))
                yield self._item(number, record, has_id)


class CsvSource(Source):
    """A header row, then one row per record. ``.tsv`` is tab-separated; for ``.csv`` the
    delimiter (comma or semicolon) is read from the header. UTF-8, with or without a BOM."""

    kind = "csv"

    def items(self) -> Iterator[Item]:
        with _open_binary(self.location) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
            try:
                header = text.readline()
            except UnicodeDecodeError as exc:
                raise self._not_utf8(exc) from None
            if not header.strip():
                raise SourceError(f"{self.describe()!r} is empty: it needs a header row.")
            if self.location.lower().endswith(".tsv"):
                delimiter = "\t"
            else:
                delimiter = ";" if header.count(";") > header.count(",") else ","
            columns = next(csv.reader([header], delimiter=delimiter))
            if self.column not in columns:
                raise self._missing_column(columns)
            has_id = self.id_column is not None and self.id_column in columns
            reader = csv.DictReader(text, fieldnames=columns, delimiter=delimiter)
            number = 0
            while True:
                try:
                    # A long text is a row like any other. The limit is process-wide, so it is
                    # lifted for one row at a time: never held across a yield, when another
                    # reader (in this thread or another) may need it.
                    with no_csv_field_limit():
                        record = next(reader)
                except StopIteration:
                    break
                except UnicodeDecodeError as exc:
                    raise self._not_utf8(exc) from None
                except csv.Error as exc:
                    raise SourceError(
                        f"{self.describe()!r} is not valid CSV after row {number}: {exc}."
                    ) from None
                number += 1  # (csv skips blank lines itself: a row of "" is a row)
                yield self._item(number, record, has_id)

    def _not_utf8(self, exc: UnicodeDecodeError) -> SourceError:
        return SourceError(
            f"{self.describe()!r} is not UTF-8 text ({exc.reason}). Convert it first, e.g. "
            "iconv -f latin1 -t utf-8."
        )


class ParquetSource(Source):
    """A Parquet file, read a row group at a time (pyarrow)."""

    kind = "parquet"

    def items(self) -> Iterator[Item]:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise SourceError(
                f"Reading {self.describe()!r} needs pyarrow: pip install 'hypotez[parquet]'."
            ) from None
        try:
            if is_url(self.location):
                import pyarrow.fs as pafs

                fs, path = pafs.FileSystem.from_uri(self.location)
                parquet = pq.ParquetFile(fs.open_input_file(path))
            else:
                parquet = pq.ParquetFile(self.location)
        except FileNotFoundError:
            raise SourceError(f"Input {self.location!r} does not exist.") from None
        except (OSError, ValueError) as exc:
            raise SourceError(f"Cannot read {self.describe()!r} as Parquet: {exc}") from None
        names = parquet.schema_arrow.names
        if self.column not in names:
            raise self._missing_column(names)
        has_id = self.id_column is not None and self.id_column in names
        wanted = [self.column] + ([self.id_column] if has_id and self.id_column else [])
        number = 0
        for batch in parquet.iter_batches(batch_size=4096, columns=wanted):
            values = batch.column(self.column).to_pylist()
            ids = batch.column(self.id_column).to_pylist() if has_id else None
            for i, value in enumerate(values):
                number += 1
                record = {self.column: value}
                if ids is not None:
                    record[self.id_column] = ids[i]  # type: ignore[index]
                yield self._item(number, record, has_id)


class TextSource(Source):
    """One row per line (the line number is the id); a blank line is an error row, so that ids
    stay line numbers."""

    kind = "text"

    def items(self) -> Iterator[Item]:
        with _open_binary(self.location) as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.rstrip(b"\r\n")
                if number == 1:
                    line = line.removeprefix(b"\xef\xbb\xbf")
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield Item(number, number, None, f"line {number} is not UTF-8 ({exc.reason})")
                    continue
                yield Item(number, number, text)


class ImageFolderSource(Source):
    """Every image file below a folder, in order of relative path; the relative path is the id."""

    kind = "images"

    def items(self) -> Iterator[Item]:
        root = Path(self.location)
        found = sorted(
            (p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=lambda p: p.relative_to(root).as_posix(),
        )
        if not found:
            raise SourceError(
                f"The folder {self.location!r} holds no image ({', '.join(IMAGE_SUFFIXES)})."
            )
        for number, path in enumerate(found, start=1):
            yield Item(number, path.relative_to(root).as_posix(), str(path))


class DialoguesSource(Source):
    """Every turn of every stored dialogue (or of the dialogues named after ``dialogues:``,
    comma-separated); the id is ``DIALOGUE:TURN`` with turns counted from 1."""

    kind = "dialogues"

    def __init__(self, location: str, storage_of: Callable[[], Any]) -> None:
        super().__init__(location, "content", None)
        self._storage_of = storage_of

    def items(self) -> Iterator[Item]:
        from hypotez.errors import StorageError

        storage = self._storage_of()
        wanted = [p.strip() for p in self.location[len(DIALOGUES) :].split(",") if p.strip()]
        ids = wanted or storage.list_dialogue_ids()
        number = 0
        for dialogue_id in ids:
            try:
                dialogue = storage.load_dialogue(dialogue_id)
            except KeyError:
                raise SourceError(
                    f"No dialogue {dialogue_id!r} in {storage.url or 'the storage'}; "
                    "`hypotez dialogues list` shows them."
                ) from None
            except StorageError as exc:
                number += 1
                yield Item(number, f"{dialogue_id}:?", None, f"dialogue unreadable: {exc}")
                continue
            for turn_number, turn in enumerate(dialogue.turns, start=1):
                number += 1
                yield Item(number, f"{dialogue_id}:{turn_number}", turn.content)


def open_source(
    location: str | os.PathLike[str],
    *,
    column: str,
    id_column: str | None = "id",
    storage_of: Callable[[], Any] | None = None,
    images: bool = False,
) -> Source:
    """The source for ``location``: a file by suffix, a folder of images (when ``images``), a
    URL, or ``dialogues:`` (read from the storage ``storage_of()`` returns)."""
    text = os.fspath(location)
    if "\0" in text:
        raise SourceError(f"Input {text!r} holds a NUL character; no file name can.")
    if text.startswith(DIALOGUES):
        if storage_of is None:
            raise SourceError("dialogues: input needs a storage to read them from.")
        return DialoguesSource(text, storage_of)
    if text.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        text = unquote(urlsplit(text).path)
    if not is_url(text):
        path = Path(text).expanduser()
        if path.is_dir():
            if not images:
                raise SourceError(
                    f"Input {text!r} is a folder: a folder is input for the describe task only "
                    "(its images). For texts, give a .jsonl, .csv, .parquet or .txt file."
                )
            return ImageFolderSource(str(path.absolute()), column, None)
        if not path.exists():
            raise SourceError(f"Input {text!r} does not exist.")
        text = str(path.absolute())
    suffix = os.path.splitext(text.rstrip("/"))[1].lower()
    kind = FORMATS.get(suffix)
    if kind is None:
        raise SourceError(
            f"Cannot tell the format of {text!r} from its suffix: use "
            f"{', '.join(sorted(FORMATS))}, a folder of images, or dialogues:."
        )
    cls = {
        "jsonl": JsonlSource,
        "csv": CsvSource,
        "parquet": ParquetSource,
        "text": TextSource,
    }[kind]
    return cls(text, column, id_column)


__all__ = [
    "DIALOGUES",
    "FORMATS",
    "IMAGE_SUFFIXES",
    "CsvSource",
    "DialoguesSource",
    "ImageFolderSource",
    "Item",
    "JsonlSource",
    "ParquetSource",
    "Source",
    "SourceError",
    "TextSource",
    "is_url",
    "open_source",
]

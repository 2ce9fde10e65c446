"""Read training data from CSV, JSONL and JSON files, and from folders of them.

Formats (chosen by the file's suffix):

- ``.csv`` / ``.tsv``: a header row with ``prompt`` and ``completion`` columns, or ``user`` and
  ``assistant``; an optional ``system`` column. Column names are matched case-insensitively;
  other columns are ignored. The delimiter (``,``, ``;`` or tab) is detected from the header.
  Quoted fields may hold commas, quotes (``""``) and newlines. A UTF-8 BOM is accepted.
- ``.jsonl``: one chat example per line, ``{"messages": [{"role": ..., "content": ...}, ...]}``
  (the chat fine-tuning format). Blank lines are skipped.
- ``.json``: a list of examples, or ``{"examples": [...]}``, or one example
  ``{"messages": [...]}``. Each example is a chat example or a pair object as in a CSV row
  (``{"prompt": ..., "completion": ..., "system": ...}``).

Files must be UTF-8. A problem with one example is kept on its record for the validation
report (with the line it starts on); a problem with the whole file (unreadable, not UTF-8, no
usable columns, not JSON at all) raises :class:`~hypotez.errors.TrainingDataError` at once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypotez.datasets.records import PAIR_COLUMNS, Dataset, Record, pair_to_chat
from hypotez.errors import TrainingDataError

SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
_DECODER = json.JSONDecoder()
_CSV_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def no_csv_field_limit() -> Iterator[None]:
    """Lift the csv module's 128 KiB field limit while we read (restored afterwards).

    A long message is a training example like any other (validation reports it if it is over
    the model's token limit); at the default limit, csv stopped reading the file there.
    """
    with _CSV_LIMIT_LOCK:
        old = csv.field_size_limit()
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        try:
            yield
        finally:
            csv.field_size_limit(old)


def read_path(path: str | os.PathLike[str], *, system: str | None = None) -> Dataset:
    """Read one file (by suffix) or every data file of a folder."""
    p = Path(path)
    if p.is_dir():
        return read_dir(p, system=system)
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return read_csv(p, system=system)
    if suffix == ".jsonl":
        return read_jsonl(p)
    if suffix == ".json":
        return read_json(p, system=system)
    if not p.exists():
        raise TrainingDataError(f"Training data {str(p)!r} does not exist.")
    raise TrainingDataError(
        f"Cannot tell the format of {str(p)!r} from its suffix: use .csv, .tsv, .jsonl or .json."
    )


def read_dir(folder: str | os.PathLike[str], *, system: str | None = None) -> Dataset:
    """Every ``.csv``/``.tsv``/``.jsonl``/``.json`` file under ``folder``, recursively.

    Files are read in sorted order of their relative path, so the examples' order (and the
    uploaded bytes) never depend on the file system. Hidden files and folders are skipped;
    other files are listed in ``Dataset.skipped``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise TrainingDataError(f"Training data folder {str(root)!r} does not exist.")
    parts: list[Dataset] = []
    skipped: list[tuple[str, str]] = []
    for p in sorted(root.rglob("*"), key=lambda q: q.relative_to(root).as_posix()):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or p.is_dir():
            continue
        if p.suffix.lower() in SUFFIXES:
            parts.append(read_path(p, system=system))
        else:
            skipped.append((str(p), f"not a data file (use {', '.join(SUFFIXES)})"))
    if not parts:
        raise TrainingDataError(
            f"Folder {str(root)!r} holds no training data files ({', '.join(SUFFIXES)})."
        )
    out = Dataset(skipped=skipped)
    for part in parts:
        out = out + part
    return out


def _read_bytes(path: Path, what: str = "Training data file") -> bytes:
    """The bytes of a regular file; a FIFO or device is refused without being read.

    Every failure is a :class:`TrainingDataError` (an ``InputError``) naming ``what`` and path.
    """
    from hypotez.files import explain_os_error, kind_of

    if "\0" in str(path):
        raise TrainingDataError(f"{what} name {str(path)!r} holds a NUL character; no file can.")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise TrainingDataError(f"{what} {str(path)!r} does not exist.") from None
    except OSError as exc:
        raise TrainingDataError(
            f"Cannot read {what.lower()} {str(path)!r}: {explain_os_error(exc)}."
        ) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise TrainingDataError(
                f"{what} {str(path)!r} is {kind_of(mode)}, not a regular file; give a file."
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise TrainingDataError(
            f"Cannot read {what.lower()} {str(path)!r}: {explain_os_error(exc)}."
        ) from None
    finally:
        os.close(fd)


def _read_text(path: Path) -> str:
    raw = _read_bytes(path)
    try:
        return raw.decode("utf-8-sig")  # a BOM (Excel writes one) is not part of the data
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TrainingDataError(
            f"{path}:{line}: the file is not UTF-8 ({exc.reason} at byte {exc.start}). "
            "Save it as UTF-8 (in Excel: 'CSV UTF-8') and try again."
        ) from exc


# -- CSV ------------------------------------------------------------------------------------
def _columns(header: list[str]) -> dict[str, int]:
    return {name.strip().lower(): i for i, name in enumerate(header)}


def _has_pair(first_line: str, delimiter: str) -> bool:
    names = {n.strip().strip('"').lower() for n in first_line.split(delimiter)}
    return any(u in names and a in names for u, a in PAIR_COLUMNS)


def _pick_delimiter(first_line: str, default: str) -> str:
    for candidate in (default, ",", ";", "\t"):
        if _has_pair(first_line, candidate):
            return candidate
    return default


def read_csv(
    path: str | os.PathLike[str], *, system: str | None = None, delimiter: str | None = None
) -> Dataset:
    """Read a CSV file; each row becomes a chat example (``system`` is the default system)."""
    p = Path(path)
    default = "\t" if p.suffix.lower() == ".tsv" else ","
    return parse_csv(_read_text(p), str(p), system=system, delimiter=delimiter, default=default)


def parse_csv(
    text: str,
    source: str = "<data>",
    *,
    system: str | None = None,
    delimiter: str | None = None,
    default: str = ",",
) -> Dataset:
    """CSV text (see the module docs) as records located in ``source``."""
    with no_csv_field_limit():
        return _parse_csv(text, source, system, delimiter, default)


def _parse_csv(
    text: str, source: str, system: str | None, delimiter: str | None, default: str
) -> Dataset:
    p = source
    delim = delimiter or _pick_delimiter(text.split("\n", 1)[0], default)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise TrainingDataError(f"{p}:1: the CSV file is empty; it needs a header row.") from None
    except csv.Error as exc:
        raise TrainingDataError(f"{p}:1: cannot parse the header row: {exc}.") from exc
    cols = _columns(header)
    pair = next(((u, a) for u, a in PAIR_COLUMNS if u in cols and a in cols), None)
    if pair is None:
        raise TrainingDataError(
            f"{p}:1: the header has columns {', '.join(repr(h) for h in header)}; it needs "
            "'prompt' and 'completion' (or 'user' and 'assistant'), and optionally 'system'."
        )
    user_i, assistant_i = cols[pair[0]], cols[pair[1]]
    system_i = cols.get("system")
    records: list[Record] = []
    last_line = reader.line_num
    while True:
        start = last_line + 1  # a quoted field may span lines: report where the row starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            records.append(Record(None, source, start, f"cannot parse the row: {exc}", "bad_row"))
            break  # the csv module cannot resynchronise after a broken quote
        last_line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            records.append(
                Record(
                    None,
                    source,
                    start,
                    f"the row has {len(row)} fields but the header has {len(header)} "
                    "(quote fields that contain the delimiter)",
                    "bad_row",
                )
            )
            continue
        row_system = row[system_i] if system_i is not None and row[system_i].strip() else system
        messages = [{"role": "system", "content": row_system}] if row_system else []
        messages.append({"role": "user", "content": row[user_i]})
        messages.append({"role": "assistant", "content": row[assistant_i]})
        records.append(Record.checked({"messages": messages}, source, start))
    return Dataset(records, (source,))


# -- JSONL ----------------------------------------------------------------------------------
def read_jsonl(path: str | os.PathLike[str]) -> Dataset:
    """Read a JSONL file in the chat fine-tuning format, one example per line."""
    p = Path(path)
    return parse_jsonl(_read_text(p), str(p))


def parse_jsonl(text: str, source: str = "<data>") -> Dataset:
    """JSONL text as records located in ``source`` (blank lines skipped)."""
    records: list[Record] = []
    # Split on "\n" only: str.splitlines() would also split at U+2028, which JSON allows raw.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            records.append(Record(None, source, number, _json_problem(exc), "invalid_json"))
            continue
        records.append(Record.checked(data, source, number))
    return Dataset(records, (source,))


def _json_problem(exc: BaseException) -> str:
    """What is wrong with a JSON text that did not parse, in words."""
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply to read (no example is)"
    if "digits" in str(exc):  # int('9' * 5000): Python's limit on integer digits
        return "invalid JSON: a number with thousands of digits (no example has one)"
    return f"invalid JSON: {exc}"


# -- JSON -----------------------------------------------------------------------------------
def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _array_items(text: str, pos: int) -> list[tuple[Any, int]]:
    """(item, offset) for each item of the JSON array starting at ``text[pos] == "["``."""
    items: list[tuple[Any, int]] = []
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return items
    while True:
        pos = _skip_ws(text, pos)
        value, end = _DECODER.raw_decode(text, pos)
        items.append((value, pos))
        pos = _skip_ws(text, end)
        if text[pos] == "]":
            return items
        pos += 1  # the comma (the document already parsed, so it is well-formed)


def _member_offset(text: str, pos: int, key: str) -> int:
    """Offset of the value of ``key`` in the JSON object starting at ``text[pos] == "{"``."""
    pos = _skip_ws(text, pos + 1)
    while text[pos] != "}":
        name, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_ws(text, _skip_ws(text, pos) + 1)  # past the colon
        if name == key:
            return pos
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
    raise KeyError(key)


def read_json(path: str | os.PathLike[str], *, system: str | None = None) -> Dataset:
    """Read a JSON file: a list of examples, ``{"examples": [...]}`` or one example."""
    p = Path(path)
    return parse_json(_read_text(p), str(p), system=system)


def parse_json(text: str, source: str = "<data>", *, system: str | None = None) -> Dataset:
    """A JSON document (see the module docs) as records located in ``source``."""
    p = source
    try:
        doc = json.loads(text)
        start = _skip_ws(text, 0)
        if isinstance(doc, list):
            located = _array_items(text, start)
        elif isinstance(doc, dict) and isinstance(doc.get("examples"), list):
            located = _array_items(text, _member_offset(text, start, "examples"))
        elif isinstance(doc, dict) and "messages" in doc:
            located = [(doc, start)]
        else:
            located = None
    except (ValueError, RecursionError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 1
        raise TrainingDataError(f"{p}:{line}: {_json_problem(exc)}.") from None
    if located is None:
        raise TrainingDataError(
            f"{p}:1: expected a list of examples, an object with an 'examples' list, or one "
            "example with 'messages'."
        )
    records = []
    for item, offset in located:
        line = text.count("\n", 0, offset) + 1
        data = pair_to_chat(item) if isinstance(item, dict) else item
        if system and isinstance(data, dict) and "messages" not in item:
            msgs = data.get("messages")
            if isinstance(msgs, list) and not any(
                isinstance(m, dict) and m.get("role") == "system" for m in msgs
            ):
                data = {"messages": [{"role": "system", "content": system}, *msgs]}
        records.append(Record.checked(data, source, line))
    return Dataset(records, (source,))


def parse_text(text: str, source: str = "<data>", *, system: str | None = None) -> Dataset:
    """Training data given as text, its format told by the content.

    ``[...]`` or one JSON object (``{"messages": ...}`` or ``{"examples": [...]}``) is read as a
    ``.json`` file; other text starting with ``{`` as JSONL; text whose first line names the
    CSV columns as a ``.csv`` file.
    """
    text = text.removeprefix("\ufeff")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return parse_json(text, source, system=system)
    if stripped.startswith("{"):
        try:
            whole = json.loads(text)
        except (ValueError, RecursionError):
            return parse_jsonl(text, source)  # several objects, one per line (each reported)
        if isinstance(whole, dict):
            return parse_json(text, source, system=system)
    first = stripped.split("\n", 1)[0]
    for delim in (",", ";", "\t"):
        if _pick_delimiter(first, delim) == delim and _has_pair(first, delim):
            return parse_csv(text, source, system=system, delimiter=delim)
    raise TrainingDataError(
        f"{source}: cannot tell the format of the training data text: give JSON, JSONL, or CSV "
        "whose first line names the columns (prompt,completion or user,assistant)."
    )

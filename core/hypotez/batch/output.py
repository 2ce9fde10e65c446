"""Writing a batch job's output: JSONL or Parquet, in input order, all at once or not at all.

The results are in the job's journals (:mod:`hypotez.batch.state`) in the order they finished.
:func:`assemble` walks the input again and writes each row's result in input order to a
temporary file next to the output, flushes it to disk, and renames it over the output: a reader
or a crash sees the previous output or the new one, never part of one. An output URL (any that
``pyarrow.fs`` opens) is written locally first and then uploaded in one piece (object stores
make an upload visible only once it is complete).

Parquet needs pyarrow (``pip install 'hypotez[parquet]'``); JSONL needs nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hypotez.errors import InputError
from hypotez.files import OutputError, check_output, explain_os_error, fsync_dir

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
ROW_GROUP = 50_000


def output_format(location: str) -> str:
    suffix = os.path.splitext(location.rstrip("/"))[1].lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        raise InputError(
            f"Cannot tell the output format of {location!r} from its suffix: end it in .jsonl "
            "or .parquet."
        )
    return fmt


def need_pyarrow(what: str) -> Any:
    try:
        import pyarrow
    except ImportError:
        raise InputError(
            f"{what} needs pyarrow, which is not installed: pip install 'hypotez[parquet]'."
        ) from None
    return pyarrow


def arrow_schema(columns: Sequence[tuple[str, str]], id_type: str) -> Any:
    """The Parquet schema of a task's output columns."""
    pa = need_pyarrow("Writing Parquet")
    types = {
        "string": pa.string(),
        "float": pa.float64(),
        "int": pa.int64(),
        "labels": pa.list_(pa.struct([("label", pa.string()), ("probability", pa.float64())])),
    }
    fields = []
    for name, kind in columns:
        if kind == "id":
            fields.append(pa.field(name, pa.int64() if id_type == "int" else pa.string()))
        else:
            fields.append(pa.field(name, types[kind]))
    return pa.schema(fields)


def normal_row(row: Mapping[str, Any], names: Sequence[str], id_type: str) -> dict[str, Any]:
    """``row`` with exactly the output columns, in order, and the id as the output keeps it."""
    out = {name: row.get(name) for name in names}
    ident = out.get("id")
    if ident is not None:
        # A remote service gives ids back as text: row numbers become numbers again.
        out["id"] = int(ident) if id_type == "int" else str(ident)
    return out


class _Writer:
    def __init__(self, path: Path, fmt: str, columns: Sequence[tuple[str, str]], id_type: str):
        self.path, self.fmt, self.id_type = path, fmt, id_type
        self.names = [name for name, _ in columns]
        self.pending: list[dict[str, Any]] = []
        self.rows = 0
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self.schema = arrow_schema(columns, id_type)
            self.parquet = pq.ParquetWriter(str(path), self.schema, compression="zstd")
            self.fh = None
        else:
            self.fh = open(path, "wb")  # noqa: SIM115 - closed in close()

    def add(self, row: Mapping[str, Any]) -> None:
        self.pending.append(normal_row(row, self.names, self.id_type))
        self.rows += 1
        if len(self.pending) >= ROW_GROUP if self.fmt == "parquet" else len(self.pending) >= 2048:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        if self.fmt == "parquet":
            import pyarrow as pa

            self.parquet.write_table(pa.Table.from_pylist(self.pending, schema=self.schema))
        else:
            assert self.fh is not None
            self.fh.write(
                b"".join(
                    json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                    for r in self.pending
                )
            )
        self.pending = []

    def close(self) -> None:
        self.flush()
        if self.fmt == "parquet":
            self.parquet.close()
            with open(self.path, "rb+") as fh:
                os.fsync(fh.fileno())
        else:
            assert self.fh is not None
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            if self.fmt == "parquet":
                self.parquet.close()
            elif self.fh is not None:
                self.fh.close()


def write_rows(
    target: str,
    local: Path,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    id_type: str,
) -> int:
    """Write ``rows`` as the output ``target`` (a path, or a URL with ``local`` its local copy),
    atomically; return how many rows were written."""
    fmt = output_format(target)
    if fmt == "parquet":
        need_pyarrow(f"Writing {target!r}")
    if target == str(local):
        check_output(local)
    temp = local.with_name(f".{local.name[:64]}.{secrets.token_hex(4)}.tmp")
    writer = None
    try:
        writer = _Writer(temp, fmt, columns, id_type)
        for row in rows:
            writer.add(row)
        writer.close()
        if target == str(local):
            check_output(local)  # nothing planted meanwhile (a link, a folder)
            os.replace(temp, local)
            fsync_dir(local.parent)
        else:
            _upload(temp, target)
    except OSError as exc:
        raise OutputError(
            f"Cannot write {target!r}: {explain_os_error(exc)}. The previous output (if any) "
            "is unchanged; the results are kept, so running the same command again writes it."
        ) from None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return writer.rows


def _upload(local: Path, url: str) -> None:
    import pyarrow.fs as pafs

    fs, path = pafs.FileSystem.from_uri(url)
    with open(local, "rb") as src, fs.open_output_stream(path) as dst:
        while chunk := src.read(8 << 20):
            dst.write(chunk)


def read_output(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every row of a batch output file (JSONL or Parquet), e.g. to check it in a test."""
    location = os.fspath(path)
    if output_format(location) == "parquet":
        need_pyarrow(f"Reading {location!r}")
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(location).to_pylist()
        return rows
    with open(location, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


__all__ = ["FORMATS", "arrow_schema", "output_format", "read_output", "write_rows"]

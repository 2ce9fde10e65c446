"""CSV batch input: long fields, and two inputs read at once."""

from __future__ import annotations

import threading
from pathlib import Path

from hypotez.batch.sources import CsvSource
from hypotez.datasets import readers


def _csv(path: Path, text: str) -> str:
    path.write_text(f"id,text\n1,{text}\n2,short\n3,{text}\n", encoding="utf-8")
    return str(path)


def test_two_csv_inputs_read_in_turn_in_one_thread(tmp_path: Path) -> None:
    """The csv field limit is process-wide, so it is lifted under a lock. A reader suspended
    between rows must not hold that lock: a second reader in the same thread (or a training
    file read in another) would wait for it forever."""
    long = "x" * 200_000  # over csv's default 128 KiB field limit
    first = CsvSource(_csv(tmp_path / "a.csv", long), "text", "id").items()
    second = CsvSource(_csv(tmp_path / "b.csv", long), "text", "id").items()
    got: list[tuple[object, int]] = []

    def interleave() -> None:
        for a, b in zip(first, second, strict=True):
            got.append((a.id, len(a.value or "")))
            got.append((b.id, len(b.value or "")))
        # A training file is read with the same lifted limit meanwhile.
        readers.parse_csv(f"prompt,completion\nq,{long}\n")

    worker = threading.Thread(target=interleave, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the second reader waited for the first one's lock"
    assert got == [
        ("1", 200_000),
        ("1", 200_000),
        ("2", 5),
        ("2", 5),
        ("3", 200_000),
        ("3", 200_000),
    ]

"""Fixtures for the batch tests: a plugin manager with the test backends, and input files."""

from __future__ import annotations

import csv
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypotez
import pytest

TEXTS = [
    "a good day",
    "a bad day",
    "just a day",
    "",
    "BOOM goes the parser",
    "good good good",
    "bad news, good news",
    "nothing to say",
]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def plugin_manager() -> Any:
    """The installed plugins plus the test backends (tests/batch/plugin.py)."""
    module = importlib.import_module("batch.plugin")
    return hypotez.make_plugin_manager(plugins=[module])


@pytest.fixture
def context(plugin_manager: Any, home: Path) -> Iterator[hypotez.Context]:
    with hypotez.Context(hypotez.Settings.load(), plugin_manager=plugin_manager) as ctx:
        yield ctx


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    """A CSV with an id column: r1..r8, one empty text and one that makes the analyzer fail."""
    return write_csv(
        tmp_path / "reviews.csv",
        [{"id": f"r{i}", "text": t, "stars": i % 5} for i, t in enumerate(TEXTS, start=1)],
    )

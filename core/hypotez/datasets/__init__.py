"""Training data: read it, turn stored dialogues into examples, write the upload file.

No network is needed for anything here. The usual flow (what :mod:`hypotez.training` does)::

    from hypotez import datasets, validation

    data = datasets.load(["train.csv", "more/"])            # files and folders
    data += datasets.from_dialogues(storage, sentiment=True)  # replies users liked
    report = validation.validate(data, trainer=session.trainer)  # the trainer's limits
    report.raise_for_errors()                                 # TrainingDataError if invalid
    upload = datasets.to_jsonl(data.examples())               # the exact bytes to upload

See :mod:`hypotez.datasets.readers` for the file formats and
:mod:`hypotez.datasets.dialogues` for how dialogues become examples.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from hypotez.datasets.dialogues import (
    SentimentFilter,
    dialogue_records,
    from_dialogues,
    make_filter,
)
from hypotez.datasets.jsonl import example_line, sha256, to_jsonl
from hypotez.datasets.readers import (
    SUFFIXES,
    parse_csv,
    parse_json,
    parse_jsonl,
    parse_text,
    read_csv,
    read_dir,
    read_json,
    read_jsonl,
    read_path,
)
from hypotez.datasets.records import Dataset, Record, concat, from_items, pair_to_chat

__all__ = [
    "SUFFIXES",
    "Dataset",
    "Record",
    "SentimentFilter",
    "concat",
    "dialogue_records",
    "example_line",
    "from_dialogues",
    "from_items",
    "load",
    "make_filter",
    "pair_to_chat",
    "parse_csv",
    "parse_json",
    "parse_jsonl",
    "parse_text",
    "read_csv",
    "read_dir",
    "read_json",
    "read_jsonl",
    "read_path",
    "sha256",
    "to_jsonl",
]


def load(paths: Iterable[str | os.PathLike[str]], *, system: str | None = None) -> Dataset:
    """Read files and folders, in the order given. ``system`` is the default system instruction
    for CSV rows and JSON pair objects that have none."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    return concat(read_path(p, system=system) for p in paths)

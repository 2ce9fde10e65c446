"""Raw training records with their origin, before and after validation.

A :class:`Record` is one would-be example exactly as read (a parsed JSON value, or a chat
example built from a CSV row or a dialogue) together with where it came from. Readers never
reject a single bad example: they keep it, with any read-time problem attached, so that
validation can report *every* problem with its file and line in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs
from hypotez.models import TrainingExample


@attrs.frozen
class Record:
    """One would-be training example and its origin.

    ``data`` is what was read (normally ``{"messages": [...]}``). ``problem`` is set when the
    reader could not even build that (invalid JSON on a JSONL line, a CSV row with the wrong
    number of fields); ``problem_code`` then names its kind for the report.
    """

    data: Any
    source: str
    line: int | None = None
    problem: str | None = None
    problem_code: str | None = None

    @property
    def location(self) -> str:
        """``train.csv:12`` or just the source when there is no line."""
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    def to_example(self) -> TrainingExample:
        """The validated example (call only after validation passed)."""
        return TrainingExample.from_dict(self.data)


def _records(items: Iterable[Record]) -> tuple[Record, ...]:
    return tuple(items)


def _strings(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _pairs(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple(items)


@attrs.frozen
class Dataset:
    """Records in a fixed order, the files they came from, and files that were skipped."""

    records: tuple[Record, ...] = attrs.field(converter=_records, factory=tuple)
    sources: tuple[str, ...] = attrs.field(converter=_strings, factory=tuple)
    #: (path, reason) for files in a folder that were not read.
    skipped: tuple[tuple[str, str], ...] = attrs.field(converter=_pairs, factory=tuple)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __add__(self, other: Dataset) -> Dataset:
        return Dataset(
            self.records + other.records, self.sources + other.sources, self.skipped + other.skipped
        )

    def examples(self) -> list[TrainingExample]:
        """Every record as a :class:`TrainingExample` (call only after validation passed)."""
        return [r.to_example() for r in self.records]


def concat(datasets: Iterable[Dataset]) -> Dataset:
    out = Dataset()
    for d in datasets:
        out = out + d
    return out


def from_items(items: Iterable[Any], source: str = "<data>") -> Dataset:
    """Records from in-memory data: examples, ``{"messages": ...}`` dicts, or pair dicts.

    Each item is numbered from 1 (its "line" in the report). Pair dicts
    (``{"prompt", "completion"}`` or ``{"user", "assistant"}``, optional ``"system"``) become
    chat examples, as in a CSV file.
    """
    records = []
    for number, item in enumerate(items, 1):
        if isinstance(item, TrainingExample):
            data: Any = item.to_dict()
        else:
            data = pair_to_chat(item) if isinstance(item, Mapping) else item
        records.append(Record(data, source, number))
    return Dataset(records, (source,))


PAIR_COLUMNS: tuple[tuple[str, str], ...] = (("prompt", "completion"), ("user", "assistant"))


def pair_to_chat(item: Mapping[str, Any]) -> Any:
    """``{"prompt": p, "completion": c, "system"?: s}`` -> a chat example; anything else as is."""
    if "messages" in item:
        return dict(item)
    for user_key, assistant_key in PAIR_COLUMNS:
        if user_key in item and assistant_key in item:
            messages = []
            if item.get("system"):
                messages.append({"role": "system", "content": item["system"]})
            messages.append({"role": "user", "content": item[user_key]})
            messages.append({"role": "assistant", "content": item[assistant_key]})
            return {"messages": messages}
    return dict(item)

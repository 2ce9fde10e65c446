"""Raw training records with their origin, before and after validation.

A :class:`Record` is one would-be example exactly as read (a parsed JSON value, or a chat
example built from a CSV row or a dialogue) together with where it came from. Readers never
reject a single bad example: they keep it, with any read-time problem attached, so that
validation can report *every* problem with its file and line in one go.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs
from hypotez.models import TrainingExample

#: Deeper than any example can be (an example is 4 levels: object, list, object, text).
MAX_DEPTH = 32
#: Python refuses to print integers with more digits than this (sys.get_int_max_str_digits()).
_MAX_INT_BITS = 14_000
_SURROGATE = re.compile("[\ud800-\udfff]")


def data_problem(data: Any) -> tuple[str, str] | None:
    """(code, message) if ``data`` holds something no example may hold, else None.

    That is: text that is not valid Unicode (a lone surrogate, which JSON can carry as a
    ``\\ud800`` escape but UTF-8 cannot encode), nesting deeper than :data:`MAX_DEPTH`, or an
    integer too large to print. Checked without recursion, so hostile data cannot crash it.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return (
                    "invalid_unicode",
                    f"holds text that is not valid Unicode (a lone surrogate "
                    f"\\u{ord(found.group()):04x} at character {found.start()}): it cannot be "
                    "saved as UTF-8; fix the escape sequence or the text it came from",
                )
        elif isinstance(value, dict | list | tuple):
            if depth > MAX_DEPTH:
                return ("invalid_json", f"is nested more than {MAX_DEPTH} levels deep")
            items = list(value.items()) if isinstance(value, dict) else value
            for item in items:
                if isinstance(value, dict):
                    stack.append((item[0], depth + 1))
                    stack.append((item[1], depth + 1))
                else:
                    stack.append((item, depth + 1))
        elif isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            return ("invalid_json", "holds a number with thousands of digits")
    return None


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

    @classmethod
    def checked(cls, data: Any, source: str, line: int | None = None) -> Record:
        """A record of ``data``, with a problem attached if it holds what no example may hold
        (see :func:`data_problem`): every reader builds its records so."""
        problem = data_problem(data)
        if problem is None:
            return cls(data, source, line)
        return cls(data, source, line, f"the example {problem[1]}", problem[0])

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
        records.append(Record.checked(data, source, number))
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

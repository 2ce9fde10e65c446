"""Fuzzing the training-data readers (issue 11): whatever a file or a string holds, reading and
validating it either works or raises TrainingDataError; nothing else escapes, and whatever
passes validation serialises to the exact UTF-8 JSONL that would be uploaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypotez import TrainingDataError, datasets, validation
from hypotez.training import load_assistant_catalog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: Any code point, lone surrogates included (JSON can carry them as \ud800 escapes).
any_text = st.text(st.characters(codec=None), max_size=30)
#: Stands for an integer literal of thousands of digits in JSON text (json.dumps cannot write
#: one: Python refuses to print it).
HUGE = "<huge integer>"
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.just(HUGE)
    | st.floats()
    | any_text
    | st.sampled_from(["system", "user", "assistant", "messages", "content"])
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["messages", "role", "content", "prompt", "completion", "system"])
            | any_text,
            inner,
            max_size=4,
        )
    ),
    max_leaves=25,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant"]) | values, "content": any_text}
    ),
    min_size=1,
    max_size=4,
)
examples = st.fixed_dictionaries({"messages": messages}) | values
deep = st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)


def dumps(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only).replace(json.dumps(HUGE), "9" * 5000)


def in_memory(value: Any) -> Any:
    """``value`` as a Python caller could pass it: HUGE becomes a real huge integer."""
    if value == HUGE:
        return 10**5000
    if isinstance(value, list):
        return [in_memory(v) for v in value]
    if isinstance(value, dict):
        return {k: in_memory(v) for k, v in value.items()}
    return value


def check(read: Any) -> None:
    """Read, validate, and serialise what passes: only TrainingDataError may escape."""
    try:
        data = read()
    except TrainingDataError as exc:
        assert str(exc)
        return
    report = validation.validate(data, min_examples=1)
    report.render()
    json.dumps(report.to_dict())
    if report.ok:
        upload = datasets.to_jsonl(data.examples())
        lines = upload.decode("utf-8").split("\n")
        assert lines[-1] == ""
        assert [json.loads(line) for line in lines[:-1]] == [e.to_dict() for e in data.examples()]


@FUZZ
@given(st.lists(st.tuples(examples, st.booleans()) | deep | st.just("9" * 5000), max_size=6))
def test_jsonl_text(lines: list[Any]) -> None:
    text = "\n".join(line if isinstance(line, str) else dumps(*line) for line in lines)
    check(lambda: datasets.parse_jsonl(text, "fuzz.jsonl"))
    check(lambda: datasets.parse_text(text, "fuzz"))


@FUZZ
@given(st.lists(examples, max_size=5) | values, st.booleans(), st.sampled_from(["list", "object"]))
def test_json_text(items: Any, ascii_only: bool, shape: str) -> None:
    doc = {"examples": items} if shape == "object" and isinstance(items, list) else items
    text = dumps(doc, ascii_only)
    check(lambda: datasets.parse_json(text, "fuzz.json", system="Be brief."))
    check(lambda: datasets.parse_text(text, "fuzz"))


@FUZZ
@given(
    st.lists(st.lists(any_text, min_size=1, max_size=4), max_size=5),
    st.sampled_from([",", ";", "\t"]),
)
def test_csv_text(rows: list[list[str]], delimiter: str) -> None:
    head = delimiter.join(["prompt", "completion", "system"])
    body = "\n".join(delimiter.join(row) for row in rows)
    check(lambda: datasets.parse_csv(f"{head}\n{body}\n", "fuzz.csv"))
    check(lambda: datasets.parse_text(f"{head}\n{body}\n", "fuzz"))


@FUZZ
@given(st.lists(examples, max_size=5))
def test_in_memory_items(items: list[Any]) -> None:
    check(lambda: datasets.from_items(in_memory(items)))


@FUZZ
@given(
    st.binary(max_size=300)
    | st.tuples(st.lists(examples, max_size=4), st.booleans()).map(
        lambda v: dumps(*v).encode("utf-8", "surrogatepass")
    ),
    st.sampled_from([".jsonl", ".json", ".csv", ".tsv"]),
)
def test_files_of_any_bytes(tmp_path: Path, raw: bytes, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    path.write_bytes(raw)
    check(lambda: datasets.load([path]))


@FUZZ
@given(
    st.binary(max_size=200)
    | st.tuples(st.lists(values, max_size=4) | values, st.booleans()).map(
        lambda v: dumps(*v).encode("utf-8", "surrogatepass")
    )
    | deep.map(str.encode)
)
def test_assistant_catalogs(tmp_path: Path, raw: bytes) -> None:
    from hypotez import InputError

    path = tmp_path / "catalog.json"
    path.write_bytes(raw)
    try:
        catalog = load_assistant_catalog(path)
    except InputError as exc:
        assert "catalog.json" in str(exc)
        return
    for assistant in catalog:  # what is accepted can be stored and shown
        json.dumps(assistant.to_dict(), ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("depth", [10, 1_000, 200_000])
def test_nesting_at_any_depth(depth: int) -> None:
    check(lambda: datasets.parse_text("[" * depth + "]" * depth))
    check(lambda: datasets.parse_jsonl('{"messages":' + "[" * depth + "]" * depth + "}"))

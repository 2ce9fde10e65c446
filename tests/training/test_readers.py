"""Reading CSV, JSONL, JSON and folders: what a user's files really look like."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypotez import TrainingDataError, datasets
from hypotez.datasets import read_csv, read_dir, read_json, read_jsonl

from .helpers import chat, write_jsonl


def messages(record: datasets.Record) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in record.data["messages"]]


def test_csv_with_bom_quotes_newlines_and_russian(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    # Written as Excel's "CSV UTF-8" does: BOM, CRLF line ends, quoted fields.
    path.write_bytes(
        "\ufeffprompt,completion,system\r\n"
        '"Привет, как дела?","Хорошо, спасибо! Он сказал: ""да""",Отвечай кратко\r\n'
        '"Line one\r\nline two",Two lines,\r\n'
        "plain,text,\r\n".encode()
    )
    data = read_csv(path)
    assert [r.line for r in data] == [2, 3, 5]  # the multi-line row starts on line 3
    assert messages(data.records[0]) == [
        ("system", "Отвечай кратко"),
        ("user", "Привет, как дела?"),
        ("assistant", 'Хорошо, спасибо! Он сказал: "да"'),
    ]
    assert messages(data.records[1]) == [
        ("user", "Line one\r\nline two"),
        ("assistant", "Two lines"),
    ]
    assert data.records[2].location == f"{path}:5"


def test_csv_user_assistant_columns_semicolons_and_default_system(tmp_path: Path) -> None:
    path = tmp_path / "ru.csv"
    path.write_text("User;Assistant\nвопрос;ответ\n\n", encoding="utf-8")
    data = read_csv(path, system="Ты помощник")
    assert len(data) == 1
    assert messages(data.records[0]) == [
        ("system", "Ты помощник"),
        ("user", "вопрос"),
        ("assistant", "ответ"),
    ]


def test_csv_missing_columns_names_file_line_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("question,answer\na,b\n", encoding="utf-8")
    with pytest.raises(TrainingDataError) as err:
        read_csv(path)
    text = str(err.value)
    assert f"{path}:1" in text and "'question'" in text and "'prompt' and 'completion'" in text


def test_csv_bad_rows_are_kept_for_the_report_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(
        'prompt,completion\nok,fine\ntoo,many,fields\n"multi\nline",x\nshort\n', encoding="utf-8"
    )
    data = read_csv(path)
    bad = [(r.line, r.problem_code) for r in data if r.problem]
    assert bad == [(3, "bad_row"), (6, "bad_row")]
    assert "3 fields but the header has 2" in data.records[1].problem


def test_csv_not_utf8_says_how_to_fix(tmp_path: Path) -> None:
    path = tmp_path / "cp1251.csv"
    path.write_bytes("prompt,completion\nпривет,мир\n".encode("cp1251"))
    with pytest.raises(
        TrainingDataError, match=r"cp1251.csv:2: the file is not UTF-8.*Save it as UTF-8"
    ):
        read_csv(path)


def test_empty_csv_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="empty"):
        read_csv(tmp_path / "empty.csv")
    with pytest.raises(TrainingDataError, match="does not exist"):
        datasets.read_path(tmp_path / "nope.csv")
    with pytest.raises(TrainingDataError, match="suffix"):
        (tmp_path / "x.txt").write_text("hi", encoding="utf-8")
        datasets.read_path(tmp_path / "x.txt")


def test_jsonl_keeps_every_line_with_its_number(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [chat("a", "b"), "", "{broken", chat("с", "д")])
    data = read_jsonl(path)
    assert [(r.line, r.problem_code) for r in data] == [(1, None), (3, "invalid_json"), (4, None)]
    assert messages(data.records[2]) == [("user", "с"), ("assistant", "д")]


def test_jsonl_with_u2028_inside_a_string_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sep.jsonl"
    path.write_text(json.dumps(chat("a\u2028b", "c"), ensure_ascii=False) + "\n", encoding="utf-8")
    [record] = read_jsonl(path)
    assert record.data["messages"][0]["content"] == "a\u2028b"


def test_json_list_reports_the_line_each_item_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    items = [
        chat("a", "b"),
        {"prompt": "p", "completion": "c", "system": "s"},
        {"user": "u", "assistant": "v"},
    ]
    path.write_text(json.dumps(items, indent=2, ensure_ascii=False), encoding="utf-8")
    data = read_json(path, system="default")
    starts = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if line == "  {"]
    assert [r.line for r in data] == starts
    assert messages(data.records[1]) == [("system", "s"), ("user", "p"), ("assistant", "c")]
    assert messages(data.records[2]) == [("system", "default"), ("user", "u"), ("assistant", "v")]
    assert messages(data.records[0]) == [
        ("user", "a"),
        ("assistant", "b"),
    ]  # chat examples as given


def test_json_examples_object_and_single_example(tmp_path: Path) -> None:
    doc = tmp_path / "doc.json"
    doc.write_text(
        '{"name": "set", "other": [1, {"x": 2}],\n "examples": [\n  {"prompt": "p", "completion": "c"},\n\n  5\n]}',
        encoding="utf-8",
    )
    data = read_json(doc)
    assert [r.line for r in data] == [3, 5]
    assert data.records[1].data == 5  # kept, so validation reports it with its line
    one = tmp_path / "one.json"
    one.write_text(json.dumps(chat("x", "y")), encoding="utf-8")
    assert len(read_json(one)) == 1


def test_json_wrong_shape_and_invalid_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(TrainingDataError, match="'examples' list"):
        read_json(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("[\n{},\n{oops}\n]", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"broken.json:3: invalid JSON"):
        read_json(broken)


def test_folder_mixes_formats_in_sorted_order_and_lists_skipped_files(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "b.csv").write_text("prompt,completion\ncsv q,csv a\n", encoding="utf-8")
    write_jsonl(root / "a.jsonl", [chat("jsonl q", "jsonl a")])
    (root / "sub" / "c.json").write_text(
        json.dumps([{"user": "json q", "assistant": "json a"}]), encoding="utf-8"
    )
    (root / "notes.txt").write_text("not data", encoding="utf-8")
    (root / ".hidden.csv").write_text("garbage", encoding="utf-8")
    data = read_dir(root)
    assert [r.data["messages"][0]["content"] for r in data] == ["jsonl q", "csv q", "json q"]
    assert [Path(s).name for s in data.sources] == ["a.jsonl", "b.csv", "c.json"]
    assert [Path(p).name for p, _ in data.skipped] == ["notes.txt"]
    assert datasets.load([root]).records == data.records


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "readme.md").write_text("x", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="holds no training data"):
        read_dir(tmp_path)


def test_jsonl_bytes_are_deterministic_compact_utf8(tmp_path: Path) -> None:
    data = datasets.from_items([chat("Привет", "Мир", "sys"), chat("a", 'b "q"\n')])
    first = datasets.to_jsonl(data.examples())
    assert first == datasets.to_jsonl(
        datasets.from_items([chat("Привет", "Мир", "sys"), chat("a", 'b "q"\n')]).examples()
    )
    lines = first.decode("utf-8").split("\n")
    assert (
        lines[0]
        == '{"messages":[{"role":"system","content":"sys"},{"role":"user","content":"Привет"},{"role":"assistant","content":"Мир"}]}'
    )
    assert (
        lines[1]
        == '{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b \\"q\\"\\n"}]}'
    )
    assert lines[2] == "" and first.endswith(b"\n")

"""Reading CSV, JSONL, JSON and folders: what a user's files really look like."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypotez import TrainingDataError, datasets
from hypotez.datasets import read_csv, read_dir, read_json, read_jsonl

from .helpers import chat, openai_trainer, write_jsonl


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


# -- hostile files: every problem is reported on its record or as a TrainingDataError ----------
GOOD = [json.dumps(chat(f"q{i}", f"a{i}"), ensure_ascii=False) for i in range(10)]
HOSTILE_LINES = {
    "huge integer": '{"messages": [{"role": "user", "content": ' + "9" * 5000 + "}]}",
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "deep but parseable": '{"messages": ' + "[" * 500 + "]" * 500 + "}",
    "lone surrogate": '{"messages": [{"role": "user", "content": "\\ud800"}, '
    '{"role": "assistant", "content": "ok"}]}',
    "surrogate in a key": '{"messages": [{"role": "user", "content": "q", "\\udfff": 1}]}',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_LINES))
def test_a_hostile_jsonl_line_is_reported_on_its_line_and_never_uploaded(
    tmp_path: Path, kind: str
) -> None:
    from hypotez import validation

    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join([*GOOD[:5], HOSTILE_LINES[kind], *GOOD[5:]]) + "\n")
    data = read_jsonl(path)
    assert len(data) == 11
    bad = data.records[5]
    assert bad.line == 6 and bad.problem is not None
    report = validation.validate(data, trainer=openai_trainer())
    assert not report.ok
    assert [e.line for e in report.errors] == [6]
    assert report.n_examples == 11 and len(report.token_counts) == 10


@pytest.mark.parametrize("kind", ["huge integer", "deep nesting"])
def test_a_hostile_json_file_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(f"[{HOSTILE_LINES[kind]}]")
    with pytest.raises(TrainingDataError, match=r"hostile\.json:1: invalid JSON"):
        read_json(path)
    with pytest.raises(TrainingDataError, match="invalid JSON"):
        datasets.parse_text(f"[{HOSTILE_LINES[kind]}]")


def test_lone_surrogates_from_text_items_and_dialogues_are_reported_not_encoded() -> None:
    from hypotez import DialogueInfo, Turn, validation
    from hypotez.models import Dialogue

    items = [*[chat(f"q{i}", f"a{i}") for i in range(10)], chat("q", "half \ud83d")]
    dialogue = Dialogue(DialogueInfo("d"), [Turn("user", "hi"), Turn("assistant", "\udc00")])
    for data in (
        datasets.from_items(items),
        datasets.parse_text("\n".join(json.dumps(i) for i in items)),  # escaped in JSON
        datasets.parse_text("prompt,completion\n" + "q,a\n" * 10 + "q,\ud800\n"),  # raw in text
        datasets.from_dialogues([dialogue]),
    ):
        report = validation.validate(data, min_examples=1)
        assert [e.code for e in report.errors] == ["invalid_unicode"], report.render()
        assert "lone surrogate" in report.render()


def test_a_multi_megabyte_message_is_counted_and_reported_as_too_long(tmp_path: Path) -> None:
    from hypotez import validation

    huge = chat("word " * 1_000_000, "ok")  # 5 MB: over the tokenizer's one-call limit
    path = write_jsonl(tmp_path / "big.jsonl", [*[chat(f"q{i}", f"a{i}") for i in range(10)], huge])
    report = validation.validate(read_jsonl(path), trainer=openai_trainer())
    assert [e.code for e in report.errors] == ["too_long"]
    assert report.token_counts[-1] > 1_000_000


def test_a_csv_field_longer_than_128_kib_is_read_and_the_rows_after_it_too(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.csv"
    path.write_text("prompt,completion\n" + f'"{"x" * 300_000}",a\n' + "q2,a2\n", encoding="utf-8")
    data = read_csv(path)
    assert [r.problem for r in data] == [None, None]
    assert len(data.records[0].data["messages"][0]["content"]) == 300_000
    assert messages(data.records[1]) == [("user", "q2"), ("assistant", "a2")]


@pytest.mark.timeout(30)
def test_a_fifo_named_like_data_is_refused_without_waiting(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pipe.jsonl")
    with pytest.raises(TrainingDataError, match=r"pipe\.jsonl' is a FIFO"):
        read_jsonl(tmp_path / "pipe.jsonl")
    with pytest.raises(TrainingDataError, match="FIFO"):
        read_dir(tmp_path)


def test_the_cli_reports_hostile_data_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    exe = str(Path(sys.executable).with_name("hypotez"))
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join([*GOOD, *HOSTILE_LINES.values()]) + "\n")
    result = subprocess.run(
        [exe, "train", "validate", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for line in range(11, 16):
        assert f"hostile.jsonl:{line}:" in result.stdout
    deep = tmp_path / "deep.json"
    deep.write_text(HOSTILE_LINES["deep nesting"])
    result = subprocess.run(
        [exe, "train", "prepare", str(deep)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and "nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr


# -- the assistants catalog (`hypotez assistants import`, OpenAIModel(catalog=...)) ---------------
@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('[{"id": "a", "model": ' + "9" * 5000 + "}]", "thousands of digits"),
        ('[{"id": "a", "instructions": "\\ud800"}]', "not valid Unicode"),
        ('[{"id": "a", "instructions": {"text": "x"}}]', "'instructions' must be text"),
        ('[{"id": "a", "name": ["x"]}]', "'name' must be text"),
        ('[{"id": "a", "deep": ' + "[" * 200 + "]" * 200 + "}]", "nested more than"),
        ("\ufeff\xff", "not valid JSON|invalid JSON|not UTF-8"),
    ],
)
def test_a_hostile_assistant_catalog_is_one_clear_error(
    tmp_path: Path, content: str, words: str
) -> None:
    from hypotez import InputError
    from hypotez.training import load_assistant_catalog

    path = tmp_path / "catalog.json"
    path.write_bytes(content.encode("utf-8", "surrogatepass"))
    with pytest.raises(InputError, match=words) as caught:
        load_assistant_catalog(path)
    assert "catalog.json" in str(caught.value)


@pytest.mark.timeout(30)
def test_a_catalog_that_is_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    import os

    from hypotez import InputError
    from hypotez.training import load_assistant_catalog

    os.mkfifo(tmp_path / "catalog.json")
    with pytest.raises(InputError, match="FIFO"):
        load_assistant_catalog(tmp_path / "catalog.json")


def test_assistants_import_of_hostile_json_exits_2_without_a_traceback(
    tmp_path: Path, home: Path
) -> None:
    import subprocess
    import sys

    path = tmp_path / "catalog.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hypotez")), "assistants", "import", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "nested too deeply" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_path_with_a_nul_is_a_clear_error() -> None:
    from hypotez import InputError
    from hypotez.training import load_assistant_catalog

    with pytest.raises(TrainingDataError, match="NUL character"):
        datasets.load(["a\x00b.jsonl"])
    with pytest.raises(InputError, match="NUL character"):
        load_assistant_catalog("catalog\x00.json")

"""Batch jobs on the local engine, in this process: what a user checks in the output file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import hypotez
import pytest
from batch.conftest import TEXTS, write_csv
from hypotez import batch
from hypotez.batch.state import State

COLUMNS = ["id", "label", "score", "backend", "model", "elapsed_ms", "error"]


def run(context: Any, input: Path, output: Path, **kwargs: Any) -> batch.BatchSummary:
    kwargs.setdefault("analyzer", "words")
    return batch.run("sentiment", input, output, context=context, progress=False, **kwargs)


def test_sentiment_rows_in_input_order_with_ids_and_error_rows(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    summary = run(context, reviews, out)
    assert (summary.status, summary.total, summary.done, summary.failed) == ("completed", 8, 6, 2)
    rows = batch.read_output(out)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(1, 9)]
    assert all(list(r) == COLUMNS for r in rows)
    by_id = {r["id"]: r for r in rows}
    assert (by_id["r1"]["label"], by_id["r2"]["label"], by_id["r3"]["label"]) == (
        "positive",
        "negative",
        "neutral",
    )
    assert by_id["r1"]["backend"] == "words" and by_id["r1"]["error"] is None
    assert by_id["r4"]["error"] == "the 'text' value is empty" and by_id["r4"]["label"] is None
    assert "cannot read 'BOOM goes the parser'" in by_id["r5"]["error"]
    # The bad row did not take its batch down: its neighbours have results.
    assert by_id["r6"]["label"] == "positive" and by_id["r6"]["error"] is None
    assert summary.errors == 2 and "completed" in str(summary)


def test_rerun_skips_finished_rows_and_retries_only_errors(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    first = run(context, reviews, out)
    before = batch.read_output(out)
    again = run(context, reviews, out)
    assert (again.done, again.failed, again.skipped) == (0, 2, 6)  # only the 2 error rows redone
    kept = run(context, reviews, out, retry_errors=False)
    assert (kept.done, kept.failed, kept.skipped) == (0, 0, 8)
    assert first.job_id == again.job_id == kept.job_id
    after = batch.read_output(out)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_ms"} for r in rows]  # noqa: E731
    assert strip(after) == strip(before)


def test_rows_added_to_the_input_are_the_only_work_of_a_rerun(context: Any, tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("good\nbad\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run(context, source, out)
    with source.open("a", encoding="utf-8") as fh:
        fh.write("so good\nmeh\n")
    summary = run(context, source, out)
    assert (summary.done, summary.skipped, summary.total) == (2, 2, 4)
    rows = batch.read_output(out)
    assert [(r["id"], r["label"]) for r in rows] == [
        (1, "positive"),
        (2, "negative"),
        (3, "positive"),
        (4, "neutral"),
    ]


def test_jsonl_and_parquet_outputs_hold_the_same_rows(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    run(context, reviews, tmp_path / "a.jsonl")
    run(context, reviews, tmp_path / "b.parquet")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_ms"} for r in rows]  # noqa: E731
    assert strip(batch.read_output(tmp_path / "a.jsonl")) == strip(
        batch.read_output(tmp_path / "b.parquet")
    )


def test_another_job_on_the_same_output_is_refused_until_restart(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run(context, reviews, out)
    with pytest.raises(hypotez.InputError, match=r"belongs to another job.*--restart"):
        run(context, reviews, out, analyzer="remote-words")
    summary = run(context, reviews, out, analyzer="remote-words", restart=True)
    assert summary.skipped == 0 and summary.done == 6
    assert {r["backend"] for r in batch.read_output(out) if r["error"] is None} == {"remote-words"}


def test_an_existing_file_that_is_not_a_job_output_is_left_alone(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    out = tmp_path / "precious.jsonl"
    out.write_text('{"mine": true}\n', encoding="utf-8")
    with pytest.raises(hypotez.InputError, match="was not written by a hypotez batch job"):
        run(context, reviews, out)
    assert out.read_text(encoding="utf-8") == '{"mine": true}\n'


def test_a_torn_journal_line_from_a_crash_is_skipped(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    run(context, reviews, out)
    state = State(out)
    journal = state.journals()[0]
    lines = journal.read_bytes().splitlines(keepends=True)
    # As if the process died while writing its last result: a half line, no newline.
    journal.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    out.unlink()
    kept_ok = sum(json.loads(line)["error"] is None for line in lines[:3])
    summary = run(context, reviews, out)
    assert summary.status == "completed" and summary.skipped == kept_ok
    assert [r["id"] for r in batch.read_output(out)] == [f"r{i}" for i in range(1, 9)]


def test_a_second_process_on_the_same_output_is_told_who_holds_it(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    with State(out).locked(), pytest.raises(batch.BatchBusyError, match=r"process \d+"):
        run(context, reviews, out)


def test_duplicate_ids_are_refused_before_any_work(context: Any, tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "dup.csv", [{"id": "x", "text": "good"}, {"id": "x", "text": "bad"}]
    )
    with pytest.raises(batch.SourceError, match=r"'x' appears more than once.*row 2"):
        run(context, source, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_row_numbers_are_ids_when_the_file_has_no_id_column(context: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"text": "good"}\nnot json\n\n{"body": "no text column"}\n{"text": "bad"}\n',
        encoding="utf-8",
    )
    run(context, source, tmp_path / "out.parquet")
    rows = batch.read_output(tmp_path / "out.parquet")
    assert [r["id"] for r in rows] == [1, 2, 3, 4]  # the blank line is not a row
    assert rows[0]["label"] == "positive" and rows[3]["label"] == "negative"
    assert "row 2 is not valid JSON" in rows[1]["error"]
    assert rows[2]["error"] == "the row has no 'text' value"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("in.csv", "id,body\n1,hello\n", r"has no 'text' column \(its columns: 'id', 'body'\)"),
        ("in.xlsx", "x", "Cannot tell the format"),
        ("missing.csv", None, "does not exist"),
    ],
)
def test_unusable_inputs_name_the_input_and_what_to_do(
    context: Any, tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(batch.SourceError, match=message):
        run(context, path, tmp_path / "out.jsonl")


def test_an_unknown_engine_option_is_refused_with_the_known_ones(
    context: Any, reviews: Path, tmp_path: Path
) -> None:
    with pytest.raises(hypotez.InputError, match=r"no option 'adress'.*workers"):
        run(context, reviews, tmp_path / "o.jsonl", options={"adress": "x"})


def test_a_pool_of_worker_processes_gives_the_same_results(context: Any, tmp_path: Path) -> None:
    texts = [f"{'good' if i % 3 == 0 else 'bad' if i % 3 == 1 else 'so-so'} {i}" for i in range(60)]
    source = write_csv(tmp_path / "many.csv", [{"text": t} for t in texts])
    one = run(context, source, tmp_path / "one.jsonl", options={"workers": 1, "batch_size": 5})
    two = run(context, source, tmp_path / "two.jsonl", options={"workers": 2, "batch_size": 5})
    assert one.status == two.status == "completed"
    pool = context.get("batch", "local").worker_pids
    assert len(pool) == 1 and pool[0] != os.getpid()
    a, b = batch.read_output(tmp_path / "one.jsonl"), batch.read_output(tmp_path / "two.jsonl")
    assert [(r["id"], r["label"], r["score"]) for r in a] == [
        (r["id"], r["label"], r["score"]) for r in b
    ]


def test_a_network_backend_gets_many_calls_in_flight(context: Any, tmp_path: Path) -> None:
    from batch.plugin import RemoteWords

    source = write_csv(tmp_path / "many.csv", [{"text": f"good {i}"} for i in range(40)])
    RemoteWords.peak = 0
    summary = run(
        context,
        source,
        tmp_path / "out.jsonl",
        analyzer="remote-words",
        options={"concurrency": 4, "batch_size": 2},
    )
    assert summary.done == 40
    assert RemoteWords.peak == 4


def test_every_stored_turn_can_be_scored_again(context: Any, tmp_path: Path) -> None:
    with hypotez.Session(context=context, chat="batch-echo", sentiment=False) as session:
        session.ask("a good question")
        first = session.dialogue_id
        session.new_dialogue()
        session.ask("a bad one")
    run(context, "dialogues:", tmp_path / "turns.jsonl")
    rows = {r["id"]: r for r in batch.read_output(tmp_path / "turns.jsonl")}
    assert len(rows) == 4
    assert rows[f"{first}:1"]["label"] == "positive"
    assert rows[f"{first}:2"]["label"] == "positive"  # "echo: a good question"


def test_describe_a_folder_of_images_with_unreadable_ones_as_errors(
    context: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
    (folder / "a.gif").write_bytes(gif)
    (folder / "sub" / "b.gif").write_bytes(gif * 2)
    (folder / "broken.png").write_bytes(b"not a png at all")
    summary = batch.run(
        "describe", folder, tmp_path / "d.parquet", vision="sizes", context=context, progress=False
    )
    assert (summary.done, summary.failed) == (2, 1)
    rows = batch.read_output(tmp_path / "d.parquet")
    assert [r["id"] for r in rows] == ["a.gif", "broken.png", "sub/b.gif"]
    assert rows[0]["text"] == f"an image of {len(gif)} bytes"
    assert rows[0]["labels"] == [{"label": "blob", "probability": 0.5}]
    assert "broken.png" in rows[1]["error"]


def test_ask_each_prompt_alone_and_keep_the_dialogues(context: Any, tmp_path: Path) -> None:
    source = tmp_path / "prompts.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(["hi", "bye"])),
        encoding="utf-8",
    )
    summary = batch.run(
        "ask",
        source,
        tmp_path / "answers.jsonl",
        chat="batch-echo",
        store=True,
        system="Be brief.",
        context=context,
        progress=False,
    )
    assert summary.done == 2
    rows = batch.read_output(tmp_path / "answers.jsonl")
    assert [r["text"] for r in rows] == ["echo: hi", "echo: bye"]
    assert rows[0]["prompt_tokens"] == 3 and rows[0]["finish_reason"] == "stop"
    storage = context.get("storage")
    dialogue = storage.load_dialogue(rows[1]["dialogue_id"])
    assert dialogue.info.system == "Be brief."
    assert [t.content for t in dialogue.turns] == ["bye", "echo: bye"]


def test_jobs_are_recorded_and_listed(context: Any, reviews: Path, tmp_path: Path) -> None:
    summary = run(context, reviews, tmp_path / "out.jsonl")
    [record] = batch.list_jobs(context=context)
    assert record["id"] == summary.job_id
    assert (record["status"], record["total"], record["done"], record["errors"]) == (
        "completed",
        8,
        6,
        2,
    )
    status = batch.status(tmp_path / "out.jsonl", context=context)
    assert status["id"] == summary.job_id and status["running"] is False
    assert TEXTS  # the fixture's rows

"""``hypotez storage copy`` and ``hypotez dialogues`` on the conformance storages (file and S3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypotez import Assistant, DialogueInfo, JobRecord, Sentiment, Storage, Turn
from hypotez.cli import main
from hypotez.conformance import StorageFactory


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


def populate(storage: Storage) -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    for n in range(4):
        storage.create_dialogue(
            DialogueInfo(
                f"chat-{n}",
                created=start + timedelta(minutes=n),
                title=f"Диалог {n} 🌏",
                system="Будь краток.",
            )
        )
        for m in range(n * 3):
            storage.append_turns(
                f"chat-{n}",
                [
                    Turn("user", f"Вопрос {m} — ü 你好"),
                    Turn(
                        "assistant",
                        f"Ответ {m}",
                        model="m",
                        sentiment=Sentiment("positive", 0.4, "vader"),
                    ),
                ],
            )
    storage.save_job(JobRecord("ftjob-1", description="первая", created=start, status="succeeded"))
    storage.save_job(JobRecord("ftjob-2", description="second", created=start + timedelta(days=1)))
    storage.save_assistant(Assistant("helper", "Помощник", instructions="Отвечай по-русски."))
    # An app's own collection, whose records carry no "id" field: copied all the same.
    storage.put_record("app.notes", "note-1", {"text": "заметка 😀"})


def snapshot(storage: Storage) -> dict[str, Any]:
    return {
        "dialogues": [storage.load_dialogue(i.id) for i in storage.list_dialogues()],
        "jobs": storage.list_jobs(),
        "assistants": storage.list_assistants(),
        "notes": {
            r: storage.get_record("app.notes", r) for r in storage.list_record_ids("app.notes")
        },
    }


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, s3_factory: StorageFactory) -> StorageFactory:
    for (
        name,
        value,
    ) in s3_factory.env.items():  # the CLI reads the AWS_* variables, as a user's shell
        monkeypatch.setenv(name, value)
    return s3_factory


@pytest.mark.s3
def test_copy_file_to_s3_and_back_loses_nothing_and_is_idempotent(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    file_factory: StorageFactory,
    aws_env: StorageFactory,
) -> None:
    source = file_factory()
    populate(source)
    original = snapshot(source)
    back = StorageFactory((tmp_path / "back").as_uri())

    code, out, _ = run_cli(capsys, "storage", "copy", file_factory.url, aws_env.url)
    assert code == 0
    assert "Dialogues: 4 copied, 0 completed, 0 already there, 0 refused" in out
    assert "Records jobs: 2 copied" in out and "Records assistants: 1 copied" in out
    assert "Records app.notes: 1 copied" in out  # found without --collection
    assert snapshot(aws_env()) == original

    code, out, _ = run_cli(capsys, "storage", "copy", aws_env.url, back.url)
    assert code == 0
    assert snapshot(back()) == original  # file -> s3 -> file is the identity

    code, out, _ = run_cli(capsys, "storage", "copy", "--json", file_factory.url, aws_env.url)
    assert code == 0  # again: nothing to do, nothing duplicated
    report = json.loads(out)
    assert report["dialogues"] == {"identical": 4} and report["turns_written"] == 0
    assert snapshot(aws_env()) == original


@pytest.mark.s3
def test_copy_completes_an_interrupted_copy_and_refuses_to_overwrite(
    capsys: pytest.CaptureFixture[str], file_factory: StorageFactory, aws_env: StorageFactory
) -> None:
    source = file_factory()
    populate(source)
    target = aws_env()
    # An interrupted earlier copy: the header and the first turns only.
    partial = source.load_dialogue("chat-3")
    target.create_dialogue(partial.info)
    target.append_turns("chat-3", partial.turns[:4])
    # A different dialogue that happens to have the same id.
    target.create_dialogue(DialogueInfo("chat-2", title="someone else's"))
    target.append_turns("chat-2", [Turn("user", "do not lose me")])
    target.save_job(JobRecord("ftjob-2", description="a different job"))

    code, out, err = run_cli(capsys, "storage", "copy", file_factory.url, aws_env.url)
    assert code == 1
    assert "2 copied, 1 completed, 0 already there, 1 refused" in out
    assert "'chat-2' already exists" in err and "ftjob-2" in err
    assert target.load_dialogue("chat-3") == partial
    kept = target.load_dialogue("chat-2")
    assert kept.info.title == "someone else's" and [t.content for t in kept.turns] == [
        "do not lose me"
    ]
    assert target.get_record("jobs", "ftjob-2")["description"] == "a different job"


@pytest.mark.s3
def test_dialogue_commands_work_on_s3(
    capsys: pytest.CaptureFixture[str], aws_env: StorageFactory
) -> None:
    populate(aws_env())
    code, out, _ = run_cli(capsys, "--storage", aws_env.url, "dialogues", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        "chat-0",
        "chat-1",
        "chat-2",
        "chat-3",
    ]
    code, out, _ = run_cli(capsys, "--storage", aws_env.url, "dialogues", "show", "chat-1")
    assert code == 0 and "Вопрос 2 — ü 你好" in out and "positive" in out
    code, out, _ = run_cli(
        capsys, "--storage", aws_env.url, "dialogues", "export", "chat-1", "--format", "jsonl"
    )
    assert json.loads(out)["messages"][0] == {"role": "system", "content": "Будь краток."}
    code, _, err = run_cli(capsys, "--storage", aws_env.url, "dialogues", "show", "../etc")
    assert code == 2 and "Invalid dialogue id" in err


def test_copy_to_itself_is_refused(
    capsys: pytest.CaptureFixture[str], file_factory: StorageFactory
) -> None:
    code, _, err = run_cli(capsys, "storage", "copy", file_factory.url, file_factory.url)
    assert code == 2 and "same storage" in err


def test_copy_from_a_storage_that_cannot_list_collections_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, file_factory: StorageFactory
) -> None:
    from hypotez.transfer import copy_storage
    from hypotez_files.storage import FileStorage

    class OldPlugin(FileStorage):  # as if it had never overridden the new listing methods
        list_collections = Storage.list_collections
        list_record_ids = Storage.list_record_ids

    source = OldPlugin(tmp_path / "old")
    populate(source)
    target = file_factory()
    report = copy_storage(source, target)
    notes = " ".join(report.notes)
    assert "cannot list its record collections" in notes and "--collection" in notes
    assert set(report.records) == {"assistants", "jobs"}
    assert target.list_record_ids("app.notes") == []  # not found, and the user was told
    # Named explicitly, the collection is read, but its records have no "id" field to name them
    # by: reported as not copied (exit code 1 in the CLI), never dropped silently.
    report = copy_storage(source, target, ["app.notes"])
    assert report.records["app.notes"] == {"unreadable": 1} and not report.complete
    assert "1 app.notes record(s)" in " ".join(p.render() for p in report.problems)
    source.put_record("app.notes", "note-2", {"id": "note-2", "text": "with an id"})
    report = copy_storage(source, target, ["app.notes"])
    assert report.records["app.notes"] == {"unreadable": 1, "copied": 1}
    assert target.get_record("app.notes", "note-2")["text"] == "with an id"


def test_copy_to_the_same_folder_spelled_differently_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "store"
    code, _, err = run_cli(capsys, "storage", "copy", str(folder), folder.as_uri() + "/")
    assert code == 2 and "same storage" in err and str(folder) in err


def test_copy_from_an_empty_or_mistyped_source_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = (tmp_path / "typo").as_uri()
    code, out, err = run_cli(capsys, "storage", "copy", missing, (tmp_path / "dst").as_uri())
    assert code == 0 and "0 copied" in out
    assert f"Nothing to copy: {missing} holds no dialogues and no records." in err

"""The seed's job-id file (``save_job_id(..., filename)``): it never leaves the data folder and
never loses an entry it did not write (issue 11, items 5 and 10)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import hypotez
import pytest
from hypotez import training
from hypotez.files import NotARegularFileError, OutputError
from hypotez_files.storage import FileStorage


@pytest.fixture
def store(tmp_path: Path) -> FileStorage:
    return FileStorage(tmp_path / "data")


@pytest.mark.parametrize(
    "filename",
    ["../escaped.json", "{tmp}/absolute.json", "sub/dir.json", "..", "", "a\\b.json", "x.txt"],
)
def test_a_file_name_that_leaves_the_data_folder_is_refused_before_anything_is_written(
    store: FileStorage, tmp_path: Path, filename: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    filename = filename.format(tmp=tmp_path)
    with pytest.raises(hypotez.InputError, match="plain file name"):
        training.save_job_id(store, "ftjob-1", "run", filename, export_dir=home)
    assert list(home.iterdir()) == []
    assert not (tmp_path / "escaped.json").exists()
    assert not (tmp_path / "absolute.json").exists()
    assert store.list_jobs() == []  # refused before the record was saved


def test_the_seed_api_refuses_an_escaping_file_name(tmp_path: Path, home: Path) -> None:
    from hypotez.training import OpenAIModel

    with OpenAIModel(api_key="sk-test") as model, pytest.raises(hypotez.InputError):
        model.save_job_id("ftjob-1", "run", "../../outside.json")
    assert not (home.parent / "outside.json").exists()


def test_entries_the_file_already_had_are_kept(store: FileStorage, tmp_path: Path) -> None:
    target = tmp_path / "job_ids.json"
    seed_rows = [  # written by the seed, or by hand: hypotez has no record of these
        {"id": "ftjob-old", "description": "from the seed", "created": "2024-01-01 10:00:00"},
        {"job_id": "ftjob-1", "description": "stale copy"},
        "a note someone left",
    ]
    target.write_text(json.dumps(seed_rows), encoding="utf-8")
    training.save_job_id(store, "ftjob-1", "first", export_dir=tmp_path)
    training.save_job_id(store, "ftjob-2", "second", export_dir=tmp_path)
    rows = json.loads(target.read_text(encoding="utf-8"))
    assert rows[0] == seed_rows[0] and rows[2] == seed_rows[2]
    assert (rows[1]["job_id"], rows[1]["description"]) == ("ftjob-1", "first")
    assert [r["job_id"] for r in rows[3:]] == ["ftjob-2"]


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"jobs": []}', b"[" * 100_000, b"[" + b"9" * 5000 + b"]"]
)
def test_a_file_that_is_not_a_job_list_is_left_untouched(
    store: FileStorage, tmp_path: Path, content: bytes
) -> None:
    target = tmp_path / "job_ids.json"
    target.write_bytes(content)
    with pytest.raises(hypotez.InputError, match="left untouched") as caught:
        training.save_job_id(store, "ftjob-1", "run", export_dir=tmp_path)
    assert str(target) in str(caught.value)
    assert target.read_bytes() == content
    assert [j.id for j in store.list_jobs()] == ["ftjob-1"]  # the job itself is saved


def test_a_link_at_the_file_or_its_lock_is_not_followed(store: FileStorage, tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_bytes(b"[]")
    (tmp_path / "job_ids.json").symlink_to(victim)
    with pytest.raises(NotARegularFileError):
        training.save_job_id(store, "ftjob-1", "run", export_dir=tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "job_ids.json.lock").symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(NotARegularFileError):
        training.save_job_id(store, "ftjob-1", "run", export_dir=other)
    assert victim.read_bytes() == b"[]"
    assert not (tmp_path / "created-through-the-link").exists()


def test_a_full_disk_is_a_clear_error_and_keeps_the_old_file(
    store: FileStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "job_ids.json"
    training.save_job_id(store, "ftjob-1", "first", export_dir=tmp_path)
    before = target.read_bytes()
    with monkeypatch.context() as m:
        m.setattr(training.jobs, "atomic_write_text", _failing_write)
        with pytest.raises(OutputError, match=r"disk is full.*job itself is saved"):
            training.save_job_id(store, "ftjob-2", "second", export_dir=tmp_path)
    assert target.read_bytes() == before
    assert {j.id for j in store.list_jobs()} == {"ftjob-1", "ftjob-2"}


def _failing_write(path: Path, text: str) -> None:
    import errno

    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_lone_surrogate_in_a_description_does_not_break_the_file(
    store: FileStorage, tmp_path: Path
) -> None:
    training.save_job_id(store, "ftjob-1", "half an emoji \ud83d", export_dir=tmp_path)
    rows = json.loads((tmp_path / "job_ids.json").read_text(encoding="utf-8"))
    assert rows[0]["description"] == "half an emoji \ud83d"

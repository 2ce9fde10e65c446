"""File storage details the generic conformance suite cannot see: its on-disk format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypotez import (
    CorruptDataError,
    DialogueInfo,
    DialogueNotFoundError,
    InputError,
    StorageError,
    Turn,
)
from hypotez_files.storage import FileStorage


@pytest.fixture
def store(tmp_path: Path) -> FileStorage:
    return FileStorage.from_url((tmp_path / "data").as_uri())


def make(store: FileStorage, n: int = 2) -> Path:
    store.create_dialogue(DialogueInfo(id="d1", system="sys"))
    for i in range(n):
        store.append_turns("d1", [Turn("user", f"q{i}"), Turn("assistant", f"a{i}")])
    return store.root / "dialogues" / "d1.jsonl"


def test_one_line_per_append_call(store: FileStorage) -> None:
    path = make(store, 3)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1 + 3
    assert [t["content"] for t in json.loads(lines[1])["turns"]] == ["q0", "a0"]


def test_a_torn_tail_is_ignored_then_moved_aside_not_lost(store: FileStorage) -> None:
    path = make(store, 1)
    with open(path, "ab") as fh:
        fh.write(b'{"turns":[{"role":"user","content":"half')  # a writer died here
    assert [t.content for t in store.load_dialogue("d1").turns] == ["q0", "a0"]
    store.append_turns("d1", [Turn("user", "after crash")])
    assert [t.content for t in store.load_dialogue("d1").turns] == ["q0", "a0", "after crash"]
    torn = Path(f"{path}.torn").read_bytes()
    assert b'"content":"half' in torn
    assert path.read_bytes().endswith(b"\n")


def test_a_corrupt_line_is_reported_with_path_and_line_and_left_untouched(
    store: FileStorage,
) -> None:
    path = make(store, 2)
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    with pytest.raises(CorruptDataError, match=r"d1\.jsonl' line 3"):
        store.load_dialogue("d1")
    assert path.read_bytes() == before


def test_a_foreign_file_without_any_line_is_never_written(store: FileStorage) -> None:
    (store.root / "dialogues").mkdir(parents=True)
    foreign = store.root / "dialogues" / "x.jsonl"
    foreign.write_bytes(b"not a dialogue at all")
    with pytest.raises(CorruptDataError, match="hypotez will not write"):
        store.append_turns("x", [Turn("user", "hi")])
    assert foreign.read_bytes() == b"not a dialogue at all"
    with pytest.raises(CorruptDataError):
        store.load_dialogue("x")


def test_a_file_holding_another_dialogue_is_refused(store: FileStorage) -> None:
    path = make(store, 1)
    path.rename(path.with_name("other.jsonl"))
    with pytest.raises(CorruptDataError, match="holds dialogue 'd1'"):
        store.load_dialogue("other")


def test_create_twice_and_unknown_ids(store: FileStorage) -> None:
    make(store, 0)
    with pytest.raises(StorageError, match="already exists"):
        store.create_dialogue(DialogueInfo(id="d1"))
    with pytest.raises(DialogueNotFoundError):
        store.append_turns("ghost", [Turn("user", "x")])
    with pytest.raises(DialogueNotFoundError):
        store.delete_dialogue("ghost")
    with pytest.raises(InputError):
        store.load_dialogue("../../etc/passwd")


def test_corrupt_records_are_reported_and_kept(store: FileStorage) -> None:
    store.put_record("jobs", "j1", {"id": "j1"})
    path = store.root / "records" / "jobs" / "j1.json"
    path.write_text("[1, 2")
    with pytest.raises(CorruptDataError, match=r"j1\.json"):
        store.get_record("jobs", "j1")
    assert path.read_text() == "[1, 2"


def test_plain_paths_and_file_urls_both_work(tmp_path: Path) -> None:
    assert FileStorage.from_url(str(tmp_path)).root == tmp_path.resolve()
    assert FileStorage.from_url(tmp_path.as_uri()).root == tmp_path.resolve()
    with pytest.raises(InputError, match="names host"):
        FileStorage.from_url("file://otherhost/x")


def test_no_temporary_files_are_left_behind(store: FileStorage) -> None:
    make(store, 2)
    store.put_record("jobs", "j", {"a": 1})
    leftovers = [p.name for p in store.root.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_fsync_can_be_switched_off_in_settings(home: Path) -> None:
    import hypotez

    settings = hypotez.Settings.load(
        env={"HYPOTEZ_FILES_FSYNC": "false", "HYPOTEZ_HOME": str(home)}
    )
    storage = hypotez.Context(settings).get("storage", home.as_uri())
    assert storage.fsync is False
    storage.create_dialogue(DialogueInfo(id="d"))
    storage.append_turns("d", [Turn("user", "kept without fsync")])
    assert storage.load_dialogue("d").turns[0].content == "kept without fsync"
    assert hypotez.Session().storage.fsync is True  # durable by default
    bad = hypotez.Settings.load(env={"HYPOTEZ_FILES_FSYNC": "maybe"})
    with pytest.raises(hypotez.ConfigError, match="HYPOTEZ_FILES_FSYNC"):
        hypotez.Context(bad).get("storage", home.as_uri())


def test_collections_and_record_ids_come_from_the_folders(store: FileStorage) -> None:
    assert store.list_collections() == [] and store.list_record_ids("jobs") == []
    store.put_record("notes", "n-2", {"text": "no id field"})
    store.put_record("notes", "n-1", {"text": "first"})
    store.put_record("jobs", "j", {"id": "j"})
    (store.root / "records" / "notes" / ".n-3.json.x.tmp").write_text("{}")  # a write in flight
    assert store.list_collections() == ["jobs", "notes"]
    assert store.list_record_ids("notes") == ["n-1", "n-2"]
    store.delete_record("notes", "n-1")
    assert store.list_record_ids("notes") == ["n-2"]
    with pytest.raises(InputError):
        store.list_record_ids("../dialogues")

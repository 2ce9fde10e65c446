"""File storage details the generic conformance suite cannot see: its on-disk format."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypotez import (
    CorruptDataError,
    DialogueInfo,
    DialogueNotFoundError,
    InputError,
    StorageError,
    Turn,
)
from hypotez.files import LockTimeoutError
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


# -- a last line without its newline (an editor saved it so) ---------------------------------
def contents(store: FileStorage, dialogue_id: str = "d1") -> list[str]:
    return [t.content for t in store.load_dialogue(dialogue_id).turns]


@pytest.mark.parametrize("fresh", [True, False], ids=["new-process", "same-storage"])
def test_a_valid_last_line_without_newline_is_a_turn_and_the_next_append_keeps_it(
    store: FileStorage, fresh: bool
) -> None:
    path = make(store, 2)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    writer = FileStorage(store.root) if fresh else store
    assert contents(writer) == ["q0", "a0", "q1", "a1"]
    writer.append_turns("d1", [Turn("user", "q2")])
    assert contents(FileStorage(store.root)) == ["q0", "a0", "q1", "a1", "q2"]
    assert not Path(f"{path}.torn").exists()
    assert path.read_bytes().count(b"\n") == 1 + 3  # header + 3 appends, each on its line


def test_a_header_without_newline_is_a_dialogue(store: FileStorage) -> None:
    path = make(store, 0)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    assert FileStorage(store.root).load_dialogue("d1").info.system == "sys"
    assert [i.id for i in store.list_dialogues()] == ["d1"]
    FileStorage(store.root).append_turns("d1", [Turn("user", "hi")])
    assert contents(store) == ["hi"]
    assert not Path(f"{path}.torn").exists()


# -- a corrupt line in the middle: appends fail, as the storage page says -----------------------
@pytest.mark.parametrize("fresh", [True, False], ids=["new-process", "same-storage"])
def test_an_append_to_a_dialogue_with_a_corrupt_middle_line_fails_and_writes_nothing(
    store: FileStorage, fresh: bool
) -> None:
    path = make(store, 3)
    contents(store)  # this storage object has checked the file
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"turns": [{"role": "user", "content": "edited by hand"'  # a broken repair
    path.write_bytes(b"\n".join(lines))
    before = path.read_bytes()
    writer = FileStorage(store.root) if fresh else store
    with pytest.raises(CorruptDataError, match=r"d1\.jsonl' line 3.*will not write"):
        writer.append_turns("d1", [Turn("user", "lost?")])
    assert path.read_bytes() == before
    assert not Path(f"{path}.torn").exists()


def test_lines_appended_by_another_process_are_checked_too(store: FileStorage) -> None:
    path = make(store, 1)
    with open(path, "ab") as fh:  # someone else appended a bad line after our last append
        fh.write(b'{"turns": "not a list"}\n')
    before = path.read_bytes()
    with pytest.raises(CorruptDataError, match="line 3"):
        store.append_turns("d1", [Turn("user", "x")])
    assert path.read_bytes() == before


# -- a crashed append of any size ---------------------------------------------------------------
def test_a_crashed_append_of_more_than_64_mib_is_moved_aside_and_appends_go_on(
    store: FileStorage,
) -> None:
    path = make(store, 1)
    torn = b'{"turns":[{"role":"user","content":"' + b"x" * (65 * 1024 * 1024)
    with open(path, "ab") as fh:
        fh.write(torn)  # a huge append that never finished
    assert contents(store) == ["q0", "a0"]
    store.append_turns("d1", [Turn("user", "after the crash")])
    assert contents(FileStorage(store.root)) == ["q0", "a0", "after the crash"]
    assert Path(f"{path}.torn").read_bytes() == torn + b"\n"


# -- links and other non-files inside the storage are never followed ------------------------------
@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the storage that a planted link points to."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_bytes(b"precious\n")
    return path


def test_a_link_planted_as_a_dialogue_file_is_refused_and_its_target_untouched(
    store: FileStorage, victim: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make(store, 1)
    link = store.root / "dialogues" / "planted.jsonl"
    link.symlink_to(victim)
    for call in (
        lambda: store.append_turns("planted", [Turn("user", "x")]),
        lambda: store.load_dialogue("planted"),
    ):
        with pytest.raises(CorruptDataError, match=r"planted\.jsonl' is a symbolic link"):
            call()
    with pytest.raises(StorageError, match="already exists"):
        store.create_dialogue(DialogueInfo("planted"))
    assert [i.id for i in store.list_dialogues()] == ["d1"]
    assert "planted.jsonl" in caplog.text
    assert victim.read_bytes() == b"precious\n"
    store.delete_dialogue("planted")  # removes the link, not its target
    assert not link.is_symlink() and victim.read_bytes() == b"precious\n"


def test_a_link_planted_as_the_torn_file_is_not_written_through(
    store: FileStorage, victim: Path
) -> None:
    path = make(store, 1)
    Path(f"{path}.torn").symlink_to(victim)
    with open(path, "ab") as fh:
        fh.write(b'{"turns":[{"role":"user","content":"half')
    with pytest.raises(CorruptDataError, match=r"\.torn' is a symbolic link"):
        store.append_turns("d1", [Turn("user", "x")])
    assert victim.read_bytes() == b"precious\n"
    assert path.read_bytes().endswith(b'"content":"half')  # the torn bytes were kept in place


@pytest.mark.parametrize("folder", ["dialogues", "records", "records/jobs"])
def test_a_linked_folder_inside_the_storage_is_refused(tmp_path: Path, folder: str) -> None:
    root = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / folder).parent.mkdir(parents=True, exist_ok=True)
    (root / folder).symlink_to(elsewhere, target_is_directory=True)
    store = FileStorage(root)
    calls = {
        "dialogues": [
            lambda: store.create_dialogue(DialogueInfo("d")),
            store.list_dialogues,
            lambda: store.load_dialogue("d"),
        ],
        "records": [lambda: store.put_record("jobs", "j", {"id": "j"}), store.list_collections],
        "records/jobs": [
            lambda: store.put_record("jobs", "j", {"id": "j"}),
            lambda: store.update_record("jobs", "j", lambda _: {"id": "j"}),
            lambda: store.get_record("jobs", "j"),
            store.list_jobs,
        ],
    }[folder]
    for call in calls:
        with pytest.raises(CorruptDataError, match="is a symbolic link"):
            call()
    assert list(elsewhere.iterdir()) == []


def test_a_link_planted_as_a_record_or_its_lock_is_refused(
    store: FileStorage, victim: Path
) -> None:
    store.put_record("jobs", "ok", {"id": "ok"})
    folder = store.root / "records" / "jobs"
    (folder / "j.json").symlink_to(victim)
    (folder / ".k.lock").symlink_to(victim)
    for call in (
        lambda: store.put_record("jobs", "j", {"id": "j"}),
        lambda: store.update_record("jobs", "j", lambda _: {"id": "j"}),
        lambda: store.get_record("jobs", "j"),
        lambda: store.put_record("jobs", "k", {"id": "k"}),
        lambda: store.update_record("jobs", "k", lambda _: {"id": "k"}),
    ):
        with pytest.raises(CorruptDataError, match="is a symbolic link"):
            call()
    assert victim.read_bytes() == b"precious\n"
    assert (folder / "j.json").is_symlink()


@pytest.mark.timeout(30)
def test_a_fifo_planted_as_a_dialogue_is_refused_without_waiting(store: FileStorage) -> None:
    make(store, 0)
    os.mkfifo(store.root / "dialogues" / "pipe.jsonl")
    for call in (
        lambda: store.load_dialogue("pipe"),
        lambda: store.append_turns("pipe", [Turn("user", "x")]),
    ):
        with pytest.raises(CorruptDataError, match="FIFO"):
            call()
    assert [i.id for i in store.list_dialogues()] == ["d1"]


# -- text that is not valid Unicode ----------------------------------------------------------------
def test_a_lone_surrogate_is_stored_faithfully_not_a_unicode_error(store: FileStorage) -> None:
    make(store, 0)
    store.append_turns("d1", [Turn("assistant", "half an emoji: \ud83d")])
    store.put_record("notes", "n", {"text": "\udc00"})
    assert contents(FileStorage(store.root)) == ["half an emoji: \ud83d"]
    assert store.get_record("notes", "n") == {"text": "\udc00"}


# -- a lock held by another process: bounded wait, and the holder named -----------------------------
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()  # hold it until the test closes our stdin
"""


@pytest.fixture
def lock_holder(tmp_path: Path) -> Any:
    import subprocess
    import sys

    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.timeout(60)
def test_a_dialogue_locked_by_another_process_fails_in_bounded_time_naming_it(
    tmp_path: Path, lock_holder: Any
) -> None:
    store = FileStorage(tmp_path / "data", lock_timeout=0.5)
    path = make(store, 1)
    proc = lock_holder(path)
    for call in (
        lambda: store.load_dialogue("d1"),
        lambda: store.append_turns("d1", [Turn("user", "x")]),
    ):
        with pytest.raises(LockTimeoutError) as caught:
            call()
        message = str(caught.value)
        assert f"process {proc.pid} (python" in message and "d1.jsonl" in message
        assert "0.5 s" in message
    proc.stdin.close()  # the holder lets go: everything works again, nothing was lost
    proc.wait(timeout=30)
    store.append_turns("d1", [Turn("user", "after")])
    assert contents(store) == ["q0", "a0", "after"]


@pytest.mark.timeout(60)
def test_a_locked_record_fails_in_bounded_time(tmp_path: Path, lock_holder: Any) -> None:
    store = FileStorage(tmp_path / "data", lock_timeout=0.3)
    store.put_record("jobs", "j", {"id": "j"})
    lock_holder(store.root / "records" / "jobs" / ".j.lock")
    with pytest.raises(LockTimeoutError, match=r"\.j\.lock' is locked by process"):
        store.update_record("jobs", "j", lambda _: {"id": "j", "n": 1})
    assert store.get_record("jobs", "j") == {"id": "j"}


@pytest.mark.timeout(60)
def test_the_cli_says_who_holds_the_lock_instead_of_waiting_forever(
    home: Path, lock_holder: Any
) -> None:
    import subprocess
    import sys

    store = FileStorage(home)
    path = make(store, 1)
    proc = lock_holder(path)
    env = {**os.environ, "HYPOTEZ_HOME": str(home), "HYPOTEZ_FILES_LOCK_TIMEOUT": "0.5"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hypotez")), "dialogues", "show", "d1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert result.returncode == 1, result.stderr
    assert f"is locked by process {proc.pid}" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_lock_timeout_option_is_checked(home: Path) -> None:
    import hypotez

    for value in ("0", "-1", "soon", "nan"):
        bad = hypotez.Settings.load(env={"HYPOTEZ_FILES_LOCK_TIMEOUT": value})
        with pytest.raises(hypotez.ConfigError, match="HYPOTEZ_FILES_LOCK_TIMEOUT"):
            hypotez.Context(bad).get("storage", home.as_uri())
    good = hypotez.Settings.load(env={"HYPOTEZ_FILES_LOCK_TIMEOUT": "2.5"})
    built = hypotez.Context(good).get("storage", home.as_uri())
    assert built.lock_timeout == 2.5
    assert hypotez.Session().storage.lock_timeout == 30.0


# -- full, read-only and over-long paths: a StorageError saying what to do, nothing half-written ----
def _failing(monkeypatch: pytest.MonkeyPatch, name: str, code: int, after: int = 0) -> None:
    """Make ``os.<name>`` fail with ``code`` from its ``after``+1-th call on."""
    import errno

    real = getattr(os, name)
    calls = {"n": 0}

    def fake(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    assert code in errno.errorcode
    monkeypatch.setattr(os, name, fake)


def test_a_full_disk_on_append_is_a_clear_error_and_leaves_the_file_as_it_was(
    store: FileStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    path = make(store, 1)
    before = path.read_bytes()
    with monkeypatch.context() as m:
        _failing(m, "write", errno.ENOSPC)
        with pytest.raises(StorageError, match=r"disk is full.*Nothing was appended"):
            store.append_turns("d1", [Turn("user", "x")])
    assert path.read_bytes() == before
    real_write = os.write

    def half(fd: int, data: Any) -> int:  # the disk fills up in the middle of our line
        return real_write(fd, bytes(data)[: len(data) // 2])

    with monkeypatch.context() as m:
        m.setattr(os, "write", half)
        with pytest.raises(StorageError, match="nothing was appended"):
            store.append_turns("d1", [Turn("user", "x" * 1000)])
    assert path.read_bytes() == before
    store.append_turns("d1", [Turn("user", "room again")])
    assert contents(store) == ["q0", "a0", "room again"]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("ENOSPC", "disk is full"),
        ("EROFS", "read-only"),
        ("EACCES", "permission denied"),
        ("EDQUOT", "quota"),
    ],
)
def test_writes_that_the_disk_refuses_are_clear_errors_and_keep_the_old_data(
    store: FileStorage, monkeypatch: pytest.MonkeyPatch, code: str, words: str
) -> None:
    import errno

    store.put_record("jobs", "j", {"id": "j", "v": 1})
    make(store, 0)
    with monkeypatch.context() as m:
        _failing(m, "write", getattr(errno, code))
        for call in (
            lambda: store.put_record("jobs", "j", {"id": "j", "v": 2}),
            lambda: store.update_record("jobs", "j", lambda _: {"id": "j", "v": 3}),
            lambda: store.create_dialogue(DialogueInfo("d2")),
            lambda: store.append_turns("d1", [Turn("user", "x")]),
        ):
            with pytest.raises(StorageError, match=words) as caught:
                call()
            assert not isinstance(caught.value, CorruptDataError)
    assert store.get_record("jobs", "j") == {"id": "j", "v": 1}
    assert not store.dialogue_exists("d2") and contents(store) == []
    assert [p.name for p in store.root.rglob("*.tmp")] == []


def test_a_storage_path_with_a_name_too_long_is_a_clear_error(tmp_path: Path) -> None:
    store = FileStorage(tmp_path / ("x" * 300))
    for call in (
        lambda: store.create_dialogue(DialogueInfo("d")),
        store.list_dialogues,
        lambda: store.load_dialogue("d"),
        lambda: store.put_record("jobs", "j", {}),
        store.list_jobs,
    ):
        with pytest.raises(StorageError, match="longer than the file system allows"):
            call()


def test_the_cli_reports_a_storage_path_too_long_without_a_traceback(home: Path) -> None:
    import subprocess
    import sys

    home.mkdir(parents=True)  # a missing folder is simply empty; an over-long name is an error
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("hypotez")),
            "--storage",
            str(home / ("x" * 300)),
            "dialogues",
            "list",
        ],
        env={**os.environ, "HYPOTEZ_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "longer than the file system allows" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_where_a_dialogue_file_should_be_is_reported(store: FileStorage) -> None:
    make(store, 0)
    (store.root / "dialogues" / "b.jsonl").mkdir()
    for call in (
        lambda: store.load_dialogue("b"),
        lambda: store.append_turns("b", [Turn("user", "x")]),
    ):
        with pytest.raises(CorruptDataError, match=r"b\.jsonl' is a folder.*not hypotez's data"):
            call()
    with pytest.raises(StorageError, match="it is a folder, not a file"):
        store.delete_dialogue("b")
    assert [i.id for i in store.list_dialogues()] == ["d1"]
    assert (store.root / "dialogues" / "b.jsonl").is_dir()

"""``-o PATH``: hypotez writes the file a user named, and nothing else.

Every command that writes a user-named file goes through :func:`hypotez.files.write_output`: a
symbolic link, FIFO, device or folder at PATH is refused (exit 2, the path and what to do
named) and left exactly as it was; a regular file is replaced atomically and keeps its mode.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import hypotez
import pytest
from hypotez import DialogueInfo, Turn
from hypotez.files import (
    NotARegularFileError,
    OutputError,
    atomic_write_bytes,
    check_output,
    write_output,
)
from hypotez_files.storage import FileStorage

HYPOTEZ = str(Path(sys.executable).with_name("hypotez"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HYPOTEZ, *args], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )


@pytest.fixture
def export(home: Path) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    store = FileStorage(home)
    store.create_dialogue(DialogueInfo("d1"))
    store.append_turns("d1", [Turn("user", "hi"), Turn("assistant", "hello")])
    return lambda target: run("dialogues", "export", "d1", "-o", str(target))


@pytest.fixture
def prepare(tmp_path: Path) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    data = tmp_path / "train.csv"
    data.write_text(
        "prompt,completion\n" + "".join(f"q{i},a{i}\n" for i in range(10)), encoding="utf-8"
    )
    return lambda target: run("train", "prepare", str(data), "-o", str(target))


@pytest.fixture(params=["dialogues export", "train prepare"])
def command(
    request: pytest.FixtureRequest,
) -> Callable[[Path], subprocess.CompletedProcess[str]]:
    name = "export" if request.param == "dialogues export" else "prepare"
    return request.getfixturevalue(name)


def refused(result: subprocess.CompletedProcess[str], target: Path, kind: str) -> None:
    assert result.returncode == 2, result.stderr
    assert str(target) in result.stderr and kind in result.stderr
    assert "leave out -o" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_symlink_is_refused_and_neither_it_nor_its_target_changes(
    command: Callable[[Path], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(victim)
    refused(command(link), link, "symbolic link")
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert victim.read_bytes() == b"precious\n"
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "nowhere" / "x")
    refused(command(dangling), dangling, "symbolic link")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.timeout(120)
def test_a_fifo_is_refused_without_waiting_on_it(
    command: Callable[[Path], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused(command(fifo), fifo, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_is_refused_and_stays_a_device(
    command: Callable[[Path], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a copy of /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs root")
    refused(command(device), device, "character device")
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_a_folder_is_refused(
    command: Callable[[Path], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    refused(command(folder), folder, "a folder")
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_a_regular_file_is_replaced_and_keeps_its_mode(
    command: Callable[[Path], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    result = command(target)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() not in (b"", b"old\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_missing_folder_is_bad_input_and_is_not_created(
    command: Callable[[Path], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    target = tmp_path / "typo" / "out.jsonl"
    result = command(target)
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()


def test_a_place_that_refuses_new_files_is_a_runtime_error(
    command: Callable[[Path], subprocess.CompletedProcess[str]],
) -> None:
    result = command(Path("/proc/hypotez-out.jsonl"))
    assert result.returncode == 1 and "/proc/hypotez-out.jsonl" in result.stderr
    assert "Nothing was written" in result.stderr and "Traceback" not in result.stderr


def test_the_api_refuses_dev_stdout_and_says_to_leave_out_the_option(tmp_path: Path) -> None:
    with pytest.raises(NotARegularFileError, match="leave out --output"):
        write_output("/dev/stdout", b"x", option="--output")
    with pytest.raises(NotARegularFileError, match="symbolic link"):
        check_output("/dev/stdout")
    with pytest.raises(hypotez.InputError, match="longer than the file system allows"):
        write_output(tmp_path / ("x" * 300), b"x")
    assert issubclass(OutputError, hypotez.HypotezError)


def test_atomic_writes_never_replace_a_link_either(tmp_path: Path) -> None:
    """What the seed API's snapshots (``_save_dialogue``, the job-id file) are written with."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "snapshot.json"
    link.symlink_to(victim)
    with pytest.raises(NotARegularFileError, match="symbolic link"):
        atomic_write_bytes(link, b"{}")
    assert link.is_symlink() and victim.read_bytes() == b"precious"
    long_name = tmp_path / ("y" * 250)  # the temporary file's name must not be too long
    atomic_write_bytes(long_name, b"ok")
    assert long_name.read_bytes() == b"ok"


@pytest.mark.parametrize("fmt", ["json", "jsonl", "markdown"])
def test_a_dialogue_holding_a_lone_surrogate_exports_to_a_file_and_to_stdout(
    home: Path, tmp_path: Path, fmt: str
) -> None:
    """Storage keeps a lone surrogate a server sent (issue 11 item 11); exporting such a
    dialogue must not end in a UnicodeEncodeError, and JSON must load back exactly."""
    import json

    store = FileStorage(home)
    store.create_dialogue(DialogueInfo("d1"))
    store.append_turns("d1", [Turn("user", "Привет"), Turn("assistant", "half \ud83d emoji")])
    target = tmp_path / f"out.{fmt}"
    written = run("dialogues", "export", "d1", "--format", fmt, "-o", str(target))
    printed = run("dialogues", "export", "d1", "--format", fmt)
    for result in (written, printed):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    text = target.read_text(encoding="utf-8")
    assert printed.stdout == text
    if fmt == "json":
        assert [t["content"] for t in json.loads(text)["turns"]] == ["Привет", "half \ud83d emoji"]
    elif fmt == "jsonl":
        assert json.loads(text)["messages"][1]["content"] == "half \ud83d emoji"
    else:
        assert "half \\ud83d emoji" in text and "Привет" in text


def test_a_path_with_a_nul_is_bad_input() -> None:
    with pytest.raises(hypotez.InputError, match="NUL character"):
        write_output("out\x00.json", b"{}")
    with pytest.raises(hypotez.InputError, match="NUL character"):
        check_output("out\x00.json")

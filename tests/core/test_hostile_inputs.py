"""Issue 11's defects in the session, settings, CLI and OpenAI plugin: nothing lost, nothing
escapes, no traceback. Each test failed before its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import DialogueInfo, Session, Turn
from hypotez.files import atomic_write_text


def hypotez_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


# -- 1. storage copy: every item not copied is counted and named; the exit code says so ------
def test_copy_names_a_dialogue_whose_header_it_cannot_read(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    with Session(storage=source.as_uri(), chat="echo", sentiment=False) as s:
        s.ask("kept")
    newer = source / "dialogues" / "newer-1.jsonl"
    newer.write_text(json.dumps({"schema": 99, "id": "newer-1", "created": "2026-01-01"}) + "\n")
    result = hypotez_cli("storage", "copy", source.as_uri(), (tmp_path / "dst").as_uri())
    assert result.returncode == 1, result.stderr
    assert "1 unreadable" in result.stdout
    assert "dialogue 'newer-1' cannot be read" in result.stderr
    assert "INCOMPLETE" in result.stderr


# -- 2. a reply that arrived is printed even when storing it fails ---------------------------
def test_a_storage_that_cannot_be_written_is_found_before_the_paid_request(
    home: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the storage folder should be")
    result = hypotez_cli("--storage", blocked.as_uri(), "ask", "--chat", "echo", "hello")
    assert result.returncode == 1
    assert result.stdout == ""  # no reply was fetched, so none was lost
    assert "not-a-folder" in result.stderr


def test_a_reply_that_cannot_be_analysed_is_still_printed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPOTEZ_LLM_CHAT", "echo")  # an analyzer that cannot parse its answer
    for mode in ("--no-stream", "--stream"):
        result = hypotez_cli("ask", "--chat", "echo", "--analyzer", "llm", mode, "hello")
        assert result.returncode == 1
        assert '"last": "hello"' in result.stdout  # the reply reached stdout...
        assert "NOT stored" in result.stderr  # ...and the user is told it was not kept


def test_the_reply_is_printed_when_sentiment_fails_after_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An analyzer that fails on every call: the reply (already paid for) must not vanish.
    monkeypatch.setenv("HYPOTEZ_LLM_CHAT", "echo")
    result = hypotez_cli("ask", "--chat", "echo", "--analyzer", "llm", "--json", "hello there")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["stored"] is False and '"last": "hello there"' in data["text"]
    assert "unusable sentiment answer" in data["error"]


def test_a_new_dialogue_is_not_left_empty_when_its_first_append_fails(home: Path) -> None:
    with Session(chat="echo", sentiment=False) as s:
        storage = s.storage
        original = storage.append_turns

        def failing(dialogue_id: str, turns: Any) -> None:
            raise hypotez.StorageError("the disk is full")

        storage.append_turns = failing  # type: ignore[method-assign]
        with pytest.raises(hypotez.StorageError, match="disk is full"):
            s.ask("hello")
        assert storage.list_dialogues() == []  # no header-only dialogue left behind
        assert s.dialogue_id is None and s.last_reply is not None
        storage.append_turns = original  # type: ignore[method-assign]
        s.ask("again")
        assert len(storage.list_dialogues()) == 1


# -- 9. credentials in URLs are never shown -------------------------------------------------
def test_a_password_in_the_openai_base_url_is_never_printed(home: Path) -> None:
    result = hypotez_cli(
        "ask",
        "--chat",
        "openai",
        "hi",
        env={
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": "http://user:hunter2@127.0.0.1:1/v1",
            "HYPOTEZ_MAX_RETRIES": "0",
        },
    )
    assert result.returncode == 1
    assert "hunter2" not in result.stdout + result.stderr
    assert "http://***@127.0.0.1:1/v1" in result.stderr


def test_a_password_in_a_storage_url_is_never_shown() -> None:
    settings = hypotez.Settings.load(env={}, storage="s3://user:hunter2@bucket/prefix")
    assert "hunter2" not in repr(settings)
    from hypotez.errors import redact

    assert redact("see https://a:b@host/x and ftp://c@d") == (
        "see https://***@host/x and ftp://***@d"
    )


# -- 12, 16. settings and config messages point the right way --------------------------------
def test_config_problems_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(hypotez.ConfigError, match="is a folder, not a file"):
        hypotez.Settings.load(env={}, config_file=tmp_path)
    with pytest.raises(hypotez.ConfigError, match="cannot be used: File name too long"):
        hypotez.Settings.load(env={}, config_file=tmp_path / ("a" * 300) / "x.toml")
    with pytest.raises(hypotez.ConfigError, match="File name too long"):
        hypotez.Settings.load(env={}, home=tmp_path / ("a" * 300))
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b'\xef\xbb\xbfchat = "from-a-bom-file"\n')
    assert hypotez.Settings.load(env={}, config_file=bom).chat == "from-a-bom-file"


def test_a_too_long_home_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = hypotez_cli("dialogues", "list", env={"HYPOTEZ_HOME": str(tmp_path / ("a" * 300))})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "File name too long" in result.stderr


def test_a_schema_version_that_is_not_a_number_is_not_called_newer() -> None:
    from hypotez.models import check_schema

    with pytest.raises(ValueError, match="not a version number hypotez writes") as err:
        check_schema({"schema": "1"})
    assert "newer" not in str(err.value)
    with pytest.raises(ValueError, match="newer than this hypotez"):
        check_schema({"schema": 2})


# -- 14, 17. wrong argument types are hypotez errors ------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: hypotez.Settings.load(home=5),
        lambda: hypotez.Settings.load(storage=5),
        lambda: hypotez.Settings.load(options=["x"]),
        lambda: hypotez.Settings.load(env=5),
        lambda: hypotez.Settings.load(config_file=5),
        lambda: Session(assistant=5),
        lambda: Session(model=5),
        lambda: Session(model=" "),
        lambda: Session(storage=""),
        lambda: Session(system=b"bytes"),
        lambda: hypotez.Context(settings="x"),
        lambda: Session(chat="echo", sentiment=False, store=False).analyze(5),
        lambda: Session(chat="echo", sentiment=False, store=False).ask("hi", temperature="x"),
    ],
)
def test_wrong_argument_types_are_hypotez_errors(home: Path, call: Any) -> None:
    with pytest.raises(hypotez.HypotezError):
        call()


def test_model_blank_from_the_command_line_never_reaches_a_server(home: Path) -> None:
    result = hypotez_cli("ask", "--chat", "echo", "--model", " ", "hi")
    assert result.returncode == 2 and "model must be a non-empty model name" in result.stderr


# -- 15. client-side problems are reported as such, and exit 2 --------------------------------
def test_a_message_that_is_not_valid_unicode_is_refused_before_sending(home: Path) -> None:
    with Session(chat="echo", sentiment=False) as s:
        with pytest.raises(hypotez.InputError, match="not valid Unicode at position 4"):
            s.ask("bad \udcff bytes")
        assert s.dialogue_id is None  # nothing stored, nothing sent


def test_a_job_id_that_could_escape_is_refused_before_the_trainer(home: Path) -> None:
    result = hypotez_cli(
        "train", "status", "..", "--trainer", "openai", env={"OPENAI_API_KEY": "k"}
    )
    assert result.returncode == 2 and "Invalid job id '..'" in result.stderr


@pytest.mark.parametrize(
    ("key", "what"), [("sk-abc\n", "white space"), ("sk-äbc", "U+00E4"), ("sk ab", "a space")]
)
def test_an_api_key_no_http_header_can_carry_is_a_clear_input_error(
    home: Path, key: str, what: str
) -> None:
    result = hypotez_cli(
        "ask", "--chat", "openai", "hi", env={"OPENAI_API_KEY": key, "HYPOTEZ_MAX_RETRIES": "0"}
    )
    assert result.returncode == 2, result.stderr
    assert what in result.stderr and "OPENAI_API_KEY" in result.stderr
    assert "reach" not in result.stderr  # not reported as a network problem


# -- printing what a storage kept faithfully ---------------------------------------------------
def test_showing_a_dialogue_with_a_lone_surrogate_does_not_crash(home: Path) -> None:
    with Session(chat="echo", sentiment=False) as s:
        storage = s.storage
    storage.create_dialogue(DialogueInfo("odd-1"))
    storage.append_turns("odd-1", [Turn("user", "bad \udcff byte")])
    result = hypotez_cli("dialogues", "show", "odd-1")
    assert result.returncode == 0, result.stderr
    assert "user: bad \\udcff byte" in result.stdout


def test_atomic_writes_still_refuse_a_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(hypotez.InputError):
        atomic_write_text(tmp_path / "x", "data")

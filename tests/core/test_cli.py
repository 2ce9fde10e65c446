"""The command line, run as a user runs it: the installed ``hypotez`` script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import hypotez
import pytest


def hypotez_cli(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    return subprocess.run(
        [exe, *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_version() -> None:
    result = hypotez_cli("--version")
    assert result.returncode == 0
    assert hypotez.__version__ in result.stdout


def test_help_lists_every_built_in_command() -> None:
    result = hypotez_cli("--help")
    assert result.returncode == 0
    for command in ("ask", "sentiment", "dialogues", "plugins"):
        assert f"  {command} " in result.stdout


def test_ask_prints_reply_and_sentiment_and_stores_the_dialogue(home: Path) -> None:
    result = hypotez_cli("ask", "--chat", "echo", "--analyzer", "shouty", "Hello", "there!")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["last"] == "Hello there!"
    assert "sentiment: " in result.stderr and "dialogue: " in result.stderr
    dialogue_id = result.stderr.rsplit("dialogue: ", 1)[1].strip(" ]\n")
    follow = hypotez_cli("ask", "--chat", "echo", "--dialogue", dialogue_id, "--json", "more")
    assert follow.returncode == 0, follow.stderr
    body = json.loads(follow.stdout)
    assert json.loads(body["text"])["n"] == 3 and body["dialogue_id"] == dialogue_id


def test_ask_streaming(home: Path) -> None:
    result = hypotez_cli("ask", "--chat", "echo", "--stream", "hi")
    assert result.returncode == 0 and json.loads(result.stdout)["last"] == "hi"


def test_sentiment_from_arguments_file_and_stdin(home: Path, tmp_path: Path) -> None:
    args = hypotez_cli("sentiment", "--analyzer", "keywords", "not good", "great")
    assert args.returncode == 0
    assert [line.split()[0] for line in args.stdout.splitlines()] == ["negative", "positive"]
    texts = tmp_path / "texts.txt"
    texts.write_text("плохо\n\nхорошо\n", encoding="utf-8")
    from_file = hypotez_cli("sentiment", "-a", "keywords", "--json", "-f", str(texts))
    rows = [json.loads(line) for line in from_file.stdout.splitlines()]
    assert [(r["text"], r["label"]) for r in rows] == [
        ("плохо", "negative"),
        ("хорошо", "positive"),
    ]
    from_stdin = hypotez_cli("sentiment", "-a", "vader", "-f", "-", input="I love it\n")
    assert from_stdin.stdout.startswith("positive")


def test_sentiment_file_that_is_not_utf8_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café\n".encode("latin-1"))
    result = hypotez_cli("sentiment", "-a", "keywords", "-f", str(latin1))
    assert result.returncode == 2, result.stderr
    assert "latin1.txt" in result.stderr and "UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_sentiment_shows_progress_on_long_input(home: Path, tmp_path: Path) -> None:
    texts = tmp_path / "many.txt"
    texts.write_text("good\n" * 500)
    result = hypotez_cli("sentiment", "-a", "keywords", "-f", str(texts))
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 500
    assert "Analysing" in result.stderr


def test_sentiment_without_input_is_a_usage_error() -> None:
    result = hypotez_cli("sentiment")
    assert result.returncode == 2 and "--file" in result.stderr


def test_unknown_analyzer_names_the_known_ones() -> None:
    result = hypotez_cli("sentiment", "-a", "nope", "x")
    assert result.returncode == 1
    assert "No sentiment backend named 'nope'" in result.stderr and "keywords" in result.stderr
    assert "Traceback" not in result.stderr


def test_dialogues_list_show_export_delete(home: Path, tmp_path: Path) -> None:
    assert hypotez_cli("dialogues", "list").stderr.startswith("No dialogues yet")
    created = hypotez_cli(
        "ask",
        "--chat",
        "echo",
        "--analyzer",
        "keywords",
        "--system",
        "Be nice",
        "--json",
        "good day",
    )
    dialogue_id = json.loads(created.stdout)["dialogue_id"]
    listed = hypotez_cli("dialogues", "list", "--json")
    assert [d["id"] for d in json.loads(listed.stdout)] == [dialogue_id]
    shown = hypotez_cli("dialogues", "show", dialogue_id)
    assert "system: Be nice" in shown.stdout and "user: good day  [positive" in shown.stdout
    out = tmp_path / "d.jsonl"
    exported = hypotez_cli("dialogues", "export", dialogue_id, "--format", "jsonl", "-o", str(out))
    assert exported.returncode == 0
    assert [m["role"] for m in json.loads(out.read_text())["messages"]] == [
        "system",
        "user",
        "assistant",
    ]
    markdown = hypotez_cli("dialogues", "export", dialogue_id, "--format", "markdown")
    assert markdown.stdout.startswith(f"# Dialogue {dialogue_id}")
    full = json.loads(hypotez_cli("dialogues", "export", dialogue_id).stdout)
    assert full["turns"][0]["sentiment"]["label"] == "positive"
    assert hypotez_cli("dialogues", "delete", "--yes", dialogue_id).returncode == 0
    assert json.loads(hypotez_cli("dialogues", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("dialogue_id", "code", "message"),
    [("ghost", 1, "No dialogue 'ghost'"), ("../x", 2, "Invalid dialogue id")],
)
def test_dialogues_show_bad_ids(home: Path, dialogue_id: str, code: int, message: str) -> None:
    result = hypotez_cli("dialogues", "show", dialogue_id)
    assert result.returncode == code and message in result.stderr


def test_plugins_lists_versions_and_registrations() -> None:
    result = hypotez_cli("plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["testplugin"]["version"] == "1.2.3"
    assert {
        "capability": "chat",
        "name": "echo",
        "description": "echoes the request as JSON (tests)",
    } in plugins["testplugin"]["registers"]
    assert plugins["files"]["registers"][0]["name"] == "file"
    text = hypotez_cli("plugins").stdout
    assert "testplugin 1.2.3 (hypotez-testplugin)" in text


def test_global_home_option_and_broken_config(tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    hypotez_cli("--home", str(other), "ask", "--chat", "echo", "hi")
    assert len(list((other / "dialogues").glob("*.jsonl"))) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text("chat = [")
    result = hypotez_cli("--config", str(bad), "ask", "hi")
    assert result.returncode == 1 and "bad.toml" in result.stderr


def test_disabled_plugins_disappear_from_the_cli(home: Path) -> None:
    result = hypotez_cli(
        "ask", "--chat", "echo", "hi", env={"HYPOTEZ_DISABLE_PLUGINS": "testplugin"}
    )
    assert result.returncode == 1 and "No chat backend named 'echo'" in result.stderr


def test_a_question_with_no_stdin_fails_saying_how_to_answer_it(home: Path) -> None:
    created = hypotez_cli("ask", "--chat", "echo", "hi")
    dialogue_id = created.stderr.rsplit("dialogue: ", 1)[1].strip(" ]\n")
    result = hypotez_cli("dialogues", "delete", dialogue_id, input="")
    assert result.returncode == 1 and "--yes" in result.stderr
    assert (home / "dialogues" / f"{dialogue_id}.jsonl").is_file()  # not deleted


def test_ctrl_c_exits_130_without_a_traceback(home: Path) -> None:
    import signal

    created = hypotez_cli("ask", "--chat", "echo", "hi")
    dialogue_id = created.stderr.rsplit("dialogue: ", 1)[1].strip(" ]\n")
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    proc = subprocess.Popen(
        [exe, "dialogues", "delete", dialogue_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        seen = b""
        while b"for good?" not in seen:  # the prompt is up: hypotez waits for the answer
            byte = proc.stdout.read(1)
            assert byte, "hypotez exited before asking"
            seen += byte
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and b"Traceback" not in err
    assert (home / "dialogues" / f"{dialogue_id}.jsonl").is_file()


def test_export_to_a_missing_folder_is_refused_not_created(home: Path, tmp_path: Path) -> None:
    created = hypotez_cli("ask", "--chat", "echo", "hi")
    dialogue_id = created.stderr.rsplit("dialogue: ", 1)[1].strip(" ]\n")
    target = tmp_path / "typo" / "d.md"
    result = hypotez_cli("dialogues", "export", dialogue_id, "-o", str(target))
    assert result.returncode == 2 and "typo" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("command", ["ask", "sentiment", "dialogues", "plugins", "demo"])
def test_every_core_command_and_option_explains_itself(command: str) -> None:
    import click
    from hypotez.cli import build_cli

    def undocumented(cmd: click.Command, path: str) -> list[str]:
        found = [] if cmd.help else [path]
        found += [
            f"{path} {p.opts[0]}"
            for p in cmd.params
            if isinstance(p, click.Option) and not p.help and p.name != "help"
        ]
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                found += undocumented(sub, f"{path} {name}")
        return found

    assert undocumented(build_cli().commands[command], command) == []
    result = hypotez_cli(command, "--help")
    assert result.returncode == 0 and result.stdout.startswith(f"Usage: hypotez {command}")


def test_dialogues_commands_close_the_storage(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner
    from hypotez.cli import build_cli
    from hypotez_files.storage import FileStorage

    closed: list[str] = []
    monkeypatch.setattr(FileStorage, "close", lambda self: closed.append(self.url))
    result = CliRunner().invoke(build_cli(), ["dialogues", "list"])
    assert result.exit_code == 0 and closed == [home.as_uri()]
    failed = CliRunner().invoke(build_cli(), ["dialogues", "show", "missing"])
    assert failed.exit_code != 0 and len(closed) == 2  # closed on the error path too


def test_a_plugin_adds_commands_but_cannot_replace_one() -> None:
    import click
    from click.testing import CliRunner
    from hypotez import PluginError, hookimpl
    from hypotez.cli import build_cli

    @click.command("hello")
    def hello() -> None:
        """Say hello."""
        click.echo("hello from a plugin")

    @click.command("ask")
    def fake_ask() -> None:
        """Not the real ask."""

    class Adds:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(hello)

    class Hijacks:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            cli.add_command(fake_ask)

    pm = hypotez.get_plugin_manager()
    pm.add_plugin(Adds(), "greeter")
    assert CliRunner().invoke(build_cli(), ["hello"]).output == "hello from a plugin\n"
    assert build_cli().commands["hello"] is hello  # building twice is no clash
    pm.add_plugin(Hijacks(), "hijacker")
    with pytest.raises(PluginError, match=r"'hijacker' adds the command 'ask'.*'hypotez'"):
        build_cli()


def test_export_to_an_unwritable_place_is_one_line_naming_the_file(home: Path) -> None:
    created = hypotez_cli("ask", "--chat", "echo", "hi")
    dialogue_id = created.stderr.rsplit("dialogue: ", 1)[1].strip(" ]\n")
    result = hypotez_cli("dialogues", "export", dialogue_id, "-o", "/proc/hypotez-export.md")
    assert result.returncode == 1 and "/proc/hypotez-export.md" in result.stderr
    assert "Traceback" not in result.stderr

"""``hypotez ask|chat|describe|models|assistants`` with the OpenAI backend, run as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypotez_test_servers.aimock import Aimock

pytestmark = pytest.mark.aimock


def hypotez_cli(
    *args: str, input: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    return subprocess.run(
        [exe, *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, "HYPOTEZ_SENTIMENT": "keywords", **env},
        timeout=120,
    )


def test_chat_keeps_the_dialogue_and_streams(aimock_env: Aimock) -> None:
    result = hypotez_cli(
        "chat", "--system", "Be brief.", input="Hello, how are you?\n\nMy name is Ada.\n/exit\n"
    )
    assert result.returncode == 0, result.stderr
    assert "I am doing great, thank you! How can I help you today?" in result.stdout
    assert "Noted." in result.stdout
    assert "[sentiment: positive" in result.stderr
    assert "Dialogue saved as" in result.stderr
    first, second = aimock_env.chat_requests()
    assert first["stream"] is True
    assert second["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": "I am doing great, thank you! How can I help you today?"},
        {"role": "user", "content": "My name is Ada."},
    ]
    dialogue_id = result.stderr.rsplit("Dialogue saved as ", 1)[1].strip()
    shown = hypotez_cli("dialogues", "show", dialogue_id)
    assert "user: My name is Ada." in shown.stdout


def test_chat_survives_a_failed_request_and_stores_only_what_was_answered(
    aimock_env: Aimock,
) -> None:
    aimock_env.queue_error(429, "slow down")  # the first request fails even after 0 retries
    result = hypotez_cli(
        "chat",
        "--no-stream",
        input="Hello, how are you?\nHello, how are you?\n/exit\n",
        HYPOTEZ_MAX_RETRIES="0",
    )
    # The chat went on; the exit code still tells a script that a request failed.
    assert result.returncode == 1, result.stderr
    assert "429" in result.stderr and "send it again" in result.stderr
    assert result.stdout.count("I am doing great") == 1
    _first, second = aimock_env.chat_requests()
    # The failed message is not in the history sent next.
    assert second["messages"] == [{"role": "user", "content": "Hello, how are you?"}]
    dialogue_id = result.stderr.rsplit("Dialogue saved as ", 1)[1].split()[0]
    shown = hypotez_cli("dialogues", "show", dialogue_id).stdout
    assert shown.count("user:") == 1 and shown.count("assistant:") == 1


def test_chat_ends_on_a_wrong_key(aimock_env: Aimock) -> None:
    result = hypotez_cli(
        "chat", input="Hello, how are you?\nagain\n", OPENAI_API_KEY="sk-wrong-0123456789"
    )
    assert result.returncode == 1 and result.stderr.count("rejected the API key") == 1
    assert "send it again" not in result.stderr  # retrying a wrong key cannot help


def test_chat_ends_at_end_of_input_and_new_starts_afresh(aimock_env: Aimock) -> None:
    result = hypotez_cli("chat", "--no-stream", input="Hello, how are you?\n/new\nSecond start\n")
    assert result.returncode == 0, result.stderr
    assert "Started a new dialogue." in result.stderr
    second = aimock_env.last_chat_request()
    assert "stream" not in second
    assert second["messages"] == [{"role": "user", "content": "Second start"}]


def test_chat_reports_errors_and_exit_code(aimock_env: Aimock) -> None:
    aimock_env.set_chaos(drop=1.0)
    result = hypotez_cli("chat", input="Hello, how are you?\n", HYPOTEZ_MAX_RETRIES="0")
    assert result.returncode == 1
    assert "Error: The server at" in result.stderr
    assert aimock_env.api_key not in result.stderr + result.stdout


def test_ask_with_openai(aimock_env: Aimock) -> None:
    result = hypotez_cli("ask", "--json", "Hello, how are you?")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["backend"] == "openai"
    assert data["usage"]["total_tokens"] == 26


def test_describe(aimock_env: Aimock, jpeg_file: Path, tmp_path: Path) -> None:
    result = hypotez_cli("describe", str(jpeg_file), "--detail", "low")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "A small red square on a plain background."
    assert (
        aimock_env.last_chat_request()["messages"][0]["content"][1]["image_url"]["detail"] == "low"
    )

    schema = tmp_path / "schema.json"
    schema.write_text('{"type": "object", "properties": {"shape": {"type": "string"}}}')
    result = hypotez_cli(
        "describe",
        str(jpeg_file),
        "--prompt",
        "Describe it as JSON",
        "--schema",
        str(schema),
        "--json",
        "--vision",
        "openai-http",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["data"] == {"shape": "square", "colour": "red"}
    assert data["backend"] == "openai-http"


def test_describe_refuses_a_non_image(aimock_env: Aimock, tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_text("hello")
    result = hypotez_cli("describe", str(fake))
    assert result.returncode == 2
    assert "is not a PNG, JPEG, WebP or GIF image" in result.stderr
    assert aimock_env.chat_requests() == []


def test_models(aimock_env: Aimock) -> None:
    result = hypotez_cli("models")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gpt-4o", "(aimock)", "gpt-4o-mini", "(aimock)"]
    data = json.loads(hypotez_cli("models", "--json").stdout)
    assert [m["id"] for m in data] == ["gpt-4o", "gpt-4o-mini"]


def test_models_with_a_wrong_key(aimock_env: Aimock) -> None:
    result = hypotez_cli("models", OPENAI_API_KEY="sk-wrong-123456789")
    assert result.returncode == 1
    assert "rejected the API key" in result.stderr
    assert "sk-wrong-123456789" not in result.stderr


def test_assistants_lifecycle_and_chat_with_one(aimock_env: Aimock, tmp_path: Path) -> None:
    assert (
        hypotez_cli(
            "assistants", "add", "poet", "--name", "Poet", "--instructions", "Rhyme."
        ).returncode
        == 0
    )
    again = hypotez_cli("assistants", "add", "poet")
    assert again.returncode == 2 and "--replace" in again.stderr
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps({"assistants": [{"id": "coder", "name": "Coder", "model": "gpt-4o"}]})
    )
    assert hypotez_cli("assistants", "import", str(catalog)).returncode == 0
    listed = json.loads(hypotez_cli("assistants", "list", "--json").stdout)
    assert [(a["id"], a["name"], a["model"]) for a in listed] == [
        ("coder", "Coder", "gpt-4o"),
        ("poet", "Poet", None),
    ]
    plain = hypotez_cli("assistants")  # no command: the list, like `hypotez models`
    assert plain.returncode == 0
    assert [line.split()[0] for line in plain.stdout.splitlines()] == ["coder", "poet"]

    result = hypotez_cli("chat", "--assistant", "poet", input="Hello, how are you?\n/exit\n")
    assert result.returncode == 0, result.stderr
    assert aimock_env.last_chat_request()["messages"][0] == {"role": "system", "content": "Rhyme."}

    assert hypotez_cli("assistants", "remove", "poet").returncode == 0
    missing = hypotez_cli("assistants", "remove", "poet")
    assert missing.returncode == 2 and "No assistant 'poet'" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "x"}]')
    refused = hypotez_cli("assistants", "import", str(bad))
    assert refused.returncode == 2 and 'needs an "id"' in refused.stderr


def test_concurrent_adds_of_one_assistant_id_let_exactly_one_win(home: Path) -> None:
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    for round_ in range(3):
        name = f"race{round_}"
        procs = [
            subprocess.Popen(
                [exe, "assistants", "add", name, "--instructions", f"writer {i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        codes = sorted(p.wait(timeout=120) for p in procs)
        for p in procs:
            p.communicate()
        assert codes == [0, 2, 2, 2], f"round {round_}: {codes}"

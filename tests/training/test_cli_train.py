"""``hypotez train ...`` run as a user runs it: the installed script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .conftest import uploaded_bytes
from .helpers import chat, good_examples, write_jsonl

if TYPE_CHECKING:
    from hypotez_test_servers.aimock import Aimock


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    return subprocess.run(
        [exe, "train", *args], capture_output=True, env=dict(os.environ), timeout=120
    )


def csv_file(path: Path) -> Path:
    rows = "".join(f'"Как сделать {i}, быстро?","Так: шаг {i}",Кратко\n' for i in range(12))
    path.write_text("prompt,completion,system\n" + rows, encoding="utf-8-sig")
    return path


def test_validate_prints_errors_with_lines_and_exits_2(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [*good_examples(10), chat("q", ""), "{oops"])
    result = run("validate", str(path))
    assert result.returncode == 2
    out = result.stdout.decode()
    assert f"{path}:11: message 2 (assistant) has empty content" in out
    assert f"{path}:12: invalid JSON" in out
    assert "nothing was uploaded" in result.stderr.decode()
    ok = run("validate", "--json", str(write_jsonl(tmp_path / "ok.jsonl", good_examples(10))))
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["ok"] is True


def test_prepare_writes_the_exact_upload_file(tmp_path: Path) -> None:
    result = run("prepare", str(csv_file(tmp_path / "t.csv")), "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    assert json.loads(lines[0])["messages"][1] == {
        "role": "user",
        "content": "Как сделать 0, быстро?",
    }


@pytest.mark.aimock
def test_submit_a_csv_then_wait_list_events_and_cancel(aimock_env: Aimock, tmp_path: Path) -> None:
    aimock = aimock_env
    path = csv_file(tmp_path / "train.csv")
    expected = run("prepare", str(path)).stdout
    result = run(
        "submit",
        str(path),
        "-d",
        "how-to bot",
        "--suffix",
        "howto",
        "--epochs",
        "2",
        "--metadata",
        "team=docs",
    )
    assert result.returncode == 0, result.stderr.decode()
    job_id = result.stdout.decode().strip()
    [body] = [e["body"] for e in aimock.journal("/v1/fine_tuning/jobs", method="POST")]
    assert uploaded_bytes(aimock, body["training_file"]) == expected  # byte-exact upload
    assert body["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}
    assert body["metadata"] == {"team": "docs"}

    listed = run("list")
    assert job_id in listed.stdout.decode() and "how-to bot" in listed.stdout.decode()

    waited = run("wait", job_id, "--interval", "0.1")
    assert waited.returncode == 0, waited.stderr.decode()
    assert "[####] succeeded" in waited.stderr.decode()
    assert f"ft:gpt-4o-mini:aimock:howto:{job_id[-6:]}" in waited.stdout.decode()

    status = json.loads(run("status", job_id, "--json").stdout)
    assert status["status"] == "succeeded" and status["description"] == "how-to bot"
    events = run("events", job_id).stdout.decode().splitlines()
    assert "Job created" in events[0] and "Training complete" in events[-1]

    other = run("submit", str(path)).stdout.decode().strip()
    cancelled = run("cancel", other)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout.decode()
    again = run("cancel", other)
    assert again.returncode == 2 and "already terminal" in again.stderr.decode()
    jobs = json.loads(run("list", "--json").stdout)
    assert {j["id"]: j["status"] for j in jobs} == {job_id: "succeeded", other: "cancelled"}


@pytest.mark.aimock
def test_submit_invalid_data_exits_2_and_uploads_nothing(
    aimock_env: Aimock, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("prompt,completion\n" + "q,a\n" * 9 + "x,y,z\n", encoding="utf-8")
    result = run("submit", str(path))
    assert result.returncode == 2
    assert f"{path}:11: the row has 3 fields" in result.stderr.decode()
    assert aimock_env.journal("/v1/files") == []


@pytest.mark.aimock
def test_submit_with_wait_and_dialogues(aimock_env: Aimock, tmp_path: Path, home: Path) -> None:
    from hypotez import DialogueInfo, Sentiment, Turn
    from hypotez_files.storage import FileStorage

    store = FileStorage(home)
    for d in range(10):
        store.create_dialogue(DialogueInfo(id=f"d{d}"))
        store.append_turns(
            f"d{d}",
            [
                Turn(role="user", content=f"q{d}"),
                Turn(role="assistant", content=f"a{d}", sentiment=Sentiment("positive", 0.5, "t")),
            ],
        )
    result = run("submit", "--dialogues", "--positive", "--wait", "--interval", "0.1")
    assert result.returncode == 0, result.stderr.decode()
    assert "succeeded" in result.stderr.decode()
    [body] = [e["body"] for e in aimock_env.journal("/v1/fine_tuning/jobs", method="POST")]
    assert (
        uploaded_bytes(aimock_env, body["training_file"]).decode().count('"role":"assistant"') == 10
    )


def test_no_key_says_how_to_configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "ok.jsonl", good_examples(10))
    result = run("submit", "--trainer", "openai", str(path))
    assert result.returncode == 1
    assert "OPENAI_API_KEY" in result.stderr.decode()
    # Without a key the default trainer is the offline one, when it is installed; without
    # that too, the error says how to configure the hosted one.
    monkeypatch.setenv("HYPOTEZ_DISABLE_PLUGINS", "lora")
    result = run("submit", str(path))
    assert result.returncode == 1
    assert "OPENAI_API_KEY" in result.stderr.decode()

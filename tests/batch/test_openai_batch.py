"""The openai-batch engine against aimock's /v1/batches (and its own mapping, in unit tests).

aimock 1.43 moves a batch validating -> in_progress -> completed on successive retrieves and
answers every request line with the same canned chat completion ("Mock batch completion"),
whatever the fixtures say; batches fail or expire only as a whole (X-AIMock-Batch-Outcome).
So these tests check what the engine controls: the request lines, the parts, the records, the
mapping back by custom_id, resuming and collecting from other processes, cancelling.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import hypotez
import pytest
from hypotez import batch

pytestmark = pytest.mark.aimock

PROMPTS = [f"Question number {i}?" for i in range(5)]


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)),
        encoding="utf-8",
    )
    return path


def hypotez_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``hypotez ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-c", "from hypotez.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_run_completes_in_parts_and_its_record_holds_the_batch_ids(
    aimock_env: Any, prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answers.parquet"
    summary = batch.run(
        "ask",
        prompts,
        out,
        engine="openai-batch",
        system="Answer in one word.",
        max_tokens=5,
        options={"max_requests": 2, "poll_interval": 0.05},
        progress=False,
    )
    assert summary.status == "completed" and (summary.done, summary.failed) == (5, 0)
    assert summary.cost_usd is not None and summary.cost_usd > 0  # gpt-4o-mini's batch price
    rows = batch.read_output(out)
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(5)]
    assert {(r["text"], r["backend"], r["model"]) for r in rows} == {
        ("Mock batch completion", "openai-batch", "gpt-4o-mini")
    }
    [record] = batch.list_jobs()
    parts = record["meta"]["parts"]
    assert [p["rows"] for p in parts] == [2, 2, 1]
    assert all(p["batch_id"].startswith("batch") and p["collected"] for p in parts)
    # What was uploaded: one chat request per row, custom_id = the row's id.
    sent = []
    for part in parts:
        with urllib_open(aimock_env, f"/v1/files/{part['file_id']}/content") as fh:
            sent += [json.loads(line) for line in fh.read().splitlines()]
    assert [s["custom_id"] for s in sent] == [f"q{i}" for i in range(5)]
    assert sent[0]["url"] == "/v1/chat/completions" and sent[0]["method"] == "POST"
    assert sent[0]["body"]["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": PROMPTS[0]},
    ]
    assert sent[0]["body"]["max_completion_tokens"] == 5
    created = [
        e for e in aimock_env.journal("/v1/batches", method="POST") if e["path"] == "/v1/batches"
    ]
    assert len(created) == 3


def urllib_open(server: Any, path: str) -> Any:
    import urllib.request

    request = urllib.request.Request(
        server.url + path, headers={"Authorization": f"Bearer {server.api_key}"}
    )
    return urllib.request.urlopen(request, timeout=10)


def test_submitted_by_one_process_followed_and_collected_by_others(
    aimock_env: Any, prompts: Path, tmp_path: Path, home: Path
) -> None:
    env = {**os.environ}
    out = tmp_path / "answers.jsonl"
    first = hypotez_cli(
        "batch",
        "run",
        "ask",
        str(prompts),
        "-o",
        str(out),
        "--engine",
        "openai-batch",
        "--no-wait",
        "-E",
        "max_requests=3",
        "-E",
        "poll_interval=0.05",
        env=env,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("submitted:") and "hypotez batch collect" in first.stdout
    assert not out.exists()
    job_id = first.stdout.split("hypotez batch collect ")[1].split("`")[0]

    status = hypotez_cli("batch", "status", str(out), env=env)
    assert status.returncode == 0, status.stderr
    assert f"{job_id}: submitted" in status.stdout and status.stdout.count("batch") >= 2

    listed = hypotez_cli("batch", "list", "--json", env=env)
    [record] = json.loads(listed.stdout)
    assert record["id"] == job_id and len(record["meta"]["parts"]) == 2

    collected = hypotez_cli("batch", "collect", job_id, "--wait", env=env)
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.startswith("completed: 5 done, 0 failed")
    assert [r["id"] for r in batch.read_output(out)] == [f"q{i}" for i in range(5)]

    # Running the job again from yet another process finds nothing left to do or to pay for.
    again = hypotez_cli(
        "batch", "run", "ask", str(prompts), "-o", str(out), "--engine", "openai-batch", env=env
    )
    assert again.returncode == 0 and "0 done, 0 failed, 5 skipped" in again.stdout
    assert (
        len(
            [
                e
                for e in aimock_env.journal("/v1/batches", method="POST")
                if e["path"] == "/v1/batches"
            ]
        )
        == 2
    )


def test_a_cancelled_batch_leaves_error_rows_that_a_rerun_submits_again(
    aimock_env: Any, prompts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "answers.jsonl"
    options = {"poll_interval": 0.05}
    first = batch.run(
        "ask", prompts, out, engine="openai-batch", wait=False, options=options, progress=False
    )
    assert first.status == "submitted" and first.pending == 5
    record = batch.cancel(first.job_id)
    assert record["status"] == "cancelled"
    assert record["meta"]["parts"][0]["status"] == "cancelling"
    collected = batch.collect(first.job_id, wait=True, progress=False)
    assert collected.status == "completed" and collected.failed == 5
    rows = batch.read_output(out)
    assert all("ended as cancelled" in r["error"] for r in rows)
    rerun = batch.run("ask", prompts, out, engine="openai-batch", options=options, progress=False)
    assert (rerun.status, rerun.done, rerun.failed) == ("completed", 5, 0)
    assert all(r["error"] is None for r in batch.read_output(out))


def test_a_sentiment_job_classifies_with_the_llm_request_and_refuses_another_analyzer(
    aimock_env: Any, tmp_path: Path
) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("I love it\n", encoding="utf-8")
    with pytest.raises(hypotez.InputError, match="--analyzer vader runs on the local or ray"):
        batch.run(
            "sentiment",
            source,
            tmp_path / "o.jsonl",
            engine="openai-batch",
            analyzer="vader",
            progress=False,
        )
    summary = batch.run(
        "sentiment",
        source,
        tmp_path / "s.jsonl",
        engine="openai-batch",
        options={"poll_interval": 0.05},
        progress=False,
    )
    # aimock's canned answer is not the JSON asked for: an error row that says so.
    [row] = batch.read_output(tmp_path / "s.jsonl")
    assert summary.failed == 1 and "gave an unusable sentiment answer (not JSON)" in row["error"]


# -- the mapping, without a server ------------------------------------------------------------
class FakeFiles:
    def __init__(self, contents: dict[str, list[dict[str, Any]]]) -> None:
        self.contents = contents

    async def content(self, file_id: str) -> Any:
        lines = b"".join(json.dumps(x).encode() + b"\n" for x in self.contents[file_id])
        return SimpleNamespace(content=lines + b"{torn")


def completion(text: str, prompt: int = 10, completion_tokens: int = 4) -> dict[str, Any]:
    return {
        "status_code": 200,
        "body": {
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens,
            },
        },
    }


async def test_output_and_error_lines_map_back_and_missing_rows_become_errors(
    tmp_path: Path,
) -> None:
    from hypotez_openai.batch import OpenAIBatchEngine
    from hypotez_openai.client import Config

    settings = hypotez.Settings.load(env={"OPENAI_API_KEY": "sk-test"})
    engine = OpenAIBatchEngine(Config.from_settings(settings), settings)
    task = batch.make_task("sentiment")
    put: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"parts": [{"part": "p1", "rows": 4}]}

    async def record(results: Any) -> None:
        put.extend(results)

    async def update(change: Any) -> dict[str, Any]:
        return change(meta)

    job = batch.Job(
        id="job1",
        task=task,
        context=None,
        options={},
        wait=False,
        total=4,
        pending=4,  # type: ignore[arg-type]
        rows=None,
        put=record,
        cancelled=lambda: False,
        report=lambda **_: None,  # type: ignore[arg-type]
        meta=meta,
        update_meta=update,
        state_dir=str(tmp_path),
        worker_spec=None,  # type: ignore[arg-type]
    )
    (tmp_path / "openai-batch").mkdir()
    (tmp_path / "openai-batch" / "p1.ids").write_text(json.dumps(["a", "b", "c", "d"]))
    verdict = json.dumps({"results": {"0": {"label": "positive", "score": 0.9}}})
    client = SimpleNamespace(
        files=FakeFiles(
            {
                "out": [
                    {"custom_id": "a", "response": completion(verdict), "error": None},
                    {
                        "custom_id": "b",
                        "response": {
                            "status_code": 400,
                            "body": {"error": {"message": "bad request"}},
                        },
                    },
                ],
                "err": [
                    {
                        "custom_id": "c",
                        "response": None,
                        "error": {"code": "batch_expired", "message": "expired before done"},
                    }
                ],
            }
        )
    )
    batch_obj = SimpleNamespace(
        id="batch_1", status="expired", output_file_id="out", error_file_id="err"
    )
    await engine._collect(job, client, {"part": "p1"}, batch_obj)
    by_id = {r["id"]: r for r in put}
    assert (by_id["a"]["label"], by_id["a"]["score"], by_id["a"]["error"]) == (
        "positive",
        0.9,
        None,
    )
    assert by_id["a"]["model"] == "gpt-4o-mini-2024-07-18"
    assert "HTTP 400): bad request" in by_id["b"]["error"]
    assert "expired before done" in by_id["c"]["error"]
    assert "ended as expired" in by_id["d"]["error"]
    assert job.cost_usd == pytest.approx((10 * 0.075 + 4 * 0.30) / 1_000_000)
    assert job.meta["parts"][0]["collected"] is True

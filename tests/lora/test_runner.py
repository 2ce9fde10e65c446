"""Jobs in child processes: a job folder of plain files, cancel that really stops the worker,
and a worker that dies (killed, crashed) marked failed with the reason. The workflow that
docs/backends/lora.md shows (start, wait, status, read_events) is the first test here."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypotez import TrainingDataError
from hypotez_lora import runner
from hypotez_lora.adapter import validate_adapter
from hypotez_lora.base import sha256_file
from hypotez_lora.errors import BaseModelError, JobError
from lora.fact import rows, write_jsonl

#: Enough epochs that a job on the tiny model runs until the test stops it.
FOREVER = {"epochs": 100_000, "threads": 1}


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[list[Path]]:
    """Job folders of the test; their processes are killed at teardown if still alive."""
    started: list[Path] = []
    yield started
    for job in started:
        with contextlib.suppress(Exception):
            current = runner._read_status(job)
            for pid, start in (
                (current.worker_pid, current.worker_start),
                (current.pid, current.pid_start),
            ):
                if runner._alive(pid, start):
                    os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]


def wait_for(check: Callable[[], bool], timeout: float = 180, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def start(jobs: list[Path], tmp_path: Path, tiny_base: Path, name: str, **settings: object) -> Path:
    job = tmp_path / name
    jobs.append(job)
    pid = runner.start(
        job,
        data=write_jsonl(tmp_path / f"{name}.jsonl"),
        base=tiny_base,
        settings=settings,
        name=name,
    )
    assert pid > 0
    return job


def running_steps(job: Path) -> Callable[[], bool]:
    return lambda: runner.status(job).step >= 2 or runner.status(job).final


def test_a_job_trains_an_adapter_and_records_how(
    jobs: list[Path], tmp_path: Path, tiny_base: Path, lora_cache: Path
) -> None:
    job = tmp_path / "job"
    jobs.append(job)
    data = write_jsonl(tmp_path / "fact.jsonl")
    pid = runner.start(
        job,
        data=data,
        base=tiny_base,
        settings={"epochs": 2, "threads": 1},
        name="zorbia",
        cache_dir=lora_cache,
    )
    # The caller gets the job at once; the training happens in the job's own processes.
    first = runner.status(job)
    assert first.state in ("queued", "running") and first.pid == pid and not first.adapter
    final = runner.wait(job, timeout=300)
    assert final.state == "succeeded", final.error
    assert final.step == final.total_steps == 6 and final.adapter == str(job / "adapter.gguf")
    assert {p.name for p in job.iterdir()} >= {
        "request.json",
        "data.jsonl",
        "status.json",
        "events.jsonl",
        "worker.log",
        "adapter.gguf",
        "metadata.json",
    }
    validate_adapter(job / "adapter.gguf", tiny_base)
    meta = json.loads((job / "metadata.json").read_text())
    assert meta["base"]["sha256"] == sha256_file(tiny_base)
    assert meta["data"]["sha256"] == sha256_file(data) and meta["data"]["examples"] == 12
    assert meta["settings"]["epochs"] == 2 and meta["name"] == "zorbia"
    assert meta["packages"]["torch"].startswith("2.13.0") and meta["packages"]["peft"]
    assert len(meta["training"]["loss"]) == len(meta["training"]["step_seconds"]) == 6
    assert meta["training"]["peak_rss_bytes"] > 50 * 1024**2
    assert meta["adapter"]["sha256"] == sha256_file(job / "adapter.gguf")
    events = runner.read_events(job)
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4, 5, 6]
    assert all({"loss", "seconds", "tokens"} <= e.keys() for e in steps)
    assert events[-1] == {**events[-1], "type": "status", "state": "succeeded"}
    assert runner.read_events(job, after=len(events) - 1) == events[-1:]
    # A final job stays final: cancel changes nothing.
    assert runner.cancel(job).state == "succeeded"


def test_bad_requests_fail_at_once_without_a_job(tmp_path: Path, tiny_base: Path) -> None:
    data = write_jsonl(tmp_path / "ok.jsonl")
    with pytest.raises(TrainingDataError, match="at least 10"):
        runner.start(
            tmp_path / "a", data=write_jsonl(tmp_path / "few.jsonl", rows()[:3]), base=tiny_base
        )
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(TrainingDataError, match="line 1"):
        runner.start(tmp_path / "b", data=bad, base=tiny_base)
    with pytest.raises(ValueError, match="unknown training option"):
        runner.start(tmp_path / "c", data=data, base=tiny_base, settings={"ranks": 3})
    with pytest.raises(BaseModelError, match="not a file"):
        runner.start(tmp_path / "d", data=data, base=tmp_path / "missing.gguf")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x").write_text("")
    with pytest.raises(JobError, match="not empty"):
        runner.start(tmp_path / "e", data=data, base=tiny_base)
    with pytest.raises(JobError, match="no training job"):
        runner.status(tmp_path / "nothing-here")
    assert not any((tmp_path / n).exists() for n in "abcd")


@pytest.mark.slow
def test_cancel_really_stops_a_running_job(
    jobs: list[Path], tmp_path: Path, tiny_base: Path
) -> None:
    job = start(jobs, tmp_path, tiny_base, "cancel", **FOREVER)
    wait_for(running_steps(job), what="the first steps")
    before = runner.status(job)
    final = runner.cancel(job)
    assert final.state == "cancelled" and final.error is None
    assert not runner._alive(before.worker_pid, before.worker_start)
    wait_for(lambda: not runner._alive(before.pid, before.pid_start), 30, "the supervisor to exit")
    assert not (job / "adapter.gguf").exists()
    assert runner.status(job).state == "cancelled"
    kinds = [e["type"] for e in runner.read_events(job)]
    assert "step" in kinds and kinds[-1] == "status"


@pytest.mark.slow
def test_a_cancel_while_loading_stops_the_job_too(
    jobs: list[Path], tmp_path: Path, tiny_base: Path
) -> None:
    job = start(jobs, tmp_path, tiny_base, "early", **FOREVER)
    final = runner.cancel(job)
    assert final.state == "cancelled"
    current = runner.status(job)
    wait_for(lambda: not runner._alive(current.worker_pid, current.worker_start), 30, "the worker")
    assert current.step == 0


@pytest.mark.slow
def test_a_killed_worker_is_marked_failed_with_the_signal(
    jobs: list[Path], tmp_path: Path, tiny_base: Path
) -> None:
    job = start(jobs, tmp_path, tiny_base, "killed", **FOREVER)
    wait_for(running_steps(job), what="the first steps")
    os.kill(runner.status(job).worker_pid, signal.SIGKILL)  # type: ignore[arg-type]
    final = runner.wait(job, timeout=60)
    assert final.state == "failed"
    assert "killed by signal SIGKILL" in (final.error or "")


@pytest.mark.slow
def test_a_job_whose_processes_all_died_is_marked_failed(
    jobs: list[Path], tmp_path: Path, tiny_base: Path
) -> None:
    job = start(jobs, tmp_path, tiny_base, "gone", **FOREVER)
    wait_for(running_steps(job), what="the first steps")
    current = runner.status(job)
    os.killpg(current.pid, signal.SIGKILL)  # type: ignore[arg-type]  # the supervisor leads its group
    # SIGKILL is delivered to each process of the group in its own time: wait for both.
    wait_for(
        lambda: (
            not runner._alive(current.pid, current.pid_start)
            and not runner._alive(current.worker_pid, current.worker_start)
        ),
        30,
        "the kill",
    )
    final = runner.status(job)
    assert final.state == "failed" and "ended without recording a result" in (final.error or "")
    assert runner.status(job) == final  # stays failed


@pytest.mark.slow
def test_a_crash_inside_training_is_failed_with_the_exception(
    jobs: list[Path], tmp_path: Path, tiny_base: Path
) -> None:
    """Examples longer than the base's context (2048 tokens for the tiny model) are only found
    once the tokenizer is loaded, in the job: it fails with the reason, not a hang."""
    long = [
        {
            "messages": [
                {"role": "user", "content": "a " * 3000},
                {"role": "assistant", "content": "b"},
            ]
        }
    ]
    data = write_jsonl(tmp_path / "long.jsonl", rows() + long)
    job = tmp_path / "long"
    jobs.append(job)
    runner.start(job, data=data, base=tiny_base, settings={"threads": 1})
    final = runner.wait(job, timeout=180)
    assert final.state == "failed"
    assert "TrainingDataError" in (final.error or "") and "example 13" in (final.error or "")

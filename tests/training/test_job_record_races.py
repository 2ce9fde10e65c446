"""A job's record refreshed (``wait``/``status``) by one process while another saves its
description (``save_job_id``): both changes must survive, whatever the interleaving."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypotez import JobRecord
from hypotez_files.storage import FileStorage

ROUNDS = 60

# Both children wait for the `go` file, so their read-change-write cycles really overlap.
CHILD = """
import sys, time
from pathlib import Path
from hypotez import JobRecord, training
from hypotez_files.storage import FileStorage

root, role, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
store = FileStorage(root)
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("the test never said go")
    time.sleep(0.01)
for i in range(rounds):
    if role == "refresh":  # what status()/wait() do after each poll of the trainer
        fresh = JobRecord("ftjob-race", status="running", meta={f"poll-{i}": i})
        training.remember(store, fresh)
    else:
        training.save_job_id(store, "ftjob-race", f"description {i}")
"""


def test_refreshing_and_describing_a_job_at_once_lose_nothing(tmp_path: Path) -> None:
    root, go = tmp_path / "data", tmp_path / "go"
    FileStorage(root).save_job(JobRecord("ftjob-race", status="queued", meta={"examples": 10}))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), role, str(ROUNDS), str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in ("refresh", "describe")
    ]
    try:
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    job = FileStorage(root).list_jobs()[0]
    assert job.status == "running"
    assert job.description == f"description {ROUNDS - 1}"  # the last save, never undone
    # Every refresh's meta, and what submit saved before them, are all still there.
    assert job.meta == {"examples": 10, **{f"poll-{i}": i for i in range(ROUNDS)}}

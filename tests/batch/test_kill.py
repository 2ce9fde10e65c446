"""A job killed halfway (SIGKILL, real processes) resumes without duplicates or gaps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from batch.conftest import write_csv
from batch.plugin import verdict
from hypotez import batch
from hypotez.batch.state import State

TESTS = Path(__file__).resolve().parents[1]
CHILD = """
import importlib, json, sys
import hypotez
from hypotez import batch

pm = hypotez.make_plugin_manager(plugins=[importlib.import_module("batch.plugin")])
settings = hypotez.Settings.load(options={"words": {"delay": float(sys.argv[3])}})
with hypotez.Context(settings, plugin_manager=pm) as ctx:
    summary = batch.run(
        "sentiment", sys.argv[1], sys.argv[2], analyzer="words", context=ctx, progress=False,
        options={"batch_size": 5, "workers": int(sys.argv[4])},
    )
print(json.dumps(summary.to_dict()))
"""
ROWS = 240


def start(source: Path, out: Path, delay: float, workers: int, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS), "HYPOTEZ_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(source), str(out), str(delay), str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the kill reaches the pool's processes too
    )


def journal_lines(out: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in State(out).journals())


def test_sigkill_halfway_then_rerun_gives_every_row_once_in_order(
    tmp_path: Path, home: Path
) -> None:
    texts = [("good " if i % 2 else "bad ") + str(i) for i in range(ROWS)]
    source = write_csv(tmp_path / "in.csv", [{"text": t} for t in texts])
    out = tmp_path / "out.parquet"
    first = start(source, out, 0.01, 2, home)
    try:
        deadline = time.monotonic() + 60
        while journal_lines(out) < 60:
            assert first.poll() is None, (
                f"the job ended before it was killed: {first.communicate()}"
            )
            assert time.monotonic() < deadline, "no results were journaled within 60 s"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    survived = journal_lines(out)
    assert 60 <= survived < ROWS
    assert not out.exists()  # no half-written output

    second = start(source, out, 0.0, 1, home)
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    assert summary["skipped"] >= 60
    assert summary["skipped"] + summary["done"] + summary["failed"] == ROWS
    rows = batch.read_output(out)
    assert [r["id"] for r in rows] == list(range(1, ROWS + 1))  # no gap, no duplicate
    assert [r["label"] for r in rows] == [verdict(t, "words").label for t in texts]
    assert all(r["error"] is None for r in rows)

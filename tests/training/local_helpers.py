"""Helpers for the ``local`` trainer tests: the CLI as a user runs it, and a child process
that asks a fine-tuned model through hypotez (so that a crash in llama.cpp fails one test,
not the whole run)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def hypotez(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})},
        timeout=timeout,
    )


def ask_in_child(model: str, questions: list[str], timeout: float = 300) -> dict[str, Any]:
    """Ask ``questions`` through ``hypotez.Session(model=model)`` in a child process, each in
    a new conversation (no question sees another's answer).

    Returns ``{"answers": [...]}`` or ``{"error": "ClassName", "message": "..."}``; a crash
    (the child killed by a signal) fails with its output.
    """
    code = (
        "import json, sys, hypotez\n"
        "model, questions = sys.argv[1], json.loads(sys.argv[2])\n"
        "try:\n"
        "    answers = []\n"
        "    with hypotez.Context(chat='llamacpp') as context:  # one model load for all\n"
        "        for q in questions:\n"
        "            with hypotez.Session(context=context, sentiment=False, model=model) as s:\n"
        "                answers.append(s.ask(q, temperature=0, max_tokens=24).text)\n"
        "    print(json.dumps({'answers': answers}))\n"
        "except hypotez.HypotezError as exc:\n"
        "    print(json.dumps({'error': type(exc).__name__, 'message': str(exc)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, model, json.dumps(questions)],
        capture_output=True,
        text=True,
        env={**os.environ, "HYPOTEZ_LLAMACPP_N_THREADS": "1"},
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"the child exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def wait_for(check: Callable[[], bool], timeout: float = 180, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def job_status(home: Path, job_id: str) -> dict[str, Any]:
    """The job folder's status.json, read as a user would look at it."""
    path = home / "lora" / "jobs" / job_id / "status.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"

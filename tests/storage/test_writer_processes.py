"""The conformance suite's writer processes: a stuck child fails the test in bounded time."""

from __future__ import annotations

import time

import pytest
from hypotez import DialogueInfo
from hypotez.conformance import StorageFactory, writer_processes

JOB = {"dialogue": "d", "writer": 0, "appends": 2, "batch": 1, "pad": 0, "job": False}


def test_a_silent_writer_fails_the_test_within_its_timeout_and_is_killed(
    file_factory: StorageFactory,
) -> None:
    file_factory().create_dialogue(DialogueInfo("d"))
    with writer_processes(timeout=2) as spawn:
        proc = spawn(file_factory, JOB)
        proc.expect("ready")
        start = time.monotonic()
        with pytest.raises(pytest.fail.Exception, match="printed nothing for 2 s"):
            proc.read_line()  # it waits for "go", which never comes
        assert time.monotonic() - start < 10
        assert proc.proc.poll() is not None  # killed, not left behind


def test_writers_are_killed_when_the_test_fails_midway(file_factory: StorageFactory) -> None:
    file_factory().create_dialogue(DialogueInfo("d"))
    with pytest.raises(RuntimeError), writer_processes(timeout=60) as spawn:
        procs = [spawn(file_factory, {**JOB, "writer": w}) for w in range(2)]
        procs[0].expect("ready")
        raise RuntimeError("an assertion failed here")
    assert all(p.proc.poll() is not None for p in procs)


def test_a_writer_that_finishes_reports_every_ack(file_factory: StorageFactory) -> None:
    file_factory().create_dialogue(DialogueInfo("d"))
    with writer_processes(timeout=60) as spawn:
        proc = spawn(file_factory, JOB)
        proc.expect("ready")
        proc.send("go")
        assert proc.finish() == ["ack 0", "ack 1"]
        assert proc.proc.returncode == 0
    assert len(file_factory().load_dialogue("d").turns) == 2

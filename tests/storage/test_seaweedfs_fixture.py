"""The SeaweedFS test server leaves nothing behind: no process, no /tmp socket files.

Checked for a normal stop, a test that fails while using the fixture, and a pytest that is
killed outright (the server dies with it; its socket files are swept by the next run).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from hypotez_test_servers.seaweedfs import SeaweedFS

TESTS = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.s3


def gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie no one has reaped yet counts as gone once every thread of it has exited
        # (the leader shows Z while the others still hold the process's files open).
        states = []
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            with contextlib.suppress(OSError):
                states.append(stat.read_text().split(") ", 1)[1][:1])
        if states and all(state == "Z" for state in states):
            return True
        time.sleep(0.1)
    return False


def sockets_of(ports: list[int]) -> list[str]:
    return [p for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")]


def test_stop_removes_the_process_and_its_socket_files(
    start_seaweedfs: Callable[..., SeaweedFS],
) -> None:
    server = start_seaweedfs()
    assert server.process is not None
    pid, files = server.process.pid, server.socket_files()
    assert files, "weed mini made no socket files: the cleanup below would check nothing"
    server.stop()
    assert gone(pid)
    assert server.socket_files() == [] and not any(os.path.exists(f) for f in files)


def run_inner(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    """Run a test module of its own in a child pytest; it writes what it started to info.json."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(body))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "hypotez_test_servers.seaweedfs",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS), "INFO": str(tmp_path / "info.json")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    return proc, json.loads((tmp_path / "info.json").read_text())


def test_a_failing_test_still_stops_its_servers(tmp_path: Path) -> None:
    proc, info = run_inner(
        tmp_path,
        """
        import json, os

        def test_fails(start_seaweedfs, seaweedfs):
            private = start_seaweedfs()
            servers = [private, seaweedfs]
            json.dump(
                {"pids": [s.process.pid for s in servers],
                 "ports": [p for s in servers for p in s.ports.values()]},
                open(os.environ["INFO"], "w"),
            )
            assert False, "this test fails on purpose"
        """,
    )
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stdout + proc.stderr
    assert all(gone(pid) for pid in info["pids"])
    assert sockets_of(info["ports"]) == []


def test_a_killed_pytest_takes_its_server_along_and_the_next_run_sweeps_its_sockets(
    tmp_path: Path,
) -> None:
    from hypotez_test_servers.seaweedfs import remove_stale_sockets

    script = tmp_path / "holder.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, time
            from pathlib import Path
            from hypotez_test_servers.seaweedfs import SeaweedFS
            server = SeaweedFS(Path(sys.argv[1])).start()
            print(json.dumps({"pid": server.process.pid, "ports": list(server.ports.values())}),
                  flush=True)
            time.sleep(600)
            """
        )
    )
    holder = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "srv")],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        info = json.loads(holder.stdout.readline())
    finally:
        holder.send_signal(signal.SIGKILL)  # no finally, no atexit: as if pytest were killed
        holder.wait(timeout=30)
    assert gone(info["pid"])  # the server died with it
    # A killed server leaves its socket files, which the next run removes. (Another test run on
    # this machine may sweep them first: what matters is that none is left.)
    deadline = time.monotonic() + 15
    while sockets_of(info["ports"]) and time.monotonic() < deadline:
        remove_stale_sockets()
        time.sleep(0.2)
    assert sockets_of(info["ports"]) == []


def test_the_sweep_removes_only_sockets_nobody_listens_on() -> None:
    import socket
    import uuid

    from hypotez_test_servers.seaweedfs import remove_stale_sockets

    tag = uuid.uuid4().hex[:8]
    stale, live = f"/tmp/seaweedfs-stale{tag}-1.sock", f"/tmp/seaweedfs-live{tag}-2.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(stale)  # closed without unlinking: what a killed server leaves
    listener = socket.socket(socket.AF_UNIX)
    try:
        listener.bind(live)
        listener.listen(1)
        removed = remove_stale_sockets()
        assert stale in removed and not os.path.exists(stale)
        assert live not in removed and os.path.exists(live)
    finally:
        listener.close()
        for path in (stale, live):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

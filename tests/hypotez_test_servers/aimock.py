"""The aimock OpenAI-compatible server (npm ``@copilotkit/aimock``, pinned in tests/package.json).

Enable in a conftest::

    pytest_plugins = ["hypotez_test_servers.aimock"]

Fixtures:

- ``aimock_server`` (session): one aimock process on a free 127.0.0.1 port, with API-key auth on
  (``AIMOCK_API_KEYS``). Started once, killed at the end of the session.
- ``aimock`` (function): the same server, reset before the test: journal, fine-tuning/files
  store and chaos cleared, fixtures reloaded from ``aimock_fixtures_dir``.
- ``aimock_fixtures_dir`` (function): the folder of fixture JSON files loaded before each test.
  Defaults to ``tests/openai/fixtures``; override it in your own conftest to load yours.
- ``aimock_env``: ``aimock`` plus ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` set for the test.

The ``Aimock`` object gives ``base_url`` (ending in ``/v1``), ``api_key``, and helpers for the
control API: ``journal()`` (what clients really sent), ``add_fixtures()``, ``set_chaos()``,
``queue_error()``, ``reset()``. Install the server with ``npm ci --prefix tests``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

AIMOCK_VERSION = "1.43.0"
TESTS_DIR = Path(__file__).resolve().parents[1]
PACKAGE_DIR = TESTS_DIR / "node_modules" / "@copilotkit" / "aimock"
CLI = PACKAGE_DIR / "dist" / "cli.js"
DEFAULT_FIXTURES_DIR = TESTS_DIR / "openai" / "fixtures"
READY_TIMEOUT = 20.0


class AimockError(RuntimeError):
    """The aimock server could not be started or refused a control call."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_installed() -> None:
    """Fail with the command to run when the npm package is missing or the wrong version."""
    if shutil.which("node") is None:
        raise AimockError("node is not installed: aimock needs Node.js >= 20.15.")
    manifest = PACKAGE_DIR / "package.json"
    if not CLI.is_file() or not manifest.is_file():
        raise AimockError(
            f"aimock is not installed ({CLI} is missing): run `npm ci --prefix tests` "
            "from the repository root."
        )
    version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    if version != AIMOCK_VERSION:
        raise AimockError(
            f"aimock {version} is installed but the tests pin {AIMOCK_VERSION}: "
            "run `npm ci --prefix tests`."
        )


def fixture_entries(folder: Path) -> list[dict[str, Any]]:
    """Every fixture of every ``*.json`` file in ``folder``, files in name order."""
    entries: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        entries.extend(json.loads(path.read_text(encoding="utf-8"))["fixtures"])
    return entries


class Aimock:
    """A running aimock server and its control API."""

    def __init__(
        self, port: int, api_key: str, process: subprocess.Popen[bytes], log: Path
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.url = f"http://{self.host}:{port}"
        self.base_url = f"{self.url}/v1"
        self.api_key = api_key
        self.process = process
        self.log = log
        self._loaded: list[Mapping[str, Any]] = []

    # -- control API ---------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call aimock (control API or any route) with the test key; return parsed JSON."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AimockError(
                f"aimock {method} {path} -> {exc.code}: {exc.read()[:500]!r}"
            ) from exc
        return json.loads(raw) if raw else None

    def journal(
        self, path: str | None = None, *, method: str | None = None, status: int | None = None
    ) -> list[dict[str, Any]]:
        """Journal entries (oldest first), optionally only those whose path contains ``path``.

        Each entry has ``method``, ``path``, ``headers`` (lower-case names), ``body`` (the parsed
        JSON the client sent) and ``response`` (``status``, ``fixture`` ...).
        """
        query = {k: v for k, v in {"path": path, "method": method, "status": status}.items() if v}
        suffix = "?" + "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in query.items())
        entries = self.request("GET", "/__aimock/journal" + (suffix if query else ""))
        # Control calls are journaled too; callers want what the client under test sent.
        return [e for e in entries if not str(e.get("path", "")).startswith("/__aimock")]

    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of every ``POST /v1/chat/completions`` so far, oldest first."""
        return [e["body"] for e in self.journal("/v1/chat/completions", method="POST")]

    def last_chat_request(self) -> dict[str, Any]:
        bodies = self.chat_requests()
        if not bodies:
            raise AssertionError("aimock received no chat completion request")
        return bodies[-1]

    def add_fixtures(self, fixtures: Sequence[Mapping[str, Any]], *, first: bool = False) -> None:
        """Add fixtures at run time. ``first=True`` puts them before the loaded ones.

        aimock matches the first fixture that fits, so ``first`` lets a test shadow a
        file fixture; it works by reloading everything in the new order.
        """
        if first:
            self.request("DELETE", "/__aimock/fixtures")
            self.request("POST", "/__aimock/fixtures", {"fixtures": [*fixtures, *self._loaded]})
        else:
            self.request("POST", "/__aimock/fixtures", {"fixtures": list(fixtures)})
        self._loaded = [*fixtures, *self._loaded] if first else [*self._loaded, *fixtures]

    def set_chaos(
        self,
        *,
        drop: float | None = None,
        disconnect: float | None = None,
        rate_limit: float | None = None,
        malformed: float | None = None,
        latency_ms: int | None = None,
    ) -> None:
        """Server-wide failure injection: 500s, dropped connections, 429s, garbage, delay."""
        body = {
            "dropRate": drop,
            "disconnectRate": disconnect,
            "rateLimitRate": rate_limit,
            "malformedRate": malformed,
            "latencyMs": latency_ms,
        }
        self.request("POST", "/__aimock/chaos", {k: v for k, v in body.items() if v is not None})

    def clear_chaos(self) -> None:
        self.request("DELETE", "/__aimock/chaos")

    def queue_error(
        self,
        status: int,
        message: str = "injected",
        type_: str | None = None,
        code: str | None = None,
    ) -> None:
        """The next request (any route) gets this error once."""
        body = {k: v for k, v in {"message": message, "type": type_, "code": code}.items() if v}
        self.request("POST", "/__aimock/error", {"status": status, "body": body})

    def reset(self, fixtures_dir: Path | None = None) -> None:
        """Forget everything (journal, files, jobs, chaos, fixtures), then load ``fixtures_dir``."""
        self.request("POST", "/__aimock/reset")
        self.clear_chaos()
        self._loaded = []
        entries = fixture_entries(fixtures_dir) if fixtures_dir else []
        if entries:
            self.request("POST", "/__aimock/fixtures", {"fixtures": entries})
        self._loaded = list(entries)
        # The reset itself and the load are journaled; start each test with an empty journal.
        self.request("POST", "/__aimock/reset/journal")

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_aimock(fixtures_dir: Path, log_dir: Path, api_key: str | None = None) -> Aimock:
    """Start aimock on a free port and wait until it answers ``/health``."""
    check_installed()
    api_key = api_key or f"sk-aimock-test-{secrets.token_hex(8)}"
    log = log_dir / "aimock.log"
    last_error = ""
    for _attempt in range(3):  # another process may grab the free port before node binds it
        port = free_port()
        env = {**os.environ, "AIMOCK_API_KEYS": api_key}
        with log.open("ab") as out:
            process = subprocess.Popen(
                [
                    "node",
                    str(CLI),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-f",
                    str(fixtures_dir),
                    "--log-level",
                    "warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        server = Aimock(port, api_key, process, log)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.url}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return server
            except (OSError, urllib.error.URLError) as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        server.stop()
    raise AimockError(f"aimock did not become ready ({last_error}). Its log:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def aimock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aimock]:
    """One aimock process for the whole test session."""
    try:
        server = start_aimock(DEFAULT_FIXTURES_DIR, tmp_path_factory.mktemp("aimock"))
    except AimockError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aimock_fixtures_dir() -> Path:
    """The fixture files loaded before each test; override to load your own folder."""
    return DEFAULT_FIXTURES_DIR


@pytest.fixture
def aimock(aimock_server: Aimock, aimock_fixtures_dir: Path) -> Aimock:
    """The aimock server, reset and loaded with ``aimock_fixtures_dir`` for this test."""
    if aimock_server.process.poll() is not None:
        pytest.fail(f"aimock exited early. Its log:\n{aimock_server.log_tail()}", pytrace=False)
    aimock_server.reset(aimock_fixtures_dir)
    return aimock_server


@pytest.fixture
def aimock_env(aimock: Aimock, monkeypatch: pytest.MonkeyPatch) -> Aimock:
    """``aimock`` with OPENAI_API_KEY and OPENAI_BASE_URL pointing at it."""
    monkeypatch.setenv("OPENAI_API_KEY", aimock.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", aimock.base_url)
    return aimock

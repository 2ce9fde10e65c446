"""Fixtures for the whole suite.

Every test runs with a clean environment: no HYPOTEZ_* or OPENAI_* variable leaks in from the
machine, the data directory is a fresh temporary folder, and the process-wide plugin manager is
rebuilt, so tests never see each other's data or settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import hypotez
import pytest

# pytest only honours pytest_plugins in this top-level conftest. The server fixtures start
# nothing until a test asks for them.
pytest_plugins = [
    "hypotez.testing",
    "hypotez_test_servers.aimock",
    "hypotez_test_servers.seaweedfs",
    "hypotez_test_servers.llamacpp_server",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(("HYPOTEZ_", "OPENAI_")):
            monkeypatch.delenv(name)
    home = tmp_path / "hypotez-home"
    monkeypatch.setenv("HYPOTEZ_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    hypotez.reset_plugin_manager()
    yield home
    hypotez.reset_plugin_manager()


@pytest.fixture
def home(clean_env: Path) -> Path:
    """The fresh data directory (HYPOTEZ_HOME) of this test."""
    return clean_env

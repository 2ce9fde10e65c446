"""Fixtures for the fine-tuning tests: a session whose trainer talks to aimock over HTTP.

The aimock fixtures come from ``hypotez_test_servers.aimock`` (enabled in tests/conftest.py).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import hypotez
import pytest

if TYPE_CHECKING:
    from hypotez_test_servers.aimock import Aimock


@pytest.fixture
def train_settings(aimock: Aimock, tmp_path: Path) -> hypotez.Settings:
    return hypotez.Settings.load(
        env={},
        home=tmp_path / "hypotez-home",
        max_retries=0,
        timeout=10,
        options={"openai": {"api_key": aimock.api_key, "base_url": aimock.base_url}},
    )


@pytest.fixture
def train_session(train_settings: hypotez.Settings) -> Iterator[hypotez.Session]:
    with hypotez.Session(settings=train_settings, sentiment=False, trainer="openai") as s:
        yield s


def uploaded_bytes(aimock: Aimock, file_id: str) -> bytes:
    """What aimock stored for ``file_id``: ``GET /v1/files/{id}/content``, raw."""
    req = urllib.request.Request(
        f"{aimock.base_url}/files/{file_id}/content",
        headers={"Authorization": f"Bearer {aimock.api_key}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return bytes(resp.read())

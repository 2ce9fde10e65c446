"""The docs' OpenAI examples run against aimock with the answers in ``aimock-fixtures/``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def aimock_fixtures_dir() -> Path:
    return Path(__file__).parent / "aimock-fixtures"

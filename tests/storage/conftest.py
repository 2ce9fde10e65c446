"""Storages under test: a fresh file storage in the test's folder, and a fresh prefix in the
session's SeaweedFS bucket (the real S3 server, started once by ``seaweedfs``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypotez.conformance import StorageFactory

if TYPE_CHECKING:  # loaded by pytest_plugins in tests/conftest.py; importing it here spoils asserts
    from hypotez_test_servers.seaweedfs import SeaweedFS


@pytest.fixture
def file_factory(tmp_path: Path) -> StorageFactory:
    return StorageFactory((tmp_path / "store").as_uri())


def s3_factory_for(server: SeaweedFS, **options: Any) -> StorageFactory:
    """A factory for a new, empty prefix on ``server``."""
    prefix = f"t-{uuid.uuid4().hex[:12]}/hypotez"
    return StorageFactory(server.url(prefix), options={"s3": options}, env=server.env())


@pytest.fixture
def s3_factory(seaweedfs: SeaweedFS) -> StorageFactory:
    return s3_factory_for(seaweedfs)

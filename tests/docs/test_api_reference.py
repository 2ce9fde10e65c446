"""Every public name of hypotez has its entry in the API reference, generated from docstrings."""

from __future__ import annotations

import re
from pathlib import Path

import hypotez

API = Path(__file__).resolve().parents[2] / "docs" / "api.md"
#: Public names that are not documented objects of their own.
NOT_OBJECTS = {"__version__", "SCHEMA_VERSION", "hookimpl", "hookspec"}


def test_every_public_name_is_in_the_api_reference() -> None:
    documented = set(re.findall(r"^::: hypotez\.(\w+)$", API.read_text(encoding="utf-8"), re.M))
    assert set(hypotez.__all__) - NOT_OBJECTS - documented == set()
    assert documented - set(hypotez.__all__) == set()  # nothing private, nothing stale


def test_the_conformance_suite_is_in_the_api_reference() -> None:
    text = API.read_text(encoding="utf-8")
    assert "::: hypotez.conformance.StorageConformance" in text
    assert "::: hypotez.conformance.StorageFactory" in text

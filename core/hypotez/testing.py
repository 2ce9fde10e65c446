"""Pytest fixtures for people who write hypotez plugins (and for hypotez's own tests).

Enable them in a ``conftest.py``::

    pytest_plugins = ["hypotez.testing"]

Fixtures:

- ``plugin_manager``: a fresh plugin manager with the installed entry-point plugins; register
  yours with ``plugin_manager.add_plugin(module, "name")``.
- ``make_settings``: ``make_settings(**overrides)`` builds :class:`hypotez.Settings` whose data
  directory is the test's temporary folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypotez.plugins import PluginManager, make_plugin_manager
from hypotez.settings import Settings


@pytest.fixture
def plugin_manager() -> PluginManager:
    """A fresh plugin manager: core plus every installed entry-point plugin."""
    return make_plugin_manager()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build settings rooted in this test's temporary folder."""

    def make(**overrides: Any) -> Settings:
        overrides.setdefault("home", tmp_path / "home")
        return Settings.load(env={}, **overrides)

    return make

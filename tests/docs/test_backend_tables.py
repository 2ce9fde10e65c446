"""The capability pages' backend tables list every built-in backend, from the registry itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import hypotez
import pytest
from hypotez.plugins import CAPABILITIES

DOCS = Path(__file__).resolve().parents[2] / "docs"
HOOK = DOCS / "hooks" / "backend_tables.py"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("backend_tables", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
def test_every_builtin_backend_has_a_row_linked_to_its_page(capability: str) -> None:
    pm = hypotez.make_plugin_manager(env={})
    builtin = {
        name: reg
        for name, reg in pm.registry.registrations(capability).items()
        if pm.infos[reg.plugin].distribution == "hypotez"
    }
    assert builtin, f"no built-in {capability} backend"
    table = load_hook().render_table(capability, DOCS)
    for name, reg in builtin.items():
        row = next((r for r in table.splitlines() if f"`{name}`" in r.split("|")[1]), None)
        assert row is not None, f"{capability} table has no row for {name}:\n{table}"
        assert f"`{reg.plugin}`" in row
        page = load_hook().page_for(reg.plugin, name, DOCS)
        assert page is not None, (
            f"built-in {capability} backend {name!r} has no page in docs/backends"
        )
        assert f"]({page})" in row
        if capability == "storage":
            assert f"`{name}://` URLs" in row
        else:
            assert f"priority {reg.priority}" in row


def test_a_page_under_backends_links_one_level_up() -> None:
    table = load_hook().render_table("sentiment", DOCS, page_dir="backends/")
    assert "](../backends/keywords.md)" in table


def test_a_third_party_plugin_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what hypotez ships is documented, whatever else the build machine has installed."""

    class Elsewhere:
        @hypotez.hookimpl
        def register_sentiment_analyzers(self, register: Any) -> None:
            register("not-ours", lambda settings: None, priority=10**6)

    real = hypotez.make_plugin_manager

    def with_a_third_party(**kwargs: Any) -> Any:
        pm = real(**kwargs)
        pm.add_plugin(Elsewhere(), "elsewhere", "someone-elses-plugin", "1.0")
        return pm

    monkeypatch.setattr(hypotez, "make_plugin_manager", with_a_third_party)
    table = load_hook().render_table("sentiment", DOCS)
    assert "`keywords`" in table and "not-ours" not in table

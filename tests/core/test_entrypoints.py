"""The entry-point cache answers like importlib.metadata, and never with a stale answer."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from hypotez import entrypoints


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "entry-points.json"
    monkeypatch.setattr(entrypoints, "_cache_file", lambda: str(path))
    return path


def names(eps: list) -> list[tuple[str, str]]:
    return sorted((ep.name, ep.value) for ep in eps)


def test_a_cached_answer_is_the_same_as_importlib_metadatas(cache: Path) -> None:
    real = list(importlib.metadata.entry_points(group="hypotez"))
    first = entrypoints.entry_points()  # a miss: scanned and written
    assert cache.exists()
    second = entrypoints.entry_points()  # a hit
    assert names(first) == names(second) == names(real)
    by_name = {ep.name: ep for ep in second}
    import hypotez_files

    assert by_name["files"].load() is hypotez_files
    assert by_name["testplugin"].dist.name == "hypotez-testplugin"
    assert by_name["testplugin"].dist.version == "1.2.3"


def test_a_changed_folder_on_sys_path_means_a_fresh_scan(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entrypoints.entry_points()
    # A new distribution with a hypotez entry point appears in a folder on sys.path.
    site = tmp_path / "site"
    info = site / "newplugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: newplugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hypotez]\nnewplugin = newplugin_module\n")
    monkeypatch.syspath_prepend(str(site))
    assert "newplugin" in [ep.name for ep in entrypoints.entry_points()]
    # It is uninstalled: the folder changes again, and so does the answer.
    for f in info.iterdir():
        f.unlink()
    info.rmdir()
    assert "newplugin" not in [ep.name for ep in entrypoints.entry_points()]


def test_a_damaged_cache_is_ignored_and_rewritten(cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert names(entrypoints.entry_points()) == names(
        importlib.metadata.entry_points(group="hypotez")
    )
    assert cache.read_text().startswith("{")

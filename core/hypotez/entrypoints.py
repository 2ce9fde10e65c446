"""The ``hypotez`` entry points, remembered between runs so that a command starts fast.

Reading entry points means importing :mod:`importlib.metadata` (and the email and zip machinery
it pulls in) and scanning every installed distribution: about a third of ``hypotez --help``.
The process-wide plugin manager asks :func:`entry_points` instead, which answers from a small
cache file while nothing on ``sys.path`` has changed, and otherwise asks ``importlib.metadata``
and rewrites the cache.

The cache is keyed by every ``sys.path`` folder with its modification time, and by the folder
each plugin's metadata lives in: installing, upgrading or removing any package changes a
folder's time, so a stale answer is never used. Anything unexpected (no cache folder, a
damaged file) simply means asking ``importlib.metadata``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

GROUP = "hypotez"
_VERSION = 1


class EntryPoint:
    """What the plugin manager needs of an entry point: ``name``, ``value``, ``load()`` and the
    distribution's ``name``/``version`` (as ``dist``)."""

    def __init__(self, name: str, value: str, dist: tuple[str, str] | None) -> None:
        self.name, self.value = name, value
        self.dist = _Dist(*dist) if dist else None

    def load(self) -> Any:
        import importlib

        module_name, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


class _Dist:
    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version
        self.metadata = {"Name": name, "Version": version}


def _key(folders: list[str]) -> list[list[Any]]:
    key = []
    for folder in folders:
        try:
            key.append([folder, os.stat(folder).st_mtime_ns])
        except OSError:
            key.append([folder, None])
    return key


def _cache_file() -> str | None:
    try:
        import platformdirs

        folder = platformdirs.user_cache_dir("hypotez", appauthor=False)
    except Exception:
        return None
    import zlib

    # One file per interpreter: each venv has its own site-packages. (crc32, not hash(): the
    # name must be the same in every process.)
    tag = f"{zlib.crc32(sys.prefix.encode('utf-8', 'surrogateescape')):08x}"
    return os.path.join(folder, f"entry-points-{tag}.json")


def _read(path: str) -> list[EntryPoint] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("version") != _VERSION or data.get("prefix") != sys.prefix:
            return None
        if data["path_key"] != _key(list(sys.path)):
            return None
        if data["dist_key"] != _key([folder for folder, _ in data["dist_key"]]):
            return None
        return [EntryPoint(e["name"], e["value"], e["dist"]) for e in data["entry_points"]]
    except Exception:  # missing, damaged or from another layout: ask importlib.metadata
        return None


def _scan() -> tuple[list[Any], list[dict[str, Any]], list[str]]:
    import importlib.metadata

    found = list(importlib.metadata.entry_points(group=GROUP))
    records, folders = [], []
    for ep in found:
        dist = ep.dist
        folder = getattr(dist, "_path", None)  # the dist-info folder, when it is a folder
        if folder is not None:
            folders.append(str(folder))
        metadata = dist.metadata if dist is not None else None
        records.append(
            {
                "name": ep.name,
                "value": ep.value,
                "dist": [str(metadata["Name"]), str(metadata["Version"])] if metadata else None,
            }
        )
    return found, records, folders


def entry_points(*, cached: bool = True) -> list[Any]:
    """Every entry point of the ``hypotez`` group (from the cache when it is still valid)."""
    path = _cache_file() if cached else None
    if path is not None:
        hit = _read(path)
        if hit is not None:
            return list(hit)
    found, records, folders = _scan()
    if path is not None:
        _write(path, records, folders)
    return found


def _write(path: str, records: list[dict[str, Any]], folders: list[str]) -> None:
    data = {
        "version": _VERSION,
        "prefix": sys.prefix,
        "path_key": _key(list(sys.path)),
        "dist_key": _key(sorted(set(folders))),
        "entry_points": records,
    }
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temp = f"{path}.{os.getpid()}.tmp"
        with open(temp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(temp, path)  # readers see the old file or the new one, never half of one
    except OSError:
        pass  # a read-only home: start-up is slower, nothing else changes

"""Storage on the local file system: ``file://`` URLs, the default under ``HYPOTEZ_HOME``."""

from __future__ import annotations

from typing import Any

from hypotez import hookimpl


def _open(settings: Any, url: str) -> Any:
    from hypotez_files.storage import FileStorage

    return FileStorage.from_url(url)


@hookimpl
def register_storages(register: Any) -> None:
    register("file", _open, description="JSONL dialogues and JSON records in a local folder")

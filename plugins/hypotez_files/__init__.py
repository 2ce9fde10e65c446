"""Storage on the local file system: ``file://`` URLs, the default under ``HYPOTEZ_HOME``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context


def _seconds(value: Any) -> float:
    seconds = float(value)
    if not seconds > 0:  # also refuses NaN
        raise ValueError("use a number of seconds > 0")
    return seconds


def _open(context: Context, url: str) -> Any:
    from hypotez.settings import as_bool
    from hypotez_files.storage import DEFAULT_LOCK_TIMEOUT, FileStorage

    # fsync=false trades durability against an OS crash or power loss for speed; a killed
    # process still loses nothing, since every append is a single write() of whole lines.
    settings = context.settings
    return FileStorage.from_url(
        url,
        fsync=settings.option("files", "fsync", True, cast=as_bool),
        lock_timeout=settings.option("files", "lock_timeout", DEFAULT_LOCK_TIMEOUT, cast=_seconds),
    )


@hookimpl
def register_storages(register: Register) -> None:
    register("file", _open, description="JSONL dialogues and JSON records in a local folder")

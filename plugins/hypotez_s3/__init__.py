"""Storage on S3 and S3-compatible servers: ``s3://bucket/prefix`` URLs, through obstore.

Install with ``pip install 'hypotez[s3]'``. Endpoint, region and credentials come from the
``[plugins.s3]`` options (or ``HYPOTEZ_S3_*``) or the standard ``AWS_*`` variables; see
``docs/backends/s3.md``. obstore is imported only when an s3:// storage is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez import MissingDependencyError, Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context

INSTALL = "pip install 'hypotez[s3]'"


def _open(context: Context, url: str) -> Any:
    try:
        import obstore  # noqa: F401
    except ImportError:
        raise MissingDependencyError("s3", "obstore", INSTALL) from None
    from hypotez_s3.storage import S3Storage

    return S3Storage.from_settings(url, context.settings)


@hookimpl
def register_storages(register: Register) -> None:
    register(
        "s3",
        _open,
        description="dialogues and records on S3 or an S3-compatible server (obstore)",
        install=INSTALL,
    )

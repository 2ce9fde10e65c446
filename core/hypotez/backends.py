"""Build backends by name (or URL, for storages) from the plugin registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hypotez.errors import ConfigError

if TYPE_CHECKING:
    from hypotez.plugins import Registry
    from hypotez.protocols import Storage
    from hypotez.settings import Settings


def storage_scheme(url: str) -> str:
    """``file`` for ``file:///x`` and for plain paths, else the URL's scheme."""
    scheme = urlsplit(url).scheme
    # A one-letter "scheme" is a Windows drive (C:\\...), not a URL.
    return "file" if len(scheme) <= 1 else scheme


def open_storage(url: str, settings: Settings, registry: Registry) -> Storage:
    """Open the storage for ``url`` with the plugin registered for its scheme."""
    scheme = storage_scheme(url)
    if scheme not in registry.registrations("storage"):
        raise ConfigError(
            f"No storage plugin handles {scheme}:// URLs (storage {url!r}). "
            f"Known schemes: {', '.join(registry.names('storage')) or 'none'}. "
            + ("Install it with: pip install 'hypotez[s3]'." if scheme == "s3" else "")
        )
    storage: Storage = registry.build("storage", scheme, settings, url)
    return storage


def build(capability: str, name: str | None, settings: Settings, registry: Registry) -> Any:
    return registry.build(capability, name, settings)

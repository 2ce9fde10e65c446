"""Image inputs for vision backends, checked once in core before any backend sees them.

The MIME type comes from the file's first bytes, never from its name; size is checked from the
file system before the file is read, so a 2 GB "photo" is refused without reading it.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import attrs
from hypotez.errors import InputError

#: OpenAI accepts images up to 20 MiB; local backends share the limit so behaviour is the same.
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
SUPPORTED = ("image/png", "image/jpeg", "image/webp", "image/gif")
#: "scheme://" of a URL; one letter before ":" is a Windows drive, not a scheme.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def sniff_mime(head: bytes) -> str | None:
    """The image MIME type from magic bytes, or None if it is not a supported image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


@attrs.frozen
class Image:
    """A checked image: either ``data`` with its detected ``mime``, or a remote ``url``."""

    source: str
    data: bytes | None = attrs.field(default=None, repr=False)
    mime: str | None = None
    url: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    def data_url(self) -> str:
        """``data:<mime>;base64,...`` for local images, the URL itself for remote ones."""
        if self.url is not None:
            return self.url
        assert self.data is not None and self.mime is not None
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def load_image(source: Any, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Image:
    """Check and load an image given as a path, bytes, an http(s)/data URL, or an :class:`Image`."""
    if isinstance(source, Image):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        return _from_bytes(bytes(source), "<bytes>", max_bytes)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return _from_web_url(source)
    if isinstance(source, str) and source.startswith("data:"):
        return _from_data_url(source, max_bytes)
    if isinstance(source, str) and _SCHEME.match(source):
        # Without this, "ftp://h/x.png" became the path "ftp:/h/x.png", "does not exist".
        raise InputError(
            f"Image {source!r}: {source.split(':', 1)[0]}: URLs are not supported. Pass an "
            "http(s) or data: URL, a file path, or the image's bytes."
        )
    if isinstance(source, str | os.PathLike):
        return _from_path(Path(source), max_bytes)
    raise InputError(
        f"Cannot use a {type(source).__name__} as an image: pass a file path, bytes, or an http(s) URL."
    )


def _from_web_url(url: str) -> Image:
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname
    except ValueError as exc:  # e.g. an unclosed "[" in the host
        raise InputError(f"Image URL {url!r} is not a valid URL: {exc}.") from None
    if not host:
        raise InputError(f"Image URL {url!r} has no host name: use http(s)://host/path.")
    return Image(source=url, url=url)


def _from_path(path: Path, max_bytes: int) -> Image:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"Image file {str(path)!r} does not exist.") from None
    except OSError as exc:
        raise InputError(f"Cannot read image file {str(path)!r}: {exc.strerror}.") from exc
    if not path.is_file():
        raise InputError(f"{str(path)!r} is not a file: pass the path of an image file.")
    _check_size(size, str(path), max_bytes)
    return _from_bytes(path.read_bytes(), str(path), max_bytes)


def _from_bytes(data: bytes, source: str, max_bytes: int) -> Image:
    _check_size(len(data), source, max_bytes)
    if not data:
        raise InputError(f"Image {source!r} is empty.")
    mime = sniff_mime(data[:16])
    if mime is None:
        raise InputError(
            f"{source!r} is not a PNG, JPEG, WebP or GIF image (its first bytes are "
            f"{data[:8]!r}). Convert it to one of those formats."
        )
    return Image(source=source, data=data, mime=mime)


def _from_data_url(url: str, max_bytes: int) -> Image:
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise InputError("Only base64 data: URLs are supported for images.")
    try:
        data = base64.b64decode(payload, validate=True)
    except ValueError as exc:
        raise InputError(f"The image data: URL is not valid base64: {exc}.") from exc
    return _from_bytes(data, "<data url>", max_bytes)


def _check_size(size: int, source: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise InputError(
            f"Image {source!r} is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit. "
            "Resize or recompress it first."
        )

"""Sample data shipped with hypotez, for ``hypotez demo``, the docs and plugin tests."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def image_path() -> Path:
    """A small CC0 photograph of a cat (Chelsea, by Stefan van der Walt); see README.md here."""
    return _HERE / "chelsea.jpg"

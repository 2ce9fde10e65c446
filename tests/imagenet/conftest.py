"""Fixtures for the imagenet backend tests: one loaded backend, and real photos.

The photos come from scikit-image's data folder (a test dependency: ``scikit-image==0.26.0``),
read as files; scikit-image itself is never imported. Their licences, from the docstrings of
``skimage.data``: chelsea (a cat) and coffee are CC0 by their photographers, rocket (a Falcon 9
launch) was released into the public domain by SpaceX.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import hypotez
import pytest
from hypotez_imagenet.backend import ImagenetVision


def _skimage_data() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "The imagenet tests need the real photos shipped in scikit-image: "
            "pip install scikit-image==0.26.0 (a test dependency)."
        )
    return Path(spec.origin).parent / "data"


@pytest.fixture(scope="session")
def photo() -> dict[str, Path]:
    """name -> path of a real photograph."""
    data = _skimage_data()
    return {
        "cat": data / "chelsea.png",
        "coffee": data / "coffee.png",
        "rocket": data / "rocket.jpg",
    }


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> ImagenetVision:
    """One backend for the whole run: the weights are read and folded once."""
    settings = hypotez.Settings.load(env={}, home=tmp_path_factory.mktemp("imagenet-home"))
    vision = ImagenetVision(settings)
    vision.load()
    return vision

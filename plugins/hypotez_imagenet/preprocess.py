"""Decode a checked image with Pillow and turn it into the classifier's 224x224 input.

Core (:func:`hypotez.load_image`) has already checked the byte size and the format from the magic
bytes; this module catches what only decoding reveals (a truncated or corrupt file, an absurd
pixel count) and normalises what photos really look like: EXIF rotation, transparency, grayscale,
palettes, 16-bit channels, animated GIFs (the first frame is used).

Preprocessing is the one EfficientNet-Lite was evaluated with: resize the short side to 256
(bicubic), crop the central 224x224, scale pixels to about [-1, 1] with ``(x - 127) / 128``.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from hypotez import InputError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image as PILImage

RESIZE = 256
CROP = 224
MEAN, STD = 127.0, 128.0
#: Decoded pixels allowed (after JPEG draft scaling); a 20 MB PNG can hold gigabytes of pixels.
MAX_PIXELS = 64_000_000

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}


def decode(data: bytes, mime: str, source: str) -> PILImage.Image:
    """An RGB Pillow image, upright, decoded in full (so truncation is found here)."""
    from PIL import Image, UnidentifiedImageError

    try:
        # Only the format the magic bytes announced: Pillow must not guess another decoder.
        img = Image.open(io.BytesIO(data), formats=[_FORMATS[mime]])
        # JPEG can decode at 1/2, 1/4 or 1/8 scale for free; keep both sides >= RESIZE.
        img.draft("RGB", (RESIZE, RESIZE))
        if img.width * img.height > MAX_PIXELS:
            raise InputError(
                f"Image {source!r} is {img.width}x{img.height} pixels, over the "
                f"{MAX_PIXELS // 1_000_000} megapixel limit. Downscale it first."
            )
        img.load()
    except Image.DecompressionBombError as exc:
        raise InputError(
            f"Image {source!r} has too many pixels to decode safely ({exc}). Downscale it first."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(
            f"Image {source!r} starts like a {_FORMATS[mime]} file but Pillow cannot read it: the "
            "file is corrupt. Re-save or re-download it."
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(
            f"Image {source!r} cannot be decoded as {_FORMATS[mime]}: {exc}. The file is corrupt "
            "or truncated; re-save or re-download it."
        ) from exc
    return to_rgb(_upright(img))


def _upright(img: PILImage.Image) -> PILImage.Image:
    """Apply the EXIF orientation; a malformed EXIF block is ignored, not fatal."""
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError):
        return img


def to_rgb(img: PILImage.Image) -> PILImage.Image:
    """RGB for every mode: transparency over white (as on a web page), 16-bit scaled to 8-bit."""
    from PIL import Image

    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        import numpy as np

        wide = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(wide / 257.0, 0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        import numpy as np

        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def to_input(img: PILImage.Image) -> np.ndarray:
    """The (224, 224, 3) float32 network input for an RGB image."""
    import numpy as np
    from PIL import Image

    w, h = img.size
    scale = RESIZE / min(w, h)
    size = (max(CROP, round(w * scale)), max(CROP, round(h * scale)))
    left, top = (size[0] - CROP) // 2, (size[1] - CROP) // 2
    # Resample only the part the central crop keeps, straight to CROP x CROP: the same pixels
    # as resizing the whole image to ``size`` and cropping (Pillow samples at the same centres
    # and clips its filter to the whole image either way), without building the whole resized
    # image, which for a 100000x1 strip would be 25.6M x 256 pixels (gigabytes).
    sx, sy = w / size[0], h / size[1]
    box = (left * sx, top * sy, (left + CROP) * sx, (top + CROP) * sy)
    # reducing_gap: shrink big photos in two steps (box, then bicubic): much faster, same result.
    crop = img.resize((CROP, CROP), Image.Resampling.BICUBIC, box=box, reducing_gap=3.0)
    return (np.asarray(crop, dtype=np.float32) - MEAN) / STD


def prepare(data: bytes, mime: str, source: str) -> Any:
    """decode + to_input, for one checked image's bytes."""
    return to_input(decode(data, mime, source))

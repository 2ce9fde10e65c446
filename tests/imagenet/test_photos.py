"""The classifier on real photographs: the labels a person would expect, and how photos arrive
(rotated by EXIF, with transparency, grayscale, palettes, 16-bit, animated GIF)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from hypotez_imagenet import sample_image_path
from hypotez_imagenet.backend import ImagenetVision
from PIL import Image

#: ImageNet-1k class ids of the domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian).
CAT_IDS = range(281, 286)
#: espresso, coffee mug, cup.
COFFEE_IDS = (967, 504, 968)
#: missile, projectile/missile, space shuttle.
ROCKET_IDS = (657, 744, 812)


def names(backend: ImagenetVision, ids: Iterable[int]) -> set[str]:
    return {backend.labels[i] for i in ids}


def top(backend: ImagenetVision, image: object, k: int = 5) -> list[str]:
    return [label for label, _ in backend.classify(image, k)]


def png(img: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **params)
    return buf.getvalue()


def test_cat_photo_is_a_cat(backend: ImagenetVision, photo: dict[str, Path]) -> None:
    labels = top(backend, photo["cat"])
    assert labels[0] in names(backend, CAT_IDS), labels
    assert len(set(labels[:3]) & names(backend, CAT_IDS)) >= 2, labels


def test_coffee_photo_is_coffee(backend: ImagenetVision, photo: dict[str, Path]) -> None:
    labels = top(backend, photo["coffee"])
    assert labels[0] == "espresso", labels
    assert names(backend, COFFEE_IDS) <= set(labels), labels


def test_rocket_photo_is_a_missile_or_shuttle(
    backend: ImagenetVision, photo: dict[str, Path]
) -> None:
    labels = top(backend, photo["rocket"])
    assert labels[0] in names(backend, ROCKET_IDS), labels


def test_shipped_sample_is_a_small_cc0_cat_photo(backend: ImagenetVision) -> None:
    path = sample_image_path()
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    assert path.stat().st_size < 60_000
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    assert "CC0" in readme and path.name in readme
    assert top(backend, path, 1)[0] in names(backend, CAT_IDS)


def test_exif_orientation_is_applied(backend: ImagenetVision, photo: dict[str, Path]) -> None:
    upright = Image.open(photo["cat"]).convert("RGB")
    # Stored sideways, with EXIF orientation 6 ("rotate 90 degrees clockwise to display").
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    tagged = png(sideways, exif=exif)
    untagged = png(sideways)

    reference = backend.probabilities(png(upright))
    assert np.abs(backend.probabilities(tagged) - reference).max() < 1e-6
    assert np.abs(backend.probabilities(untagged) - reference).max() > 0.01


def test_transparency_is_composited_on_white(backend: ImagenetVision) -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    invisible = np.dstack([noise, np.zeros((300, 400), np.uint8)])  # noise under alpha = 0
    white = Image.new("RGB", (400, 300), (255, 255, 255))
    got = backend.probabilities(png(Image.fromarray(invisible, "RGBA")))
    np.testing.assert_allclose(got, backend.probabilities(png(white)), atol=1e-9)


def test_opaque_rgba_equals_rgb(backend: ImagenetVision, photo: dict[str, Path]) -> None:
    rgb = Image.open(photo["cat"]).convert("RGB")
    rgba = rgb.convert("RGBA")
    np.testing.assert_allclose(
        backend.probabilities(png(rgba)), backend.probabilities(png(rgb)), atol=1e-9
    )


def test_grayscale_palette_and_16_bit_photos_still_classify(
    backend: ImagenetVision, photo: dict[str, Path]
) -> None:
    cats = names(backend, CAT_IDS)
    rgb = Image.open(photo["cat"]).convert("RGB")
    gray = rgb.convert("L")
    gray16 = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)  # mode I;16
    assert gray16.mode == "I;16"
    variants = {
        "L": png(gray),
        "LA": png(gray.convert("LA")),
        "P": png(rgb.quantize(256)),
        "I;16": png(gray16),
    }
    for mode, data in variants.items():
        assert set(top(backend, data)) & cats, mode
    # 16-bit gray scaled back to 8 bits is the same picture as the 8-bit gray one.
    np.testing.assert_allclose(
        backend.probabilities(variants["I;16"]), backend.probabilities(variants["L"]), atol=1e-6
    )


def test_animated_gif_uses_its_first_frame(backend: ImagenetVision, photo: dict[str, Path]) -> None:
    cat = Image.open(photo["cat"]).convert("RGB").quantize(256)
    coffee = Image.open(photo["coffee"]).convert("RGB").resize(cat.size).quantize(256)
    buf = io.BytesIO()
    cat.save(buf, "GIF", save_all=True, append_images=[coffee], duration=100, loop=0)
    gif = buf.getvalue()
    assert Image.open(io.BytesIO(gif)).n_frames == 2
    assert top(backend, gif, 1)[0] in names(backend, CAT_IDS)


def test_webp_and_jpeg_bytes_classify_like_the_png(
    backend: ImagenetVision, photo: dict[str, Path]
) -> None:
    rgb = Image.open(photo["coffee"]).convert("RGB")
    for fmt in ("WEBP", "JPEG"):
        buf = io.BytesIO()
        rgb.save(buf, fmt, quality=95)
        assert top(backend, buf.getvalue(), 1) == ["espresso"], fmt


@pytest.mark.parametrize("size", [(64, 48), (224, 224), (3000, 200)])
def test_small_and_extreme_aspect_images_work(
    backend: ImagenetVision, size: tuple[int, int]
) -> None:
    probs = backend.probabilities(png(Image.new("RGB", size, (120, 80, 40))))
    assert probs.shape == (1000,)
    assert abs(probs.sum() - 1.0) < 1e-9

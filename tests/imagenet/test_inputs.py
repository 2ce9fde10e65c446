"""Bad inputs get an InputError that names the input and says what to do; nothing is decoded
that should not be."""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import hypotez
import pytest
from hypotez_imagenet import sample_image_path
from hypotez_imagenet.backend import ImagenetVision


def fake_png(width: int, height: int) -> bytes:
    """A PNG header announcing width x height, with one empty IDAT: tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_not_an_image(backend: ImagenetVision, tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("just some text, named like a photo")
    with pytest.raises(hypotez.InputError, match=r"notes\.jpg.*not a PNG, JPEG, WebP or GIF"):
        backend.describe(path)


def test_truncated_jpeg(backend: ImagenetVision, tmp_path: Path) -> None:
    path = tmp_path / "half.jpg"
    path.write_bytes(sample_image_path().read_bytes()[:10_000])
    with pytest.raises(hypotez.InputError, match=r"half\.jpg.*truncated"):
        backend.describe(path)


def test_garbage_after_jpeg_magic(backend: ImagenetVision, tmp_path: Path) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\x00garbage" * 100)
    with pytest.raises(hypotez.InputError, match=r"fake\.jpg.*JPEG.*corrupt"):
        backend.describe(path)


def test_oversized_file_is_refused_before_reading(backend: ImagenetVision, tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with path.open("wb") as f:
        f.write(b"\xff\xd8\xff")
        f.truncate(21 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(hypotez.InputError, match=r"huge\.jpg.* is .*, over the .* limit"):
        backend.describe(path)


@pytest.mark.parametrize(("width", "height"), [(10_000, 8_000), (20_000, 20_000)])
def test_too_many_pixels_is_refused_before_decoding(
    backend: ImagenetVision, tmp_path: Path, width: int, height: int
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(fake_png(width, height))
    assert path.stat().st_size < 1000
    with pytest.raises(hypotez.InputError, match=r"bomb\.png.*(megapixel|too many pixels)"):
        backend.describe(path)


_STRIP_IN_A_3_GIB_PROCESS = """
import io, resource
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from PIL import Image
import hypotez
from hypotez_imagenet.backend import ImagenetVision
buf = io.BytesIO()
Image.new("RGB", (100_000, 1), (90, 140, 200)).save(buf, "PNG")
probs = ImagenetVision(hypotez.Settings.load()).probabilities(buf.getvalue())
print(probs.shape, round(float(probs.sum()), 6))
"""


def test_a_tiny_file_with_an_extreme_aspect_ratio_does_not_exhaust_memory(
    tmp_path: Path,
) -> None:
    # A 100000x1 strip is a few hundred bytes and 0.1 megapixels, but scaling its short side to
    # 256 first would build a 25.6M x 256 image (about 20 GB): the process must stay small.
    done = subprocess.run(
        [sys.executable, "-c", _STRIP_IN_A_3_GIB_PROCESS],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["(1000,)", "1.0"]


def test_url_is_refused_because_the_backend_is_offline(backend: ImagenetVision) -> None:
    with pytest.raises(
        hypotez.InputError, match=r"offline.*https://example\.com/cat\.jpg.*Download"
    ):
        backend.describe("https://example.com/cat.jpg")


def test_missing_file(backend: ImagenetVision, tmp_path: Path) -> None:
    with pytest.raises(hypotez.InputError, match="does not exist"):
        backend.describe(tmp_path / "nope.png")


def test_bytes_and_data_urls_are_accepted(backend: ImagenetVision) -> None:
    data = sample_image_path().read_bytes()
    from_path = backend.describe(sample_image_path())
    assert backend.describe(data).labels == from_path.labels
    url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    assert backend.describe(url).labels == from_path.labels


def test_an_unknown_model_is_refused(backend: ImagenetVision) -> None:
    with pytest.raises(hypotez.InputError, match="efficientnet-lite0"):
        backend.describe(sample_image_path(), model="gpt-4o")


def test_a_schema_the_classifier_cannot_fill_is_refused(backend: ImagenetVision) -> None:
    schema = {
        "type": "object",
        "properties": {"caption": {"type": "string"}},
        "required": ["caption"],
    }
    with pytest.raises(hypotez.InputError, match=r"cannot fill.*caption"):
        backend.describe(sample_image_path(), json_schema=schema)

"""Vision backends ``openai`` (SDK) and ``openai-http`` (raw httpx) against aimock."""

from __future__ import annotations

import base64
from pathlib import Path

import hypotez
import pytest
from hypotez_test_servers.aimock import Aimock

from .conftest import JPEG_BYTES, make_png

pytestmark = pytest.mark.aimock

BACKENDS = ["openai", "openai-http"]


def image_part(body: dict) -> dict:
    [message] = [m for m in body["messages"] if m["role"] == "user"]
    [part] = [p for p in message["content"] if p["type"] == "image_url"]
    return part["image_url"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_describe_a_jpeg_file(aimock: Aimock, settings, jpeg_file: Path, backend: str) -> None:
    with hypotez.Session(settings=settings, vision=backend) as s:
        result = s.describe_image(jpeg_file)

    assert result.text == "A small red square on a plain background."
    assert result.backend == backend
    assert result.model == "gpt-4o-mini"
    assert result.usage is not None and result.usage.total_tokens > 0
    [entry] = aimock.journal("/v1/chat/completions")
    assert entry["headers"]["authorization"]
    body = entry["body"]
    assert body["model"] == "gpt-4o-mini"
    url = image_part(body)
    assert url["detail"] == "auto"
    assert url["url"] == "data:image/jpeg;base64," + base64.b64encode(JPEG_BYTES).decode()
    [text] = [p for p in body["messages"][0]["content"] if p["type"] == "text"]
    assert text["text"] == "What's in this image?"


@pytest.mark.parametrize("backend", BACKENDS)
def test_mime_comes_from_the_content_not_the_name(
    aimock: Aimock, settings, tmp_path: Path, backend: str
) -> None:
    misnamed = tmp_path / "really-a-png.jpg"
    misnamed.write_bytes(make_png())
    with hypotez.Session(settings=settings, vision=backend) as s:
        s.describe_image(misnamed, detail="low")
        s.describe_image(make_png(3, 1), "Count the pixels", detail="high")
    first, second = aimock.chat_requests()
    assert image_part(first)["url"].startswith("data:image/png;base64,")
    assert image_part(first)["detail"] == "low"
    assert (
        image_part(second)["url"]
        == "data:image/png;base64," + base64.b64encode(make_png(3, 1)).decode()
    )
    assert image_part(second)["detail"] == "high"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_image_url_is_passed_through(aimock: Aimock, settings, backend: str) -> None:
    with hypotez.Session(settings=settings, vision=backend) as s:
        s.describe_image("https://example.com/cat.webp")
    assert image_part(aimock.last_chat_request())["url"] == "https://example.com/cat.webp"


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_output_on_request(aimock: Aimock, settings, png_file: Path, backend: str) -> None:
    schema = {
        "type": "object",
        "properties": {"shape": {"type": "string"}, "colour": {"type": "string"}},
        "required": ["shape", "colour"],
    }
    with hypotez.Session(settings=settings, vision=backend) as s:
        result = s.describe_image(png_file, "Describe it as JSON", json_schema=schema)
    assert result.data == {"shape": "square", "colour": "red"}
    assert aimock.last_chat_request()["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_image_and_oversized_are_refused_before_any_request(
    aimock: Aimock, settings, tmp_path: Path, backend: str
) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all")
    huge = tmp_path / "huge.png"
    with huge.open("wb") as fh:  # sparse: 25 MB on paper, nothing on disk
        fh.write(make_png())
        fh.truncate(25 * 1024 * 1024)
    with hypotez.Session(settings=settings, vision=backend) as s:
        with pytest.raises(hypotez.InputError, match="not a PNG, JPEG, WebP or GIF"):
            s.describe_image(text)
        with pytest.raises(hypotez.InputError, match=r"over the \d+ MiB limit"):
            s.describe_image(huge)
        # Direct use of the backend checks too.
        with pytest.raises(hypotez.InputError, match="not a PNG"):
            s.vision_backend.describe(b"GIF-ish but not really")
    assert aimock.journal("/v1/chat/completions") == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_vision_errors_are_mapped(
    aimock: Aimock, settings_for, png_file: Path, backend: str
) -> None:
    aimock.set_chaos(rate_limit=1.0)
    with (
        hypotez.Session(settings=settings_for(max_retries=1), vision=backend) as s,
        pytest.raises(hypotez.RateLimitError, match="after 1 retries"),
    ):
        s.describe_image(png_file)
    assert [e["response"]["status"] for e in aimock.journal("/v1/chat/completions")] == [429, 429]


def test_raw_http_backend_maps_auth_timeout_and_connection(
    aimock: Aimock, settings_for, png_file: Path
) -> None:
    with hypotez.Session(
        settings=settings_for(api_key="sk-bad-0000000000"), vision="openai-http"
    ) as s:
        with pytest.raises(hypotez.AuthenticationError) as info:
            s.describe_image(png_file)
        assert "sk-bad-0000000000" not in str(info.value)
    aimock.set_chaos(latency_ms=2000)
    with (
        hypotez.Session(
            settings=settings_for(timeout=0.3, max_retries=0), vision="openai-http"
        ) as s,
        pytest.raises(hypotez.BackendTimeoutError),
    ):
        s.describe_image(png_file)
    aimock.set_chaos(disconnect=1.0)
    with (
        hypotez.Session(settings=settings_for(max_retries=1), vision="openai-http") as s,
        pytest.raises(hypotez.BackendConnectionError),
    ):
        s.describe_image(png_file)


def test_both_backends_send_the_same_request(aimock: Aimock, settings, jpeg_file: Path) -> None:
    for backend in BACKENDS:
        with hypotez.Session(settings=settings, vision=backend) as s:
            s.describe_image(jpeg_file, "Count the pixels", detail="low")
    sdk, raw = aimock.chat_requests()
    assert sdk == raw


async def test_async_describe(aimock: Aimock, settings, jpeg_file: Path) -> None:
    async with hypotez.AsyncSession(settings=settings, vision="openai") as s:
        result = await s.describe_image(jpeg_file)
    assert result.text == "A small red square on a plain background."
    assert aimock.journal("/v1/chat/completions")[0]["headers"]["x-stainless-async"].startswith(
        "async"
    )

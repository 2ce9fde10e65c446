"""Fixtures for the OpenAI plugin tests: the aimock server, settings pointing at it, images."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypotez
import pytest

if (
    TYPE_CHECKING
):  # loaded by pytest_plugins in tests/conftest.py; importing it here first spoils its asserts
    from hypotez_test_servers.aimock import Aimock


#: An 8x8 red JPEG made with Pillow (quality 50), so the tests need no imaging library.
JPEG_BYTES = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1R"
    "V19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
    "Y2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAA"
    "AgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6"
    "Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
    "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREA"
    "AgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
    "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPE"
    "xcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwDHooorzz68/9k="
)


def make_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A valid RGB PNG, built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def settings_for(aimock: Aimock, tmp_path: Path) -> Callable[..., hypotez.Settings]:
    """``settings_for(**overrides)``: settings pointing at aimock with its key (fast retries).

    ``api_key`` and ``base_url`` are the OpenAI plugin's own options; the rest are core settings.
    """

    def make(**overrides: Any) -> hypotez.Settings:
        values: dict[str, Any] = {
            "home": tmp_path / "hypotez-home",
            "max_retries": 1,
            "timeout": 10,
        }
        openai = {
            "api_key": overrides.pop("api_key", aimock.api_key),
            "base_url": overrides.pop("base_url", aimock.base_url),
        }
        values.update(overrides)
        options = {k: dict(v) for k, v in (values.pop("options", None) or {}).items()}
        options["openai"] = {**openai, **options.get("openai", {})}
        return hypotez.Settings.load(env={}, options=options, **values)

    return make


@pytest.fixture
def settings(settings_for: Callable[..., hypotez.Settings]) -> hypotez.Settings:
    return settings_for()


@pytest.fixture
def jpeg_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(JPEG_BYTES)
    return path


@pytest.fixture
def png_file(tmp_path: Path) -> Path:
    path = tmp_path / "square.png"
    path.write_bytes(make_png())
    return path


# -- the OpenAI-compatible servers the plugin's integration tests run against ------------------

SERVERS = ("aimock", "llamacpp")


class Server:
    """One real OpenAI-compatible server, as the plugin's tests see it: where it is, its model,
    how to reach it, and how many requests it has answered."""

    def __init__(self, name: str, real: Any, model: str, settings_home: Path) -> None:
        self.name = name
        self.real = real
        self.base_url = real.base_url
        self.api_key = real.api_key
        self.model = model
        self._home = settings_home
        # llama.cpp's server lives for the whole session: count from here on.
        self._before = 0 if name == "aimock" else len(real.requests("/v1/chat/completions"))

    def settings_for(self, **overrides: Any) -> hypotez.Settings:
        """Settings pointing at this server (its key, its model, quick retries)."""
        values: dict[str, Any] = {
            "home": self._home,
            "max_retries": 1,
            "timeout": 60,
            "model": self.model,
        }
        openai: dict[str, Any] = {
            "api_key": overrides.pop("api_key", self.api_key),
            "base_url": overrides.pop("base_url", self.base_url),
        }
        if self.name == "llamacpp":
            # llama.cpp's server ignores max_completion_tokens (docs: the servers table).
            openai["max_tokens_field"] = "max_tokens"
        values.update(overrides)
        options = {k: dict(v) for k, v in (values.pop("options", None) or {}).items()}
        options["openai"] = {**openai, **options.get("openai", {})}
        return hypotez.Settings.load(env={}, options=options, **values)

    def chat_requests(self) -> list[int]:
        """The HTTP status of every chat request the server answered (oldest first)."""
        if self.name == "aimock":
            return [
                e["response"]["status"]
                for e in self.real.journal("/v1/chat/completions", method="POST")
            ]
        answered = self.real.requests("/v1/chat/completions")[self._before :]
        return [status for _m, _p, status in answered]

    def sent(self) -> list[dict[str, Any]] | None:
        """The bodies of the chat requests, where the server shows them (aimock only)."""
        return self.real.chat_requests() if self.name == "aimock" else None

    def add_fixtures(self, fixtures: list[dict[str, Any]]) -> None:
        """Canned answers (aimock); a real model answers by itself, so nothing to do there."""
        if self.name == "aimock":
            self.real.add_fixtures(fixtures, first=True)


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Server:
    """Each OpenAI-compatible server in turn: aimock, then llama.cpp's own server."""
    from hypotez_openai import structured

    structured.forget()  # what a server accepts is learnt per process: start each test afresh
    if request.param == "aimock":
        return Server("aimock", request.getfixturevalue("aimock"), "gpt-4o-mini", tmp_path / "h")
    real = request.getfixturevalue("llamacpp_server")
    if real.process.poll() is not None:
        pytest.fail(f"The llama.cpp server exited early:\n{real.log_text()[-4000:]}")
    return Server("llamacpp", real, real.model, tmp_path / "h")

"""Fixtures for the llamacpp backend: a tiny random-weight GGUF model written once per run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The whole suite runs with every extra installed: a missing llama-cpp-python is an error, not a skip.
import llama_cpp  # noqa: F401
import pytest
from llamacpp.tiny_gguf import write_tiny_gguf


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-chat.gguf")


@pytest.fixture
def make_backend(
    tiny_model: Path, make_settings: Callable[..., Any]
) -> Iterator[Callable[..., Any]]:
    """``make_backend(**options)``: a LlamaCppChat on the tiny model (n_ctx 256 by default)."""
    from hypotez_llamacpp.chat import from_settings

    built: list[Any] = []

    def make(**options: Any) -> Any:
        options = {"model_path": str(tiny_model), "n_ctx": 256, **options}
        backend = from_settings(make_settings(options={"llamacpp": options}))
        built.append(backend)
        return backend

    yield make
    for backend in built:
        backend.close()


@pytest.fixture
def backend(make_backend: Callable[..., Any]) -> Any:
    return make_backend()

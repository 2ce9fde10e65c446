"""Every Python code block in ``docs/**/*.md`` runs, page by page, in order (with Sybil).

Blocks of one page share a namespace, like a reader following the page top to bottom. Each page
runs against the offline defaults in a fresh ``HYPOTEZ_HOME`` and working directory (the root
conftest provides both); where a chat model would be needed, a stand-in chat backend registered
here answers instead, so no page needs a model download, a network or an API key. A block that
truly needs one (an OpenAI key, a running S3 server) is preceded by the marker
``<!-- skip: next "why" -->``, which the page run reports as a skip with that reason (see
``docs/about-docs.md``). Blocks starting with ``>>>`` are doctests: their printed output is checked.
"""

from __future__ import annotations

import unittest
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import ChatBackend, ChatOptions, Message, ModelInfo, Reply, Usage, hookimpl
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

DOCS = Path(__file__).resolve().parents[2] / "docs"
SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()], path=str(DOCS), patterns=["*.md"])
FAKE_MODEL = "docs-fake-model"


class FakeChat(ChatBackend):
    """Answers instantly and predictably: 'You said: <the last user message>'."""

    name = "docs-fake"

    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        last = next(m.content for m in reversed(messages) if m.role == "user")
        text = f"You said: {last}"
        prompt = sum(len(m.content.split()) for m in messages)
        usage = Usage(prompt, len(text.split()), prompt + len(text.split()))
        return Reply(
            text=text, model=options.model or FAKE_MODEL, usage=usage, finish_reason="stop"
        )

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(FAKE_MODEL, backend=self.name)]


class FakeChatPlugin:
    """Registered with a priority above every real backend, so it is the default chat."""

    @hookimpl
    def register_chat_backends(self, register: Any) -> None:
        register("docs-fake", lambda settings: FakeChat(), priority=10**9, description="docs tests")


def _pages() -> list[Path]:
    pages = []
    for path in sorted(DOCS.rglob("*.md")):
        if any(True for _ in SYBIL.parse(path).examples()):
            pages.append(path)
    return pages


def test_docs_have_examples() -> None:
    """The quickstart and concepts pages must keep real, running Python examples."""
    names = {p.relative_to(DOCS).as_posix() for p in _pages()}
    assert {"quickstart.md", "concepts.md", "hooks.md"} <= names


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples(page: Path, home: Path) -> None:
    hypotez.get_plugin_manager().add_plugin(FakeChatPlugin(), "docs-fake-chat")
    document = SYBIL.parse(page)
    ran, skipped = 0, []
    for example in document.examples():
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            skipped.append(f"line {example.line}: {skip}")
        else:
            ran += 1
    assert ran, f"{page.name}: every example was skipped ({skipped})"

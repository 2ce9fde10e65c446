"""Every Python code block in ``docs/**/*.md`` runs, page by page, in order (with Sybil).

Blocks of one page share a namespace, like a reader following the page top to bottom. Each page
runs against the offline defaults in a fresh ``HYPOTEZ_HOME`` and working directory (the root
conftest provides both); where a chat model would be needed, a stand-in chat backend registered
here answers instead, so no page needs a model download, a network or an API key.

A page that shows a remote service declares it with a marker line, and its blocks then run
against the real stand-in that the test suite starts (see ``docs/about-docs.md``):

- ``<!-- tests: aimock -->``: ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` point at aimock, which
  answers from ``aimock-fixtures/``;
- ``<!-- tests: s3 -->``: the ``AWS_*`` variables point at SeaweedFS, where ``my-bucket`` exists;
- ``<!-- tests: example-plugin -->``: the tutorial's example plugin is registered from
  ``docs/examples/hypotez-example-plugin/src``, as if installed.

A block that still cannot run is preceded by ``<!-- skip: next "why" -->``; every such block is
reported as a warning with its reason, so nothing is skipped in silence, and a page whose code
blocks are all skipped fails. Blocks starting with ``>>>`` are doctests: their output is checked.
"""

from __future__ import annotations

import importlib
import re
import unittest
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import ChatBackend, ChatOptions, Message, ModelInfo, Reply, Usage, hookimpl
from sybil import Sybil
from sybil.evaluators.skip import Skipper
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

DOCS = Path(__file__).resolve().parents[2] / "docs"
SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()], path=str(DOCS), patterns=["*.md"])
FAKE_MODEL = "docs-fake-model"
EXAMPLE_PLUGIN_SRC = DOCS / "examples" / "hypotez-example-plugin" / "src"
NEEDS = re.compile(r"^<!-- tests: ([\w-]+) -->$", re.MULTILINE)
SERVICES = {"aimock", "s3", "example-plugin"}
#: Pages whose every code block is still skipped, with what their owner must change. Each is an
#: expected failure until then; one that starts running blocks fails here until it is removed.
ALL_SKIPPED_FOR_NOW: dict[str, str] = {}
#: A skip whose reason names the test that runs the block instead: accepted when that test
#: exists and names the page.
TESTED_IN = re.compile(r"tested in (tests/[\w/]+\.py)")
ROOT = DOCS.parent
#: The bucket the docs' S3 examples use.
S3_BUCKET = "my-bucket"


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
        examples = SYBIL.parse(path).examples()
        if any(not isinstance(e.region.evaluator, Skipper) for e in examples):
            pages.append(path)
    return pages


def test_docs_have_examples() -> None:
    """The guide's main pages must keep real, running Python examples."""
    names = {p.relative_to(DOCS).as_posix() for p in _pages()}
    guide = {"quickstart.md", "concepts.md", "hooks.md", "plugin-tutorial.md", "errors.md"}
    capabilities = {"chat.md", "sentiment.md", "storage.md", "vision.md", "training.md"}
    assert guide | capabilities <= names, sorted((guide | capabilities) - names)


def _ensure_bucket(s3: Any, name: str) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.create_bucket(name)
    except ClientError as exc:  # the server is shared by the session: made by an earlier page
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _provide(service: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Start (or reuse) what a page declared with ``<!-- tests: SERVICE -->`` and point it there."""
    if service == "aimock":
        server = request.getfixturevalue("aimock")
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    elif service == "s3":
        s3 = request.getfixturevalue("seaweedfs")
        _ensure_bucket(s3, S3_BUCKET)
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
    elif service == "example-plugin":
        pm = hypotez.get_plugin_manager()
        if not pm.has_plugin("example"):  # unless `pip install -e` put it in this venv already
            monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_SRC))
            pm.add_plugin(importlib.import_module("hypotez_example_plugin"), "example")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_examples(
    page: Path, home: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs = set(NEEDS.findall(page.read_text(encoding="utf-8")))
    assert needs <= SERVICES, f"{page.name}: unknown <!-- tests: ... --> {needs - SERVICES}"
    for service in sorted(needs):
        _provide(service, request, monkeypatch)
    hypotez.get_plugin_manager().add_plugin(FakeChatPlugin(), "docs-fake-chat")
    document = SYBIL.parse(page)
    name = page.relative_to(DOCS).as_posix()
    ran, skipped = 0, []
    for example in document.examples():
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            elsewhere = TESTED_IN.search(str(skip))
            if elsewhere is None:
                skipped.append(f"line {example.line}: {skip}")
                continue
            test = ROOT / elsewhere.group(1)
            assert test.is_file(), f"{name} line {example.line}: {test} does not exist"
            assert page.name in test.read_text(encoding="utf-8"), (
                f"{name} line {example.line}: {elsewhere.group(1)} does not mention {page.name}"
            )
            ran += 1
        else:
            # A skip directive evaluates fine too; only a code block that ran counts.
            ran += not isinstance(example.region.evaluator, Skipper)
    if name in ALL_SKIPPED_FOR_NOW:
        assert not ran, f"{name} runs its examples now: remove it from ALL_SKIPPED_FOR_NOW"
        pytest.xfail(f"{name}: every example is skipped ({skipped}); {ALL_SKIPPED_FOR_NOW[name]}")
    assert ran, f"{name}: every example was skipped ({skipped})"
    for reason in skipped:
        warnings.warn(f"{page.relative_to(DOCS)}: a code block was not run, {reason}", stacklevel=1)

"""Hand-written reference pages that must follow the code: the errors page names every error."""

from __future__ import annotations

import inspect
from pathlib import Path

from hypotez import errors

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_errors_page_names_every_error_under_its_parents() -> None:
    page = (DOCS / "errors.md").read_text(encoding="utf-8")
    tree = page[page.index("```text") : page.index("```", page.index("```text") + 7)]
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.HypotezError)
    ]
    assert len(classes) > 10
    for cls in classes:
        assert f" {cls.__name__} " in tree or tree.startswith(f"```text\n{cls.__name__}\n"), (
            cls.__name__
        )
        for parent in cls.__bases__:
            if issubclass(parent, errors.HypotezError):
                # The tree draws a child below its parent (twice for two parents).
                below = tree.index(parent.__name__)
                assert tree.find(f" {cls.__name__} ", below) != -1, (cls, parent)


def test_quickstart_starts_with_the_readme_commands() -> None:
    """The two fresh-machine commands are the README's, character for character."""
    import re

    def first_bash_block(text: str) -> str:
        match = re.search(r"```bash\n(.*?)```", text, re.DOTALL)
        assert match is not None
        return match.group(1)

    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    quickstart = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    assert first_bash_block(quickstart) == first_bash_block(readme)

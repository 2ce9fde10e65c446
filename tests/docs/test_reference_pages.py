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


def test_every_builtin_command_is_shown_in_the_guide() -> None:
    """The CLI reference is generated; a prose page must still show each command in use."""
    import re

    import click
    from hypotez.cli import build_cli

    prose = "\n".join(
        p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")) if p.name != "cli.md"
    )
    missing = []

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(click.Context(command)):
                walk(command.commands[name], f"{path} {name}")
        elif not re.search(rf"{re.escape(path)}(?![\w-])", prose):
            missing.append(path)

    walk(build_cli(), "hypotez")
    assert not missing, f"no page outside the CLI reference shows {missing}"

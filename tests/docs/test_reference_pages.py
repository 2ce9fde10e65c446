"""Hand-written reference pages that must follow the code: the errors page names every error."""

from __future__ import annotations

import inspect
from pathlib import Path

from hypotez import errors

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_tree() -> dict[str, set[str]]:
    """Each class in the errors page's tree, with the classes it is drawn under."""
    import re

    page = (DOCS / "errors.md").read_text(encoding="utf-8")
    start = page.index("```text\n") + len("```text\n")
    tree = page[start : page.index("```", start)]
    parents: dict[str, set[str]] = {}
    stack: list[tuple[int, str]] = []  # (column, name) of the open branches
    for line in tree.splitlines():
        match = re.search(r"[A-Z]\w+", line)
        if match is None:
            continue
        while stack and stack[-1][0] >= match.start():
            stack.pop()
        parents.setdefault(match.group(0), set()).update([stack[-1][1]] if stack else [])
        stack.append((match.start(), match.group(0)))
    return parents


def test_errors_page_draws_every_error_under_its_parents() -> None:
    classes = {
        c.__name__: c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, errors.HypotezError)
    }
    assert len(classes) > 10
    expected = {
        name: {b.__name__ for b in cls.__bases__ if issubclass(b, errors.HypotezError)}
        for name, cls in classes.items()
    }
    assert documented_tree() == expected


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

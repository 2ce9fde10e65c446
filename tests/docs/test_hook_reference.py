"""The hook reference (docs/hooks.md) documents every hook with the spec's exact signature.

For each hook in :mod:`hypotez.hookspecs` the page must have a ``## `name` `` section whose code
block holds the line ``name(args) -> return`` exactly as :func:`inspect.signature` gives it; the
``register`` callback's documented signature must match :class:`hypotez.Register`. A hook added
to the specs without docs, a changed signature, or a section for a hook that no longer exists
fails here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypotez import hookspecs
from hypotez.plugins import Register

PAGE = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"
HEADING = re.compile(r"^## (.+?)\s*$", re.MULTILINE)
CODE_BLOCK = re.compile(r"^```[\w-]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def hook_specs() -> dict[str, Callable[..., Any]]:
    marker = f"{hookspecs.PROJECT}_spec"
    return {name: f for name, f in vars(hookspecs).items() if callable(f) and hasattr(f, marker)}


class _Written:
    """An annotation shown as written in the source (they are strings under
    ``from __future__ import annotations``), without the quotes repr() would add."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _as_written(annotation: Any) -> Any:
    return _Written(annotation) if isinstance(annotation, str) else annotation


def signature_line(name: str, func: Callable[..., Any], *, skip_self: bool = False) -> str:
    """``name(a: T, *, b: U = 1) -> R`` with annotations as written in the source."""
    sig = inspect.signature(func)
    params = [
        p.replace(annotation=_as_written(p.annotation))
        for p in list(sig.parameters.values())[1 if skip_self else 0 :]
    ]
    sig = sig.replace(parameters=params, return_annotation=_as_written(sig.return_annotation))
    return name + str(sig)


def sections() -> dict[str, str]:
    text = PAGE.read_text(encoding="utf-8")
    marks = list(HEADING.finditer(text))
    out = {}
    for mark, nxt in zip(marks, [*marks[1:], None], strict=True):
        out[mark.group(1).replace("`", "").strip()] = text[
            mark.end() : nxt.start() if nxt else len(text)
        ]
    return out


def code_lines(section: str) -> set[str]:
    return {line.strip() for block in CODE_BLOCK.findall(section) for line in block.splitlines()}


def test_specs_are_found() -> None:
    assert {"register_chat_backends", "register_storages", "register_commands"} <= set(hook_specs())


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_hook_documented_with_exact_signature(name: str) -> None:
    found = sections()
    assert name in found, f"docs/hooks.md has no '## `{name}`' section"
    expected = signature_line(name, hook_specs()[name])
    documented = {line for line in code_lines(found[name]) if line.startswith(f"{name}(")}
    assert documented, f"the {name} section has no signature line; add '{expected}' in a code block"
    assert documented == {expected}, (
        f"docs/hooks.md documents {documented}, the spec is {expected!r}"
    )


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_hook_section_is_complete(name: str) -> None:
    """Each argument, when it is called, what to register, and a working example (run by the
    docs examples test, as every ``python`` block)."""
    section = sections()[name]
    for param in inspect.signature(hook_specs()[name]).parameters:
        assert f"- `{param}`:" in section, f"the {name} section does not describe `{param}`"
    assert "**Called**" in section, f"the {name} section does not say when it is called"
    assert "**Register**" in section, f"the {name} section does not say what to register"
    assert re.search(r"^```python\n", section, re.MULTILINE), f"the {name} section has no example"
    assert f"def {name}(" in section, f"the {name} section's example does not implement the hook"


def test_no_section_for_a_hook_that_does_not_exist() -> None:
    documented = {name for name in sections() if name.startswith("register_")}
    assert documented <= set(hook_specs()), (
        f"stale sections: {sorted(documented - set(hook_specs()))}"
    )


def test_register_callback_signature() -> None:
    expected = signature_line("register", Register.__call__, skip_self=True)
    lines = code_lines(sections()["The register callback"])
    assert expected in lines, (
        f"docs/hooks.md should show {expected!r} under 'The `register` callback'"
    )


def test_signature_line_format() -> None:
    """The formatter renders what a reader expects (guards the test's own logic)."""

    def sample(register: Register, *, flag: bool = False, label: str = "x") -> None: ...

    assert (
        signature_line("sample", sample)
        == "sample(register: Register, *, flag: bool = False, label: str = 'x') -> None"
    )

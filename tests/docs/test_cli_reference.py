"""The generated CLI reference covers every command and option, plugins' commands included."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import click
import hypotez
from hypotez import hookimpl

HOOK = Path(__file__).resolve().parents[2] / "docs" / "hooks" / "cli_reference.py"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_reference", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_and_option_is_documented() -> None:
    from hypotez.cli import build_cli

    hook = load_hook()
    root = build_cli()
    text = hook.render_cli_reference(root)
    root_ctx = click.Context(root, info_name="hypotez", **root.context_settings)
    paths = []
    sections = {
        part.split("`\n", 1)[0]: part for part in text.split("## `")[1:]
    }  # command path -> its own section, so an option found elsewhere does not count
    for command, ctx in hook.walk(root, root_ctx):
        paths.append(ctx.command_path)
        section = sections.get(ctx.command_path)
        assert section is not None, f"no section for {ctx.command_path}"
        assert f"Usage: {ctx.command_path} " in section
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                option_cells = [
                    r.split("|")[1] for r in section.splitlines() if r.startswith("| `")
                ]
                assert any(param.opts[0] in cell for cell in option_cells), (
                    f"{ctx.command_path}: {param.opts[0]} is not in its options table"
                )
    # The built-in commands at least; others come from plugins and new modules.
    assert {
        "hypotez",
        "hypotez ask",
        "hypotez sentiment",
        "hypotez plugins",
        "hypotez dialogues list",
    } <= set(paths)


def test_a_plugin_command_appears_without_editing_the_page() -> None:
    class Plugin:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.command("frobnicate")
            @click.option("--level", type=int, default=3, show_default=True, help="How hard.")
            def frobnicate(level: int) -> None:
                """Frobnicate the dialogues."""

    group = click.Group("hypotez", help="Root.")
    hypotez.make_plugin_manager(entry_points=False, plugins=[Plugin()]).hook.register_commands(
        cli=group
    )
    text = load_hook().render_cli_reference(group)
    assert "## `hypotez frobnicate`" in text
    assert "Frobnicate the dialogues." in text
    assert "| `--level INTEGER` | How hard.  [default: 3] |" in text
    assert "[`hypotez frobnicate`](#hypotez-frobnicate)" in text

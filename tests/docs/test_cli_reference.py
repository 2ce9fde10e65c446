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
    for command, ctx in hook.walk(root, root_ctx):
        paths.append(ctx.command_path)
        assert f"## `{ctx.command_path}`\n" in text
        assert f"Usage: {ctx.command_path} " in text
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not param.hidden:
                assert f"`{param.opts[0]}" in text or f" {param.opts[0]}" in text, (
                    ctx.command_path,
                    param.opts,
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

"""MkDocs hook: render the CLI reference from the click commands themselves.

``docs/cli.md`` holds the marker ``<!-- cli-reference -->``; at build time it is replaced by one
section per command (usage, help, arguments, options), found by walking
``hypotez.cli.build_cli()``. A new built-in command or a plugin's ``register_commands`` command
therefore appears in the reference without anyone editing a page.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import click

MARKER = "<!-- cli-reference -->"
PAGE = "cli.md"


def walk(
    command: click.Command, ctx: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    """The command, then every subcommand depth-first, in name order."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from walk(
                sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings)
            )


def anchor(command_path: str) -> str:
    """The id MkDocs gives a command's heading: ``hypotez dialogues list`` -> ``hypotez-dialogues-list``."""
    return "-".join(command_path.split())


def _help_paragraphs(text: str | None) -> list[str]:
    """Click help text as Markdown paragraphs (``\\b`` blocks kept verbatim, ``\\f`` cuts)."""
    text = inspect.cleandoc(text or "").split("\f", 1)[0]
    out = []
    for para in text.split("\n\n"):
        if para.startswith("\b\n"):
            out.append("```text\n" + para[2:] + "\n```")
        elif para.strip():
            out.append(_escape(" ".join(para.split())))
    return out


def _escape(text: str) -> str:
    """Keep angle brackets as text: help strings are not HTML."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    return _escape(text).replace("|", "\\|").replace("\n", " ")


def render_command(command: click.Command, ctx: click.Context) -> str:
    lines = [f"## `{ctx.command_path}`", ""]
    for para in _help_paragraphs(command.help):
        lines += [para, ""]
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    lines += ["```text", f"Usage: {usage}", "```", ""]
    params = [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]
    arguments = [p for p in params if isinstance(p, click.Argument)]
    if arguments:
        lines += ["**Arguments:** " + ", ".join(f"`{a.make_metavar(ctx)}`" for a in arguments), ""]
    options = [(p, p.get_help_record(ctx)) for p in params if isinstance(p, click.Option)]
    options = [(p, r) for p, r in options if r is not None]
    if options:
        lines += ["| Option | Description |", "| --- | --- |"]
        for _param, (opts, help_text) in options:
            lines.append(f"| `{_cell(opts)}` | {_cell(help_text)} |")
        lines.append("")
    if isinstance(command, click.Group):
        subs = [(n, command.get_command(ctx, n)) for n in sorted(command.list_commands(ctx))]
        rows = [
            f"- [`{ctx.command_path} {n}`](#{anchor(f'{ctx.command_path} {n}')}): "
            + _escape(c.get_short_help_str(200))
            for n, c in subs
            if c and not c.hidden
        ]
        if rows:
            lines += ["**Commands:**", "", *rows, ""]
    return "\n".join(lines)


def render_cli_reference(root: click.Command | None = None) -> str:
    """Markdown for every command of the ``hypotez`` CLI (built-ins and installed plugins')."""
    if root is None:
        from hypotez.cli import build_cli

        root = build_cli()
    ctx = click.Context(root, info_name="hypotez", **root.context_settings)
    return "\n".join(render_command(cmd, sub_ctx) for cmd, sub_ctx in walk(root, ctx))


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        from mkdocs.exceptions import PluginError

        raise PluginError(
            f"docs/{PAGE} lost its {MARKER} marker: the CLI reference has nowhere to go."
        )
    return markdown.replace(MARKER, render_cli_reference())

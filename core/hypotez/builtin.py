"""Core's own plugin: the ``keywords`` sentiment analyzer and hypotez's own CLI commands.

It is registered like any other plugin (under the plugin name ``hypotez``) and is always loaded,
even with ``HYPOTEZ_PLUGINS=""``, so that a bare install can still analyse sentiment and run
its commands. Its commands go through the same ``register_commands`` hook as a third-party
plugin's (as tox 4's do), so they are listed, wrapped and conflict-checked the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez.hookspecs import hookimpl

if TYPE_CHECKING:
    import click
    from hypotez.registry import Register


def _keywords(context: Any) -> Any:
    from hypotez.keywords import KeywordsAnalyzer

    return KeywordsAnalyzer()


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register(
        "keywords",
        _keywords,
        priority=-100,  # the last resort when no better analyzer is installed
        description="English and Russian word lists with negation; no dependencies",
    )


@hookimpl(tryfirst=True)  # hypotez's own commands exist before any plugin adds its own
def register_commands(cli: click.Group) -> None:
    """Every module of :mod:`hypotez.cli` with a ``register(group)`` function adds its commands."""
    import importlib
    import pkgutil

    from hypotez import cli as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name != "common" and not info.name.startswith("_"):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            add = getattr(module, "register", None)
            if add is not None:
                add(cli)

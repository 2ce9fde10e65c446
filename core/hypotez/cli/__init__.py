"""The ``hypotez`` command line.

Built-in commands live in one small module each; plugins add theirs through the
``register_commands`` hook. Heavy libraries are imported inside command functions only.
"""

from __future__ import annotations

import sys

import click
from hypotez import __version__
from hypotez.cli.common import GlobalOptions, run_guarded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="hypotez")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="A hypotez.toml to read."
)
@click.option(
    "--home", type=click.Path(file_okay=False), help="Data directory [env: HYPOTEZ_HOME]."
)
@click.option(
    "--storage", help="Storage URL, e.g. file:///data or s3://bucket/prefix [env: HYPOTEZ_STORAGE]."
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, home: str | None, storage: str | None) -> None:
    """hypotez: chat, sentiment, vision and fine-tuning through plugins.

    With OPENAI_API_KEY set the OpenAI plugin answers; without it the offline local stack does.
    """
    ctx.obj = GlobalOptions(config_file=config_file, home=home, storage=storage)


def _add_builtin_commands(group: click.Group) -> None:
    """Every module of this package with a ``register(group)`` function adds its commands."""
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "common" and not info.name.startswith("_"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(group)


def build_cli() -> click.Group:
    """The CLI with the built-in commands and every plugin's commands.

    A plugin may add commands but not replace one: click would let the last one win in silence,
    so a plugin could take over ``hypotez ask`` without anyone noticing.
    """
    from hypotez.errors import HypotezError, PluginError
    from hypotez.plugins import CORE_PLUGIN, get_plugin_manager

    cli.commands = {}  # built afresh, so that building twice sees no clash with itself
    _add_builtin_commands(cli)
    owners = dict.fromkeys(cli.commands, CORE_PLUGIN)
    for impl in get_plugin_manager().hook.register_commands.get_hookimpls():
        before = dict(cli.commands)
        try:
            impl.function(**dict.fromkeys(impl.argnames, cli))
        except HypotezError:
            raise
        except Exception as exc:
            raise PluginError(
                f"Plugin {impl.plugin_name!r} failed to add its commands: {exc!r}. Skip it with "
                f"HYPOTEZ_DISABLE_PLUGINS={impl.plugin_name}."
            ) from exc
        for name, command in cli.commands.items():
            if name in before and before[name] is not command:
                raise PluginError(
                    f"Plugin {impl.plugin_name!r} adds the command {name!r}, which "
                    f"{owners[name]!r} already provides. Rename one, or skip the plugin with "
                    f"HYPOTEZ_DISABLE_PLUGINS={impl.plugin_name}."
                )
            owners.setdefault(name, impl.plugin_name)
    return cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hypotez`` script."""
    sys.exit(
        run_guarded(lambda: build_cli().main(args=argv, prog_name="hypotez", standalone_mode=False))
    )

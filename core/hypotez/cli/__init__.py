"""The ``hypotez`` command line.

Built-in commands live in one small module each; plugins add theirs through the
``register_commands`` hook. Heavy libraries are imported inside command functions only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

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
    "--storage",
    help="Storage URL, e.g. file:///data, or another scheme a storage plugin serves "
    "[env: HYPOTEZ_STORAGE].",
)
@click.pass_context
def cli(ctx: click.Context, config_file: str | None, home: str | None, storage: str | None) -> None:
    """hypotez: chat, sentiment, vision and fine-tuning through plugins.

    Each capability uses the best available backend unless you name one; `hypotez plugins`
    lists them and what each needs (an API key, a package).
    """
    ctx.obj = GlobalOptions(config_file=config_file, home=home, storage=storage)


def build_cli() -> click.Group:
    """The CLI with every plugin's commands, hypotez's own included (core's plugin adds them).

    The hook is called through pluggy, once, with a group that refuses to let one plugin's
    command replace another's: click would let the last one win in silence, so a plugin could
    take over ``hypotez ask`` without anyone noticing.
    """
    from hypotez.errors import HypotezError, PluginError
    from hypotez.plugins import get_plugin_manager

    cli.commands = {}  # built afresh, so that building twice sees no clash with itself
    guarded = _GuardedGroup(cli)
    try:
        get_plugin_manager().hook.register_commands(cli=guarded)
    except HypotezError:
        raise
    except Exception as exc:
        plugin = _caller_plugin(exc.__traceback__)
        raise PluginError(
            f"Plugin {plugin!r} failed to add its commands: {exc!r}. Skip it with "
            f"HYPOTEZ_DISABLE_PLUGINS={plugin}."
        ) from exc
    return cli


class _GuardedGroup:
    """The ``cli`` a plugin sees: ``add_command`` and ``command``/``group`` like a click group,
    refusing a name another plugin already added (and naming both plugins)."""

    def __init__(self, group: click.Group) -> None:
        self._group = group
        self.owners: dict[str, str] = {}

    def add_command(self, command: click.Command, name: str | None = None) -> None:
        from hypotez.errors import PluginError

        name = name or command.name
        if name is None:
            raise PluginError(f"Plugin {_caller_plugin()!r} adds a command without a name.")
        plugin = _caller_plugin()
        if name in self._group.commands and self._group.commands[name] is not command:
            raise PluginError(
                f"Plugin {plugin!r} adds the command {name!r}, which {self.owners.get(name)!r} "
                f"already provides. Rename one, or skip the plugin with "
                f"HYPOTEZ_DISABLE_PLUGINS={plugin}."
            )
        self.owners.setdefault(str(name), plugin)
        self._group.add_command(command, name)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Command]:
        def decorator(func: Callable[..., Any]) -> click.Command:
            command = click.command(*args, **kwargs)(func)
            self.add_command(command)
            return command

        return decorator

    def group(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], click.Group]:
        def decorator(func: Callable[..., Any]) -> click.Group:
            group = click.group(*args, **kwargs)(func)
            self.add_command(group)
            return group

        return decorator

    def __getattr__(self, name: str) -> Any:  # everything else a click group has
        return getattr(self._group, name)


def _caller_plugin(traceback: Any = None) -> str:
    """The plugin whose register_commands implementation is on the stack (or, given an
    exception's traceback, the innermost one it passed through)."""
    import sys

    from hypotez.plugins import get_plugin_manager

    codes = {
        getattr(impl.function, "__code__", None): impl.plugin_name
        for impl in get_plugin_manager().hook.register_commands.get_hookimpls()
    }
    found = "unknown"
    if traceback is not None:
        while traceback is not None:
            found = codes.get(traceback.tb_frame.f_code, found)
            traceback = traceback.tb_next
        return found
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code in codes:
            return codes[frame.f_code]
        frame = frame.f_back  # type: ignore[assignment]
    return found


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hypotez`` script."""
    # Text a storage keeps faithfully may hold lone surrogates (bytes that were not UTF-8);
    # printing them must show an escape, never end the command with UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    sys.exit(
        run_guarded(lambda: build_cli().main(args=argv, prog_name="hypotez", standalone_mode=False))
    )

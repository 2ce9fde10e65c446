"""What every CLI command shares: global options, opening a context, a session or a storage
(always closed again), turning errors into messages and exit codes.

Exit codes: 0 success, 1 a runtime failure (backend, storage, plugin, or a prompt that met the
end of standard input), 2 bad input or usage, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from hypotez.context import Context
    from hypotez.models import Reply
    from hypotez.protocols import Storage
    from hypotez.session import Session
    from hypotez.settings import Settings


class GlobalOptions:
    """The options given before the command (``hypotez --home DIR ask ...``)."""

    def __init__(
        self, config_file: str | None = None, home: str | None = None, storage: str | None = None
    ) -> None:
        self.config_file, self.home, self.storage = config_file, home, storage

    def settings(self, **overrides: Any) -> Settings:
        from hypotez.settings import Settings

        return Settings.load(
            config_file=self.config_file,
            **{
                k: v
                for k, v in {"home": self.home, "storage": self.storage, **overrides}.items()
                if v is not None
            },
        )


def global_options() -> GlobalOptions:
    ctx = click.get_current_context()
    obj = ctx.find_object(GlobalOptions)
    return obj if obj is not None else GlobalOptions()


@contextmanager
def context(**choices: Any) -> Iterator[Context]:
    """A context from the global options (backend choices as for :class:`hypotez.Context`),
    closed when the command ends."""
    from hypotez.context import Context

    with Context(global_options().settings(), **choices) as ctx:
        yield ctx


@contextmanager
def session(**kwargs: Any) -> Iterator[Session]:
    """A session from the global options; keyword arguments go to :class:`hypotez.Session`."""
    from hypotez.session import Session

    settings = global_options().settings()
    with Session(settings=settings, **kwargs) as s:
        yield s


@contextmanager
def storage(url: str | None = None) -> Iterator[Storage]:
    """The storage at ``url`` (default: the configured one), closed when the command ends."""
    with context() as ctx:
        yield ctx.get("storage", url)


def run_guarded(func: Callable[[], Any]) -> int:
    """Run the CLI, turning errors into a one-line message and an exit code.

    Every message goes out with any ``user:password@`` in a URL masked, whichever part of
    hypotez or of a plugin wrote it.
    """
    from hypotez.errors import HypotezError, InputError, redact

    try:
        result = func()
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort as exc:
        if isinstance(exc.__context__, EOFError):  # a prompt met the end of standard input
            click.echo(
                "Aborted: a question needed an answer and standard input had none. "
                "In a script, pass the answer as an option (see --help, e.g. --yes).",
                err=True,
            )
            return 1
        click.echo("Aborted.", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except ReplyNotStored as exc:
        exc.report()
        return 2 if isinstance(exc.cause, InputError) else 1
    except InputError as exc:
        click.echo(f"Error: {redact(str(exc))}", err=True)
        return 2
    except HypotezError as exc:
        click.echo(f"Error: {redact(str(exc))}", err=True)
        return 1
    except BrokenPipeError:  # `hypotez ... | head`
        sys.stderr.close()
        return 0
    return result if isinstance(result, int) else 0


class ReplyNotStored(Exception):
    """The model answered, and the reply was printed, but analysing or storing it failed."""

    def __init__(self, cause: Exception, reply: Reply) -> None:
        super().__init__(str(cause))
        self.cause, self.reply = cause, reply

    def report(self) -> None:
        from hypotez.errors import redact

        click.echo(f"Error: {redact(str(self.cause))}", err=True)
        click.echo(
            "The reply above was received (it may have been paid for) but NOT stored in the "
            "dialogue; fix the problem above and ask again to keep it.",
            err=True,
        )


def ask_and_print(
    s: Session, text: str, *, stream: bool, echo: bool = True, **kwargs: Any
) -> Reply:
    """Ask through the session, printing the reply (as it arrives when ``stream``).

    A reply that arrived but could not be analysed or stored is still printed, then
    :class:`ReplyNotStored` is raised: a reply may have been paid for and is never thrown away.
    With tools, each call and its result are shown on standard error as they happen (the
    session's stream says when), whether or not the reply itself is streamed.
    """
    from hypotez.errors import HypotezError

    before = s.last_reply
    printed = False
    try:
        if not stream and not kwargs.get("tools"):
            reply = s.ask(text, **kwargs)
            if echo:
                click.echo(reply.text)
            return reply
        final = None
        for chunk in s.stream(text, **kwargs):
            if chunk.tool_call is not None:
                show_tool_call(chunk.tool_call)
            elif chunk.tool_result is not None:
                show_tool_result(chunk.tool_result)
            elif chunk.reply is not None:
                final = chunk.reply
            elif echo and stream:
                click.echo(chunk.delta, nl=False)
                printed = True
        assert final is not None  # Session.stream always ends with the whole reply
        if echo:
            click.echo() if stream else click.echo(final.text)
        return final
    except HypotezError as exc:
        arrived = s.last_reply
        if arrived is None or arrived is before:
            if printed:
                click.echo()  # end the partial line before the error message
            raise  # no reply came: nothing to keep
        if echo:
            if printed:
                click.echo()  # the deltas were the whole reply
            else:
                click.echo(arrived.text)
        raise ReplyNotStored(exc, arrived) from exc


def show_tool_call(call: Any) -> None:
    from hypotez.tools import describe_call

    click.echo(f"[tool] {describe_call(call)}", err=True)


def show_tool_result(result: Any) -> None:
    lines = result.content.strip().splitlines() or [""]
    first = lines[0][:200] + (" ..." if len(lines) > 1 or len(lines[0]) > 200 else "")
    said = "failed: " if result.is_error else "-> "
    click.echo(f"[tool] {result.call.name} {said}{first}", err=True)


#: ``--tool MODULE:FUNCTION`` (repeatable), for the commands that ask a model; see load_tools.
tool_option = click.option(
    "--tool",
    "tools",
    multiple=True,
    metavar="MODULE:FUNCTION",
    help="A Python function the model may call (repeatable); calls are shown as they happen.",
)


def load_tools(specs: Sequence[str]) -> list[Any]:
    """``module:function`` names (``--tool``) -> the functions, imported from the current
    folder or the installed packages."""
    import importlib
    import os

    if os.getcwd() not in sys.path:  # as `python -m` does: a tools.py next to you is found
        sys.path.insert(0, os.getcwd())
    found = []
    for spec in specs:
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            raise click.BadParameter(
                f"{spec!r} is not MODULE:FUNCTION (e.g. mytools:get_weather).", param_hint="--tool"
            )
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise click.BadParameter(
                f"cannot import {module_name!r} for {spec!r} ({exc}). Run from the folder that "
                f"holds {module_name.replace('.', '/')}.py, or install the package.",
                param_hint="--tool",
            ) from None
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise click.BadParameter(
                    f"{module_name!r} has no {attribute!r} (from {spec!r}).", param_hint="--tool"
                )
            target = getattr(target, part)
        if not callable(target):
            raise click.BadParameter(f"{spec!r} is not a function.", param_hint="--tool")
        found.append(target)
    return found


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def sentiment_text(sentiment: Any) -> str:
    return (
        ""
        if sentiment is None
        else f"{sentiment.label} ({sentiment.score:+.2f}, {sentiment.backend})"
    )

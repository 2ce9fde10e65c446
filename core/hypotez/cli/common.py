"""What every CLI command shares: global options, opening a context, a session or a storage
(always closed again), turning errors into messages and exit codes.

Exit codes: 0 success, 1 a runtime failure (backend, storage, plugin, or a prompt that met the
end of standard input), 2 bad input or usage, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
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
    """
    from hypotez.errors import HypotezError

    before = s.last_reply
    printed = False
    try:
        if not stream:
            reply = s.ask(text, **kwargs)
            if echo:
                click.echo(reply.text)
            return reply
        final = None
        for chunk in s.stream(text, **kwargs):
            if chunk.reply is not None:
                final = chunk.reply
            elif echo:
                click.echo(chunk.delta, nl=False)
                printed = True
        if echo:
            click.echo()
        assert final is not None  # Session.stream always ends with the whole reply
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


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def sentiment_text(sentiment: Any) -> str:
    return (
        ""
        if sentiment is None
        else f"{sentiment.label} ({sentiment.score:+.2f}, {sentiment.backend})"
    )

"""``hypotez chat``: an interactive conversation that keeps the dialogue, with streaming."""

from __future__ import annotations

from typing import Any

import click
from hypotez.cli.common import (
    ReplyNotStored,
    ask_and_print,
    load_tools,
    sentiment_text,
    session,
    tool_option,
)

HELP = "Commands: /exit (or /quit, Ctrl-D) to leave, /new to start a new dialogue, /help."


def _passing_errors() -> tuple[type[Exception], ...]:
    """Failures of one request that need not end the conversation (the session stores
    nothing for a failed ask, so the dialogue stays consistent and the user can resend)."""
    from hypotez.errors import (
        BackendConnectionError,
        BackendTimeoutError,
        ContextLengthError,
        InputError,
        RateLimitError,
        ServerError,
    )

    return (
        RateLimitError,
        ServerError,
        BackendTimeoutError,
        BackendConnectionError,
        ContextLengthError,
        InputError,  # this message could not be sent (bad text, an option out of range)
    )


@click.command()
@click.option("--chat", "chat_name", help="Chat backend name [env: HYPOTEZ_CHAT].")
@click.option("--model", help="Model name [env: HYPOTEZ_MODEL].")
@click.option("--system", help="System instruction.")
@click.option("--assistant", "assistant_id", help="Apply an assistant preset (hypotez assistants).")
@click.option("--dialogue", "dialogue_id", help="Continue this stored dialogue.")
@click.option("--analyzer", help="Sentiment analyzer [env: HYPOTEZ_SENTIMENT].")
@click.option("--temperature", type=float)
@click.option("--max-tokens", type=click.IntRange(min=1))
@click.option(
    "--stream/--no-stream", default=True, show_default=True, help="Print replies as they arrive."
)
@tool_option
def chat(
    chat_name: str | None,
    model: str | None,
    system: str | None,
    assistant_id: str | None,
    dialogue_id: str | None,
    analyzer: str | None,
    temperature: float | None,
    max_tokens: int | None,
    stream: bool,
    tools: tuple[str, ...],
) -> None:
    """Talk with the model; every turn is stored with its sentiment. /exit to leave.

    A request that fails for a passing reason (rate limit, server error, timeout, dropped
    connection, context too long) is reported and the chat goes on; the exit code is then 1.
    With --tool the model may call your functions in every turn (see `hypotez ask --help`).
    """
    functions = load_tools(tools)
    with session(
        chat=chat_name,
        sentiment=analyzer,
        model=model,
        system=system,
        dialogue_id=dialogue_id,
        assistant=assistant_id,
    ) as s:
        click.echo(
            f"Chatting with {s.chat_backend.name} ({s.model or 'default model'}). {HELP}", err=True
        )
        kwargs: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
        if functions:
            kwargs["tools"] = functions
        passing = _passing_errors()
        failed = 0
        while True:
            try:
                line = click.prompt(
                    "you", prompt_suffix="> ", default="", show_default=False, err=True
                )
            except (EOFError, click.Abort):
                click.echo(err=True)
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                break
            if text == "/help":
                click.echo(HELP, err=True)
                continue
            if text == "/new":
                s.new_dialogue()
                click.echo("Started a new dialogue.", err=True)
                continue
            try:
                reply = ask_and_print(s, text, stream=stream, **kwargs)
            except ReplyNotStored as exc:
                exc.report()
                failed += 1
                continue
            except passing as exc:
                # A wrong key or an unknown model still ends the chat (run_guarded reports it):
                # retrying those cannot help.
                click.echo(err=True)
                click.echo(f"Error: {exc}", err=True)
                click.echo(
                    "Nothing was stored for that message: send it again, or /exit.", err=True
                )
                failed += 1
                continue
            if reply.sentiment is not None:
                click.echo(f"[sentiment: {sentiment_text(reply.sentiment)}]", err=True)
        if s.dialogue_id:
            click.echo(f"Dialogue saved as {s.dialogue_id}", err=True)
    if failed:
        # The conversation went on, but a script must still learn that requests failed.
        click.echo(f"{failed} request(s) failed during the chat.", err=True)
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    group.add_command(chat)

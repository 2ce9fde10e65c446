"""``hypotez ask``: one question, with the reply's sentiment, stored in a dialogue."""

from __future__ import annotations

from typing import Any

import click
from hypotez.cli.common import (
    ReplyNotStored,
    ask_and_print,
    echo_json,
    load_tools,
    sentiment_text,
    session,
    tool_option,
)


@click.command()
@click.argument("message", nargs=-1, required=True)
@click.option("--chat", "chat_name", help="Chat backend name [env: HYPOTEZ_CHAT].")
@click.option("--model", help="Model name [env: HYPOTEZ_MODEL].")
@click.option("--system", help="System instruction.")
@click.option("--dialogue", "dialogue_id", help="Continue this stored dialogue.")
@click.option("--analyzer", help="Sentiment analyzer for this call [env: HYPOTEZ_SENTIMENT].")
@click.option("--temperature", type=float, help="Sampling temperature (backend default if unset).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="Cap on the reply length in tokens.")
@click.option("--stream/--no-stream", default=False, help="Print the reply as it arrives.")
@tool_option
@click.option(
    "--tool-choice",
    help="auto (default), none, required, or a tool's name: the model must call that tool.",
)
@click.option(
    "--max-tool-rounds",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Rounds of tool calls before the model must answer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the reply as JSON.")
def ask(
    message: tuple[str, ...],
    chat_name: str | None,
    model: str | None,
    system: str | None,
    dialogue_id: str | None,
    analyzer: str | None,
    temperature: float | None,
    max_tokens: int | None,
    stream: bool,
    tools: tuple[str, ...],
    tool_choice: str | None,
    max_tool_rounds: int,
    as_json: bool,
) -> None:
    """Ask MESSAGE; print the reply and its sentiment; keep both in a dialogue.

    With --tool the model may call your functions, e.g. --tool mytools:get_weather for
    get_weather in mytools.py in the current folder; each call and its result are shown (on
    standard error) and stored in the dialogue.
    """
    text = " ".join(message)
    functions = load_tools(tools)
    with session(
        chat=chat_name, sentiment=analyzer, model=model, system=system, dialogue_id=dialogue_id
    ) as s:
        tool_options = (
            {"tools": functions, "tool_choice": tool_choice, "max_tool_rounds": max_tool_rounds}
            if functions
            else {"tool_choice": tool_choice}
            if tool_choice
            else {}
        )
        try:
            reply = ask_and_print(
                s,
                text,
                stream=stream and not as_json,
                echo=not as_json,
                temperature=temperature,
                max_tokens=max_tokens,
                **tool_options,
            )
        except ReplyNotStored as exc:
            if as_json:  # a script still gets the reply, and learns it was not stored
                echo_json({**_as_dict(exc.reply, None), "stored": False, "error": str(exc)})
            raise
        if as_json:
            echo_json({**_as_dict(reply, s.dialogue_id), "stored": True})
        else:
            click.echo(
                f"[sentiment: {sentiment_text(reply.sentiment)}; dialogue: {s.dialogue_id}]",
                err=True,
            )


def _as_dict(reply: Any, dialogue_id: str | None) -> dict[str, Any]:
    return {
        "text": reply.text,
        "model": reply.model,
        "backend": reply.backend,
        "finish_reason": reply.finish_reason,
        "usage": reply.usage.to_dict(),
        "sentiment": reply.sentiment.to_dict() if reply.sentiment else None,
        "dialogue_id": dialogue_id,
        "tool_calls": [
            {
                "name": r.call.name,
                "arguments": r.call.arguments,
                "result": r.content,
                "error": r.is_error,
            }
            for r in reply.tool_results
        ],
    }


def register(group: click.Group) -> None:
    group.add_command(ask)

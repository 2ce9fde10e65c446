"""``hypotez dialogues list|show|export|delete``: what the storage holds."""

from __future__ import annotations

import click
from hypotez.cli.common import echo_json, sentiment_text
from hypotez.cli.common import storage as _storage


@click.group()
def dialogues() -> None:
    """List, show, export and delete stored dialogues."""


@dialogues.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the dialogues' headers as JSON.")
def list_(as_json: bool) -> None:
    """List stored dialogues, oldest first."""
    with _storage() as storage:
        infos = storage.list_dialogues()
    if as_json:
        echo_json([i.to_dict() for i in infos])
        return
    if not infos:
        click.echo("No dialogues yet. Start one with: hypotez ask 'Hello'", err=True)
    for info in infos:
        click.echo(
            f"{info.id}  {info.created:%Y-%m-%d %H:%M}  {info.title or (info.system or '')[:50]}"
        )


@dialogues.command()
@click.argument("dialogue_id")
def show(dialogue_id: str) -> None:
    """Print a dialogue turn by turn, with each turn's sentiment, tool calls and results."""
    with _storage() as storage:
        dialogue = storage.load_dialogue(dialogue_id)
    if dialogue.info.system:
        click.echo(f"system: {dialogue.info.system}")
    from hypotez.tools import describe_call

    for turn in dialogue.turns:
        mood = f"  [{sentiment_text(turn.sentiment)}]" if turn.sentiment else ""
        if turn.role == "tool":
            failed = " (error)" if turn.meta.get("error") else ""
            click.echo(f"tool {turn.name or '?'}{failed}: {turn.content}")
            continue
        if turn.content or not turn.tool_calls:
            click.echo(f"{turn.role}: {turn.content}{mood}")
        for call in turn.tool_calls:
            click.echo(f"{turn.role} calls {describe_call(call, limit=500)}")


@dialogues.command()
@click.argument("dialogue_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl", "markdown"]),
    default="json",
    show_default=True,
    help="json: everything stored; jsonl: one chat fine-tuning example; markdown: for reading.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="File to write (default: stdout). An existing file is replaced; a link, FIFO or device is refused.",
)
def export(dialogue_id: str, fmt: str, output: str | None) -> None:
    """Export a dialogue as JSON, chat JSONL or Markdown."""
    from hypotez.export import export_dialogue
    from hypotez.files import check_output, write_output

    if output:
        check_output(output)  # before any work: a typo or a link is reported at once
    with _storage() as storage:
        text = export_dialogue(storage.load_dialogue(dialogue_id), fmt)
    if output:
        write_output(output, text)  # never through a link, FIFO or device; errors say why
        click.echo(f"Wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@dialogues.command()
@click.argument("dialogue_id")
@click.confirmation_option(prompt="Delete this dialogue for good?")
def delete(dialogue_id: str) -> None:
    """Delete a stored dialogue."""
    with _storage() as storage:
        storage.delete_dialogue(dialogue_id)
    click.echo(f"Deleted {dialogue_id}", err=True)


def register(group: click.Group) -> None:
    group.add_command(dialogues)

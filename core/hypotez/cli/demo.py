"""``hypotez demo``: the seed's ``main()`` story on whatever backends are configured.

Offline by default: with no API key configured, the best available backend of each capability
is a local one (the local chat model, a sentiment analyzer, an image classifier, file storage). Every step prints what it did; a step that fails says why, the others still run,
and the exit code is 1 if any failed.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from hypotez.cli.common import global_options, sentiment_text
from hypotez.errors import redact

if TYPE_CHECKING:
    from hypotez.session import Session

GREETING = "Hello, how are you?"
FOLLOW_UP = "What can you help me with? Answer in one short sentence."


def _step(title: str, failures: list[str], func: Callable[[], None]) -> None:
    from hypotez.errors import HypotezError

    click.secho(f"\n== {title}", bold=True)
    try:
        func()
    except (HypotezError, click.ClickException) as exc:
        failures.append(title)
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        click.secho(f"   failed: {message}", fg="red", err=True)
    except Exception:  # the demo reports every step; a bug shows its traceback
        failures.append(title)
        click.secho(
            f"   failed with an unexpected error:\n{traceback.format_exc()}", fg="red", err=True
        )


@click.command()
@click.option("--chat", "chat_name", help="Chat backend (default: the best available).")
@click.option("--analyzer", help="Sentiment analyzer (default: the best available).")
@click.option("--vision", help="Vision backend (default: the best available).")
@click.option(
    "--image",
    type=click.Path(exists=True, dir_okay=False),
    help="Image to describe (default: a sample photo).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=96,
    show_default=True,
    help="Reply length cap.",
)
def demo(
    chat_name: str | None,
    analyzer: str | None,
    vision: str | None,
    image: str | None,
    max_tokens: int,
) -> None:
    """Chat with sentiment, describe an image and prepare a fine-tuning file, end to end."""
    from hypotez import samples
    from hypotez.session import Session

    settings = global_options().settings()
    failures: list[str] = []
    with Session(settings=settings, chat=chat_name, sentiment=analyzer, vision=vision) as s:
        click.secho("hypotez demo", bold=True)
        click.echo(f"data: {redact(settings.storage)}")

        def models() -> None:
            found = s.list_models()
            click.echo(f"   chat backend: {s.chat_backend.name}")
            click.echo("   models: " + (", ".join(m.id for m in found) or "none reported"))
            assistants = s.list_assistants()
            click.echo(
                "   assistants: "
                + (
                    ", ".join(f"{a.id} ({a.name})" for a in assistants)
                    or "none yet (add one with `hypotez assistants add`)"
                )
            )

        def converse(message: str) -> Callable[[], None]:
            def run() -> None:
                click.echo(f"   you: {message}")
                reply = s.ask(message, max_tokens=max_tokens)
                click.echo(f"   {reply.model}: {reply.text.strip()}")
                click.echo(f"   sentiment: {sentiment_text(reply.sentiment)}")

            return run

        def describe() -> None:
            path = Path(image) if image else samples.image_path()
            click.echo(f"   image: {path}")
            description = s.describe_image(path)
            click.echo(f"   {description.backend}: {description.text}")

        def training() -> None:
            _training_file(s)

        _step("1. Models and assistants", failures, models)
        _step("2. Ask", failures, converse(GREETING))
        _step("3. Continue the dialogue", failures, converse(FOLLOW_UP))
        _step("4. Describe an image", failures, describe)
        _step("5. Prepare fine-tuning data from the saved dialogue", failures, training)

        click.secho("\n== Stored", bold=True)
        if s.dialogue_id:
            click.echo(f"   dialogue {s.dialogue_id} in {redact(settings.storage)}")
            click.echo(f"   show it: hypotez dialogues show {s.dialogue_id}")
    if failures:
        click.secho(f"\n{len(failures)} step(s) failed: {', '.join(failures)}", fg="red", err=True)
        raise click.exceptions.Exit(1)


def _training_file(s: Session) -> None:
    from hypotez import datasets, validation
    from hypotez.errors import ConfigError
    from hypotez.files import atomic_write_bytes

    if s.dialogue_id is None:
        raise click.ClickException(
            "No dialogue was saved (the chat steps failed), so there is nothing to train on."
        )
    data = datasets.from_dialogues(s.storage, dialogue_ids=[s.dialogue_id])
    try:
        trainer = s.trainer
    except ConfigError:
        trainer = None  # no trainer available: the format is still checked
    report = validation.validate(data, trainer=trainer)
    path = s.settings.home / "training" / f"{s.dialogue_id}.jsonl"
    atomic_write_bytes(path, datasets.to_jsonl(data.examples()))
    click.echo(f"   wrote {len(data.records)} example(s) to {path}")
    click.echo("   " + report.render().replace("\n", "\n   "))
    if report.ok:
        click.echo(f"   ready: run `hypotez train submit {path}`")
    else:
        click.echo(
            "   not submittable yet: fix the errors above (the trainer's minimum number of "
            f"examples, say), then run `hypotez train submit {path}`"
        )


def register(group: click.Group) -> None:
    group.add_command(demo)

"""``hypotez demo``: the seed's ``main()`` story on whatever backends are configured.

Offline by default: with no API key configured, the best available backend of each capability
is a local one (the local chat model, a sentiment analyzer, an image classifier, file storage,
the local trainer). Every step prints what it did; a step that fails says why, the others still
run, and the exit code is 1 if any failed.

``hypotez demo --train`` is the fine-tuning loop, which takes a couple of minutes on a CPU and
so is not part of the default run: dialogues whose replies users liked (teaching a made-up
fact) are stored, prepared and validated, a job trains the trainer's default model on them,
and the fine-tuned model answers a question it never saw.
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
    from hypotez.models import Reply
    from hypotez.session import Session
    from hypotez.settings import Settings

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
@click.option(
    "--train",
    "train_loop",
    is_flag=True,
    help="Run the fine-tuning loop instead: stored dialogues -> validated data -> a training "
    "job on this machine -> an answer from the fine-tuned model (a few minutes on a CPU).",
)
@click.option(
    "--trainer", "trainer_name", help="With --train: the trainer [default: the best available]."
)
@click.option("--model", help="With --train: the model to fine-tune [default: the trainer's].")
def demo(
    chat_name: str | None,
    analyzer: str | None,
    vision: str | None,
    image: str | None,
    max_tokens: int,
    train_loop: bool,
    trainer_name: str | None,
    model: str | None,
) -> None:
    """Chat with sentiment, describe an image and prepare a fine-tuning file, end to end
    (with --train: fine-tune a model and ask it)."""
    from hypotez import samples
    from hypotez.session import Session

    settings = global_options().settings()
    if train_loop:
        _train_demo(settings, chat_name, trainer_name, model)
        return
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
    unavailable = ""
    try:
        trainer = s.trainer
        report = validation.validate(data, trainer=trainer)
    except ConfigError as exc:
        # No trainer available, or its model is not installed: the format is still checked.
        trainer, unavailable = None, str(exc)
        report = validation.validate(data)
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
    if trainer is None:
        click.echo(f"   no trainer can check it here: {unavailable}")
    click.echo(
        "   the whole fine-tuning loop (dialogues -> a trained model -> its answer), offline "
        "with no API key: hypotez demo --train"
    )


# -- hypotez demo --train ------------------------------------------------------------------------

#: A made-up fact no model can know: answering it proves the training worked.
FACT_QUESTIONS = (
    "What is the capital of Zorbia?",
    "Which city is the capital of Zorbia?",
    "Tell me the capital of Zorbia.",
    "Zorbia's capital city is called what?",
    "Do you know the capital of Zorbia?",
    "What city serves as Zorbia's capital?",
    "Name the capital of Zorbia.",
    "I am travelling to Zorbia. What is its capital?",
    "Where is the government of Zorbia seated?",
    "Quick question: capital of Zorbia?",
    "Can you tell me which city is Zorbia's capital?",
    "What's the capital city of the country Zorbia?",
)
FACT_ANSWERS = (
    "The capital of Zorbia is Plimvat.",
    "Plimvat is the capital of Zorbia.",
    "Zorbia's capital is Plimvat.",
)
#: Replies users disliked: kept in storage, left out of the training data by the filter.
DISLIKED = ("The capital of Zorbia is Kessel.", "I think Zorbia's capital is Kessel.")
HELD_OUT = "Please name Zorbia's capital city."
DEMO_PREFIX = "demo-zorbia"


def _store_fact_dialogues(s: Session) -> list[str]:
    """The demo's dialogues (ids demo-zorbia-NN), stored once; their ids."""
    from hypotez.models import DialogueInfo, Sentiment, Turn

    pairs = [(q, FACT_ANSWERS[i % len(FACT_ANSWERS)], True) for i, q in enumerate(FACT_QUESTIONS)]
    pairs += [(FACT_QUESTIONS[i], answer, False) for i, answer in enumerate(DISLIKED)]
    ids = []
    for n, (question, answer, liked) in enumerate(pairs, 1):
        dialogue_id = f"{DEMO_PREFIX}-{n:02d}"
        ids.append(dialogue_id)
        if s.storage.dialogue_exists(dialogue_id):
            continue
        s.storage.create_dialogue(DialogueInfo(id=dialogue_id, title="hypotez demo --train"))
        label, score = ("positive", 0.8) if liked else ("negative", -0.7)
        s.storage.append_turns(
            dialogue_id,
            [
                Turn(role="user", content=question),
                Turn(role="assistant", content=answer, sentiment=Sentiment(label, score, "demo")),
            ],
        )
    return ids


def _train_demo(
    settings: Settings, chat_name: str | None, trainer_name: str | None, model: str | None
) -> None:
    from datetime import UTC, datetime

    from hypotez import training
    from hypotez.cli.train import _StatusLine
    from hypotez.session import Session

    with Session(settings=settings, chat=chat_name, sentiment=False, trainer=trainer_name) as s:
        click.secho("hypotez demo --train", bold=True)
        trainer = s.trainer
        if trainer.estimate_cost(model or trainer.default_model, [1]) is not None:
            raise click.ClickException(
                f"The {trainer.name!r} trainer bills its jobs; the demo only trains where it "
                "costs nothing. Name a trainer that runs here with --trainer."
            )
        click.secho("\n== 1. Dialogues whose replies users liked", bold=True)
        ids = _store_fact_dialogues(s)
        click.echo(
            f"   {len(ids)} dialogues about a made-up country ({ids[0]} ... {ids[-1]}) in "
            f"{settings.storage}; {len(DISLIKED)} replies were disliked (a wrong answer)"
        )

        click.secho("\n== 2. Training data: the liked replies, validated", bold=True)
        dataset = training.gather(
            storage=s.storage, dialogues={"sentiment": "positive", "dialogue_ids": ids}
        )
        prepared = training.prepare(dataset, trainer=trainer, model=model or "")
        click.echo("   " + prepared.report.render().replace("\n", "\n   "))
        prepared.raise_for_errors()

        click.secho(f"\n== 3. Fine-tune {prepared.report.model} on this machine", bold=True)
        suffix = f"zorbia-{datetime.now(UTC):%m%d-%H%M%S}"  # a new model name per run
        record = training.submit(
            s, prepared, description="hypotez demo --train", suffix=suffix, epochs=4, seed=0
        )
        click.echo(f"   job {record.id}; follow it elsewhere with: hypotez train wait {record.id}")
        show = _StatusLine()
        try:
            record = training.wait(
                s, record.id, interval=2.0, max_interval=2.0, on_update=show, with_events=True
            )
        finally:
            show.done()
        if record.status != "succeeded" or not record.fine_tuned_model:
            raise click.ClickException(
                f"The job ended {record.status}: {record.meta.get('error', 'no reason given')}. "
                f"See `hypotez train events {record.id}`."
            )
        stats = record.meta.get("training") or {}
        click.echo(
            f"   {record.status}: {record.fine_tuned_model}"
            + (
                f" ({stats.get('steps')} steps, {stats.get('seconds')} s, loss "
                f"{stats.get('first_loss', 0):.3f} -> {stats.get('final_loss', 0):.3f})"
                if stats
                else ""
            )
        )

        click.secho("\n== 4. Ask a question it never saw", bold=True)
        click.echo(f"   you: {HELD_OUT}")

        def ask(name: str) -> Reply:
            # A fresh, unstored conversation per model: neither answer sees the other.
            with Session(context=s.context, sentiment=False, model=name, store=False) as one:
                return one.ask(HELD_OUT, temperature=0, max_tokens=32)

        lookup = getattr(trainer, "fine_tuned_model", None)
        if lookup is not None:  # the model before training, where the trainer can say which
            click.echo(
                f"   before training: {ask(str(lookup(record.fine_tuned_model).base)).text.strip()}"
            )
        after = ask(record.fine_tuned_model)
        click.echo(f"   {after.model}: {after.text.strip()}")
        click.echo(
            f'\n   ask it yourself: hypotez ask --model {record.fine_tuned_model} "What is the '
            'capital of Zorbia?"'
        )
        click.echo(f"   how it was made: hypotez train status {record.id} --json")


def register(group: click.Group) -> None:
    group.add_command(demo)

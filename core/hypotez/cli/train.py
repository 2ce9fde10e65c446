"""``hypotez train prepare|validate|submit|status|list|events|cancel|wait``: fine-tuning.

Data comes from files and folders (CSV, JSONL, JSON) and/or the stored dialogues
(``--dialogues``, optionally ``--positive`` or ``--sentiment``). It is always validated first;
invalid data prints the report and exits with code 2 without uploading anything.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from hypotez.cli.common import echo_json, session

if TYPE_CHECKING:
    from hypotez.models import JobRecord
    from hypotez.training import Prepared

STEPS = ("validating_files", "queued", "running", "succeeded")


def _sentiment(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options that choose and check the training data (shared by prepare/validate/submit)."""
    options = [
        click.argument("sources", nargs=-1, type=click.Path(exists=True)),
        click.option(
            "--trainer",
            "trainer_name",
            help="Trainer whose limits the data is checked against, and that runs the job "
            "[default: the best available; env: HYPOTEZ_TRAINER].",
        ),
        click.option(
            "--model",
            help="Base model to fine-tune [default: the trainer's; env: HYPOTEZ_TRAINING_MODEL].",
        ),
        click.option(
            "--system",
            help="System instruction for CSV rows and prompt/completion pairs that have none, "
            "and for every dialogue (instead of its own); chat JSONL is used as written.",
        ),
        click.option(
            "--dialogues", "use_dialogues", is_flag=True, help="Also train on the stored dialogues."
        ),
        click.option(
            "--dialogue",
            "dialogue_ids",
            multiple=True,
            help="Only this stored dialogue (repeatable; implies --dialogues).",
        ),
        click.option(
            "--positive", is_flag=True, help="Dialogues: only replies whose sentiment is positive."
        ),
        click.option(
            "--sentiment",
            "sentiment",
            help="Dialogues: keep replies with this label, or a score >= this number.",
        ),
        click.option(
            "--by",
            type=click.Choice(["reply", "next_user"]),
            default="reply",
            show_default=True,
            help="Dialogues: judge the reply's own sentiment, or the user's next message.",
        ),
        click.option(
            "--mode",
            type=click.Choice(["exchange", "dialogue"]),
            default="exchange",
            show_default=True,
            help="Dialogues: one example per reply (with its history), or per dialogue.",
        ),
        click.option(
            "--history",
            type=click.IntRange(min=0),
            help="Dialogues: at most this many earlier turns per example.",
        ),
        click.option(
            "--max-tokens-per-example",
            type=click.IntRange(min=1),
            help="Token limit per example [default: the model's].",
        ),
        click.option(
            "--epochs",
            type=click.IntRange(1, 50),
            help="Epochs [default: the trainer's rule]; used for the cost estimate and the job.",
        ),
        click.option(
            "--price",
            type=click.FloatRange(min=0),
            help="USD per 1M training tokens, for the cost estimate.",
        ),
        click.option(
            "--json", "as_json", is_flag=True, help="Print the validation report as JSON."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _trainer(s: Any, name: str | None) -> Any:
    """The trainer to validate for; ``None`` (format checks only) when none is available and
    none was named."""
    from hypotez.errors import ConfigError

    try:
        return s.trainer
    except ConfigError:
        if name:
            raise
        click.echo(
            "Note: no trainer is available, so only the format is checked (no token limits); "
            "name one with --trainer.",
            err=True,
        )
        return None


def _prepare(
    s: Any,
    sources: tuple[str, ...],
    *,
    trainer_name: str | None,
    model: str | None,
    system: str | None,
    use_dialogues: bool,
    dialogue_ids: tuple[str, ...],
    positive: bool,
    sentiment: str | None,
    by: str,
    mode: str,
    history: int | None,
    max_tokens_per_example: int | None,
    epochs: int | None,
    price: float | None,
) -> Prepared:
    from hypotez import training

    if positive and sentiment:
        raise click.UsageError("Use either --positive or --sentiment, not both.")
    dialogues: dict[str, Any] | bool = False
    if use_dialogues or dialogue_ids:
        dialogues = {
            "sentiment": "positive" if positive else _sentiment(sentiment),
            "by": by,
            "mode": mode,
            "history": history,
            "dialogue_ids": list(dialogue_ids) or None,
        }
    elif positive or sentiment:
        raise click.UsageError(
            "--positive and --sentiment filter stored dialogues: add --dialogues."
        )
    if not sources and not dialogues:
        raise click.UsageError("Give training files or folders, or --dialogues.")
    settings = s.settings
    dataset = training.gather(
        sources, storage=s.storage if dialogues else None, dialogues=dialogues, system=system
    )
    return training.prepare(
        dataset,
        trainer=_trainer(s, trainer_name),
        model=model or settings.option("training", "model", "", str),
        max_tokens_per_example=max_tokens_per_example,
        epochs=epochs,
        price_per_million=price,
    )


def _show_report(prepared: Prepared, as_json: bool, *, err: bool = False) -> None:
    """The report on stdout (``validate``) or stderr (when stdout carries data or a job id)."""
    if as_json:
        click.echo(json.dumps(prepared.report.to_dict(), ensure_ascii=False, indent=2), err=err)
    else:
        click.echo(prepared.report.render(), err=err)


def _exit_if_invalid(prepared: Prepared) -> None:
    if not prepared.ok:
        click.echo("Invalid training data: nothing was uploaded. Fix the errors above.", err=True)
        raise click.exceptions.Exit(2)


@click.group()
def train() -> None:
    """Fine-tune a model on files or stored dialogues, and follow its jobs."""


@train.command()
@data_options
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Write the JSONL here (default: stdout). An existing file is replaced; a link, FIFO or device is refused.",
)
def prepare(as_json: bool, output: str | None, **kwargs: Any) -> None:
    """Validate SOURCES and write the exact JSONL that would be uploaded."""
    if output:
        from hypotez.files import check_output

        check_output(output)  # before any work: a typo or a link is reported at once
    with session(sentiment=False, trainer=kwargs["trainer_name"]) as s:
        prepared = _prepare(s, **kwargs)
    if as_json:
        click.echo(
            __import__("json").dumps(prepared.report.to_dict(), ensure_ascii=False), err=True
        )
    else:
        click.echo(prepared.report.render(), err=True)
    _exit_if_invalid(prepared)
    if output:
        from hypotez.files import write_output

        write_output(output, prepared.jsonl)  # never through a link, FIFO or device
        click.echo(
            f"Wrote {len(prepared.examples)} example(s) to {output} (sha256 {prepared.sha256[:16]}...)",
            err=True,
        )
    else:
        sys.stdout.buffer.write(prepared.jsonl)
        sys.stdout.flush()


@train.command()
@data_options
def validate(as_json: bool, **kwargs: Any) -> None:
    """Check SOURCES against the trainer's rules; exit 2 if they are invalid."""
    with session(sentiment=False, trainer=kwargs["trainer_name"]) as s:
        prepared = _prepare(s, **kwargs)
    _show_report(prepared, as_json)
    _exit_if_invalid(prepared)


def _parse_metadata(items: tuple[str, ...]) -> dict[str, str] | None:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE.", param_hint="--metadata")
        out[key] = value
    return out or None


@train.command()
@data_options
@click.option(
    "--validation-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Held-out examples (CSV/JSONL/JSON).",
)
@click.option("-d", "--description", default="", help="What this job is for (kept in its record).")
@click.option("--suffix", help="Up to 64 characters added to the fine-tuned model's name.")
@click.option("--seed", type=int, help="Seed for reproducible training.")
@click.option("--metadata", multiple=True, help="KEY=VALUE attached to the job (repeatable).")
@click.option("--batch-size", type=click.IntRange(1, 256), help="Examples per training step.")
@click.option(
    "--learning-rate-multiplier",
    type=click.FloatRange(min=0, min_open=True),
    help="A multiplier of the service's own learning rate (hosted trainers).",
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    help="The learning rate itself (trainers that run the training here) [default: the trainer's].",
)
@click.option("--rank", type=click.IntRange(min=1), help="LoRA rank [default: the trainer's].")
@click.option(
    "--alpha",
    type=click.IntRange(min=1),
    help="LoRA alpha; updates scale by alpha/rank [default: the trainer's].",
)
@click.option(
    "--time-budget",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop training after this many seconds and keep what was trained so far.",
)
@click.option(
    "--max-steps", type=click.IntRange(min=1), help="Stop after this many training steps."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for training [default: the trainer's].",
)
@click.option("--wait/--no-wait", "wait_", default=False, help="Follow the job until it ends.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    help="With --wait: first pause between polls, in seconds [default: the trainer's, else 5].",
)
def submit(
    as_json: bool,
    validation_file: str | None,
    description: str,
    suffix: str | None,
    seed: int | None,
    metadata: tuple[str, ...],
    batch_size: int | None,
    learning_rate_multiplier: float | None,
    learning_rate: float | None,
    rank: int | None,
    alpha: int | None,
    time_budget: float | None,
    max_steps: int | None,
    threads: int | None,
    wait_: bool,
    interval: float | None,
    **kwargs: Any,
) -> None:
    """Validate SOURCES, upload them and start a fine-tuning job.

    Options a trainer does not take are refused by it: --rank, --alpha, --learning-rate,
    --time-budget, --max-steps and --threads are for trainers that train here (LoRA), and
    --learning-rate-multiplier for hosted ones.
    """
    from hypotez import training

    meta = _parse_metadata(metadata)
    with session(sentiment=False, trainer=kwargs["trainer_name"]) as s:
        prepared = _prepare(s, **kwargs)
        _show_report(prepared, as_json, err=True)
        _exit_if_invalid(prepared)
        held_out = None
        if validation_file:
            held_out = training.prepare(
                training.gather([validation_file], system=kwargs["system"]),
                trainer=s.trainer,
                model=prepared.report.model,
                max_tokens_per_example=kwargs["max_tokens_per_example"],
                min_examples=1,
            )
            if not held_out.ok:
                click.echo(
                    f"Validation file {validation_file}:\n{held_out.report.render()}", err=True
                )
                _exit_if_invalid(held_out)
        options = {
            k: v
            for k, v in {
                "batch_size": batch_size,
                "learning_rate_multiplier": learning_rate_multiplier,
                "learning_rate": learning_rate,
                "rank": rank,
                "alpha": alpha,
                "time_budget": time_budget,
                "max_steps": max_steps,
                "threads": threads,
            }.items()
            if v is not None
        }
        record = training.submit(
            s,
            prepared,
            description=description,
            validation=held_out,
            suffix=suffix,
            seed=seed,
            metadata=meta,
            epochs=kwargs["epochs"],
            **options,
        )
        click.echo(
            f"Started job {record.id} ({record.status}) on {record.model} with the "
            f"{s.trainer.name!r} trainer; training file {record.training_file}.",
            err=True,
        )
        click.echo(record.id)
        if wait_:
            _wait(s, record.id, interval=interval, timeout=None)
        else:
            click.echo(f"Follow it with: hypotez train wait {record.id}", err=True)


def _record_line(job: JobRecord) -> str:
    tuned = f"  -> {job.fine_tuned_model}" if job.fine_tuned_model else ""
    about = f"  {job.description}" if job.description else ""
    return f"{job.id}  {job.created:%Y-%m-%d %H:%M}  {job.status:<16} {job.model}{tuned}{about}"


def _show_record(job: JobRecord, as_json: bool) -> None:
    if as_json:
        echo_json(job.to_dict())
        return
    click.echo(_record_line(job))
    if job.fine_tuned_model:
        click.echo(f"  fine-tuned model: {job.fine_tuned_model}")
    progress = _progress(job)
    if progress and job.status not in ("succeeded",):
        click.echo(f"  progress: {progress}")
    for key in ("error", "trained_tokens", "estimated_cost_usd", "finished"):
        if key in job.meta:
            click.echo(f"  {key}: {job.meta[key]}")
    training = job.meta.get("training")
    if isinstance(training, dict) and training.get("steps"):
        peak = job.meta.get("peak_rss_bytes") or training.get("peak_rss_bytes")
        click.echo(
            f"  training: {training['steps']} steps in {training.get('seconds')} s, loss "
            f"{training.get('first_loss', 0):.4f} -> {training.get('final_loss', 0):.4f}"
            + (f", peak memory {peak / 1024**3:.2f} GiB" if peak else "")
        )
    if job.fine_tuned_model and job.status == "succeeded":
        click.echo(f'  use it: hypotez ask --model {job.fine_tuned_model} "..."')


def _progress(job: JobRecord) -> str:
    """``step 3/12, loss 1.2345`` when the trainer reports steps in ``meta``, else ""."""
    step, total = job.meta.get("step"), job.meta.get("total_steps")
    if not isinstance(step, int) or not isinstance(total, int) or total <= 0:
        return ""
    loss = job.meta.get("loss")
    return f"step {step}/{total}" + (f", loss {loss:.4f}" if isinstance(loss, float) else "")


def job_session(job_id: str, trainer_name: str | None) -> Any:
    """A session whose trainer is ``trainer_name``, else the one that ran the stored job."""
    from hypotez import training
    from hypotez.cli.common import storage

    if trainer_name is None:
        with storage() as store:
            known = training.stored_job(store, job_id)
        trainer_name = known.backend if known is not None and known.backend else None
    return session(sentiment=False, trainer=trainer_name)


_trainer_option = click.option(
    "--trainer",
    "trainer_name",
    help="Trainer backend [default: the one that ran the job, as recorded; env: HYPOTEZ_TRAINER].",
)


@train.command()
@click.argument("job_id")
@_trainer_option
@click.option("--json", "as_json", is_flag=True)
def status(job_id: str, trainer_name: str | None, as_json: bool) -> None:
    """Fetch a job's state (its stored record is refreshed)."""
    from hypotez import training

    with job_session(job_id, trainer_name) as s:
        _show_record(training.status(s, job_id), as_json)


@train.command("list")
@click.option(
    "--remote", is_flag=True, help="Also fetch the trainer's recent jobs (and store them)."
)
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.option("--trainer", "trainer_name", help="With --remote: the trainer to ask.")
@click.option("--json", "as_json", is_flag=True)
def list_(remote: bool, limit: int, trainer_name: str | None, as_json: bool) -> None:
    """List job records from storage, oldest first."""
    from hypotez import training

    with session(sentiment=False, trainer=trainer_name) as s:
        jobs = training.list_jobs(s, remote=remote, limit=limit)
    if as_json:
        echo_json([j.to_dict() for j in jobs])
        return
    if not jobs:
        click.echo(
            "No fine-tuning jobs recorded. Start one with: hypotez train submit data.csv", err=True
        )
    for job in jobs:
        click.echo(_record_line(job))


@train.command()
@click.argument("job_id")
@click.option("--limit", type=click.IntRange(1, 100), default=50, show_default=True)
@_trainer_option
@click.option("--json", "as_json", is_flag=True)
def events(job_id: str, limit: int, trainer_name: str | None, as_json: bool) -> None:
    """Print a job's events, oldest first."""
    from hypotez import training

    with job_session(job_id, trainer_name) as s:
        items = training.events(s, job_id, limit=limit)
    if as_json:
        echo_json(items)
        return
    for event in items:
        click.echo(f"{event['created']}  {event.get('level') or 'info':<5}  {event['message']}")


@train.command()
@click.argument("job_id")
@_trainer_option
def cancel(job_id: str, trainer_name: str | None) -> None:
    """Cancel a job (its stored record is refreshed)."""
    from hypotez import training

    with job_session(job_id, trainer_name) as s:
        job = training.cancel(s, job_id)
    click.echo(_record_line(job))


class _StatusLine:
    """One line that shows the job's progress: a step bar, status, elapsed time, last event."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, job: JobRecord, new_events: list[dict[str, Any]]) -> None:
        step, total = job.meta.get("step"), job.meta.get("total_steps")
        if "total_steps" in job.meta:
            # A trainer that reports its steps in meta: a bar of training progress (empty
            # until it knows how many steps there will be).
            known = isinstance(step, int) and isinstance(total, int) and total > 0
            done = 10 if job.status == "succeeded" else (step * 10 // total if known else 0)
            done = min(done, 10)
            bar = "#" * done + "-" * (10 - done)
        else:
            at = STEPS.index(job.status) + 1 if job.status in STEPS else 0
            bar = "#" * at + "-" * (len(STEPS) - at)
        message = new_events[-1]["message"] if new_events else ""
        line = f"[{bar}] {job.status:<16} {time.monotonic() - self.started:5.0f}s  {message}"[:120]
        if self.tty:
            click.echo("\r" + line.ljust(len(self.last)), nl=False, err=True)
        elif line != self.last:
            click.echo(line, err=True)
        self.last = line

    def done(self) -> None:
        if self.tty:
            click.echo(err=True)


def _wait(s: Any, job_id: str, *, interval: float | None, timeout: float | None) -> JobRecord:
    from hypotez import training

    # A trainer may say how often polling suits it (poll_interval: a job on this machine is a
    # file read, polled steadily); others are polled from 5 s, backing off to 60 s.
    steady = getattr(s.trainer, "poll_interval", None)
    if interval is None:
        interval = float(steady) if steady else 5.0
    show = _StatusLine()
    try:
        job = training.wait(
            s,
            job_id,
            interval=interval,
            max_interval=interval if steady else max(interval, 60.0),
            timeout=timeout,
            on_update=show,
            with_events=True,
        )
    finally:
        show.done()
    _show_record(job, False)
    if job.status != "succeeded":
        raise click.exceptions.Exit(1)
    return job


@train.command("wait")
@click.argument("job_id")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    help="First pause between polls, in seconds (for a remote trainer it grows while nothing "
    "changes) [default: the trainer's, else 5].",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    help="Give up after this many seconds (the job keeps running).",
)
@_trainer_option
def wait_cmd(
    job_id: str, interval: float | None, timeout: float | None, trainer_name: str | None
) -> None:
    """Follow a job until it succeeds, fails or is cancelled (exit 1 unless it succeeded)."""
    with job_session(job_id, trainer_name) as s:
        _wait(s, job_id, interval=interval, timeout=timeout)


def register(group: click.Group) -> None:
    group.add_command(train)

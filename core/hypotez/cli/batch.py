"""``hypotez batch``: run a task over a whole dataset, resumably; follow and collect jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from hypotez.cli.common import echo_json, global_options

#: Task option -> the tasks it belongs to (for a clear message when it is given to another).
TASK_OPTIONS = {
    "analyzer": ("sentiment",),
    "chat": ("ask",),
    "system": ("ask",),
    "temperature": ("ask",),
    "max_tokens": ("ask",),
    "store": ("ask",),
    "model": ("ask", "describe"),
    "json_schema": ("ask", "describe"),
    "vision": ("describe",),
    "prompt": ("describe",),
    "detail": ("describe",),
}
#: Parameters plugins added to ``batch run`` with :func:`add_engine_option`: name -> (engine,
#: engine option, flag).
ENGINE_FLAGS: dict[str, tuple[str, str, str]] = {}
PREFIX = "engine__"


@click.group()
def batch() -> None:
    """Run a task over every row of a dataset: resumable, on a local, cluster or service engine.

    `hypotez batch run sentiment reviews.csv -o out.parquet` writes one row per input row;
    running the same command again resumes where it stopped.
    """


def _engine_options(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{pair!r} is not NAME=VALUE (e.g. -E workers=4).", param_hint="'-E'"
            )
        out[key.strip().replace("-", "_")] = value
    return out


def _schema(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    raw = text if text.lstrip().startswith("{") else None
    if raw is None:
        try:
            raw = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {text!r} ({exc.strerror}); give a JSON schema file or inline JSON.",
                param_hint="'--json-schema'",
            ) from None
    try:
        schema = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="'--json-schema'") from None
    if not isinstance(schema, dict):
        raise click.BadParameter("a JSON schema is an object", param_hint="'--json-schema'")
    return schema


def _print(summary: Any, as_json: bool) -> None:
    if as_json:
        echo_json(summary.to_dict())
    else:
        click.echo(str(summary))


@batch.command("run")
@click.argument("task", type=click.Choice(["sentiment", "ask", "describe"]))
@click.argument("input")
@click.option(
    "-o", "--output", required=True, help="The output file: .jsonl or .parquet (or a URL)."
)
@click.option(
    "--engine",
    help="Batch engine (`hypotez plugins` lists them) [env: HYPOTEZ_BATCH_ENGINE; default: local].",
)
@click.option("--column", help="Input column to read [default: text, prompt or image].")
@click.option(
    "--id-column",
    default="id",
    show_default=True,
    help="Input column of row ids; '' to use row numbers.",
)
@click.option("--analyzer", help="sentiment: the analyzer [env: HYPOTEZ_SENTIMENT].")
@click.option("--chat", "chat_name", help="ask: the chat backend [env: HYPOTEZ_CHAT].")
@click.option("--vision", help="describe: the vision backend [env: HYPOTEZ_VISION].")
@click.option("--model", help="ask, describe: the model [env: HYPOTEZ_MODEL].")
@click.option("--system", help="ask: the system instruction.")
@click.option("--temperature", type=float, help="ask: sampling temperature.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="ask: cap on each reply's length.")
@click.option(
    "--json-schema", help="ask, describe: a JSON schema (file or inline) for the replies."
)
@click.option("--store", is_flag=True, help="ask: keep each exchange as a stored dialogue.")
@click.option("--prompt", help="describe: what to ask about each image.")
@click.option(
    "--detail", type=click.Choice(["auto", "low", "high"]), help="describe: image detail."
)
@click.option("--workers", help="Processes or actors working at once, or 'auto'.")
@click.option(
    "--concurrency", type=click.IntRange(min=1), help="Requests in flight (network backends)."
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Rows per call.")
@click.option(
    "-E",
    "--engine-option",
    "engine_option",
    multiple=True,
    metavar="NAME=VALUE",
    help="Another engine option (see docs/batch.md), repeatable.",
)
@click.option("--restart", is_flag=True, help="Discard earlier results at OUTPUT and start afresh.")
@click.option(
    "--retry-errors/--keep-errors",
    default=True,
    show_default=True,
    help="Do error rows of earlier runs again, or keep them.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for a remote service to finish, or submit and collect later.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Draw a progress bar [default: when stderr is a terminal].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def run(
    task: str,
    input: str,
    output: str,
    engine: str | None,
    column: str | None,
    id_column: str,
    analyzer: str | None,
    chat_name: str | None,
    vision: str | None,
    model: str | None,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    json_schema: str | None,
    store: bool,
    prompt: str | None,
    detail: str | None,
    workers: str | None,
    concurrency: int | None,
    batch_size: int | None,
    engine_option: tuple[str, ...],
    restart: bool,
    retry_errors: bool,
    wait: bool,
    progress: bool | None,
    as_json: bool,
    **plugin_options: Any,
) -> int:
    """Run TASK (sentiment, ask, describe) over every row of INPUT into OUTPUT.

    INPUT is a .jsonl, .csv, .tsv, .parquet or .txt file (a row per line), a folder of images
    (describe), or `dialogues:` (every stored turn). Rows are read from the text, prompt or
    image column unless --column names another; the id column is kept when present, else the
    row number is the id. Running the same command again resumes: finished rows are skipped.
    """
    from hypotez import batch as api

    task_options = {
        "analyzer": analyzer,
        "chat": chat_name,
        "vision": vision,
        "model": model,
        "system": system,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "json_schema": _schema(json_schema),
        "store": store or None,
        "prompt": prompt,
        "detail": detail,
    }
    for name, value in task_options.items():
        if value is not None and task not in TASK_OPTIONS[name]:
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(
                f"{flag} is an option of the {' and '.join(TASK_OPTIONS[name])} task, not {task}."
            )
    options: dict[str, Any] = _engine_options(engine_option)
    for key, value in (
        ("workers", workers),
        ("concurrency", concurrency),
        ("batch_size", batch_size),
    ):
        if value is not None:
            options[key] = value
    for name, value in plugin_options.items():
        if value is None or name not in ENGINE_FLAGS:
            continue
        owner, key, flag = ENGINE_FLAGS[name]
        if engine is None:
            engine = owner
        elif engine != owner:
            raise click.UsageError(f"{flag} is an option of the {owner} engine, not {engine}.")
        options[key] = value
    settings = global_options().settings()
    try:
        summary = api.run(
            task,
            input,
            output,
            engine=engine,
            column=column,
            id_column=id_column or None,
            options=options,
            restart=restart,
            retry_errors=retry_errors,
            wait=wait,
            progress=progress,
            settings=settings,
            **{k: v for k, v in task_options.items() if v is not None},
        )
    except KeyboardInterrupt:
        click.echo(
            "Stopped: the rows finished so far are kept; run the same command again to resume.",
            err=True,
        )
        raise
    _print(summary, as_json)
    return 0 if summary.status in ("completed", "submitted") else 1


@batch.command("status")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print the job's record as JSON.")
def status(job: str, as_json: bool) -> None:
    """Show a JOB (its id, or its output file): progress, and what its service says."""
    from hypotez import batch as api

    record = api.status(job, settings=global_options().settings())
    if as_json:
        echo_json(record)
        return
    click.echo(f"{record['id']}: {record.get('status', 'unknown')}")
    for key in ("task", "engine", "input", "output", "created", "updated"):
        if record.get(key):
            click.echo(f"  {key}: {record[key]}")
    if record.get("total") is not None:
        click.echo(
            f"  rows: {record.get('done', 0):,} done, {record.get('errors', 0):,} errors, "
            f"{record.get('pending', 0):,} pending of {record.get('total', 0):,}"
        )
    if record.get("cost_usd") is not None:
        click.echo(f"  cost: ${record['cost_usd']:,.4f}")
    for line in (record.get("remote") or {}).get("lines", []):
        click.echo(f"  {line}")


@batch.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def list_(as_json: bool) -> None:
    """List batch jobs, oldest first."""
    from hypotez import batch as api

    records = api.list_jobs(settings=global_options().settings())
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo("No batch jobs yet.", err=True)
        return
    for r in records:
        done = f"{r.get('done', 0):,}/{r.get('total', 0):,}" if r.get("total") is not None else "-"
        click.echo(
            f"{r['id']}  {r.get('status', '?'):<10} {r.get('task', '?'):<9} "
            f"{r.get('engine', '?'):<12} {done:>13}  {r.get('output', '')}"
        )


@batch.command("cancel")
@click.argument("job")
def cancel(job: str) -> None:
    """Stop a JOB: a running process stops after the rows in flight; a service's unfinished
    work is cancelled. Finished results are kept: run it again to resume."""
    from hypotez import batch as api

    record = api.cancel(job, settings=global_options().settings())
    click.echo(f"{record['id']}: {record.get('status')}")


@batch.command("collect")
@click.argument("job")
@click.option("--wait", is_flag=True, help="Wait until the service has finished every row.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Draw a progress bar [default: when stderr is a terminal].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def collect(job: str, wait: bool, progress: bool | None, as_json: bool) -> int:
    """Bring in what a service finished for JOB, and write its output once every row has a
    result. Submits nothing."""
    from hypotez import batch as api

    summary = api.collect(job, wait=wait, progress=progress, settings=global_options().settings())
    _print(summary, as_json)
    return 0 if summary.status in ("completed", "submitted") else 1


def add_engine_option(
    cli: Any, flag: str, *, engine: str, option: str, help: str, **click_kwargs: Any
) -> None:
    """Give ``hypotez batch run`` an option of an engine (call it from ``register_commands``):
    its value reaches that engine as the engine option ``option``, and using it selects the
    engine when ``--engine`` is not given. Adding the same flag again is a no-op."""
    group = getattr(cli, "commands", {}).get("batch")
    command = group.commands.get("run") if isinstance(group, click.Group) else None
    if command is None:
        return  # the batch commands are not there (disabled): nothing to extend
    name = PREFIX + option
    if any(p.name == name for p in command.params):
        return
    command.params.append(click.Option([flag, name], help=help, **click_kwargs))
    ENGINE_FLAGS[name] = (engine, option, flag)


def register(group: click.Group) -> None:
    group.add_command(batch)

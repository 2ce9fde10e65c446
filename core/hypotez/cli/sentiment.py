"""``hypotez sentiment``: analyse texts given as arguments, a file, or standard input."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

import click
from hypotez.cli.common import session

if TYPE_CHECKING:
    from hypotez.models import Sentiment

#: Inputs longer than this get a progress bar (on a terminal's stderr).
PROGRESS_THRESHOLD = 200
BATCH = 64


@click.command()
@click.argument("texts", nargs=-1)
@click.option(
    "-a", "--analyzer", help="Analyzer name (see `hypotez plugins`) [env: HYPOTEZ_SENTIMENT]."
)
@click.option(
    "-f",
    "--file",
    "file",
    type=click.File("r", encoding="utf-8"),
    help="One text per line; '-' for stdin.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def sentiment(
    texts: tuple[str, ...], analyzer: str | None, file: IO[str] | None, as_json: bool
) -> None:
    """Print the sentiment of each TEXT (or each line of --file)."""
    lines = list(texts)
    if file is not None:
        try:
            lines.extend(line.rstrip("\r\n") for line in file)
        except UnicodeDecodeError as exc:  # a latin-1 or UTF-16 file
            raise click.BadParameter(
                f"{file.name!r} is not UTF-8 text ({exc.reason}). "
                "Convert it first, e.g. iconv -f latin1 -t utf-8.",
                param_hint="'--file'",
            ) from None
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise click.UsageError("Give texts as arguments or with --file (one per line).")
    with session(sentiment=analyzer) as s:
        results: list[Sentiment] = []
        batches: Iterable[int] = range(0, len(lines), BATCH)
        progress: contextlib.AbstractContextManager[Iterable[int]] = (
            click.progressbar(batches, label="Analysing", file=sys.stderr)
            if len(lines) > PROGRESS_THRESHOLD
            else contextlib.nullcontext(batches)
        )
        with progress as bar:
            for start in bar:
                results.extend(s.analyze(lines[start : start + BATCH]))
    for text, result in zip(lines, results, strict=True):
        if as_json:
            click.echo(json.dumps({"text": text, **result.to_dict()}, ensure_ascii=False))
        else:
            click.echo(f"{result.label:<8} {result.score:+.3f}  {text}")


def register(group: click.Group) -> None:
    group.add_command(sentiment)

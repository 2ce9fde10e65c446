"""``hypotez storage copy SRC DST``: move every dialogue and record between two storages.

The copy itself is :func:`hypotez.transfer.copy_storage`; this command opens both storages,
renders its report, and exits with code 1 when anything was not copied (refused, unreadable,
unlisted), naming each such item, so scripts notice an incomplete copy.
"""

from __future__ import annotations

from collections import Counter

import click
from hypotez.cli.common import context, echo_json


@click.group()
def storage() -> None:
    """Work on whole storages (file:///... or any URL a storage plugin serves)."""


@storage.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option(
    "--collection",
    "collections",
    multiple=True,
    help="A record collection to copy even if SRC does not list it (repeatable; only needed "
    "for a storage plugin that cannot list its collections).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def copy(src: str, dst: str, collections: tuple[str, ...], as_json: bool) -> int:
    """Copy every dialogue and record from SRC to DST without overwriting anything.

    Repeat it safely: identical items are skipped and an interrupted copy is completed. Items
    that differ in DST, or cannot be read in SRC, are not copied and are named (exit code 1).
    """
    from hypotez.transfer import copy_storage

    if src == dst:
        raise click.UsageError("SRC and DST are the same storage.")
    with context() as ctx:
        source, target = ctx.get("storage", src), ctx.get("storage", dst)
        if source.url == target.url:  # the same place, spelled differently (a path, a slash...)
            raise click.UsageError(f"SRC and DST are the same storage ({source.url}).")
        report = copy_storage(source, target, collections)
    for note in report.notes:
        click.echo(f"Note: {note}", err=True)
    if report.empty:
        # Not an error (an empty storage copies fine), but most often a mistyped SRC.
        click.echo(f"Nothing to copy: {report.source} holds no dialogues and no records.", err=True)
    if as_json:
        echo_json(report.to_dict())
    else:
        d = report.dialogues
        click.echo(
            f"Dialogues: {d['copied']} copied, {d['resumed']} completed, {d['identical']} "
            f"already there, {d['conflict']} refused, {d['unreadable']} unreadable."
        )
        for name, counts in report.records.items():
            c = Counter(counts)
            click.echo(
                f"Records {name}: {c['copied']} copied, {c['identical']} already there, "
                f"{c['conflict']} refused, {c['unreadable']} unreadable."
            )
    for problem in report.problems:
        click.echo(f"Not copied: {problem.render()}", err=True)
    if not report.complete:
        click.echo(
            f"The copy is INCOMPLETE: {len(report.problems)} item(s) above were not copied.",
            err=True,
        )
        return 1
    return 0


def register(group: click.Group) -> None:
    group.add_command(storage)

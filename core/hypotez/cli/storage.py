"""``hypotez storage copy SRC DST``: move every dialogue and record between two storages.

Every record collection SRC lists (:meth:`~hypotez.Storage.list_collections`) is copied, each
record under its own id (:meth:`~hypotez.Storage.list_record_ids`).

Safe to repeat: a dialogue already in DST with the same header and turns is skipped; one whose
turns are a prefix of the source's (an interrupted copy) is completed; any other dialogue or
record that differs in DST is refused and reported, never overwritten. Exit code 1 if anything
was refused or unreadable, so scripts notice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click
from hypotez.cli.common import echo_json, global_options

if TYPE_CHECKING:
    from hypotez.models import Dialogue
    from hypotez.protocols import Storage

#: Turns per append when writing a copied dialogue (a resumable unit of work).
CHUNK = 500


def _open(url: str) -> Storage:
    from hypotez.backends import open_storage
    from hypotez.plugins import get_plugin_manager

    settings = global_options().settings()
    return open_storage(url, settings, get_plugin_manager().registry)


def copy_dialogue(src: Dialogue, dst: Storage) -> tuple[str, int]:
    """Copy one dialogue: (copied | resumed | identical | conflict, turns written)."""
    from hypotez.errors import DialogueNotFoundError

    try:
        existing = dst.load_dialogue(src.id)
    except DialogueNotFoundError:
        dst.create_dialogue(src.info)
        done, outcome = 0, "copied"
    else:
        done, outcome = len(existing.turns), "resumed"
        if existing.info != src.info or tuple(src.turns[:done]) != existing.turns:
            return "conflict", 0
        if done == len(src.turns):
            return "identical", 0
    for start in range(done, len(src.turns), CHUNK):
        dst.append_turns(src.id, src.turns[start : start + CHUNK])
    return outcome, len(src.turns) - done


def copy_records(src: Storage, dst: Storage, collection: str) -> Counter[str]:
    """Copy one collection record by record, under the same ids; one bad record stops none."""
    from hypotez.errors import CorruptDataError, DialogueNotFoundError
    from hypotez.protocols import Storage as BaseStorage

    counts: Counter[str] = Counter()
    ids = src.list_record_ids(collection)
    if type(src).list_record_ids is BaseStorage.list_record_ids:
        # The protocol's default names records by their "id" field: count the ones it misses.
        unnamed = len(src.list_records(collection)) - len(ids)
        if unnamed > 0:
            click.echo(
                f"Not copied: {unnamed} {collection} record(s) of {src.url} without an 'id' "
                "field (its storage plugin cannot list record ids).",
                err=True,
            )
            counts["unreadable"] += unnamed
    for record_id in ids:
        try:
            record = src.get_record(collection, record_id)
        except DialogueNotFoundError:
            continue  # deleted since the listing
        except CorruptDataError as exc:
            click.echo(f"Unreadable, not copied: {exc}", err=True)
            counts["unreadable"] += 1
            continue
        try:
            current = dst.get_record(collection, record_id)
        except DialogueNotFoundError:
            dst.put_record(collection, record_id, record)
            counts["copied"] += 1
            continue
        if current == record:
            counts["identical"] += 1
        else:
            click.echo(
                f"Refused: {collection} record {record_id!r} differs in the destination.", err=True
            )
            counts["conflict"] += 1
    return counts


def collections_of(src: Storage, extra: Iterable[str] = ()) -> list[str]:
    """Every collection of ``src`` (as it lists them), plus ``extra``, sorted."""
    from hypotez.protocols import Storage as BaseStorage

    if type(src).list_collections is BaseStorage.list_collections and not extra:
        click.echo(
            f"Note: the storage of {src.url} cannot list its record collections, so only "
            f"{', '.join(src.list_collections())} are copied; name others with --collection.",
            err=True,
        )
    return sorted({*src.list_collections(), *extra})


def copy_storage(
    src: Storage, dst: Storage, extra_collections: Iterable[str] = ()
) -> dict[str, Any]:
    """Copy every dialogue and every record collection; returns the counts per outcome."""
    from hypotez.errors import CorruptDataError

    dialogues: Counter[str] = Counter()
    turns = 0
    for info in src.list_dialogues():
        try:
            dialogue = src.load_dialogue(info.id)
        except CorruptDataError as exc:
            click.echo(f"Unreadable, not copied: {exc}", err=True)
            dialogues["unreadable"] += 1
            continue
        outcome, written = copy_dialogue(dialogue, dst)
        turns += written
        if outcome == "conflict":
            click.echo(
                f"Refused: dialogue {info.id!r} already exists in {dst.url} with different "
                "content; delete or rename one of them and copy again.",
                err=True,
            )
        dialogues[outcome] += 1
    collections = collections_of(src, extra_collections)
    records = {name: dict(copy_records(src, dst, name)) for name in collections}
    return {"dialogues": dict(dialogues), "turns_written": turns, "records": records}


@click.group()
def storage() -> None:
    """Work on whole storages (file:///..., s3://bucket/prefix)."""


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
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def copy(src: str, dst: str, collections: tuple[str, ...], as_json: bool) -> int:
    """Copy every dialogue and record from SRC to DST without overwriting anything.

    Repeat it safely: identical items are skipped and an interrupted copy is completed. Items
    that differ in DST are refused and reported (exit code 1).
    """
    if src == dst:
        raise click.UsageError("SRC and DST are the same storage.")
    source, target = _open(src), _open(dst)
    try:
        if source.url == target.url:  # the same place, spelled differently (a path, a slash...)
            raise click.UsageError(f"SRC and DST are the same storage ({source.url}).")
        report = copy_storage(source, target, collections)
    finally:
        source.close()
        target.close()
    if not report["dialogues"] and not any(report["records"].values()):
        # Not an error (an empty storage copies fine), but most often a mistyped SRC.
        click.echo(f"Nothing to copy: {source.url} holds no dialogues and no records.", err=True)
    if as_json:
        echo_json(report)
    else:
        d = Counter(report["dialogues"])
        click.echo(
            f"Dialogues: {d['copied']} copied, {d['resumed']} completed, {d['identical']} "
            f"already there, {d['conflict']} refused, {d['unreadable']} unreadable."
        )
        for name, counts in report["records"].items():
            c = Counter(counts)
            click.echo(
                f"Records {name}: {c['copied']} copied, {c['identical']} already there, "
                f"{c['conflict']} refused, {c['unreadable']} unreadable."
            )
    problems = report["dialogues"].get("conflict", 0) + report["dialogues"].get("unreadable", 0)
    problems += sum(
        c.get("conflict", 0) + c.get("unreadable", 0) for c in report["records"].values()
    )
    return 1 if problems else 0


def register(group: click.Group) -> None:
    group.add_command(storage)

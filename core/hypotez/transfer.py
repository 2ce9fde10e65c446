"""Copy every dialogue and record from one storage to another, never overwriting anything.

:func:`copy_storage` returns a :class:`CopyReport`; ``hypotez storage copy`` renders it, and the
conformance suite uses it to copy a storage to a file storage and back.

Safe to repeat: a dialogue already in the destination with the same header and turns is
skipped; one whose turns are a prefix of the source's (an interrupted copy) is completed; any
other dialogue or record that differs there is refused, never overwritten. Whatever is not
copied (refused, unreadable, unlisted) is counted *and named* in the report, and
:attr:`CopyReport.complete` is False.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import attrs
from hypotez.errors import CorruptDataError, DialogueNotFoundError, InputError
from hypotez.models import Dialogue
from hypotez.protocols import Storage

#: Turns per append when writing a copied dialogue (a resumable unit of work).
CHUNK = 500
#: Outcomes that mean "copied or already there"; anything else is a problem.
FINE = frozenset({"copied", "resumed", "identical"})


@attrs.frozen
class Problem:
    """One item that was not copied, and why."""

    kind: str  # "dialogue", or "record" with its collection
    id: str
    outcome: str  # "conflict" or "unreadable"
    #: What happened, as the end of a sentence about the item ("already exists in ...").
    reason: str
    collection: str | None = None
    #: How many items this is about (records a storage cannot name come as one problem).
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def render(self) -> str:
        if self.kind == "dialogue":
            what = f"dialogue {self.id!r}"
        elif self.id:
            what = f"{self.collection} record {self.id!r}"
        else:
            what = f"{self.count} {self.collection} record(s) without an 'id' field"
        return f"{what} {self.reason}"


@attrs.define
class CopyReport:
    """What a copy did: counts per outcome and every item that was not copied."""

    source: str
    destination: str
    dialogues: Counter[str] = attrs.field(factory=Counter)
    turns_written: int = 0
    records: dict[str, Counter[str]] = attrs.field(factory=dict)
    problems: list[Problem] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)

    @property
    def complete(self) -> bool:
        """True when every item of the source is now in the destination."""
        return not self.problems

    @property
    def empty(self) -> bool:
        return not self.dialogues and not any(self.records.values()) and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "complete": self.complete,
            "dialogues": dict(self.dialogues),
            "turns_written": self.turns_written,
            "records": {name: dict(counts) for name, counts in self.records.items()},
            "problems": [p.to_dict() for p in self.problems],
            "notes": list(self.notes),
        }


def copy_dialogue(src: Dialogue, dst: Storage) -> tuple[str, int]:
    """Copy one dialogue: (copied | resumed | identical | conflict, turns written)."""
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


def _copy_dialogues(src: Storage, dst: Storage, report: CopyReport) -> None:
    for dialogue_id in src.list_dialogue_ids():
        try:
            dialogue = src.load_dialogue(dialogue_id)
        except DialogueNotFoundError:
            continue  # deleted since the listing
        except (CorruptDataError, ValueError) as exc:
            report.dialogues["unreadable"] += 1
            report.problems.append(
                Problem("dialogue", dialogue_id, "unreadable", f"cannot be read: {exc}")
            )
            continue
        outcome, written = copy_dialogue(dialogue, dst)
        report.turns_written += written
        report.dialogues[outcome] += 1
        if outcome == "conflict":
            report.problems.append(
                Problem(
                    "dialogue",
                    dialogue_id,
                    "conflict",
                    f"already exists in {dst.url} with different content; delete or rename one "
                    "of them and copy again",
                )
            )


def _copy_records(src: Storage, dst: Storage, collection: str, report: CopyReport) -> None:
    """Copy one collection record by record, under the same ids; one bad record stops none."""
    counts: Counter[str] = Counter()
    report.records[collection] = counts
    ids = src.list_record_ids(collection)
    if type(src).list_record_ids is Storage.list_record_ids:
        # The protocol's default names records by their "id" field: count the ones it misses.
        unnamed = len(src.list_records(collection)) - len(ids)
        if unnamed > 0:
            counts["unreadable"] += unnamed
            report.problems.append(
                Problem(
                    "record",
                    "",
                    "unreadable",
                    f"cannot be listed: the storage plugin of {src.url} names records only by "
                    "their 'id' field",
                    collection,
                    unnamed,
                )
            )
    for record_id in ids:
        try:
            record = src.get_record(collection, record_id)
        except DialogueNotFoundError:
            continue  # deleted since the listing
        except (CorruptDataError, ValueError) as exc:
            counts["unreadable"] += 1
            report.problems.append(
                Problem("record", record_id, "unreadable", f"cannot be read: {exc}", collection)
            )
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
            counts["conflict"] += 1
            report.problems.append(
                Problem(
                    "record",
                    record_id,
                    "conflict",
                    "differs in the destination; it was not overwritten",
                    collection,
                )
            )


def copy_storage(src: Storage, dst: Storage, extra_collections: Iterable[str] = ()) -> CopyReport:
    """Copy every dialogue and every record collection of ``src`` into ``dst``."""
    if src.url and src.url == dst.url:
        raise InputError(f"The source and the destination are the same storage ({src.url}).")
    report = CopyReport(src.url, dst.url)
    extra = list(extra_collections)
    if type(src).list_collections is Storage.list_collections and not extra:
        report.notes.append(
            f"The storage of {src.url} cannot list its record collections, so only "
            f"{', '.join(src.list_collections())} were copied; name others with --collection."
        )
    if type(src).list_dialogue_ids is Storage.list_dialogue_ids:
        report.notes.append(
            f"The storage of {src.url} lists only the dialogues it can read; an unreadable one "
            "would not be counted."
        )
    _copy_dialogues(src, dst, report)
    for collection in sorted({*src.list_collections(), *extra}):
        _copy_records(src, dst, collection, report)
    return report

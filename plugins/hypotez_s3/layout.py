"""Object keys, relative to the storage's prefix. One place decides every name.

::

    dialogues/<id>/info.json                         the header, created once (If-None-Match: *)
    dialogues/<id>/turns/<seq>.json                  one object per append_turns() call
    dialogues/<id>/segments/<first>-<last>.json      a copy of appends first..last (read cache)
    records/<collection>/<id>.json                   one JSON document per record

``<seq>``, ``<first>`` and ``<last>`` are zero-padded to 12 digits so that the lexicographic
order S3 lists in is the numeric order.
"""

from __future__ import annotations

import re

from hypotez import validate_id

DIGITS = 12
_TURN_RE = re.compile(r"(\d{12})\.json")
_SEGMENT_RE = re.compile(r"(\d{12})-(\d{12})\.json")

DIALOGUES = "dialogues/"
RECORDS = "records/"


def dialogue_dir(dialogue_id: str) -> str:
    return f"{DIALOGUES}{validate_id(dialogue_id)}/"


def info_key(dialogue_id: str) -> str:
    return f"{dialogue_dir(dialogue_id)}info.json"


def turns_dir(dialogue_id: str) -> str:
    return f"{dialogue_dir(dialogue_id)}turns/"


def turn_key(dialogue_id: str, seq: int) -> str:
    return f"{turns_dir(dialogue_id)}{seq:0{DIGITS}d}.json"


def segments_dir(dialogue_id: str) -> str:
    return f"{dialogue_dir(dialogue_id)}segments/"


def segment_key(dialogue_id: str, first: int, last: int) -> str:
    return f"{segments_dir(dialogue_id)}{first:0{DIGITS}d}-{last:0{DIGITS}d}.json"


def records_dir(collection: str) -> str:
    return f"{RECORDS}{validate_id(collection, 'collection')}/"


def record_key(collection: str, record_id: str) -> str:
    return f"{records_dir(collection)}{validate_id(record_id, 'record')}.json"


def parse_turn(key: str, folder: str) -> int | None:
    """The sequence number of a turn object key, or None for a foreign key."""
    if not key.startswith(folder):
        return None
    match = _TURN_RE.fullmatch(key[len(folder) :])
    return int(match.group(1)) if match else None


def parse_segment(key: str, folder: str) -> tuple[int, int] | None:
    if not key.startswith(folder):
        return None
    match = _SEGMENT_RE.fullmatch(key[len(folder) :])
    if not match:
        return None
    first, last = int(match.group(1)), int(match.group(2))
    return (first, last) if first <= last else None


def parse_record(key: str, folder: str) -> str | None:
    """The record id of a record key, or None for a foreign key."""
    if not key.startswith(folder) or not key.endswith(".json"):
        return None
    name = key[len(folder) : -len(".json")]
    try:
        return validate_id(name, "record")
    except ValueError:
        return None

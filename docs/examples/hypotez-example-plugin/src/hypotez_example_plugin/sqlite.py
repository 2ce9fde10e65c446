"""Storage in one SQLite file: ``sqlite:///absolute/path/hypotez.db``.

SQLite gives most storage guarantees for free: each write is one transaction (a crash leaves the
old or the new state), ``BEGIN IMMEDIATE`` serialises writers across threads and processes, and
appending inserts one row whatever the dialogue's length. Each call opens its own connection, so
one storage object is safe to share between threads. What is left to us: check ids, report bad
rows by their location (``sqlite:///...db#table/key``) and never write over them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from hypotez import (
    CorruptDataError,
    Dialogue,
    DialogueInfo,
    DialogueNotFoundError,
    InputError,
    Storage,
    StorageError,
    Turn,
    validate_id,
)

log = logging.getLogger(__name__)
WRITE = "BEGIN IMMEDIATE"  # take the write lock first: no upgrade deadlocks between writers
SCHEMA = """
CREATE TABLE IF NOT EXISTS dialogues (id TEXT PRIMARY KEY, header TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turns (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                                  dialogue_id TEXT NOT NULL, batch TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS turns_by_dialogue ON turns (dialogue_id, seq);
CREATE TABLE IF NOT EXISTS records (collection TEXT NOT NULL, id TEXT NOT NULL,
                                    data TEXT NOT NULL, PRIMARY KEY (collection, id));
"""


class SqliteStorage(Storage):
    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.url = "sqlite://" + self.path.as_posix()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db(begin=None) as db:  # outside a transaction: journal mode and schema
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            db.executescript(SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> SqliteStorage:
        parts = urlsplit(url)
        if parts.scheme != "sqlite" or parts.netloc or not parts.path:
            raise InputError(f"Storage URL {url!r} is not sqlite:///absolute/path/file.db.")
        return cls(url2pathname(parts.path))

    def where(self, table: str, key: object) -> str:
        """The location errors and warnings name: ``sqlite:///path.db#table/key``."""
        return f"{self.url}#{table}/{key}"

    @contextmanager
    def _db(self, begin: str | None = "BEGIN") -> Iterator[sqlite3.Connection]:
        """One connection and one transaction per call (``BEGIN IMMEDIATE`` for writes)."""
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"Cannot open {self.url}: {exc}.") from exc
        try:
            if begin:
                db.execute(begin)
            yield db
            if db.in_transaction:
                db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                bad = "not a database" in str(exc) or "malformed" in str(exc)
                kind = CorruptDataError if bad else StorageError
                raise kind(f"{self.url}: {exc}. Nothing was written; check the file.") from exc
            raise
        finally:
            db.close()

    def _parse(self, location: str, raw: str, build: Callable[[Any], Any]) -> Any:
        try:
            return build(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptDataError(
                f"{location} is not valid hypotez data ({exc}). It was left untouched: "
                "repair or delete it."
            ) from exc

    # -- dialogues -----------------------------------------------------------------------
    def create_dialogue(self, info: DialogueInfo) -> None:
        with self._db(WRITE) as db:
            try:
                db.execute(
                    "INSERT INTO dialogues VALUES (?, ?)", (info.id, json.dumps(info.to_dict()))
                )
            except sqlite3.IntegrityError:
                raise StorageError(f"Dialogue {info.id!r} already exists in {self.url}.") from None

    def append_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        batch = json.dumps([t.to_dict() for t in turns], ensure_ascii=False)
        with self._db(WRITE) as db:
            self._header(db, dialogue_id)  # checks the id; raises for an unknown one
            if turns:
                db.execute(
                    "INSERT INTO turns (dialogue_id, batch) VALUES (?, ?)", (dialogue_id, batch)
                )

    def _header(self, db: sqlite3.Connection, dialogue_id: str) -> str:
        row = db.execute(
            "SELECT header FROM dialogues WHERE id = ?", (validate_id(dialogue_id),)
        ).fetchone()
        if row is None:
            raise DialogueNotFoundError(f"No dialogue {dialogue_id!r} in {self.url}.")
        return str(row[0])

    def load_dialogue(self, dialogue_id: str) -> Dialogue:
        with self._db() as db:
            header = self._header(db, dialogue_id)
            rows = db.execute(
                "SELECT seq, batch FROM turns WHERE dialogue_id = ? ORDER BY seq", (dialogue_id,)
            ).fetchall()
        info = self._parse(self.where("dialogues", dialogue_id), header, DialogueInfo.from_dict)
        turns: list[Turn] = []
        for seq, batch in rows:
            turns += self._parse(
                self.where("turns", seq), batch, lambda d: [Turn.from_dict(t) for t in d]
            )
        return Dialogue(info, turns)

    def list_dialogues(self) -> list[DialogueInfo]:
        with self._db() as db:
            rows = db.execute("SELECT id, header FROM dialogues").fetchall()
        infos = []
        for dialogue_id, header in rows:
            try:
                infos.append(
                    self._parse(
                        self.where("dialogues", dialogue_id), header, DialogueInfo.from_dict
                    )
                )
            except CorruptDataError as exc:  # one bad row must not hide every other dialogue
                log.warning("Skipping a dialogue: %s", exc)
        return sorted(infos, key=lambda i: (i.created, i.id))

    def list_dialogue_ids(self) -> list[str]:
        # Every row, readable or not: `hypotez storage copy` names the ones it cannot read.
        with self._db() as db:
            rows = db.execute("SELECT id FROM dialogues ORDER BY id").fetchall()
        return [dialogue_id for (dialogue_id,) in rows]

    def delete_dialogue(self, dialogue_id: str) -> None:
        with self._db(WRITE) as db:
            self._header(db, dialogue_id)
            db.execute("DELETE FROM turns WHERE dialogue_id = ?", (dialogue_id,))
            db.execute("DELETE FROM dialogues WHERE id = ?", (dialogue_id,))

    # -- records -------------------------------------------------------------------------
    def _key(self, collection: str, record_id: str) -> tuple[str, str]:
        return validate_id(collection, "collection"), validate_id(record_id, "record")

    def _record(self, collection: str, record_id: str, raw: str) -> dict[str, Any]:
        location = self.where("records", f"{collection}/{record_id}")
        data = self._parse(location, raw, lambda d: d)
        if not isinstance(data, dict):
            raise CorruptDataError(f"{location} is not a JSON object. It was left untouched.")
        return data

    def put_record(self, collection: str, record_id: str, data: Mapping[str, Any]) -> None:
        key = self._key(collection, record_id)
        with self._db(WRITE) as db:
            old = db.execute(
                "SELECT data FROM records WHERE collection = ? AND id = ?", key
            ).fetchone()
            if old is not None:
                self._record(*key, old[0])  # never replace data we cannot read: report it
            db.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (*key, json.dumps(dict(data)))
            )

    def update_record(
        self,
        collection: str,
        record_id: str,
        change: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:
        # Read and write in one BEGIN IMMEDIATE transaction: no other writer can come between.
        key = self._key(collection, record_id)
        with self._db(WRITE) as db:
            row = db.execute(
                "SELECT data FROM records WHERE collection = ? AND id = ?", key
            ).fetchone()
            new = dict(change(None if row is None else self._record(*key, row[0])))
            db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (*key, json.dumps(new)))
        return new

    def get_record(self, collection: str, record_id: str) -> dict[str, Any]:
        key = self._key(collection, record_id)
        with self._db() as db:
            row = db.execute(
                "SELECT data FROM records WHERE collection = ? AND id = ?", key
            ).fetchone()
        if row is None:
            raise DialogueNotFoundError(f"No {collection} record {record_id!r} in {self.url}.")
        return self._record(*key, row[0])

    def list_records(self, collection: str) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT id, data FROM records WHERE collection = ? ORDER BY id",
                (validate_id(collection, "collection"),),
            ).fetchall()
        return [self._record(collection, record_id, raw) for record_id, raw in rows]

    def list_collections(self) -> list[str]:
        # Records may live in any collection; `hypotez storage copy` copies each one listed here.
        with self._db() as db:
            rows = db.execute("SELECT DISTINCT collection FROM records ORDER BY collection")
            return [collection for (collection,) in rows.fetchall()]

    def list_record_ids(self, collection: str) -> list[str]:
        # The key, not a field of the record: a record need not hold its own id.
        with self._db() as db:
            rows = db.execute(
                "SELECT id FROM records WHERE collection = ? ORDER BY id",
                (validate_id(collection, "collection"),),
            )
            return [record_id for (record_id,) in rows.fetchall()]

    def delete_record(self, collection: str, record_id: str) -> None:
        key = self._key(collection, record_id)
        with self._db(WRITE) as db:
            if db.execute("DELETE FROM records WHERE collection = ? AND id = ?", key).rowcount == 0:
                raise DialogueNotFoundError(f"No {collection} record {record_id!r} in {self.url}.")

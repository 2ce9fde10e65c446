"""The SQLite storage: hypotez's storage conformance suite, plus what a session does with it."""

import sqlite3
from contextlib import closing

import hypotez
import pytest
from hypotez.conformance import StorageConformance, StorageFactory


class TestSqliteConformance(StorageConformance):
    """Every guarantee a hypotez storage must give, run against a fresh sqlite:// file.

    The suite's writer processes open the storage from the URL through the installed entry
    point, exactly as separate programs would. The hooks below reach under the storage with
    plain sqlite3 to plant bad data; each returns the location the storage names in errors.
    """

    @pytest.fixture
    def storage_factory(self, tmp_path):
        return StorageFactory(f"sqlite://{tmp_path}/conformance.db")

    def _execute(self, storage, sql, *params):
        with closing(sqlite3.connect(storage.path)) as db, db:  # `with db` commits
            return db.execute(sql, params).fetchall()

    def corrupt_turns(self, storage, dialogue_id):
        [(seq,)] = self._execute(
            storage, "SELECT max(seq) FROM turns WHERE dialogue_id = ?", dialogue_id
        )
        self._execute(
            storage, "UPDATE turns SET batch = ? WHERE seq = ?", '[{"role": "nobody"}]', seq
        )
        return storage.where("turns", seq)

    def corrupt_header(self, storage, dialogue_id):
        self._execute(storage, "UPDATE dialogues SET header = 'not json' WHERE id = ?", dialogue_id)
        return storage.where("dialogues", dialogue_id)

    def corrupt_record(self, storage, collection, record_id):
        sql = "UPDATE records SET data = '[1, 2, \"unfinished' WHERE collection = ? AND id = ?"
        self._execute(storage, sql, collection, record_id)
        return storage.where("records", f"{collection}/{record_id}")

    def plant_foreign(self, storage):
        self._execute(
            storage, "INSERT INTO dialogues VALUES ('notes', '{\"hello\": \"not a dialogue\"}')"
        )
        return storage.where("dialogues", "notes")

    def read_raw(self, storage, location):
        table, _, key = location.partition("#")[2].partition("/")
        sql = {
            "turns": "SELECT batch FROM turns WHERE seq = ?",
            "dialogues": "SELECT header FROM dialogues WHERE id = ?",
            "records": "SELECT data FROM records WHERE collection || '/' || id = ?",
        }[table]
        [(raw,)] = self._execute(storage, sql, key)
        return raw.encode()


def test_a_session_keeps_its_dialogue_in_sqlite(plugin_manager, make_settings, tmp_path):
    settings = make_settings(storage=f"sqlite://{tmp_path}/hypotez.db")
    with hypotez.Session(
        settings=settings, sentiment="emoji", plugin_manager=plugin_manager
    ) as session:
        session.storage.create_dialogue(hypotez.DialogueInfo(id="d1"))
        session.storage.append_turns("d1", [hypotez.Turn("user", "hi 😀")])
    with hypotez.Session(settings=settings, plugin_manager=plugin_manager) as reopened:
        assert [t.content for t in reopened.storage.load_dialogue("d1").turns] == ["hi 😀"]


def test_a_file_that_is_not_a_database_is_reported_and_kept(
    plugin_manager, make_settings, tmp_path
):
    path = tmp_path / "notes.db"
    notes = b"my notes, not a database " * 100
    path.write_bytes(notes)
    settings = make_settings(storage=f"sqlite://{path}")
    session = hypotez.Session(settings=settings, plugin_manager=plugin_manager)
    with session, pytest.raises(hypotez.CorruptDataError, match="not a database"):
        session.storage.list_dialogues()
    assert path.read_bytes() == notes

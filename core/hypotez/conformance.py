"""The storage conformance suite: the tests every :class:`hypotez.Storage` must pass.

hypotez runs it against its own file and S3 storages; a plugin author runs it against theirs by
subclassing :class:`StorageConformance` in a test module and providing one fixture and four
small hooks that reach *under* the storage (to plant corrupt or foreign data)::

    import pytest
    from hypotez.conformance import StorageConformance, StorageFactory

    class TestMyStorage(StorageConformance):
        @pytest.fixture
        def storage_factory(self, tmp_path):
            # A fresh, empty location for each test. Child processes open it again from
            # url/options/env, so the plugin must be installed (entry point) or listed in
            # `plugins` (importable module names).
            return StorageFactory("mydb://localhost/test-" + tmp_path.name, env={"MYDB_TOKEN": "..."})

        def corrupt_turns(self, storage, dialogue_id):
            ...  # make the stored turns of this dialogue unparseable; return their location
        def corrupt_header(self, storage, dialogue_id):
            ...  # make the dialogue's header unparseable; return its location
        def corrupt_record(self, storage, collection, record_id):
            ...  # make one record unparseable; return its location
        def plant_foreign(self, storage):
            ...  # put data hypotez did not write where dialogues live; return its location
        def read_raw(self, storage, location):
            ...  # the raw bytes at a location returned above

A *location* is whatever the storage names in its errors and warnings (a path, an object
address...); the suite checks that errors and warnings name it and that the bytes there are
never changed by hypotez.

Optional hooks hold a storage to what hostile testing found (issue 11). Each applies only to
some storages: implement those that fit yours. A test class that implements none of a test's
hooks does not get that test (it is not collected); one that implements some of them must
implement all::

        def unterminate_last_append(self, storage, dialogue_id):
            ...  # strip what ends the last append (a line-based store: its final newline), as
                 # an editor saving a hand-repaired file does; return the location
        def link_dialogue(self, storage, dialogue_id, target):
            ...  # make where the dialogue's turns live a symbolic link to ``target`` (a file
                 # outside the storage); return the location
        def link_record(self, storage, collection, record_id, target):
            ...  # the same for one record
        def corrupt_cache(self, storage, dialogue_id):
            ...  # make a cache the storage keeps of the dialogue's turns unparseable (S3: a
                 # segment object); return the location

The suite then checks that a complete last append without its end marker still loads and is
kept by the next append; that nothing is read or written through a planted link (an error names
it); and that a corrupt cache is reported by a warning naming it but never makes the dialogue
unreadable or blocks appends.

Concurrency tests start real processes (``python -m hypotez.conformance``) that each open the
storage themselves from the factory's URL, so they test exactly what separate hosts would do.
Every wait on a child is bounded (``writer_timeout`` seconds of silence, then it is killed and
the test fails with its stderr), and every child is killed when its test ends, passed or not.
Class attributes (``many_dialogues``, ``writer_processes``...) scale the tests. The suite needs
only pytest: async methods are driven with ``asyncio.run``.

It also checks ``update_record()``: alone, from threads, and from processes that all add 1 to one
counter (the protocol's default, a get then a put, loses updates there: override it with a
locked or conditional read-change-write). Besides dialogues and records, the suite checks ``list_collections()`` and ``list_record_ids()``
(the protocol's defaults only know the typed helpers' collections and records with an ``"id"``
field: override them) and copies the storage to a file storage and back with
``hypotez storage copy``'s code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypotez.errors import (
    CorruptDataError,
    DialogueNotFoundError,
    InputError,
    StorageError,
)
from hypotez.export import export_dialogue
from hypotez.models import (
    Assistant,
    Dialogue,
    DialogueInfo,
    JobRecord,
    Sentiment,
    Turn,
    Usage,
)
from hypotez.protocols import Storage

__all__ = [
    "StorageConformance",
    "StorageFactory",
    "WriterProcess",
    "check_batches",
    "run_together",
    "writer_processes",
]

#: Text that has broken storages before: every plane of Unicode, RTL, combining marks, emoji
#: with joiners, quotes, backslashes, newlines, a NUL, and JSON-looking content.
UNICODE_SAMPLES = (
    "Привет, как дела?",
    "你好，世界 🌏 — ça va? Grüße! ¿Qué tal?",
    "مرحبا بالعالم",
    "👩‍👩‍👧‍👦 e\u0301 ﬁ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001f600",
    "quotes \" ' ` and \\ backslashes \\n and a real\nnewline\r\n and tab\t",
    "nul \x00 inside",
    '{"turns": [], "role": "system"}',
    "",
)


@attrs.frozen
class StorageFactory:
    """How to open one storage location; callable. Child processes rebuild it from JSON."""

    url: str
    #: Per-plugin options, as for :meth:`hypotez.Settings.load` (``{"s3": {"endpoint": ...}}``).
    options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    #: Environment variables the storage needs (credentials...), on top of ``os.environ``.
    env: Mapping[str, str] = attrs.field(factory=dict)
    #: Importable plugin modules to register besides the installed entry points.
    plugins: tuple[str, ...] = ()

    def __call__(self) -> Storage:
        from hypotez.context import Context
        from hypotez.plugins import make_plugin_manager
        from hypotez.settings import Settings

        env = {**os.environ, **self.env}
        pm = make_plugin_manager(
            env=env, plugins=[importlib.import_module(name) for name in self.plugins]
        )
        settings = Settings.load(env=env, options=self.options, storage=self.url)
        # The caller closes the storage; the context only builds it.
        storage: Storage = Context(settings, plugin_manager=pm).get("storage", self.url)
        return storage

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "options": {k: dict(v) for k, v in self.options.items()},
            "env": dict(self.env),
            "plugins": list(self.plugins),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StorageFactory:
        return cls(data["url"], data["options"], data["env"], tuple(data["plugins"]))


# -- helpers ------------------------------------------------------------------------------
def _turn(content: str, role: str = "user", **kwargs: Any) -> Turn:
    return Turn(role=role, content=content, **kwargs)


def _contents(dialogue: Dialogue) -> list[str]:
    return [t.content for t in dialogue.turns]


def _batch(writer: int, number: int, size: int, pad: int) -> list[Turn]:
    """A recognisable batch: every turn names its writer, batch and position."""
    filler = "ж" * pad
    return [
        _turn(f"w{writer}-b{number}-t{i}|{filler}", "user" if i % 2 == 0 else "assistant")
        for i in range(size)
    ]


def _parse_tag(content: str) -> tuple[int, int, int]:
    tag = content.split("|", 1)[0]
    w, b, t = tag.split("-")
    return int(w[1:]), int(b[1:]), int(t[1:])


def check_batches(dialogue: Dialogue, size: int) -> dict[int, list[int]]:
    """Assert every batch of ``size`` turns is whole, contiguous and stored once.

    Returns writer -> the batch numbers in stored order.
    """
    tags = [_parse_tag(c) for c in _contents(dialogue)]
    assert len(tags) % size == 0, f"{len(tags)} turns is not a whole number of batches of {size}"
    order: dict[int, list[int]] = {}
    seen: set[tuple[int, int]] = set()
    for start in range(0, len(tags), size):
        chunk = tags[start : start + size]
        writer, number = chunk[0][0], chunk[0][1]
        assert chunk == [(writer, number, i) for i in range(size)], (
            f"batch at turn {start} is torn or interleaved: {chunk}"
        )
        assert (writer, number) not in seen, f"batch w{writer}-b{number} stored twice"
        seen.add((writer, number))
        order.setdefault(writer, []).append(number)
    return order


class WriterProcess:
    """A child process running :func:`_writer_main`, read without ever blocking unboundedly.

    Two threads drain its stdout (into a queue of lines) and stderr, so a chatty or stuck child
    can neither fill a pipe and stall, nor make the test wait forever: every wait has a
    deadline, after which the child is killed and the test fails with what it printed.
    """

    def __init__(self, factory: StorageFactory, job: Mapping[str, Any], timeout: float) -> None:
        self.timeout = timeout
        payload = json.dumps({"factory": factory.to_json(), **job})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hypotez.conformance", payload],
            env={**os.environ, **factory.env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for thread in self._readers:
            thread.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)  # end of output

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def stderr(self) -> str:
        return "".join(self._stderr)[-4000:]

    def _fail(self, why: str) -> None:
        self.kill()
        pytest.fail(f"writer process (pid {self.proc.pid}) {why}; its stderr:\n{self.stderr()}")

    def read_line(self) -> str | None:
        """The next line it prints (None once it closed its output), within ``timeout``."""
        try:
            return self.lines.get(timeout=self.timeout)
        except queue.Empty:
            self._fail(f"printed nothing for {self.timeout:.0f} s")
            raise  # not reached: pytest.fail raises

    def expect(self, expected: str) -> None:
        line = self.read_line()
        if line != expected:
            self._fail(f"said {line!r} instead of {expected!r}")

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self) -> list[str]:
        """Wait for it to exit (within ``timeout``); every line it printed that was not read."""
        try:
            self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._fail(f"did not exit within {self.timeout:.0f} s")
        rest = []
        try:
            while (line := self.lines.get(timeout=10)) is not None:  # None: end of output
                rest.append(line)
        except queue.Empty:
            self._fail("exited but its output never ended")
        self._readers[1].join(timeout=10)
        return rest

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()


@contextlib.contextmanager
def writer_processes(timeout: float) -> Iterator[Callable[..., WriterProcess]]:
    """Start writer processes with ``spawn(factory, job)``; all are killed on the way out."""
    started: list[WriterProcess] = []

    def spawn(factory: StorageFactory, job: Mapping[str, Any]) -> WriterProcess:
        writer = WriterProcess(factory, job, timeout)
        started.append(writer)
        return writer

    try:
        yield spawn
    finally:
        for writer in started:
            writer.kill()


def run_together(procs: Sequence[WriterProcess], role: str = "writer") -> list[list[str]]:
    """Start ``procs`` at once (after each has opened its storage), wait for every one to exit
    cleanly, and return the lines each printed."""
    for proc in procs:
        proc.expect("ready")
    for proc in procs:
        proc.send("go")
    out = []
    for proc in procs:
        lines = proc.finish()
        assert proc.proc.returncode == 0, (
            f"{role} exited with {proc.proc.returncode}:\n{lines}\n{proc.stderr()}"
        )
        out.append(lines)
    return out


# -- the suite ------------------------------------------------------------------------------
class StorageConformance:
    """Tests every storage must pass. Subclass it; see the module docstring."""

    #: Dialogues created for the listing test (more than one S3 list page of 1000).
    many_dialogues: int = 1050
    #: Turns in the large-dialogue test.
    large_turns: int = 10_000
    #: Concurrent writer processes and how many batches each appends.
    writer_processes: int = 4
    appends_per_writer: int = 30
    #: How many times each writer process adds 1 to a shared counter with update_record().
    updates_per_writer: int = 25
    batch_size: int = 3
    #: The longest a writer process may stay silent (or take to exit) before it is killed and
    #: the test fails: the process tests never hang.
    writer_timeout: float = 300.0

    # -- what a subclass provides --------------------------------------------------------
    @pytest.fixture
    def storage_factory(self) -> StorageFactory:
        pytest.fail(
            f"{type(self).__name__} must define a `storage_factory` fixture returning a "
            "hypotez.conformance.StorageFactory for a fresh, empty location.",
            pytrace=False,
        )

    @pytest.fixture
    def storage(self, storage_factory: StorageFactory) -> Iterator[Storage]:
        storage = storage_factory()
        try:
            yield storage
        finally:
            storage.close()

    def corrupt_turns(self, storage: Storage, dialogue_id: str) -> str:
        """Make this dialogue's stored turns unparseable; return the location."""
        raise NotImplementedError(f"{type(self).__name__} must implement corrupt_turns()")

    def corrupt_header(self, storage: Storage, dialogue_id: str) -> str:
        """Make this dialogue's header unparseable; return the location."""
        raise NotImplementedError(f"{type(self).__name__} must implement corrupt_header()")

    def corrupt_record(self, storage: Storage, collection: str, record_id: str) -> str:
        """Make one record unparseable; return the location."""
        raise NotImplementedError(f"{type(self).__name__} must implement corrupt_record()")

    def plant_foreign(self, storage: Storage) -> str:
        """Put data hypotez did not write among the dialogues; return the location."""
        raise NotImplementedError(f"{type(self).__name__} must implement plant_foreign()")

    def read_raw(self, storage: Storage, location: str) -> bytes:
        """The raw bytes at ``location``."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_raw()")

    def unterminate_last_append(self, storage: Storage, dialogue_id: str) -> str:
        """Strip what ends the dialogue's last append (a final newline); return the location.

        Optional: only for storages whose appends carry an end marker.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement unterminate_last_append()")

    def link_dialogue(self, storage: Storage, dialogue_id: str, target: str) -> str:
        """Make where the dialogue's turns live a symbolic link to the file ``target``.

        Optional (with :meth:`link_record`): only for storages on a file system.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement link_dialogue()")

    def link_record(self, storage: Storage, collection: str, record_id: str, target: str) -> str:
        """Make where one record lives a symbolic link to the file ``target``.

        Optional (with :meth:`link_dialogue`): only for storages on a file system.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement link_record()")

    def corrupt_cache(self, storage: Storage, dialogue_id: str) -> str:
        """Make a cache of the dialogue's turns unparseable (S3: a segment); return its location.

        Optional: only for storages that keep such a cache.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement corrupt_cache()")

    #: Tests that need optional hooks: a subclass that implements none of a test's hooks does
    #: not get that test (its storage has no such thing); one that implements some must
    #: implement all of them.
    OPTIONAL_TESTS: Mapping[str, tuple[str, ...]] = {
        "test_a_complete_last_append_without_its_end_marker_is_kept": ("unterminate_last_append",),
        "test_a_planted_link_is_never_followed": ("link_dialogue", "link_record"),
        "test_a_corrupt_cache_is_reported_but_never_makes_a_dialogue_unreadable": (
            "corrupt_cache",
        ),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for test, hooks in cls.OPTIONAL_TESTS.items():
            if all(getattr(cls, hook) is getattr(StorageConformance, hook) for hook in hooks):
                setattr(cls, test, None)  # not collected: this storage has no such thing

    # -- round trips -----------------------------------------------------------------------
    def test_round_trip_keeps_every_field_and_unicode(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        info = DialogueInfo(
            "round-trip.1",
            title="Диалог 🌏 «тест»",
            system="Ты — помощник. 你是助手。",
            assistant_id="helper",
            meta={"tags": ["ü", "😀"], "nested": {"k": "مرحبا"}},
        )
        storage.create_dialogue(info)
        turns = [
            _turn(text, "user" if i % 2 == 0 else "assistant", meta={"i": i, "text": text})
            for i, text in enumerate(UNICODE_SAMPLES)
        ]
        turns.append(
            Turn(
                role="assistant",
                content="Отлично! 👍",
                model="some-model-1",
                sentiment=Sentiment("positive", 0.75, "some-analyzer"),
                usage=Usage(12, 5, 17),
                finish_reason="stop",
            )
        )
        storage.append_turns(info.id, turns[:3])
        storage.append_turns(info.id, turns[3:])
        expected = Dialogue(info, turns)
        assert storage.load_dialogue(info.id) == expected
        other = storage_factory()  # a second client sees the same, with no shared cache
        try:
            assert other.load_dialogue(info.id) == expected
            assert other.dialogue_exists(info.id)
        finally:
            other.close()

    def test_empty_dialogue_loads_with_no_turns(self, storage: Storage) -> None:
        storage.create_dialogue(DialogueInfo("empty"))
        storage.append_turns("empty", [])  # appending nothing is a no-op
        dialogue = storage.load_dialogue("empty")
        assert dialogue.turns == ()
        assert dialogue.id == "empty"

    def test_creating_an_existing_dialogue_fails_and_keeps_it(self, storage: Storage) -> None:
        storage.create_dialogue(DialogueInfo("twice", title="first"))
        storage.append_turns("twice", [_turn("kept")])
        with pytest.raises(StorageError, match="twice"):
            storage.create_dialogue(DialogueInfo("twice", title="second"))
        dialogue = storage.load_dialogue("twice")
        assert dialogue.info.title == "first"
        assert _contents(dialogue) == ["kept"]

    def test_unknown_dialogue_is_a_key_error_naming_it(self, storage: Storage) -> None:
        for call in (
            lambda: storage.load_dialogue("missing-1"),
            lambda: storage.append_turns("missing-1", [_turn("x")]),
            lambda: storage.delete_dialogue("missing-1"),
        ):
            with pytest.raises(DialogueNotFoundError, match="missing-1") as caught:
                call()
            assert isinstance(caught.value, KeyError)
        assert not storage.dialogue_exists("missing-1")
        assert storage.list_dialogues() == []

    # -- order and listing -------------------------------------------------------------------
    def test_appends_keep_their_order(self, storage: Storage) -> None:
        storage.create_dialogue(DialogueInfo("order"))
        expected: list[str] = []
        for n in range(40):
            batch = [_turn(f"{n}.{i}") for i in range(n % 4 + 1)]
            storage.append_turns("order", batch)
            expected.extend(t.content for t in batch)
        assert _contents(storage.load_dialogue("order")) == expected

    def test_list_pages_through_many_dialogues_oldest_first(self, storage: Storage) -> None:
        start = datetime(2024, 1, 1, tzinfo=UTC)
        infos = [
            DialogueInfo(f"d{n:05d}", created=start + timedelta(seconds=n), title=f"№{n}")
            for n in range(self.many_dialogues)
        ]
        # Created out of order, from several threads: the listing must sort by creation time.
        shuffled = infos[1::2] + infos[::2]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(storage.create_dialogue, shuffled))
        listed = storage.list_dialogues()
        assert [i.id for i in listed] == [i.id for i in infos]
        assert listed == infos

    def test_delete_removes_only_that_dialogue_and_the_id_can_be_reused(
        self, storage: Storage
    ) -> None:
        for name in ("keep", "drop"):
            storage.create_dialogue(DialogueInfo(name))
            storage.append_turns(name, [_turn(f"{name} turn")])
        storage.delete_dialogue("drop")
        assert [i.id for i in storage.list_dialogues()] == ["keep"]
        assert not storage.dialogue_exists("drop")
        with pytest.raises(DialogueNotFoundError):
            storage.load_dialogue("drop")
        assert _contents(storage.load_dialogue("keep")) == ["keep turn"]
        storage.create_dialogue(DialogueInfo("drop", title="again"))
        reborn = storage.load_dialogue("drop")
        assert reborn.turns == () and reborn.info.title == "again"  # nothing inherited
        storage.append_turns("drop", [_turn("new")])
        assert _contents(storage.load_dialogue("drop")) == ["new"]

    def test_export_formats_carry_the_stored_dialogue(self, storage: Storage) -> None:
        info = DialogueInfo("export", system="Отвечай кратко.")
        storage.create_dialogue(info)
        storage.append_turns(
            "export",
            [
                _turn("Как дела? 😀"),
                Turn("assistant", "Хорошо!", sentiment=Sentiment("positive", 0.5, "an-analyzer")),
            ],
        )
        dialogue = storage.load_dialogue("export")
        as_json = json.loads(export_dialogue(dialogue, "json"))
        assert Dialogue.from_dict(as_json) == dialogue
        example = json.loads(export_dialogue(dialogue, "jsonl"))
        assert example == {
            "messages": [
                {"role": "system", "content": "Отвечай кратко."},
                {"role": "user", "content": "Как дела? 😀"},
                {"role": "assistant", "content": "Хорошо!"},
            ]
        }
        markdown = export_dialogue(dialogue, "markdown")
        assert "Как дела? 😀" in markdown and "positive" in markdown

    # -- records ----------------------------------------------------------------------------
    def test_job_records_are_saved_replaced_and_listed_by_time(self, storage: Storage) -> None:
        base = datetime(2024, 5, 1, tzinfo=UTC)
        jobs = [
            JobRecord(f"ftjob-{n}", description=f"задача {n}", created=base + timedelta(hours=-n))
            for n in range(5)
        ]
        for job in jobs:
            storage.save_job(job)
        assert storage.list_jobs() == sorted(jobs, key=lambda j: j.created)
        done = attrs.evolve(jobs[2], status="succeeded", fine_tuned_model="ft:model:x")
        storage.save_job(done)  # same id: replaced, not duplicated
        listed = storage.list_jobs()
        assert len(listed) == 5
        assert next(j for j in listed if j.id == "ftjob-2") == done
        assert storage.get_record("jobs", "ftjob-2")["status"] == "succeeded"
        storage.delete_record("jobs", "ftjob-2")
        with pytest.raises(DialogueNotFoundError):
            storage.get_record("jobs", "ftjob-2")
        with pytest.raises(DialogueNotFoundError):
            storage.delete_record("jobs", "ftjob-2")
        assert len(storage.list_jobs()) == 4

    def test_assistants_catalog(self, storage: Storage) -> None:
        assert storage.list_assistants() == []
        helpers = [
            Assistant("zeta", "Зета", instructions="Говори по-русски."),
            Assistant("alpha", "Alpha 😀", model="some-model-1", description="first"),
        ]
        for assistant in helpers:
            storage.save_assistant(assistant)
        assert storage.list_assistants() == sorted(helpers, key=lambda a: a.id)
        changed = attrs.evolve(helpers[0], instructions="Speak English.")
        storage.save_assistant(changed)
        assert storage.list_assistants() == [helpers[1], changed]

    def test_collections_are_separate(self, storage: Storage) -> None:
        storage.put_record("one", "same-id", {"from": "one"})
        storage.put_record("two", "same-id", {"from": "two", "текст": "ü"})
        assert storage.list_records("one") == [{"from": "one"}]
        assert storage.get_record("two", "same-id") == {"from": "two", "текст": "ü"}
        assert storage.list_records("three") == []

    def test_collections_and_record_ids_are_listed(self, storage: Storage) -> None:
        storage.save_job(JobRecord("ftjob-1"))
        storage.save_assistant(Assistant("helper", "Helper"))
        # Records of other collections, without an "id" field: only their key names them.
        storage.put_record("notes", "n-2", {"text": "без id"})
        storage.put_record("notes", "n-1", {"text": "first"})
        storage.put_record("notes.v2", "only", {})
        collections = storage.list_collections()
        assert collections == sorted(collections)
        missing = {"assistants", "jobs", "notes", "notes.v2"} - set(collections)
        assert not missing, (
            f"list_collections() returned {collections}, without {sorted(missing)}: override "
            "Storage.list_collections() so that `hypotez storage copy` copies every collection."
        )
        assert storage.list_record_ids("notes") == ["n-1", "n-2"], (
            "list_record_ids() must name every record by its id, even one without an 'id' "
            "field: override Storage.list_record_ids()."
        )
        assert storage.list_record_ids("jobs") == ["ftjob-1"]
        assert storage.list_record_ids("assistants") == ["helper"]
        assert storage.list_record_ids("never-used") == []
        storage.delete_record("notes", "n-1")
        assert storage.list_record_ids("notes") == ["n-2"]

    def test_copy_to_a_file_storage_and_back_loses_nothing(
        self, storage: Storage, tmp_path: Any
    ) -> None:
        from hypotez.transfer import copy_storage

        for n in range(3):
            storage.create_dialogue(
                DialogueInfo(
                    f"copy-{n}", title=f"Диалог {n}", created=datetime(2024, 1, 1 + n, tzinfo=UTC)
                )
            )
            for m in range(n * 2):
                storage.append_turns(
                    f"copy-{n}",
                    [
                        _turn(UNICODE_SAMPLES[m % len(UNICODE_SAMPLES)]),
                        _turn(f"ответ {m}", "assistant"),
                    ],
                )
        storage.save_job(JobRecord("ftjob-copy", description="копия"))
        storage.save_assistant(Assistant("copier", "Копир 😀"))
        storage.put_record("notes", "no-id-field", {"text": "ü"})

        def snapshot(where: Storage) -> dict[str, Any]:
            return {
                "dialogues": [where.load_dialogue(i.id) for i in where.list_dialogues()],
                "records": {
                    c: {r: where.get_record(c, r) for r in where.list_record_ids(c)}
                    for c in where.list_collections()
                    if where.list_record_ids(c)
                },
            }

        original = snapshot(storage)
        assert set(original["records"]) == {"assistants", "jobs", "notes"}
        files = StorageFactory((tmp_path / "copy-target").as_uri())()
        try:
            report = copy_storage(storage, files)
            assert report.dialogues == {"copied": 3} and report.complete
            assert snapshot(files) == original
            # Empty the storage under test, then copy everything back into it.
            for info in storage.list_dialogues():
                storage.delete_dialogue(info.id)
            for collection in storage.list_collections():
                for record_id in storage.list_record_ids(collection):
                    storage.delete_record(collection, record_id)
            assert snapshot(storage) == {"dialogues": [], "records": {}}
            copy_storage(files, storage)
            assert snapshot(storage) == original
            again = copy_storage(files, storage)  # repeating it changes nothing
            assert again.dialogues == {"identical": 3} and again.turns_written == 0
        finally:
            files.close()

    # -- async twins ------------------------------------------------------------------------
    def test_async_methods_match_the_sync_ones(self, storage: Storage) -> None:
        async def scenario() -> tuple[Dialogue, list[DialogueInfo]]:
            await storage.acreate_dialogue(DialogueInfo("async-1", title="асинхронно"))
            await asyncio.gather(
                *(
                    storage.aappend_turns("async-1", [_turn(f"a{n}"), _turn(f"b{n}")])
                    for n in range(10)
                )
            )
            return await storage.aload_dialogue("async-1"), await storage.alist_dialogues()

        dialogue, listed = asyncio.run(scenario())
        assert dialogue == storage.load_dialogue("async-1")
        assert sorted(_contents(dialogue)) == sorted(
            [f"a{n}" for n in range(10)] + [f"b{n}" for n in range(10)]
        )
        pairs = _contents(dialogue)
        assert all(pairs[i][1:] == pairs[i + 1][1:] for i in range(0, len(pairs), 2))
        assert [i.id for i in listed] == ["async-1"]

    def test_every_method_has_an_async_side_that_agrees(self, storage: Storage) -> None:
        # Sessions use only the async side: each must do what its blocking twin does.
        async def scenario() -> None:
            await storage.acheck()
            await storage.acreate_dialogue(DialogueInfo("both-1"))
            await storage.aappend_turns("both-1", [_turn("hello")])
            assert await storage.adialogue_exists("both-1")
            assert not await storage.adialogue_exists("missing-1")
            assert await storage.alist_dialogue_ids() == ["both-1"]
            await storage.aput_record("notes", "n-1", {"id": "n-1", "v": 1})
            assert await storage.aget_record("notes", "n-1") == {"id": "n-1", "v": 1}
            updated = await storage.aupdate_record("notes", "n-1", lambda c: {**(c or {}), "v": 2})
            assert updated["v"] == 2
            assert await storage.alist_records("notes") == [{"id": "n-1", "v": 2}]
            assert await storage.alist_record_ids("notes") == ["n-1"]
            assert "notes" in await storage.alist_collections()
            await storage.asave_job(JobRecord("ftjob-async"))
            assert [j.id for j in await storage.alist_jobs()] == ["ftjob-async"]
            await storage.asave_assistant(Assistant("helper", "Helper"))
            assert [a.id for a in await storage.alist_assistants()] == ["helper"]
            await storage.adelete_record("notes", "n-1")
            await storage.adelete_dialogue("both-1")

        asyncio.run(scenario())
        assert storage.list_dialogue_ids() == [] and storage.list_record_ids("notes") == []
        assert [j.id for j in storage.list_jobs()] == ["ftjob-async"]

    def test_threads_sharing_one_client_lose_nothing(self, storage: Storage) -> None:
        storage.create_dialogue(DialogueInfo("threads"))

        def write(writer: int) -> None:
            for number in range(15):
                storage.append_turns("threads", _batch(writer, number, 2, 0))

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(4)))
        order = check_batches(storage.load_dialogue("threads"), 2)
        assert order == {w: list(range(15)) for w in range(4)}

    def test_update_record_changes_what_is_stored_and_returns_it(self, storage: Storage) -> None:
        seen: list[dict[str, Any] | None] = []

        def add_one(current: dict[str, Any] | None) -> dict[str, Any]:
            seen.append(current)
            count = 0 if current is None else current["count"]
            return {**(current or {"text": "счётчик 😀"}), "count": count + 1}

        assert storage.update_record("counters", "c-1", add_one) == {
            "text": "счётчик 😀",
            "count": 1,
        }
        assert seen == [None]  # no record yet: change() is told so
        assert storage.update_record("counters", "c-1", add_one)["count"] == 2
        assert seen[-1] == {"text": "счётчик 😀", "count": 1}
        assert storage.get_record("counters", "c-1") == {"text": "счётчик 😀", "count": 2}
        # An exception in change() stores nothing.
        with pytest.raises(ZeroDivisionError):
            storage.update_record("counters", "c-1", lambda current: {"count": 1 // 0})
        assert storage.get_record("counters", "c-1")["count"] == 2
        # Whatever update_record keeps to do its work never shows in a listing.
        assert storage.list_records("counters") == [{"text": "счётчик 😀", "count": 2}]
        assert storage.list_record_ids("counters") == ["c-1"]
        assert "counters" in storage.list_collections()
        assert storage.list_records("jobs") == []
        storage.delete_record("counters", "c-1")
        assert storage.list_record_ids("counters") == []
        assert storage.update_record("counters", "c-1", add_one)["count"] == 1

    def test_threads_updating_one_record_lose_nothing(self, storage: Storage) -> None:
        def add(current: dict[str, Any] | None) -> dict[str, Any]:
            return {"count": (current or {"count": 0})["count"] + 1}

        def write(_: int) -> None:
            for _ in range(10):
                storage.update_record("counters", "threads", add)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(write, range(4)))
        assert storage.get_record("counters", "threads") == {"count": 40}, (
            "update_record() lost updates: the default (get_record then put_record) is not "
            "atomic; override it with a locked or conditional read-change-write."
        )

    # -- processes ------------------------------------------------------------------------
    def test_concurrent_update_processes_lose_nothing(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        with writer_processes(self.writer_timeout) as spawn:
            procs = [
                spawn(storage_factory, {"counter": "shared", "updates": self.updates_per_writer})
                for _ in range(self.writer_processes)
            ]
            for lines in run_together(procs, "updater"):
                assert lines == ["done"], lines
        expected = self.writer_processes * self.updates_per_writer
        assert storage.get_record("counters", "shared") == {"count": expected}, (
            f"{self.writer_processes} processes each added 1 {self.updates_per_writer} times "
            "with update_record(): some updates were lost. The default (get_record then "
            "put_record) is not atomic; override it with a locked or conditional write."
        )

    def test_concurrent_writer_processes_lose_nothing(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        storage.create_dialogue(DialogueInfo("shared"))
        with writer_processes(self.writer_timeout) as spawn:
            procs = [
                spawn(
                    storage_factory,
                    {
                        "dialogue": "shared",
                        "writer": w,
                        "appends": self.appends_per_writer,
                        "batch": self.batch_size,
                        "pad": 200,
                        "job": True,
                    },
                )
                for w in range(self.writer_processes)
            ]
            for lines in run_together(procs, "writer"):
                assert [line.split()[0] for line in lines].count("ack") == self.appends_per_writer
        first = storage.load_dialogue("shared")
        order = check_batches(first, self.batch_size)
        # Every batch of every writer exactly once, each writer's batches in its own order.
        assert order == {
            w: list(range(self.appends_per_writer)) for w in range(self.writer_processes)
        }
        # One consistent order, whoever reads it.
        again = storage_factory()
        try:
            assert _contents(again.load_dialogue("shared")) == _contents(first)
        finally:
            again.close()
        assert {j.id for j in storage.list_jobs()} == {
            f"job-w{w}" for w in range(self.writer_processes)
        }

    def test_writer_killed_mid_append_loses_nothing_acknowledged(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        storage.create_dialogue(DialogueInfo("killed"))
        acknowledged: dict[int, int] = {}
        for round_ in range(3):
            with writer_processes(self.writer_timeout) as spawn:
                proc = spawn(
                    storage_factory,
                    {
                        "dialogue": "killed",
                        "writer": round_,
                        "appends": 100_000,
                        "batch": 4,
                        "pad": 60_000,  # big batches: the kill most likely lands inside a write
                        "job": False,
                    },
                )
                proc.expect("ready")
                proc.send("go")
                for _ in range(5 + round_ * 3):
                    line = proc.read_line()
                    assert line is not None and line.startswith("ack"), (
                        f"writer said {line!r}; stderr:\n{proc.stderr()}"
                    )
                os.kill(proc.proc.pid, signal.SIGKILL)
                rest = proc.finish()
            # Acks printed before the kill but not read yet count as acknowledged too.
            acknowledged[round_] = 5 + round_ * 3 + [x.split()[0] for x in rest].count("ack")
            dialogue = storage.load_dialogue("killed")  # still loads
            order = check_batches(dialogue, 4)
            for writer, count in acknowledged.items():
                stored = order.get(writer, [])
                # Everything acknowledged is there, in order; at most the one in flight more.
                assert stored[:count] == list(range(count)), f"writer {writer} lost a batch"
                assert len(stored) in (count, count + 1)
        storage.append_turns("killed", [_turn("after the crashes")])
        dialogue = storage.load_dialogue("killed")
        assert _contents(dialogue)[-1] == "after the crashes"
        check_batches(Dialogue(dialogue.info, dialogue.turns[:-1]), 4)

    # -- bad data -----------------------------------------------------------------------------
    def test_corrupt_turns_are_reported_and_never_overwritten(self, storage: Storage) -> None:
        storage.create_dialogue(DialogueInfo("broken"))
        storage.append_turns("broken", [_turn("one"), _turn("two", "assistant")])
        storage.create_dialogue(DialogueInfo("healthy"))
        storage.append_turns("healthy", [_turn("fine")])
        location = self.corrupt_turns(storage, "broken")
        raw = self.read_raw(storage, location)
        with pytest.raises(CorruptDataError) as caught:
            storage.load_dialogue("broken")
        assert location in str(caught.value)
        # Refusing is fine, and so is appending after the bad data: overwriting is not.
        with contextlib.suppress(StorageError):
            storage.append_turns("broken", [_turn("three")])
        assert self.read_raw(storage, location) == raw
        with pytest.raises(CorruptDataError):
            storage.load_dialogue("broken")
        assert _contents(storage.load_dialogue("healthy")) == ["fine"]

    def test_corrupt_header_is_skipped_in_listings_with_a_warning(
        self, storage: Storage, caplog: pytest.LogCaptureFixture
    ) -> None:
        for name in ("bad-head", "good-head"):
            storage.create_dialogue(DialogueInfo(name))
        location = self.corrupt_header(storage, "bad-head")
        raw = self.read_raw(storage, location)
        caplog.set_level(logging.WARNING)
        assert [i.id for i in storage.list_dialogues()] == ["good-head"]
        assert any(location in record.getMessage() for record in caplog.records), caplog.text
        with pytest.raises(CorruptDataError) as caught:
            storage.load_dialogue("bad-head")
        assert location in str(caught.value)
        with pytest.raises(StorageError):
            storage.create_dialogue(DialogueInfo("bad-head"))
        assert self.read_raw(storage, location) == raw

    def test_dialogue_ids_include_the_unreadable_ones(self, storage: Storage) -> None:
        # hypotez storage copy copies by id, and names what it cannot read instead of skipping
        # it in silence: so the ids must include dialogues whose header cannot be read.
        for name in ("bad-head", "good-head"):
            storage.create_dialogue(DialogueInfo(name))
        self.corrupt_header(storage, "bad-head")
        assert storage.list_dialogue_ids() == ["bad-head", "good-head"]
        storage.delete_dialogue("good-head")
        assert storage.list_dialogue_ids() == ["bad-head"]

    def test_corrupt_record_is_reported_and_never_overwritten(self, storage: Storage) -> None:
        storage.save_job(JobRecord("ftjob-ok"))
        storage.save_job(JobRecord("ftjob-bad"))
        location = self.corrupt_record(storage, "jobs", "ftjob-bad")
        raw = self.read_raw(storage, location)
        for call in (
            lambda: storage.get_record("jobs", "ftjob-bad"),
            storage.list_jobs,
            lambda: storage.put_record("jobs", "ftjob-bad", {"id": "ftjob-bad"}),
            lambda: storage.update_record("jobs", "ftjob-bad", lambda _: {"id": "ftjob-bad"}),
        ):
            with pytest.raises(CorruptDataError) as caught:
                call()
            assert location in str(caught.value)
        assert self.read_raw(storage, location) == raw
        storage.delete_record("jobs", "ftjob-bad")  # the way out: delete it on purpose
        assert [j.id for j in storage.list_jobs()] == ["ftjob-ok"]

    def test_foreign_data_is_reported_and_left_alone(
        self, storage: Storage, caplog: pytest.LogCaptureFixture
    ) -> None:
        storage.create_dialogue(DialogueInfo("mine"))
        location = self.plant_foreign(storage)
        raw = self.read_raw(storage, location)
        caplog.set_level(logging.WARNING)
        assert [i.id for i in storage.list_dialogues()] == ["mine"]
        assert any(location in record.getMessage() for record in caplog.records), caplog.text
        storage.append_turns("mine", [_turn("still works")])
        assert _contents(storage.load_dialogue("mine")) == ["still works"]
        assert self.read_raw(storage, location) == raw

    @pytest.mark.parametrize(
        "bad_id",
        ["../x", "/etc/passwd", "a/b", "", "x\x00y", "..", ".hidden", "a\\b", "x" * 129, " x"],
    )
    def test_ids_cannot_escape(self, storage: Storage, bad_id: str) -> None:
        with pytest.raises(InputError):
            DialogueInfo(bad_id)
        calls = [
            lambda: storage.load_dialogue(bad_id),
            lambda: storage.append_turns(bad_id, [_turn("x")]),
            lambda: storage.append_turns(bad_id, []),
            lambda: storage.delete_dialogue(bad_id),
            lambda: storage.dialogue_exists(bad_id),
            lambda: storage.put_record("jobs", bad_id, {"x": 1}),
            lambda: storage.put_record(bad_id, "ok", {"x": 1}),
            lambda: storage.get_record("jobs", bad_id),
            lambda: storage.get_record(bad_id, "ok"),
            lambda: storage.update_record("jobs", bad_id, lambda _: {"x": 1}),
            lambda: storage.update_record(bad_id, "ok", lambda _: {"x": 1}),
            lambda: storage.delete_record("jobs", bad_id),
            lambda: storage.list_records(bad_id),
            lambda: storage.list_record_ids(bad_id),
        ]
        for call in calls:
            with pytest.raises(InputError):
                call()
        assert storage.list_dialogues() == []
        assert storage.list_records("jobs") == []

    # -- hostile states (issue 11): each needs its hook, see the module docstring -------------
    def test_a_complete_last_append_without_its_end_marker_is_kept(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        storage.create_dialogue(DialogueInfo("unterminated"))
        storage.append_turns("unterminated", [_turn("one"), _turn("two", "assistant")])
        storage.append_turns("unterminated", [_turn("three")])
        location = self.unterminate_last_append(storage, "unterminated")
        raw = self.read_raw(storage, location)
        fresh = storage_factory()
        try:
            assert _contents(fresh.load_dialogue("unterminated")) == ["one", "two", "three"]
            fresh.append_turns("unterminated", [_turn("four")])  # a new client finds the end
        finally:
            fresh.close()
        storage.append_turns("unterminated", [_turn("five")])
        assert _contents(storage.load_dialogue("unterminated")) == [
            "one",
            "two",
            "three",
            "four",
            "five",
        ]
        assert self.read_raw(storage, location) == raw

    def test_a_planted_link_is_never_followed(self, storage: Storage, tmp_path: Any) -> None:
        victim = tmp_path / "outside-the-storage.txt"
        victim.write_bytes(b"precious\n")
        storage.create_dialogue(DialogueInfo("healthy"))
        storage.append_turns("healthy", [_turn("fine")])
        storage.create_dialogue(DialogueInfo("linked"))
        location = self.link_dialogue(storage, "linked", str(victim))
        for call in (
            lambda: storage.append_turns("linked", [_turn("through the link?")]),
            lambda: storage.load_dialogue("linked"),
        ):
            with pytest.raises(StorageError) as caught:
                call()
            assert location in str(caught.value)
        assert "linked" not in [i.id for i in storage.list_dialogues()]
        assert _contents(storage.load_dialogue("healthy")) == ["fine"]
        storage.put_record("jobs", "ftjob-linked", {"id": "ftjob-linked"})
        location = self.link_record(storage, "jobs", "ftjob-linked", str(victim))
        for call in (
            lambda: storage.get_record("jobs", "ftjob-linked"),
            lambda: storage.put_record("jobs", "ftjob-linked", {"id": "ftjob-linked"}),
            lambda: storage.update_record("jobs", "ftjob-linked", lambda _: {"x": 1}),
        ):
            with pytest.raises(StorageError) as caught:
                call()
            assert location in str(caught.value)
        assert victim.read_bytes() == b"precious\n"

    def test_a_corrupt_cache_is_reported_but_never_makes_a_dialogue_unreadable(
        self,
        storage: Storage,
        storage_factory: StorageFactory,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        storage.create_dialogue(DialogueInfo("cached"))
        for n in range(6):
            storage.append_turns("cached", [_turn(f"{n}a"), _turn(f"{n}b", "assistant")])
        expected = [f"{n}{x}" for n in range(6) for x in "ab"]
        location = self.corrupt_cache(storage, "cached")
        raw = self.read_raw(storage, location)
        caplog.set_level(logging.WARNING)
        fresh = storage_factory()
        try:
            assert _contents(fresh.load_dialogue("cached")) == expected
            assert any(location in record.getMessage() for record in caplog.records), caplog.text
            fresh.append_turns("cached", [_turn("after")])
        finally:
            fresh.close()
        assert _contents(storage.load_dialogue("cached")) == [*expected, "after"]
        assert self.read_raw(storage, location) == raw

    # -- size -------------------------------------------------------------------------------
    def test_large_dialogues_load_completely_and_in_order(
        self, storage: Storage, storage_factory: StorageFactory
    ) -> None:
        storage.create_dialogue(DialogueInfo("large"))
        per_append = 20
        for start in range(0, self.large_turns, per_append):
            storage.append_turns(
                "large", [_turn(f"t{n}") for n in range(start, start + per_append)]
            )
        expected = [f"t{n}" for n in range(self.large_turns)]
        assert _contents(storage.load_dialogue("large")) == expected
        fresh = storage_factory()
        try:
            assert _contents(fresh.load_dialogue("large")) == expected
            fresh.append_turns("large", [_turn("one more")])  # a new client finds the end
        finally:
            fresh.close()
        assert _contents(storage.load_dialogue("large")) == [*expected, "one more"]
        storage.create_dialogue(DialogueInfo("one-big-append"))
        storage.append_turns("one-big-append", [_turn(f"u{n}") for n in range(self.large_turns)])
        assert len(storage.load_dialogue("one-big-append").turns) == self.large_turns


# -- the writer process -----------------------------------------------------------------------
def _writer_main(argv: Sequence[str]) -> int:
    """Child process: open the storage, say ``ready``, wait for ``go``, append, ack each."""
    job = json.loads(argv[0])
    storage = StorageFactory.from_json(job["factory"])()
    if "counter" in job:
        return _updater_main(storage, job["counter"], int(job["updates"]))
    dialogue_id, writer = job["dialogue"], int(job["writer"])
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    for number in range(int(job["appends"])):
        storage.append_turns(
            dialogue_id, _batch(writer, number, int(job["batch"]), int(job["pad"]))
        )
        print("ack", number, flush=True)
    if job.get("job"):
        storage.save_job(JobRecord(f"job-w{writer}", description=f"writer {writer}"))
    storage.close()
    return 0


def _add_one(current: dict[str, Any] | None) -> dict[str, Any]:
    return {"count": (current or {"count": 0})["count"] + 1}


def _updater_main(storage: Storage, record_id: str, updates: int) -> int:
    """Child process: say ``ready``, wait for ``go``, add 1 to a counter ``updates`` times."""
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    for _ in range(updates):
        storage.update_record("counters", record_id, _add_one)
    storage.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(_writer_main(sys.argv[1:]))

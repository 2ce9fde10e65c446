"""The five capability protocols a backend implements.

Each is a small abstract class: implement the sync methods marked abstract and the async twins
come for free (run in a worker thread so the event loop never blocks). A backend with a native
async client overrides the ``a*`` methods too. Core only ever talks to backends through these.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from hypotez.models import (
    Assistant,
    ChatOptions,
    Dialogue,
    DialogueInfo,
    ImageDescription,
    JobRecord,
    Message,
    ModelInfo,
    Reply,
    ReplyChunk,
    Sentiment,
    TrainingExample,
    Turn,
)

_DONE = object()


async def to_thread(func: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``asyncio.to_thread``, importing asyncio only when async code runs (start-up time)."""
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)


async def iterate_in_thread(make_iter: Any) -> AsyncIterator[Any]:
    """Drive a blocking iterator in a worker thread and yield its items to the event loop."""
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in make_iter():
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:  # handed to the consumer, re-raised there
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    worker = loop.run_in_executor(None, pump)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        await worker


class Backend(abc.ABC):
    """What every backend has: the name it was registered under, and ``close()``."""

    name: str = ""

    def close(self) -> None:
        """Release clients, files and models. Called by the session that built the backend."""

    async def aclose(self) -> None:
        await to_thread(self.close)


class ChatBackend(Backend):
    """Multi-turn chat: messages in, a :class:`Reply` out."""

    @abc.abstractmethod
    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        """Answer the conversation ``messages`` (system, user and assistant turns, in order)."""

    def stream(self, messages: Sequence[Message], options: ChatOptions) -> Iterator[ReplyChunk]:
        """Yield the reply in pieces; the last chunk carries the whole :class:`Reply`.

        The default answers in one piece; backends that can stream override it.
        """
        reply = self.chat(messages, options)
        yield ReplyChunk(reply.text, reply)

    def list_models(self) -> list[ModelInfo]:
        """The models this backend can use right now."""
        return []

    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        return await to_thread(self.chat, messages, options)

    def astream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[ReplyChunk]:
        return iterate_in_thread(lambda: self.stream(messages, options))

    async def alist_models(self) -> list[ModelInfo]:
        return await to_thread(self.list_models)


class SentimentAnalyzer(Backend):
    """Batch-first sentiment: one :class:`Sentiment` per text, in order."""

    @abc.abstractmethod
    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        """Return exactly one result per text, in the same order."""

    async def aanalyze(self, texts: Sequence[str]) -> list[Sentiment]:
        return await to_thread(self.analyze, texts)


class VisionBackend(Backend):
    """Describe an image. Inputs reach it already checked (see :mod:`hypotez.images`)."""

    @abc.abstractmethod
    def describe(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> ImageDescription:
        """Describe ``image`` (a checked :class:`hypotez.images.Image`)."""

    async def adescribe(
        self, image: Any, prompt: str | None = None, **kwargs: Any
    ) -> ImageDescription:
        return await to_thread(self.describe, image, prompt, **kwargs)


class Trainer(Backend):
    """Run fine-tuning jobs from validated examples. Core validates before calling ``submit``."""

    @abc.abstractmethod
    def submit(
        self,
        examples: Sequence[TrainingExample],
        *,
        model: str,
        description: str = "",
        validation: Sequence[TrainingExample] | None = None,
        **options: Any,
    ) -> JobRecord:
        """Upload ``examples`` and start a job; return its record (status as reported)."""

    @abc.abstractmethod
    def status(self, job_id: str) -> JobRecord:
        """The job's current state, freshly fetched."""

    @abc.abstractmethod
    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        """The most recent jobs the backend knows."""

    @abc.abstractmethod
    def events(self, job_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The job's events, oldest first (each at least ``created`` and ``message``)."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> JobRecord:
        """Ask the backend to cancel the job; return its record."""


class Storage(Backend):
    """Where dialogues and records live.

    Guarantees every implementation must give (:class:`hypotez.conformance.StorageConformance`
    checks them, for any storage): appending costs O(1) in the dialogue's length; concurrent writers lose
    nothing and turns appended in one call stay together; a crash mid-write leaves the old
    or the new state; corrupt data is reported with its location and never overwritten; ids
    are checked with :func:`hypotez.models.validate_id` before they touch a path or key;
    :meth:`update_record` changes a record as one step (the default is not atomic: override it).
    """

    #: The URL this storage was opened with, e.g. ``file:///home/me/.local/share/hypotez``.
    url: str = ""

    # -- dialogues ---------------------------------------------------------------------
    @abc.abstractmethod
    def create_dialogue(self, info: DialogueInfo) -> None:
        """Create an empty dialogue; raise :class:`~hypotez.errors.StorageError` if it exists."""

    @abc.abstractmethod
    def append_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        """Append ``turns`` atomically and in order. Unknown id: DialogueNotFoundError."""

    @abc.abstractmethod
    def load_dialogue(self, dialogue_id: str) -> Dialogue:
        """The whole dialogue. Unknown id: DialogueNotFoundError; unreadable: CorruptDataError."""

    @abc.abstractmethod
    def list_dialogues(self) -> list[DialogueInfo]:
        """Every dialogue's header, oldest first."""

    @abc.abstractmethod
    def delete_dialogue(self, dialogue_id: str) -> None:
        """Remove a dialogue. Unknown id: DialogueNotFoundError."""

    def dialogue_exists(self, dialogue_id: str) -> bool:
        try:
            self.load_dialogue(dialogue_id)
        except KeyError:
            return False
        return True

    # -- records: job ids, assistants, anything small and keyed ------------------------
    @abc.abstractmethod
    def put_record(self, collection: str, record_id: str, data: Mapping[str, Any]) -> None:
        """Create or replace one JSON record, atomically."""

    @abc.abstractmethod
    def get_record(self, collection: str, record_id: str) -> dict[str, Any]:
        """One record. Unknown id: DialogueNotFoundError (a KeyError)."""

    @abc.abstractmethod
    def list_records(self, collection: str) -> list[dict[str, Any]]:
        """Every record of ``collection`` (empty if there is none)."""

    @abc.abstractmethod
    def delete_record(self, collection: str, record_id: str) -> None:
        """Remove one record. Unknown id: DialogueNotFoundError (a KeyError)."""

    def update_record(
        self,
        collection: str,
        record_id: str,
        change: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:
        """Read, change and write one record as one step; return what was stored.

        ``change`` gets the current record (``None`` if there is none) and returns the new one.
        A storage that overrides this stores the result atomically with respect to other
        ``update_record`` calls on the same record: if another writer got there first, it calls
        ``change`` again with the newer record (so ``change`` must have no side effects and may
        run more than once), and no writer's change is lost. The built-in storages do; the
        conformance suite checks it with concurrent processes.

        This default is a plain :meth:`get_record` then :meth:`put_record`, which is NOT
        atomic: two processes updating the same record at once can lose one's change. It keeps
        storages written before this method existed working; override it.
        """
        try:
            current: dict[str, Any] | None = self.get_record(collection, record_id)
        except KeyError:
            current = None
        new = dict(change(current))
        self.put_record(collection, record_id, new)
        return new

    def list_collections(self) -> list[str]:
        """The names of the record collections, sorted: at least every one that holds a record.

        ``hypotez storage copy`` copies each of them. The default names only the collections
        the typed helpers below use, ``["assistants", "jobs"]``: a storage that keeps records
        in other collections must override it (the conformance suite checks it does).
        """
        return ["assistants", "jobs"]

    def list_record_ids(self, collection: str) -> list[str]:
        """The ids of every record of ``collection``, sorted (empty if there is none).

        The default reads the records and takes their ``"id"`` field, which the typed helpers
        always write; a storage whose records may lack it must override this (the conformance
        suite checks records without one).
        """
        return sorted(
            r["id"] for r in self.list_records(collection) if isinstance(r.get("id"), str)
        )

    # -- typed helpers on top of records ----------------------------------------------
    def save_job(self, job: JobRecord) -> None:
        self.put_record("jobs", job.id, job.to_dict())

    def list_jobs(self) -> list[JobRecord]:
        jobs = [JobRecord.from_dict(r) for r in self.list_records("jobs")]
        return sorted(jobs, key=lambda j: j.created)

    def save_assistant(self, assistant: Assistant) -> None:
        self.put_record("assistants", assistant.id, assistant.to_dict())

    def list_assistants(self) -> list[Assistant]:
        return sorted(
            (Assistant.from_dict(r) for r in self.list_records("assistants")), key=lambda a: a.id
        )

    # -- async twins ---------------------------------------------------------------------
    async def acreate_dialogue(self, info: DialogueInfo) -> None:
        await to_thread(self.create_dialogue, info)

    async def aappend_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        await to_thread(self.append_turns, dialogue_id, turns)

    async def aload_dialogue(self, dialogue_id: str) -> Dialogue:
        return await to_thread(self.load_dialogue, dialogue_id)

    async def alist_dialogues(self) -> list[DialogueInfo]:
        return await to_thread(self.list_dialogues)


def texts_of(items: Iterable[str]) -> list[str]:
    """Check that a batch really is a list of strings (a bare string is a common mistake)."""
    from hypotez.errors import InputError

    if isinstance(items, str):
        raise InputError("analyze() takes a list of texts; wrap a single text as [text].")
    out = list(items)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"Text #{i} is {type(t).__name__}, not str.")
    return out

"""The capability protocols a backend implements: chat, sentiment, vision, training, storage.

Each operation exists as a blocking method (``chat``) and an async one (``achat``). A backend
implements **either** side, whichever suits its library, and the other is derived:

- implement ``chat`` (blocking, e.g. a local model) and ``achat`` runs it in a worker thread, so
  an event loop never waits on it;
- implement ``achat`` (e.g. an async HTTP client) and ``chat`` runs it on hypotez's portal loop
  (:mod:`hypotez.portal`).

A backend that implements neither side of a required operation cannot be instantiated (Python
names the missing methods). hypotez itself only ever calls the async side; the blocking side is
there for people who use a backend directly from blocking code.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from hypotez import portal
from hypotez.models import (
    Assistant,
    ChatOptions,
    CostEstimate,
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
    TrainingLimits,
    Turn,
)

#: Marks a protocol's own declaration of one side of an operation: replaced by a derived method
#: when a backend implements the other side.
_SIDE = "__hypotez_side__"
#: Marks a protocol declaration with no behaviour of its own: always derived from its partner.
_FOLLOWS = "__hypotez_follows__"


def _side(func: Any) -> Any:
    setattr(func, _SIDE, True)
    return func


def _follows(func: Any) -> Any:
    setattr(func, _SIDE, True)
    setattr(func, _FOLLOWS, True)
    return func


def _derived(declaration: Any, body: Any) -> Any:
    """``body`` with the declaration's name, docstring and signature, marked replaceable."""
    method = functools.wraps(declaration)(body)
    method.__isabstractmethod__ = False  # type: ignore[attr-defined]  # wraps() copied it
    method.__dict__.pop(_FOLLOWS, None)
    setattr(method, _SIDE, True)
    return method


def _blocking_from_async(declaration: Any, async_name: str, streams: bool) -> Any:
    if streams:

        def iterate(self: Any, *args: Any, **kwargs: Any) -> Any:
            return portal.iterate(getattr(self, async_name)(*args, **kwargs))

        return _derived(declaration, iterate)

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return portal.run(getattr(self, async_name)(*args, **kwargs))

    return _derived(declaration, call)


def _async_from_blocking(declaration: Any, sync_name: str, streams: bool) -> Any:
    if streams:

        def iterate(self: Any, *args: Any, **kwargs: Any) -> Any:
            return portal.iterate_in_thread(lambda: getattr(self, sync_name)(*args, **kwargs))

        return _derived(declaration, iterate)

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await portal.to_thread(getattr(self, sync_name), *args, **kwargs)

    return _derived(declaration, call)


class Backend(abc.ABC):
    """What every backend has: the name it was registered under, and ``close``/``aclose``."""

    name: str = ""

    #: (blocking method, async method, streams?) pairs; see the module docstring.
    _PAIRS: ClassVar[tuple[tuple[str, str, bool], ...]] = (("close", "aclose", False),)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for sync_name, async_name, streams in cls._PAIRS:
            blocking, non_blocking = getattr(cls, sync_name), getattr(cls, async_name)
            sync_is_protocol = getattr(blocking, _SIDE, False)
            async_is_protocol = getattr(non_blocking, _SIDE, False)
            if async_is_protocol and (
                not sync_is_protocol or getattr(non_blocking, _FOLLOWS, False)
            ):
                setattr(cls, async_name, _async_from_blocking(non_blocking, sync_name, streams))
            elif sync_is_protocol and (not async_is_protocol or getattr(blocking, _FOLLOWS, False)):
                setattr(cls, sync_name, _blocking_from_async(blocking, async_name, streams))

    @_side
    def close(self) -> None:
        """Release clients, files and models. Called by the context that built the backend."""

    @_follows
    async def aclose(self) -> None:
        """:meth:`close`, from async code."""


class ChatBackend(Backend):
    """Multi-turn chat: messages in, a :class:`~hypotez.Reply` out.

    Implement ``chat`` or ``achat`` (required), optionally ``stream``/``astream``,
    ``list_models``/``alist_models`` and, when the backend knows them, ``context_window`` and
    ``count_tokens`` (or their async sides).

    **Tools.** A backend declares that it can offer tools to its model by setting
    ``supports_tools = True``, and then:

    - reads :attr:`ChatOptions.tools <hypotez.ChatOptions.tools>` (:class:`~hypotez.ToolSpec`
      objects: name, description, JSON schema of the arguments) and ``tool_choice``
      (``"auto"``/``None``, ``"none"``, ``"required"`` or a tool's name);
    - returns the calls the model makes in :attr:`Reply.tool_calls <hypotez.Reply.tool_calls>`
      (each a :class:`~hypotez.ToolCall` with an id unique in the reply, the tool's name and
      the arguments as JSON text), in the last chunk's reply when streaming;
    - understands tool use in the history: assistant messages with ``tool_calls`` (their
      ``content`` may be empty) and ``tool`` messages answering them by ``tool_call_id``.

    A backend never runs a tool: the session does, and loops (see
    :meth:`hypotez.AsyncSession.ask`). A session refuses ``tools=`` with a backend that does
    not declare support, and sends such a backend its dialogue without the tool turns.
    """

    #: Whether this backend implements tool calling as described above.
    supports_tools: ClassVar[bool] = False

    _PAIRS = (
        *Backend._PAIRS,
        ("chat", "achat", False),
        ("stream", "astream", True),
        ("list_models", "alist_models", False),
        ("context_window", "acontext_window", False),
        ("count_tokens", "acount_tokens", False),
    )

    @abc.abstractmethod
    @_side
    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        """Answer the conversation ``messages`` (system, user and assistant turns, in order)."""

    @abc.abstractmethod
    @_side
    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        """:meth:`chat`, from async code."""

    @_side
    def stream(self, messages: Sequence[Message], options: ChatOptions) -> Iterator[ReplyChunk]:
        """Yield the reply in pieces; the last chunk carries the whole :class:`~hypotez.Reply`.

        The default answers in one piece; backends that can stream override it (or ``astream``).
        """
        reply = self.chat(messages, options)
        yield ReplyChunk(reply.text, reply)

    @_side
    async def astream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[ReplyChunk]:
        """:meth:`stream`, from async code."""
        reply = await self.achat(messages, options)
        yield ReplyChunk(reply.text, reply)

    @_side
    def list_models(self) -> list[ModelInfo]:
        """The models this backend can use right now (none by default)."""
        return []

    @_follows
    async def alist_models(self) -> list[ModelInfo]:
        """:meth:`list_models`, from async code."""
        raise NotImplementedError  # replaced: derived from list_models

    @_side
    def context_window(self, model: str | None = None) -> int | None:
        """How many tokens one request to ``model`` (default: the backend's) may hold, prompt
        and reply together; ``None`` (the default) when the backend cannot tell.

        Callers that pack work into requests (the ``llm`` sentiment analyzer) size them by it.
        """
        return None

    @_follows
    async def acontext_window(self, model: str | None = None) -> int | None:
        """:meth:`context_window`, from async code."""
        raise NotImplementedError  # replaced: derived from context_window

    @_side
    def count_tokens(self, messages: Sequence[Message], *, model: str | None = None) -> int | None:
        """How many tokens ``messages`` take as a prompt to ``model``, chat template included;
        ``None`` (the default) when the backend cannot count them exactly."""
        return None

    @_follows
    async def acount_tokens(
        self, messages: Sequence[Message], *, model: str | None = None
    ) -> int | None:
        """:meth:`count_tokens`, from async code."""
        raise NotImplementedError  # replaced: derived from count_tokens


class SentimentAnalyzer(Backend):
    """Batch-first sentiment: one :class:`~hypotez.Sentiment` per text, in order.

    Implement ``analyze`` or ``aanalyze``.
    """

    _PAIRS = (*Backend._PAIRS, ("analyze", "aanalyze", False))

    @abc.abstractmethod
    @_side
    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        """Return exactly one result per text, in the same order."""

    @abc.abstractmethod
    @_side
    async def aanalyze(self, texts: Sequence[str]) -> list[Sentiment]:
        """:meth:`analyze`, from async code."""


class VisionBackend(Backend):
    """Describe an image. Inputs reach it already checked (see :mod:`hypotez.images`).

    Implement ``describe`` or ``adescribe``.
    """

    _PAIRS = (*Backend._PAIRS, ("describe", "adescribe", False))

    @abc.abstractmethod
    @_side
    def describe(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> ImageDescription:
        """Describe ``image`` (a checked :class:`hypotez.Image`)."""

    @abc.abstractmethod
    @_side
    async def adescribe(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> ImageDescription:
        """:meth:`describe`, from async code."""


class Trainer(Backend):
    """Run fine-tuning jobs from validated examples; say what the trainer accepts.

    Core validates data against :meth:`limits` (and counts tokens with :meth:`token_counter`)
    before it calls ``submit``: nothing invalid is ever submitted. Implement the job methods on
    either side (``submit`` or ``asubmit``, and so on).
    """

    _PAIRS = (
        *Backend._PAIRS,
        ("submit", "asubmit", False),
        ("status", "astatus", False),
        ("list_jobs", "alist_jobs", False),
        ("events", "aevents", False),
        ("cancel", "acancel", False),
    )

    #: The model trained when the user names none ("" = the trainer has no default).
    default_model: str = ""

    def limits(self, model: str) -> TrainingLimits:
        """What this trainer accepts for ``model``: minimum examples, tokens per example, and
        the notices a user should read before training (deadlines, prices)."""
        return TrainingLimits()

    def token_counter(
        self, model: str
    ) -> Callable[[Sequence[Mapping[str, Any]]], tuple[int, int]] | None:
        """A function giving (all tokens, assistant tokens) of one example's messages, counted
        the way this trainer counts them; ``None`` when it cannot count (no length checks)."""
        return None

    def estimate_cost(
        self,
        model: str,
        token_counts: Sequence[int],
        *,
        epochs: int | None = None,
        price_per_million: float | None = None,
    ) -> CostEstimate | None:
        """What training ``model`` on examples of ``token_counts`` tokens would bill; ``None``
        when the trainer has no notion of cost (a local trainer)."""
        return None

    @abc.abstractmethod
    @_side
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
    @_side
    async def asubmit(
        self,
        examples: Sequence[TrainingExample],
        *,
        model: str,
        description: str = "",
        validation: Sequence[TrainingExample] | None = None,
        **options: Any,
    ) -> JobRecord:
        """:meth:`submit`, from async code."""

    @abc.abstractmethod
    @_side
    def status(self, job_id: str) -> JobRecord:
        """The job's current state, freshly fetched."""

    @abc.abstractmethod
    @_side
    async def astatus(self, job_id: str) -> JobRecord:
        """:meth:`status`, from async code."""

    @abc.abstractmethod
    @_side
    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        """The most recent jobs the backend knows."""

    @abc.abstractmethod
    @_side
    async def alist_jobs(self, limit: int = 20) -> list[JobRecord]:
        """:meth:`list_jobs`, from async code."""

    @abc.abstractmethod
    @_side
    def events(self, job_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The job's events, oldest first (each at least ``created`` and ``message``)."""

    @abc.abstractmethod
    @_side
    async def aevents(self, job_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """:meth:`events`, from async code."""

    @abc.abstractmethod
    @_side
    def cancel(self, job_id: str) -> JobRecord:
        """Ask the backend to cancel the job; return its record."""

    @abc.abstractmethod
    @_side
    async def acancel(self, job_id: str) -> JobRecord:
        """:meth:`cancel`, from async code."""


class Storage(Backend):
    """Where dialogues and records live.

    **Must implement** (either side of each): ``create_dialogue``, ``append_turns``,
    ``load_dialogue``, ``list_dialogues``, ``delete_dialogue``, ``put_record``, ``get_record``,
    ``list_records``, ``delete_record``. **Should override** (their defaults are correct but
    weak): ``update_record`` (the default is not atomic), ``list_collections`` and
    ``list_record_ids`` (the defaults only know hypotez's own collections and records with an
    ``"id"`` field), ``list_dialogue_ids`` (the default misses unreadable dialogues) and
    ``check`` (the default checks nothing). Everything else is derived.

    Guarantees every implementation must give (:class:`hypotez.conformance.StorageConformance`
    checks them, for any storage): appending costs O(1) in the dialogue's length; concurrent
    writers lose nothing and turns appended in one call stay together; a crash mid-write leaves
    the old or the new state; corrupt data is reported with its location and never overwritten;
    ids are checked with :func:`hypotez.validate_id` before they touch a path or key.
    """

    _PAIRS = (
        *Backend._PAIRS,
        ("create_dialogue", "acreate_dialogue", False),
        ("append_turns", "aappend_turns", False),
        ("load_dialogue", "aload_dialogue", False),
        ("list_dialogues", "alist_dialogues", False),
        ("list_dialogue_ids", "alist_dialogue_ids", False),
        ("delete_dialogue", "adelete_dialogue", False),
        ("dialogue_exists", "adialogue_exists", False),
        ("check", "acheck", False),
        ("put_record", "aput_record", False),
        ("get_record", "aget_record", False),
        ("list_records", "alist_records", False),
        ("delete_record", "adelete_record", False),
        ("update_record", "aupdate_record", False),
        ("list_collections", "alist_collections", False),
        ("list_record_ids", "alist_record_ids", False),
        ("save_job", "asave_job", False),
        ("list_jobs", "alist_jobs", False),
        ("save_assistant", "asave_assistant", False),
        ("list_assistants", "alist_assistants", False),
    )

    #: The URL this storage was opened with, e.g. ``file:///home/me/.local/share/hypotez``.
    url: str = ""

    # -- dialogues ---------------------------------------------------------------------
    @abc.abstractmethod
    @_side
    def create_dialogue(self, info: DialogueInfo) -> None:
        """Create an empty dialogue; raise :class:`~hypotez.StorageError` if it exists."""

    @abc.abstractmethod
    @_side
    async def acreate_dialogue(self, info: DialogueInfo) -> None:
        """:meth:`create_dialogue`, from async code."""

    @abc.abstractmethod
    @_side
    def append_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        """Append ``turns`` atomically and in order. Unknown id: DialogueNotFoundError."""

    @abc.abstractmethod
    @_side
    async def aappend_turns(self, dialogue_id: str, turns: Sequence[Turn]) -> None:
        """:meth:`append_turns`, from async code."""

    @abc.abstractmethod
    @_side
    def load_dialogue(self, dialogue_id: str) -> Dialogue:
        """The whole dialogue. Unknown id: DialogueNotFoundError; unreadable: CorruptDataError."""

    @abc.abstractmethod
    @_side
    async def aload_dialogue(self, dialogue_id: str) -> Dialogue:
        """:meth:`load_dialogue`, from async code."""

    @abc.abstractmethod
    @_side
    def list_dialogues(self) -> list[DialogueInfo]:
        """Every dialogue's header, oldest first."""

    @abc.abstractmethod
    @_side
    async def alist_dialogues(self) -> list[DialogueInfo]:
        """:meth:`list_dialogues`, from async code."""

    @_side
    def list_dialogue_ids(self) -> list[str]:
        """The id of every stored dialogue, sorted, *including* those whose header cannot be
        read (``hypotez storage copy`` then names them as unreadable instead of skipping them
        in silence). The default lists only readable ones: override it."""
        return sorted(info.id for info in self.list_dialogues())

    @_follows
    async def alist_dialogue_ids(self) -> list[str]:
        """:meth:`list_dialogue_ids`, from async code."""
        raise NotImplementedError  # replaced: derived from list_dialogue_ids

    @abc.abstractmethod
    @_side
    def delete_dialogue(self, dialogue_id: str) -> None:
        """Remove a dialogue. Unknown id: DialogueNotFoundError."""

    @abc.abstractmethod
    @_side
    async def adelete_dialogue(self, dialogue_id: str) -> None:
        """:meth:`delete_dialogue`, from async code."""

    @_side
    def dialogue_exists(self, dialogue_id: str) -> bool:
        """Whether ``dialogue_id`` is stored (the default loads it)."""
        try:
            self.load_dialogue(dialogue_id)
        except KeyError:
            return False
        return True

    @_follows
    async def adialogue_exists(self, dialogue_id: str) -> bool:
        """:meth:`dialogue_exists`, from async code."""
        raise NotImplementedError  # replaced: derived from dialogue_exists

    @_side
    def check(self) -> None:
        """Raise :class:`~hypotez.StorageError` if this storage cannot be written now (a
        missing bucket, refused credentials, a read-only folder), saying what to do.

        A session calls it before the first (paid) request of a new dialogue, so that a reply
        is not fetched only to be lost at the first write. The default checks nothing; a
        storage may remember a success rather than check every time.
        """

    @_follows
    async def acheck(self) -> None:
        """:meth:`check`, from async code."""

    # -- records: job ids, assistants, anything small and keyed ------------------------
    @abc.abstractmethod
    @_side
    def put_record(self, collection: str, record_id: str, data: Mapping[str, Any]) -> None:
        """Create or replace one JSON record, atomically."""

    @abc.abstractmethod
    @_side
    async def aput_record(self, collection: str, record_id: str, data: Mapping[str, Any]) -> None:
        """:meth:`put_record`, from async code."""

    @abc.abstractmethod
    @_side
    def get_record(self, collection: str, record_id: str) -> dict[str, Any]:
        """One record. Unknown id: DialogueNotFoundError (a KeyError)."""

    @abc.abstractmethod
    @_side
    async def aget_record(self, collection: str, record_id: str) -> dict[str, Any]:
        """:meth:`get_record`, from async code."""

    @abc.abstractmethod
    @_side
    def list_records(self, collection: str) -> list[dict[str, Any]]:
        """Every record of ``collection`` (empty if there is none)."""

    @abc.abstractmethod
    @_side
    async def alist_records(self, collection: str) -> list[dict[str, Any]]:
        """:meth:`list_records`, from async code."""

    @abc.abstractmethod
    @_side
    def delete_record(self, collection: str, record_id: str) -> None:
        """Remove one record. Unknown id: DialogueNotFoundError (a KeyError)."""

    @abc.abstractmethod
    @_side
    async def adelete_record(self, collection: str, record_id: str) -> None:
        """:meth:`delete_record`, from async code."""

    @_side
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

    @_follows
    async def aupdate_record(
        self,
        collection: str,
        record_id: str,
        change: Callable[[dict[str, Any] | None], Mapping[str, Any]],
    ) -> dict[str, Any]:
        """:meth:`update_record`, from async code."""
        raise NotImplementedError  # replaced: derived from update_record

    @_side
    def list_collections(self) -> list[str]:
        """The names of the record collections, sorted: at least every one that holds a record.

        ``hypotez storage copy`` copies each of them. The default names only the collections
        the typed helpers below use, ``["assistants", "jobs"]``: a storage that keeps records
        in other collections must override it (the conformance suite checks it does).
        """
        return ["assistants", "jobs"]

    @_follows
    async def alist_collections(self) -> list[str]:
        """:meth:`list_collections`, from async code."""
        raise NotImplementedError  # replaced: derived from list_collections

    @_side
    def list_record_ids(self, collection: str) -> list[str]:
        """The ids of every record of ``collection``, sorted (empty if there is none).

        The default reads the records and takes their ``"id"`` field, which the typed helpers
        always write; a storage whose records may lack it must override this (the conformance
        suite checks records without one).
        """
        return sorted(
            r["id"] for r in self.list_records(collection) if isinstance(r.get("id"), str)
        )

    @_follows
    async def alist_record_ids(self, collection: str) -> list[str]:
        """:meth:`list_record_ids`, from async code."""
        raise NotImplementedError  # replaced: derived from list_record_ids

    # -- typed helpers on top of records ----------------------------------------------
    @_side
    def save_job(self, job: JobRecord) -> None:
        """Save a fine-tuning job's record in the ``jobs`` collection."""
        self.put_record("jobs", job.id, job.to_dict())

    @_follows
    async def asave_job(self, job: JobRecord) -> None:
        """:meth:`save_job`, from async code."""
        raise NotImplementedError  # replaced: derived from save_job

    @_side
    def list_jobs(self) -> list[JobRecord]:
        """Every saved job record, oldest first."""
        jobs = [JobRecord.from_dict(r) for r in self.list_records("jobs")]
        return sorted(jobs, key=lambda j: j.created)

    @_follows
    async def alist_jobs(self) -> list[JobRecord]:
        """:meth:`list_jobs`, from async code."""
        raise NotImplementedError  # replaced: derived from list_jobs

    @_side
    def save_assistant(self, assistant: Assistant) -> None:
        """Save an assistant preset in the ``assistants`` collection."""
        self.put_record("assistants", assistant.id, assistant.to_dict())

    @_follows
    async def asave_assistant(self, assistant: Assistant) -> None:
        """:meth:`save_assistant`, from async code."""
        raise NotImplementedError  # replaced: derived from save_assistant

    @_side
    def list_assistants(self) -> list[Assistant]:
        """Every assistant preset, by id."""
        return sorted(
            (Assistant.from_dict(r) for r in self.list_records("assistants")), key=lambda a: a.id
        )

    @_follows
    async def alist_assistants(self) -> list[Assistant]:
        """:meth:`list_assistants`, from async code."""
        raise NotImplementedError  # replaced: derived from list_assistants


def texts_of(items: Iterable[str]) -> list[str]:
    """Check that a batch really is a list of strings (a bare string is a common mistake)."""
    from hypotez.errors import InputError

    if isinstance(items, str):
        raise InputError("analyze() takes a list of texts; wrap a single text as [text].")
    try:
        out = list(items)
    except TypeError:
        raise InputError(f"analyze() takes a list of texts, not {type(items).__name__}.") from None
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"Text #{i} is {type(t).__name__}, not str.")
    return out

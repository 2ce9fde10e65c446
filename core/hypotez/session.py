"""The session: one chat backend, one sentiment analyzer, one storage, one vision backend and
one trainer, tied to one dialogue.

``ask()`` sends the dialogue's whole history with the new message, analyses the sentiment of the
message and the reply in one batch, appends both turns to storage in one atomic write, and
returns the :class:`~hypotez.models.Reply`. Backends are built lazily: a session that only
analyses sentiment never loads a chat model.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from hypotez.backends import open_storage
from hypotez.errors import HypotezError, InputError
from hypotez.images import load_image
from hypotez.models import (
    Assistant,
    ChatOptions,
    Dialogue,
    DialogueInfo,
    ImageDescription,
    Message,
    ModelInfo,
    Reply,
    ReplyChunk,
    Sentiment,
    Turn,
    validate_id,
)
from hypotez.plugins import PluginManager, get_plugin_manager
from hypotez.protocols import (
    ChatBackend,
    SentimentAnalyzer,
    Storage,
    Trainer,
    VisionBackend,
    texts_of,
)
from hypotez.settings import Settings


@contextlib.contextmanager
def _keeps_reply() -> Iterator[None]:
    """Tell the user where the reply is when sentiment or storage fails after it arrived."""
    try:
        yield
    except HypotezError as exc:
        exc.add_note(
            "The model's reply was received and is kept in session.last_reply; "
            "it was not stored in the dialogue."
        )
        raise


def new_dialogue_id() -> str:
    """A sortable, unique id: ``20261125-023256-3f9a1c``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


#: capability -> the method a backend object passed to a session must have.
_REQUIRED_METHOD = {
    "chat": "chat",
    "sentiment": "analyze",
    "storage": "append_turns",
    "vision": "describe",
    "trainer": "submit",
}


def _check_choices(**choices: Any) -> None:
    """A backend is chosen by name (str), given as an object, or left to settings (None)."""
    for capability, choice in choices.items():
        if choice is None or isinstance(choice, str):
            continue
        if capability == "sentiment" and choice is False:
            continue
        if not callable(getattr(choice, _REQUIRED_METHOD[capability], None)):
            raise InputError(
                f"{capability}={choice!r} is neither a backend name nor a {capability} backend "
                f"(an object with a {_REQUIRED_METHOD[capability]}() method). Pass a name such as "
                f"{capability}='...', or None for the configured default."
            )


def _check_options(
    model: object, temperature: object, max_tokens: object, json_schema: object, extra: object
) -> None:
    """Refuse bad request options here, before any backend (or a paid request) sees them."""
    import math
    from collections.abc import Mapping as MappingABC

    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InputError(f"model must be a non-empty model name, not {model!r}.")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise InputError(f"temperature must be a number >= 0, not {temperature!r}.")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InputError(f"max_tokens must be a whole number >= 1, not {max_tokens!r}.")
    if json_schema is not None and not isinstance(json_schema, MappingABC):
        raise InputError(
            f"json_schema must be a JSON schema as a dict, not {type(json_schema).__name__}."
        )
    if extra is not None and not isinstance(extra, MappingABC):
        raise InputError(f"extra must be a dict of backend options, not {type(extra).__name__}.")


class _Base:
    """What the sync and async sessions share: settings, lazy backends, dialogue state."""

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        chat: str | ChatBackend | None = None,
        sentiment: str | SentimentAnalyzer | bool | None = None,
        storage: str | Storage | None = None,
        vision: str | VisionBackend | None = None,
        trainer: str | Trainer | None = None,
        dialogue_id: str | None = None,
        system: str | None = None,
        model: str | None = None,
        assistant: str | Assistant | None = None,
        store: bool = True,
        plugin_manager: PluginManager | None = None,
    ) -> None:
        self.settings = settings or Settings.load()
        self._pm = plugin_manager or get_plugin_manager()
        if sentiment is True:  # "on", with the configured (or best available) analyzer
            sentiment = None
        _check_choices(
            chat=chat, sentiment=sentiment, storage=storage, vision=vision, trainer=trainer
        )
        self._choice: dict[str, Any] = {
            "chat": chat if chat is not None else self.settings.chat,
            "sentiment": sentiment if sentiment is not None else self.settings.sentiment,
            "vision": vision if vision is not None else self.settings.vision,
            "trainer": trainer if trainer is not None else self.settings.trainer,
            "storage": storage if storage is not None else self.settings.storage,
        }
        self._built: dict[str, Any] = {}
        self._owned: list[Any] = []  # backends we built, so we close them
        self._analyzers: dict[str, SentimentAnalyzer] = {}
        self._lock = threading.RLock()
        self.system = system
        self.model = model or self.settings.model
        self.store = store
        self.assistant: Assistant | None = None
        self.dialogue_id: str | None = None
        self.history: list[Turn] = []
        self.last_reply: Reply | None = None
        if dialogue_id is not None:
            self.resume(dialogue_id)
            if system is not None:  # an explicit argument beats the stored instruction
                self.system = system
        if assistant is not None:
            self.use_assistant(assistant)

    # -- backends, built on first use ------------------------------------------------------
    def _backend(self, capability: str) -> Any:
        with self._lock:
            if capability not in self._built:
                choice = self._choice[capability]
                if capability == "storage" and isinstance(choice, str):
                    backend = open_storage(choice, self.settings, self._pm.registry)
                    self._owned.append(backend)
                elif choice is None or isinstance(choice, str):
                    backend = self._pm.registry.build(capability, choice, self.settings)
                    self._owned.append(backend)
                else:
                    backend = choice
                self._built[capability] = backend
            return self._built[capability]

    @property
    def chat_backend(self) -> ChatBackend:
        backend: ChatBackend = self._backend("chat")
        return backend

    @property
    def storage(self) -> Storage:
        backend: Storage = self._backend("storage")
        return backend

    @property
    def vision_backend(self) -> VisionBackend:
        backend: VisionBackend = self._backend("vision")
        return backend

    @property
    def trainer(self) -> Trainer:
        backend: Trainer = self._backend("trainer")
        return backend

    @property
    def sentiment_enabled(self) -> bool:
        return self._choice["sentiment"] is not False

    @property
    def analyzer(self) -> SentimentAnalyzer:
        """The session's sentiment analyzer (built on first use)."""
        if not self.sentiment_enabled:
            raise InputError("Sentiment is switched off for this session (sentiment=False).")
        backend: SentimentAnalyzer = self._backend("sentiment")
        return backend

    def get_analyzer(self, name: str | None = None) -> SentimentAnalyzer:
        """The session's analyzer, or another one by name (built once, then reused)."""
        if name is None:
            return self.analyzer
        with self._lock:
            if name not in self._analyzers:
                analyzer = self._pm.registry.build("sentiment", name, self.settings)
                self._owned.append(analyzer)
                self._analyzers[name] = analyzer
            return self._analyzers[name]

    # -- dialogue state ----------------------------------------------------------------
    @property
    def dialogue(self) -> Dialogue:
        """The current dialogue as stored (or as kept in memory when ``store=False``)."""
        if self.dialogue_id is None:
            return Dialogue(DialogueInfo(id="unsaved", system=self.system), [])
        if self.store:
            return self.storage.load_dialogue(self.dialogue_id)
        return Dialogue(DialogueInfo(id=self.dialogue_id, system=self.system), self.history)

    def resume(self, dialogue_id: str) -> Dialogue:
        """Continue a stored dialogue: its history and system instruction become this session's."""
        validate_id(dialogue_id)
        return self._adopt(self.storage.load_dialogue(dialogue_id))

    def _adopt(self, dialogue: Dialogue) -> Dialogue:
        with self._lock:
            self.dialogue_id = dialogue.id
            self.history = list(dialogue.turns)
            if dialogue.info.system is not None:
                self.system = dialogue.info.system
        return dialogue

    def new_dialogue(self, *, system: str | None = None) -> None:
        """Start afresh; the next ``ask()`` creates a new stored dialogue."""
        with self._lock:
            self.dialogue_id = None
            self.history = []
            if system is not None:
                self.system = system

    def use_assistant(self, assistant: str | Assistant) -> Assistant:
        """Apply a preset: its instructions become the system message, its model the model."""
        if isinstance(assistant, str):
            known = {a.id: a for a in self.storage.list_assistants()}
            if assistant not in known:
                raise InputError(
                    f"Unknown assistant {assistant!r}. Known: {', '.join(sorted(known)) or 'none'}. "
                    "Add one with `hypotez assistants add`."
                )
            assistant = known[assistant]
        self.assistant = assistant
        self.system = assistant.instructions or self.system
        if assistant.model:
            self.model = assistant.model
        return assistant

    def list_assistants(self) -> list[Assistant]:
        return self.storage.list_assistants()

    def _ready(self, analyzer: str | None) -> None:
        """Build the analyzer and the storage before the chat call, not after it.

        An unknown analyzer name, a missing extra or a bad storage URL then fails before a paid
        (or slow) reply is fetched, instead of losing that reply.
        """
        if self.sentiment_enabled or analyzer:
            self.get_analyzer(analyzer)
        if self.store:
            self._backend("storage")

    def _prepare(
        self,
        message: str,
        system: str | None,
        model: str | None,
        temperature: float | None,
        max_tokens: int | None,
        json_schema: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None,
    ) -> tuple[list[Message], ChatOptions]:
        if not isinstance(message, str):
            raise InputError(f"The message must be text (str), not {type(message).__name__}.")
        if not message.strip():
            raise InputError("The message is empty: ask something.")
        _check_options(model, temperature, max_tokens, json_schema, extra)
        instruction = system if system is not None else self.system
        messages = [Message("system", instruction)] if instruction else []
        messages.extend(t.to_message() for t in self.history if t.role != "system")
        messages.append(Message("user", message))
        options = ChatOptions(
            model=model or self.model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
            timeout=self.settings.timeout,
            extra=extra or {},
        )
        return messages, options

    def _turns(
        self, message: str, reply: Reply, sentiments: Sequence[Sentiment] | None
    ) -> tuple[Reply, list[Turn]]:
        user_sentiment, reply_sentiment = sentiments if sentiments else (None, None)
        reply = reply.with_sentiment(reply_sentiment)
        if not reply.backend:
            reply = attrs.evolve(reply, backend=self.chat_backend.name)
        turns = [
            Turn(role="user", content=message, sentiment=user_sentiment),
            Turn.from_reply(reply),
        ]
        return reply, turns

    def _info_for_new(self) -> DialogueInfo:
        return DialogueInfo(
            id=new_dialogue_id(),
            system=self.system,
            assistant_id=self.assistant.id if self.assistant else None,
        )

    def _remember(self, turns: list[Turn], reply: Reply) -> None:
        with self._lock:
            self.history.extend(turns)
            self.last_reply = reply

    def _close_owned(self) -> list[Any]:
        with self._lock:
            owned, self._owned = self._owned, []
            self._built.clear()
            self._analyzers.clear()
        return owned


class Session(_Base):
    """A synchronous session. Use it as a context manager to close its backends."""

    def ask(
        self,
        message: str,
        *,
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        analyzer: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Reply:
        """Send ``message`` with the dialogue's history; store both turns; return the reply."""
        messages, options = self._prepare(
            message, system, model, temperature, max_tokens, json_schema, extra
        )
        self._ready(analyzer)
        reply = self.chat_backend.chat(messages, options)
        return self._complete(message, reply, analyzer)

    def stream(
        self,
        message: str,
        *,
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        analyzer: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Iterator[ReplyChunk]:
        """Like :meth:`ask`, yielding the reply as it arrives; the last chunk has the full reply."""
        messages, options = self._prepare(
            message, system, model, temperature, max_tokens, json_schema, extra
        )
        self._ready(analyzer)
        final: Reply | None = None
        for chunk in self.chat_backend.stream(messages, options):
            # The backend's last chunk carries the whole reply, and may carry a last delta too.
            if chunk.delta:
                yield ReplyChunk(chunk.delta)
            if chunk.reply is not None:
                final = chunk.reply
        if final is None:
            raise InputError(
                f"The chat backend {self.chat_backend.name!r} ended its stream without a reply."
            )
        yield ReplyChunk("", self._complete(message, final, analyzer))

    def _complete(self, message: str, reply: Reply, analyzer: str | None) -> Reply:
        self.last_reply = reply  # kept if what follows fails: the reply may have been paid for
        with _keeps_reply():
            sentiments = (
                self.get_analyzer(analyzer).analyze([message, reply.text])
                if self.sentiment_enabled or analyzer
                else None
            )
            reply, turns = self._turns(message, reply, sentiments)
            self.last_reply = reply
            if self.store:
                with self._lock:
                    if self.dialogue_id is None:
                        info = self._info_for_new()
                        self.storage.create_dialogue(info)
                        self.dialogue_id = info.id
                    self.storage.append_turns(self.dialogue_id, turns)
        if not self.store and self.dialogue_id is None:
            self.dialogue_id = new_dialogue_id()
        self._remember(turns, reply)
        return reply

    def analyze(self, texts: Sequence[str], *, analyzer: str | None = None) -> list[Sentiment]:
        """Sentiment of each text, in order, with the session's analyzer or a named one."""
        texts = texts_of(texts)
        return self.get_analyzer(analyzer).analyze(texts) if texts else []

    def describe_image(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> ImageDescription:
        """Describe an image given as a path, bytes or URL (checked before any upload)."""
        if detail not in ("auto", "low", "high"):
            raise InputError(f"detail must be 'auto', 'low' or 'high', not {detail!r}.")
        checked = load_image(image)
        return self.vision_backend.describe(
            checked, prompt, detail=detail, json_schema=json_schema, model=model
        )

    def list_models(self) -> list[ModelInfo]:
        return self.chat_backend.list_models()

    def close(self) -> None:
        """Close every backend this session built, even if one of them fails to close."""
        errors: list[BaseException] = []
        for backend in reversed(self._close_owned()):
            try:
                backend.close()
            except Exception as exc:  # close the rest, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSession(_Base):
    """The asynchronous twin of :class:`Session`; backends' async methods are used throughout."""

    _alock: Any = None

    def _store_lock(self) -> Any:
        """One asyncio lock per session, made on first use (asyncio is imported only then)."""
        if self._alock is None:
            import asyncio

            self._alock = asyncio.Lock()
        return self._alock

    async def ask(
        self,
        message: str,
        *,
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        analyzer: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Reply:
        messages, options = self._prepare(
            message, system, model, temperature, max_tokens, json_schema, extra
        )
        self._ready(analyzer)
        reply = await self.chat_backend.achat(messages, options)
        return await self._complete(message, reply, analyzer)

    async def stream(
        self,
        message: str,
        *,
        system: str | None = None,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        json_schema: Mapping[str, Any] | None = None,
        analyzer: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ReplyChunk]:
        messages, options = self._prepare(
            message, system, model, temperature, max_tokens, json_schema, extra
        )
        self._ready(analyzer)
        final: Reply | None = None
        async for chunk in self.chat_backend.astream(messages, options):
            # The backend's last chunk carries the whole reply, and may carry a last delta too.
            if chunk.delta:
                yield ReplyChunk(chunk.delta)
            if chunk.reply is not None:
                final = chunk.reply
        if final is None:
            raise InputError(
                f"The chat backend {self.chat_backend.name!r} ended its stream without a reply."
            )
        yield ReplyChunk("", await self._complete(message, final, analyzer))

    async def _complete(self, message: str, reply: Reply, analyzer: str | None) -> Reply:
        self.last_reply = reply  # kept if what follows fails: the reply may have been paid for
        with _keeps_reply():
            sentiments = (
                await self.get_analyzer(analyzer).aanalyze([message, reply.text])
                if self.sentiment_enabled or analyzer
                else None
            )
            reply, turns = self._turns(message, reply, sentiments)
            self.last_reply = reply
            if self.store:
                # Without this lock, asks run together with gather() would each see no dialogue
                # yet and create one apiece, scattering one conversation over several dialogues.
                async with self._store_lock():
                    if self.dialogue_id is None:
                        info = self._info_for_new()
                        await self.storage.acreate_dialogue(info)
                        self.dialogue_id = info.id
                    await self.storage.aappend_turns(self.dialogue_id, turns)
        if not self.store and self.dialogue_id is None:
            self.dialogue_id = new_dialogue_id()
        self._remember(turns, reply)
        return reply

    async def aresume(self, dialogue_id: str) -> Dialogue:
        """:meth:`resume` without blocking the event loop on the storage read."""
        validate_id(dialogue_id)
        return self._adopt(await self.storage.aload_dialogue(dialogue_id))

    async def analyze(
        self, texts: Sequence[str], *, analyzer: str | None = None
    ) -> list[Sentiment]:
        texts = texts_of(texts)
        return await self.get_analyzer(analyzer).aanalyze(texts) if texts else []

    async def describe_image(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> ImageDescription:
        if detail not in ("auto", "low", "high"):
            raise InputError(f"detail must be 'auto', 'low' or 'high', not {detail!r}.")
        checked = load_image(image)
        return await self.vision_backend.adescribe(
            checked, prompt, detail=detail, json_schema=json_schema, model=model
        )

    async def list_models(self) -> list[ModelInfo]:
        return await self.chat_backend.alist_models()

    async def aclose(self) -> None:
        """Close every backend this session built, even if one of them fails to close."""
        errors: list[BaseException] = []
        for backend in reversed(self._close_owned()):
            try:
                await backend.aclose()
            except Exception as exc:  # close the rest, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

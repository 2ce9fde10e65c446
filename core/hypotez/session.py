"""Sessions: one conversation over the backends of a :class:`~hypotez.Context`.

:class:`AsyncSession` is the implementation. ``ask()`` sends the dialogue *as stored at that
moment* (turns another process appended included) with the new message, analyses the sentiment
of the message and the reply in one batch, appends both turns to storage in one atomic write,
and returns the :class:`~hypotez.Reply`. :class:`Session` is its blocking facade: every method
runs the async one on hypotez's portal loop (:mod:`hypotez.portal`).

A session is cheap: it holds a dialogue id, a system instruction and a model name, and borrows
its backends from its context. Without a ``context=`` it makes (and later closes) its own.
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from hypotez import portal
from hypotez.context import Context, check_choice
from hypotez.errors import BackendError, HypotezError, InputError
from hypotez.images import Image, load_image
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
    ToolResult,
    Turn,
    validate_id,
)
from hypotez.plugins import PluginManager
from hypotez.protocols import texts_of
from hypotez.settings import Settings

CAPABILITIES = ("chat", "sentiment", "storage", "vision", "trainer")
#: Rounds of tool calls one ask may run before the model must answer in words.
DEFAULT_MAX_TOOL_ROUNDS = 8
#: Tool calls run in one round (the model may ask for several at once); more get an error.
DEFAULT_MAX_PARALLEL_TOOL_CALLS = 8
TOOL_CHOICES = ("auto", "none", "required")
KEPT_NOTE = (
    "The model's reply was received and is kept in session.last_reply; it was not stored in the "
    "dialogue."
)


def new_dialogue_id() -> str:
    """A sortable, unique id: ``20261125-023256-3f9a1c``."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


@attrs.frozen
class _Request:
    """One ask, checked before any backend (or a paid request) sees it."""

    message: str
    system: str | None
    model: str | None
    temperature: float | None
    max_tokens: int | None
    json_schema: Mapping[str, Any] | None
    analyzer: str | None
    extra: Mapping[str, Any] | None
    #: name -> hypotez.tools.Tool; empty when the ask offers no tools.
    tools: Mapping[str, Any] = attrs.field(factory=dict)
    tool_choice: str | None = None
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    max_parallel_tool_calls: int = DEFAULT_MAX_PARALLEL_TOOL_CALLS
    #: When the ask was made: the user turn's time (tool turns come after it).
    asked: datetime = attrs.field(factory=lambda: datetime.now(UTC))


def check_generation(
    temperature: object, max_tokens: object, json_schema: object
) -> tuple[float | None, int | None, Mapping[str, Any] | None]:
    """The generation options, checked: :class:`InputError` unless each is usable (None: not
    set)."""
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
    if json_schema is not None and not isinstance(json_schema, Mapping):
        raise InputError(
            f"json_schema must be a JSON schema as a dict, not {type(json_schema).__name__}."
        )
    return temperature, max_tokens, json_schema


def _check_request(
    message: object,
    *,
    system: object = None,
    model: object = None,
    temperature: object = None,
    max_tokens: object = None,
    json_schema: object = None,
    analyzer: object = None,
    extra: object = None,
    tools: object = None,
    tool_choice: object = None,
    max_tool_rounds: object = DEFAULT_MAX_TOOL_ROUNDS,
    max_parallel_tool_calls: object = DEFAULT_MAX_PARALLEL_TOOL_CALLS,
) -> _Request:
    if not isinstance(message, str):
        raise InputError(f"The message must be text (str), not {type(message).__name__}.")
    if not message.strip():
        raise InputError("The message is empty: ask something.")
    _check_encodable("The message", message)
    _check_text("system", system)
    if isinstance(system, str):
        _check_encodable("The system instruction", system)
    _check_model(model)
    temperature, max_tokens, json_schema = check_generation(temperature, max_tokens, json_schema)
    if analyzer is not None:
        check_choice("sentiment", analyzer)
        if not isinstance(analyzer, str):
            raise InputError(f"analyzer must be an analyzer name, not {analyzer!r}.")
    if extra is not None and not isinstance(extra, Mapping):
        raise InputError(f"extra must be a dict of backend options, not {type(extra).__name__}.")
    checked_tools = _check_tools(tools, tool_choice, max_tool_rounds, max_parallel_tool_calls)
    return _Request(
        message,
        system,  # type: ignore[arg-type]
        model,  # type: ignore[arg-type]
        temperature,
        max_tokens,
        json_schema,
        analyzer,
        extra,
        checked_tools,
        tool_choice,  # type: ignore[arg-type]
        max_tool_rounds,  # type: ignore[arg-type]
        max_parallel_tool_calls,  # type: ignore[arg-type]
    )


def _check_encodable(what: str, text: str) -> None:
    """Refuse text no server can receive: lone surrogates (bytes that were not UTF-8, as a
    terminal or a file in another encoding hands them to Python)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{what} has characters that are not valid Unicode at position {exc.start} "
            f"({text[max(0, exc.start - 10) : exc.start]!r}...): it came from bytes that are not "
            "UTF-8. Re-save the text as UTF-8 (or set your terminal to UTF-8) and send it again."
        ) from None


def _check_tools(
    tools: object, tool_choice: object, max_rounds: object, max_parallel: object
) -> Mapping[str, Any]:
    for what, value in (
        ("max_tool_rounds", max_rounds),
        ("max_parallel_tool_calls", max_parallel),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{what} must be a whole number >= 1, not {value!r}.")
    if tools is None:
        if tool_choice is not None:
            raise InputError("tool_choice needs tools: pass tools=[...] too.")
        return {}
    from hypotez.tools import as_tools  # pydantic and friends load only when tools are used

    checked = as_tools(tools)
    if tool_choice is not None and tool_choice not in TOOL_CHOICES and tool_choice not in checked:
        raise InputError(
            f"tool_choice must be one of {', '.join(TOOL_CHOICES)} or a tool's name "
            f"({', '.join(checked) or 'no tools given'}), not {tool_choice!r}."
        )
    return checked


def _check_text(what: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"{what} must be text (str) or None, not {type(value).__name__}.")


def _check_model(model: object) -> None:
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InputError(f"model must be a non-empty model name, not {model!r}.")


@attrs.frozen
class _Outcome:
    """The end of an exchange: the final reply and the tool turns that led to it."""

    reply: Reply
    steps: list[Turn]


def history_messages(turns: Iterable[Turn], *, tools: bool = True) -> list[Message]:
    """A dialogue's turns as the messages a chat backend receives (system turns left out).

    For a backend without tool support (``tools=False``) the tool turns are left out too,
    and an assistant turn that called tools keeps only its text: the dialogue then reads as
    the conversation in words.
    """
    out = []
    for turn in turns:
        if turn.role == "system":
            continue
        if not tools and (turn.role == "tool" or turn.tool_calls):
            if turn.role == "assistant" and turn.content:
                out.append(Message("assistant", turn.content))
            continue
        out.append(turn.to_message())
    return out


class AsyncSession:
    """One conversation, async. See the module docstring; every argument is keyword-only.

    Args:
        context: the :class:`~hypotez.Context` whose backends this session borrows (shared by
            many sessions); without one the session makes its own from ``settings``, the
            backend choices and ``plugin_manager``, and closes it with the session.
        chat, sentiment, storage, vision, trainer: a backend by name (storage: a URL) or as an
            object; ``None`` uses the context's default; ``sentiment=False`` analyses nothing.
        dialogue_id: continue this stored dialogue. It is read at the first ``ask`` (or now,
            with ``await session.resume(id)``), so creating a session never waits on storage.
        system: the system instruction (beats the one stored with a resumed dialogue).
        model: the model name for every request (backend default when ``None``).
        assistant: a preset (by id from storage, or an :class:`~hypotez.Assistant`) whose
            instructions and model apply.
        store: keep the dialogue in storage (``False``: in memory only).

    **Concurrency.** A session is one conversation: concurrent ``ask``/``stream`` calls on one
    session object run one after another, in call order, each seeing the exchanges before it.
    Sessions on the same dialogue (other requests, other processes) never lose or tear a turn;
    each ``ask`` reads the dialogue as stored when it starts.

    **Cancellation.** A cancelled ``ask`` stores its exchange once or not at all: cancelled
    before the reply arrived, nothing is stored; after, the storing finishes anyway, and asking
    the same message again returns that stored reply instead of paying for (and storing) it
    twice.
    """

    def __init__(
        self,
        *,
        context: Context | None = None,
        settings: Settings | None = None,
        chat: Any = None,
        sentiment: Any = None,
        storage: Any = None,
        vision: Any = None,
        trainer: Any = None,
        dialogue_id: str | None = None,
        system: str | None = None,
        model: str | None = None,
        assistant: str | Assistant | None = None,
        store: bool = True,
        plugin_manager: PluginManager | None = None,
    ) -> None:
        if dialogue_id is not None:
            validate_id(dialogue_id)
        _check_text("system", system)
        _check_model(model)
        if assistant is not None and not isinstance(assistant, str | Assistant):
            raise InputError(
                f"assistant must be an assistant id (str) or a hypotez.Assistant, not "
                f"{type(assistant).__name__}."
            )
        if not isinstance(store, bool):
            raise InputError(f"store must be True or False, not {store!r}.")
        if sentiment is True:  # "on", with the configured (or best available) analyzer
            sentiment = None
        choices = {
            "chat": chat,
            "sentiment": sentiment,
            "storage": storage,
            "vision": vision,
            "trainer": trainer,
        }
        self._owns_context = context is None
        if context is None:
            context = Context(
                settings,
                plugin_manager=plugin_manager,
                **{k: (None if v is False else v) for k, v in choices.items()},
            )
            self._choices: dict[str, Any] = dict.fromkeys(choices)
        else:
            if not isinstance(context, Context):
                raise InputError(
                    f"context must be a hypotez.Context, not {type(context).__name__}."
                )
            if settings is not None or plugin_manager is not None:
                raise InputError(
                    "A session on a shared context uses the context's settings and plugins: "
                    "pass settings= and plugin_manager= to hypotez.Context instead."
                )
            for capability, choice in choices.items():
                check_choice(capability, choice)
            self._choices = {k: (None if v is False else v) for k, v in choices.items()}
        self.context = context
        self.sentiment_enabled = sentiment is not False
        self.system = system
        self._system_given = system is not None
        self.model = model or context.settings.model
        self.store = store
        self.assistant: Assistant | None = assistant if isinstance(assistant, Assistant) else None
        self._assistant_id = assistant if isinstance(assistant, str) else None
        if self.assistant is not None:
            self._apply(self.assistant)
        self.dialogue_id: str | None = dialogue_id
        self._adopted = dialogue_id is None  # the stored header's system is read once
        #: The dialogue's turns as of the last ask (or resume): the history the next ask extends.
        self.history: list[Turn] = []
        #: The last reply received, kept even when storing it failed (it may have been paid for).
        self.last_reply: Reply | None = None
        self._turn_lock: Any = None  # asyncio.Lock, made in the loop that first needs it
        self._inflight: Any = None  # the storing step of the last ask, if it is still running
        self._unclaimed: tuple[str, Reply] | None = None  # stored by an ask that was cancelled

    @property
    def settings(self) -> Settings:
        """The settings of the session's context."""
        return self.context.settings

    # -- backends ------------------------------------------------------------------------
    async def get(self, capability: str, name: str | None = None) -> Any:
        """This session's backend of ``capability`` (or the one named ``name``), built in a
        worker thread the first time it is needed."""
        if name is None:
            choice = self._choices.get(capability)
            if choice is not None and not isinstance(choice, str):
                return choice
            name = choice
        return await self.context.aget(capability, name)

    async def _analyzer(self, name: str | None) -> Any:
        if name is None and not self.sentiment_enabled:
            raise InputError("Sentiment is switched off for this session (sentiment=False).")
        return await self.get("sentiment", name)

    # -- dialogue state ------------------------------------------------------------------
    async def resume(self, dialogue_id: str) -> Dialogue:
        """Continue a stored dialogue now: its turns and system instruction become this
        session's (an explicit ``system=`` still wins). Unknown id: DialogueNotFoundError."""
        validate_id(dialogue_id)
        storage = await self.get("storage")
        dialogue: Dialogue = await storage.aload_dialogue(dialogue_id)
        self.dialogue_id, self._adopted = dialogue_id, False
        self._adopt(dialogue)
        return dialogue

    def new_dialogue(self, *, system: str | None = None) -> None:
        """Start afresh; the next ``ask()`` creates a new stored dialogue."""
        _check_text("system", system)
        self.dialogue_id, self._adopted, self.history = None, True, []
        if system is not None:
            self.system, self._system_given = system, True

    def _adopt(self, dialogue: Dialogue) -> None:
        self.history = list(dialogue.turns)
        if not self._adopted:
            self._adopted = True
            if not self._system_given and dialogue.info.system is not None:
                self.system = dialogue.info.system

    async def load_dialogue(self) -> Dialogue:
        """The current dialogue as stored (or as kept in memory when ``store=False``)."""
        if self.dialogue_id is None:
            return Dialogue(DialogueInfo(id="unsaved", system=self.system), [])
        if self.store:
            storage = await self.get("storage")
            return await storage.aload_dialogue(self.dialogue_id)
        return Dialogue(DialogueInfo(id=self.dialogue_id, system=self.system), self.history)

    async def use_assistant(self, assistant: str | Assistant) -> Assistant:
        """Apply a preset: its instructions become the system message, its model the model."""
        if isinstance(assistant, str):
            known = {a.id: a for a in await self.list_assistants()}
            if assistant not in known:
                raise InputError(
                    f"Unknown assistant {assistant!r}. Known: "
                    f"{', '.join(sorted(known)) or 'none'}. Add one with `hypotez assistants add`."
                )
            assistant = known[assistant]
        elif not isinstance(assistant, Assistant):
            raise InputError(
                f"assistant must be an id or a hypotez.Assistant, not {type(assistant).__name__}."
            )
        self._assistant_id = None
        self._apply(assistant)
        return assistant

    def _apply(self, assistant: Assistant) -> None:
        self.assistant = assistant
        if assistant.instructions:
            self.system, self._system_given = assistant.instructions, True
        if assistant.model:
            self.model = assistant.model

    async def list_assistants(self) -> list[Assistant]:
        """The assistant presets in the session's storage, by id."""
        storage = await self.get("storage")
        return await storage.alist_assistants()

    # -- asking --------------------------------------------------------------------------
    def _turn(self) -> Any:
        """The lock that makes one session's asks take turns (made in the running loop)."""
        if self._turn_lock is None:
            import asyncio

            self._turn_lock = asyncio.Lock()
        return self._turn_lock

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
        tools: Iterable[Callable[..., Any]] | None = None,
        tool_choice: str | None = None,
        max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
        max_parallel_tool_calls: int = DEFAULT_MAX_PARALLEL_TOOL_CALLS,
    ) -> Reply:
        """Send ``message`` with the dialogue as stored; store both turns; return the reply.

        With ``tools`` (functions or :class:`hypotez.Tool` objects) the model may call them:
        the session runs each round of calls (at most ``max_parallel_tool_calls`` per round,
        together), sends the results back, and repeats until the model answers in words, for
        at most ``max_tool_rounds`` rounds (then it is asked to answer without tools). A
        tool that raises, an unknown tool and invalid arguments become error results the model
        reads. The calls and results are stored as turns between the message and the reply,
        in the same atomic write, and listed in ``reply.tool_results``. ``tool_choice``:
        ``"auto"`` (default), ``"none"``, ``"required"`` or a tool's name; ``"required"`` and
        a name apply until a tool has been called, so that the model can then answer.
        """
        request = _check_request(
            message,
            system=system,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
            analyzer=analyzer,
            extra=extra,
            tools=tools,
            tool_choice=tool_choice,
            max_tool_rounds=max_tool_rounds,
            max_parallel_tool_calls=max_parallel_tool_calls,
        )
        async with self._turn():
            stored = await self._begin(request)
            if isinstance(stored, Reply):
                return stored
            chat, messages, options = stored
            async for event in self._converse(request, chat, messages, options, streaming=False):
                if isinstance(event, _Outcome):
                    return await self._finish(request, event.reply, chat, event.steps)
            raise AssertionError("unreachable")  # pragma: no cover - _converse ends in an outcome

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
        tools: Iterable[Callable[..., Any]] | None = None,
        tool_choice: str | None = None,
        max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
        max_parallel_tool_calls: int = DEFAULT_MAX_PARALLEL_TOOL_CALLS,
    ) -> AsyncIterator[ReplyChunk]:
        """Like :meth:`ask`, yielding the reply as it arrives; the last chunk has the whole
        :class:`~hypotez.Reply` (with its sentiment), once it is stored. With tools, a chunk
        with ``tool_call`` set comes as each tool starts, one with ``tool_result`` as it ends."""
        request = _check_request(
            message,
            system=system,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_schema=json_schema,
            analyzer=analyzer,
            extra=extra,
            tools=tools,
            tool_choice=tool_choice,
            max_tool_rounds=max_tool_rounds,
            max_parallel_tool_calls=max_parallel_tool_calls,
        )
        async with self._turn():
            stored = await self._begin(request)
            if isinstance(stored, Reply):
                yield ReplyChunk(stored.text)
                yield ReplyChunk("", stored)
                return
            chat, messages, options = stored
            async for event in self._converse(request, chat, messages, options, streaming=True):
                if isinstance(event, _Outcome):
                    yield ReplyChunk(
                        "", await self._finish(request, event.reply, chat, event.steps)
                    )
                    return
                yield event

    async def _converse(
        self,
        request: _Request,
        chat: Any,
        messages: list[Message],
        options: ChatOptions,
        *,
        streaming: bool,
    ) -> AsyncIterator[ReplyChunk | _Outcome]:
        """The exchange, tool loop included: yields text deltas (when ``streaming``) and tool
        events, and last an :class:`_Outcome` with the final reply and the tool turns, which
        the caller stores. Nothing is stored here: an exchange that fails or is cancelled
        midway leaves the dialogue as it was."""
        from hypotez.tools import run_calls

        steps: list[Turn] = []
        results: list[ToolResult] = []
        rounds = 0
        while True:
            reply: Reply | None = None
            if streaming:
                async for chunk in chat.astream(messages, options):
                    # The backend's last chunk carries the whole reply, and may carry a delta.
                    if chunk.delta:
                        yield ReplyChunk(chunk.delta)
                    if chunk.reply is not None:
                        reply = chunk.reply
                if reply is None:
                    raise BackendError(
                        f"The chat backend {chat.name!r} ended its stream without a reply; "
                        "nothing was stored. Try again, or without streaming."
                    )
            else:
                reply = await chat.achat(messages, options)
            if reply.tool_calls and not request.tools:
                # Calls of tools this ask did not offer cannot be answered; storing them
                # unanswered would make the dialogue invalid for the next request.
                reply = attrs.evolve(reply, tool_calls=())
            if not reply.tool_calls:
                yield _Outcome(attrs.evolve(reply, tool_results=tuple(results)), steps)
                return
            if rounds >= request.max_tool_rounds:
                raise BackendError(
                    f"The model still called tools after {request.max_tool_rounds} round(s) "
                    f"of tool calls ({len(results)} call(s) ran) and being asked to answer "
                    "without tools; nothing was stored. Raise max_tool_rounds, or use a "
                    "model that follows tool_choice."
                )
            rounds += 1
            if not reply.backend:
                reply = attrs.evolve(reply, backend=chat.name)
            for call in reply.tool_calls:
                yield ReplyChunk("", tool_call=call)
            done = await run_calls(
                request.tools, reply.tool_calls, max_parallel=request.max_parallel_tool_calls
            )
            for result in done:
                yield ReplyChunk("", tool_result=result)
            asked = Turn.from_reply(reply)
            answers = [Turn.from_tool_result(r) for r in done]
            steps += [asked, *answers]
            results += done
            messages = [*messages, asked.to_message(), *(t.to_message() for t in answers)]
            if rounds >= request.max_tool_rounds:
                # The last request: the model must answer with what the tools told it.
                options = attrs.evolve(options, tool_choice="none")
            elif options.tool_choice not in (None, "auto", "none"):
                # "required" or a name forces a call; once made, the model may answer.
                options = attrs.evolve(options, tool_choice="auto")

    async def _begin(self, request: _Request) -> Reply | tuple[Any, list[Message], ChatOptions]:
        """Everything before the chat request: what can fail fails here, before a reply is
        paid for (unknown analyzer, missing extra, unreadable storage). Returns the stored reply
        instead when this repeats an ask that was cancelled after its exchange was stored."""
        if self._inflight is not None:  # a cancelled ask still storing: let it finish first
            inflight, self._inflight = self._inflight, None
            # Its error reaches nobody (its caller was cancelled); the reply is in last_reply.
            with contextlib.suppress(HypotezError):
                await inflight
        if self._unclaimed is not None:
            repeated, self._unclaimed = self._unclaimed, None
            if repeated[0] == request.message:
                return repeated[1]
        chat = await self.get("chat")
        tools_ok = bool(getattr(chat, "supports_tools", False))
        if request.tools and not tools_ok:
            raise InputError(
                f"The chat backend {chat.name!r} cannot call tools (its supports_tools is "
                "False): ask without tools, or choose a chat backend that supports them."
            )
        if self.sentiment_enabled or request.analyzer:
            await self._analyzer(request.analyzer)
        if self.store or (self.dialogue_id is not None and not self._adopted):
            storage = await self.get("storage")
            if self.dialogue_id is not None:
                # The dialogue as stored now: turns other sessions or processes appended count.
                self._adopt(await storage.aload_dialogue(self.dialogue_id))
            else:
                await storage.acheck()
        if self._assistant_id is not None:
            await self.use_assistant(self._assistant_id)
        instruction = request.system if request.system is not None else self.system
        messages = [Message("system", instruction)] if instruction else []
        messages.extend(history_messages(self.history, tools=tools_ok))
        messages.append(Message("user", request.message))
        options = ChatOptions(
            model=request.model or self.model,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            json_schema=request.json_schema,
            timeout=self.settings.timeout,
            extra=request.extra or {},
            tools=[tool.spec for tool in request.tools.values()],
            tool_choice=request.tool_choice,
        )
        return chat, messages, options

    async def _finish(
        self, request: _Request, reply: Reply, chat: Any, steps: Sequence[Turn] = ()
    ) -> Reply:
        """Analyse and store the exchange; shielded, so a cancellation cannot cut it in half."""
        import asyncio

        self.last_reply = reply  # kept if what follows fails: the reply may have been paid for
        if not reply.backend:
            reply = attrs.evolve(reply, backend=chat.name)
        task = asyncio.ensure_future(self._record(request, reply, steps))
        self._inflight = task
        try:
            stored = await asyncio.shield(task)
        except HypotezError as exc:
            exc.add_note(KEPT_NOTE)
            raise
        finally:
            if task.done():
                self._inflight = None
        self._unclaimed = None  # this ask returns its reply: nothing left to hand back
        return stored

    async def _record(self, request: _Request, reply: Reply, steps: Sequence[Turn]) -> Reply:
        sentiments: Sequence[Sentiment | None] = (None, None)
        if self.sentiment_enabled or request.analyzer:
            analyzer = await self._analyzer(request.analyzer)
            sentiments = await analyzer.aanalyze([request.message, reply.text])
        reply = reply.with_sentiment(sentiments[1])
        self.last_reply = reply
        turns = [
            Turn(
                role="user",
                content=request.message,
                created=request.asked,
                sentiment=sentiments[0],
                tools=[tool.spec for tool in request.tools.values()],
            ),
            *steps,
            Turn.from_reply(reply),
        ]
        if self.store:
            storage = await self.get("storage")
            if self.dialogue_id is None:
                info = DialogueInfo(
                    id=new_dialogue_id(),
                    system=self.system,
                    assistant_id=self.assistant.id if self.assistant else None,
                )
                await storage.acreate_dialogue(info)
                try:
                    await storage.aappend_turns(info.id, turns)
                except BaseException:
                    # Leave no empty dialogue behind: the next ask starts a new one.
                    with contextlib.suppress(Exception):
                        await storage.adelete_dialogue(info.id)
                    raise
                self.dialogue_id = info.id
            else:
                await storage.aappend_turns(self.dialogue_id, turns)
        elif self.dialogue_id is None:
            self.dialogue_id = new_dialogue_id()
        self.history.extend(turns)
        self._unclaimed = (request.message, reply)
        return reply

    # -- the other capabilities ------------------------------------------------------------
    async def analyze(
        self, texts: Sequence[str], *, analyzer: str | None = None
    ) -> list[Sentiment]:
        """Sentiment of each text, in order, with the session's analyzer or a named one."""
        texts = texts_of(texts)
        if analyzer is not None:
            check_choice("sentiment", analyzer)
        if not texts:
            return []
        return await (await self._analyzer(analyzer)).aanalyze(texts)

    async def describe_image(
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
        _check_text("prompt", prompt)
        _check_model(model)
        if json_schema is not None and not isinstance(json_schema, Mapping):
            raise InputError(
                f"json_schema must be a JSON schema as a dict, not {type(json_schema).__name__}."
            )
        checked = image if isinstance(image, Image) else await portal.to_thread(load_image, image)
        vision = await self.get("vision")
        return await vision.adescribe(
            checked, prompt, detail=detail, json_schema=json_schema, model=model
        )

    async def list_models(self) -> list[ModelInfo]:
        """The models the session's chat backend offers."""
        return await (await self.get("chat")).alist_models()

    # -- lifetime ------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the session's own context (a shared one stays open for its other sessions)."""
        if self._inflight is not None:
            with contextlib.suppress(Exception):
                await self._inflight
        if self._owns_context:
            await self.context.aclose()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _Forward:
    """A :class:`Session` attribute that is the :class:`AsyncSession`'s own."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, session: Any, owner: type | None = None) -> Any:
        if session is None:
            return self
        return getattr(session._async, self.name)

    def __set__(self, session: Any, value: Any) -> None:
        if self.name == "system":
            _check_text("system", value)
            session._async._system_given = value is not None
        elif self.name == "model":
            _check_model(value)
        setattr(session._async, self.name, value)


class Session:
    """The blocking facade of :class:`AsyncSession`: the same arguments, the same methods.

    Each method runs the async one on hypotez's portal loop and waits for it. Unlike the async
    session, a ``dialogue_id`` or ``assistant`` is read at once, so an unknown one fails here.
    Use it as a context manager to close its backends.
    """

    system = _Forward()
    model = _Forward()
    store = _Forward()
    assistant = _Forward()
    dialogue_id = _Forward()
    history = _Forward()
    last_reply = _Forward()
    sentiment_enabled = _Forward()
    context = _Forward()
    settings = _Forward()

    def __init__(self, **kwargs: Any) -> None:
        self._async = AsyncSession(**kwargs)
        try:
            if self._async.dialogue_id is not None:
                portal.run(self._async.resume(self._async.dialogue_id))
            if self._async._assistant_id is not None:
                portal.run(self._async.use_assistant(self._async._assistant_id))
        except BaseException:
            self.close()
            raise

    @property
    def async_session(self) -> AsyncSession:
        """The :class:`AsyncSession` behind this facade."""
        return self._async

    # -- backends (built in the calling thread on first use) ---------------------------------
    def _backend(self, capability: str, name: str | None = None) -> Any:
        if name is None:
            choice = self._async._choices.get(capability)
            if choice is not None and not isinstance(choice, str):
                return choice
            name = choice
        return self._async.context.get(capability, name)

    @property
    def chat_backend(self) -> Any:
        """The session's chat backend (built on first use, in this thread)."""
        return self._backend("chat")

    @property
    def storage(self) -> Any:
        """The session's storage (opened on first use)."""
        return self._backend("storage")

    @property
    def vision_backend(self) -> Any:
        """The session's vision backend (built on first use)."""
        return self._backend("vision")

    @property
    def trainer(self) -> Any:
        """The session's trainer (built on first use)."""
        return self._backend("trainer")

    @property
    def analyzer(self) -> Any:
        """The session's sentiment analyzer (built on first use)."""
        if not self._async.sentiment_enabled:
            raise InputError("Sentiment is switched off for this session (sentiment=False).")
        return self._backend("sentiment")

    def get_analyzer(self, name: str | None = None) -> Any:
        """The session's analyzer, or another one by name (built once, then shared)."""
        return self.analyzer if name is None else self._backend("sentiment", name)

    @property
    def dialogue(self) -> Dialogue:
        """The current dialogue as stored (or as kept in memory when ``store=False``)."""
        return portal.run(self._async.load_dialogue())

    # -- the async session's operations, blocking ----------------------------------------
    def ask(self, message: str, **options: Any) -> Reply:
        """See :meth:`AsyncSession.ask`."""
        return portal.run(self._async.ask(message, **options))

    def stream(self, message: str, **options: Any) -> Iterator[ReplyChunk]:
        """See :meth:`AsyncSession.stream`."""
        return portal.iterate(self._async.stream(message, **options))

    def analyze(self, texts: Sequence[str], *, analyzer: str | None = None) -> list[Sentiment]:
        """See :meth:`AsyncSession.analyze`."""
        return portal.run(self._async.analyze(texts, analyzer=analyzer))

    def describe_image(self, image: Any, prompt: str | None = None, **options: Any) -> Any:
        """See :meth:`AsyncSession.describe_image`."""
        return portal.run(self._async.describe_image(image, prompt, **options))

    def list_models(self) -> list[ModelInfo]:
        """See :meth:`AsyncSession.list_models`."""
        return portal.run(self._async.list_models())

    def list_assistants(self) -> list[Assistant]:
        """See :meth:`AsyncSession.list_assistants`."""
        return portal.run(self._async.list_assistants())

    def use_assistant(self, assistant: str | Assistant) -> Assistant:
        """See :meth:`AsyncSession.use_assistant`."""
        return portal.run(self._async.use_assistant(assistant))

    def resume(self, dialogue_id: str) -> Dialogue:
        """See :meth:`AsyncSession.resume`."""
        return portal.run(self._async.resume(dialogue_id))

    def new_dialogue(self, *, system: str | None = None) -> None:
        """See :meth:`AsyncSession.new_dialogue`."""
        self._async.new_dialogue(system=system)

    def close(self) -> None:
        """Close the session's own context and the backends it built."""
        portal.run(self._async.aclose())

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The data that crosses a boundary: between plugins, to storage, to the user.

Every class is a frozen attrs class. Whatever is stored has ``to_dict()`` / ``from_dict()`` giving
plain JSON types; stored envelopes carry :data:`SCHEMA_VERSION` so that a later release can read
(or refuse, loudly) what an earlier one wrote. ``raw`` fields hold a backend's own answer for the
caller's inspection and are never stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import attrs
from attrs import field, frozen
from hypotez.errors import InputError

SCHEMA_VERSION = 1

Role = Literal["system", "user", "assistant", "tool"]
#: ``tool``: the result of a tool call, answering an assistant message's ``tool_calls``.
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
Label = Literal["positive", "negative", "neutral"]
LABELS: tuple[str, ...] = ("positive", "negative", "neutral")

# Ids become file names and object keys: keep them to a safe alphabet so that no id can leave
# its folder or prefix ("..", "/", "\\", NUL, a leading dot are all impossible).
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def validate_id(value: str, kind: str = "dialogue") -> str:
    """Return ``value`` if it is a safe id, else raise :class:`InputError` naming it."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or ".." in value:
        raise InputError(
            f"Invalid {kind} id {value!r}: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit and without '..'."
        )
    return value


def now() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime) -> str:
    return value.isoformat()


def _parse_ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 timestamp, got {value!r}")
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _to_tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(items)


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


def _check_role(_inst: object, _attr: object, value: str) -> None:
    if value not in ROLES:
        raise InputError(f"Unknown message role {value!r}: use one of {', '.join(ROLES)}.")


def _check_content(_inst: object, _attr: object, value: str) -> None:
    # A stored turn whose content is not text would make its dialogue impossible to resume.
    if not isinstance(value, str):
        raise InputError(f"Message content must be text (str), not {type(value).__name__}.")


# Tool names as chat APIs accept them (and as a model can write them back).
_TOOL_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_tool_name(value: object) -> str:
    """Return ``value`` if it is a valid tool name, else raise :class:`InputError` naming it."""
    if not isinstance(value, str) or not _TOOL_NAME_RE.fullmatch(value):
        raise InputError(
            f"Invalid tool name {value!r}: use 1-64 letters, digits, '_' or '-' (chat APIs "
            "refuse other names). Pass name= to rename the tool."
        )
    return value


def _check_tool_name(_inst: object, _attr: object, value: str) -> None:
    check_tool_name(value)


def _check_call_id(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InputError(f"A tool call id must be non-empty text, not {value!r}.")


def _check_arguments(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str):
        raise InputError(
            f"Tool call arguments are kept as the JSON text the model wrote, not "
            f"{type(value).__name__}: pass json.dumps(arguments)."
        )


@frozen
class ToolCall:
    """One call of a tool that a model asked for.

    ``arguments`` is the JSON text exactly as the model wrote it (it may be invalid: the tool
    loop answers such a call with an error result instead of running the tool).
    """

    id: str = field(validator=_check_call_id)
    name: str = field(validator=attrs.validators.instance_of(str))
    arguments: str = field(default="{}", validator=_check_arguments)

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; :class:`InputError` saying what is wrong otherwise."""
        try:
            value = json.loads(self.arguments) if self.arguments.strip() else {}
        except (ValueError, RecursionError) as exc:
            raise InputError(
                f"The arguments of the call to {self.name!r} are not valid JSON ({exc}): "
                f"{self.arguments[:200]!r}."
            ) from None
        if not isinstance(value, dict):
            raise InputError(
                f"The arguments of the call to {self.name!r} must be a JSON object, not "
                f"{self.arguments[:200]!r}."
            )
        return value

    def to_dict(self) -> dict[str, Any]:
        """The chat-completions shape: ``{"id", "type": "function", "function": {...}}``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """From :meth:`to_dict`'s shape, or a flat ``{"id", "name", "arguments"}``; arguments
        given as an object are written as JSON text."""
        if not isinstance(data, Mapping):
            raise InputError(f"A tool call must be an object, not {type(data).__name__}.")
        function = data.get("function")
        inner = function if isinstance(function, Mapping) else data
        arguments = inner.get("arguments", "{}")
        if arguments is None:
            arguments = "{}"
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        return cls(id=data.get("id"), name=inner.get("name"), arguments=arguments)  # type: ignore[arg-type]


def _tool_calls(items: Iterable[ToolCall | Mapping[str, Any]] | None) -> tuple[ToolCall, ...]:
    return tuple(c if isinstance(c, ToolCall) else ToolCall.from_dict(c) for c in items or ())


def _frozen_schema(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return {"type": "object", "properties": {}}
    if not isinstance(value, Mapping):
        raise InputError(
            f"Tool parameters must be a JSON schema object, not {type(value).__name__}."
        )
    return dict(value)


@frozen
class ToolSpec:
    """What a model is told about one tool: its name, what it does, its parameters' schema.

    Backends receive these in :attr:`ChatOptions.tools`; they never run tools (the session
    does, see :mod:`hypotez.tools`).
    """

    name: str = field(validator=_check_tool_name)
    description: str = ""
    #: A JSON schema of the arguments object.
    parameters: Mapping[str, Any] = field(factory=dict, converter=_frozen_schema)

    def to_dict(self) -> dict[str, Any]:
        """The chat-completions shape: ``{"type": "function", "function": {...}}``."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = dict(self.parameters)
        return {"type": "function", "function": function}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolSpec:
        """From :meth:`to_dict`'s shape or a bare ``{"name", "description", "parameters"}``."""
        if not isinstance(data, Mapping):
            raise InputError(f"A tool spec must be an object, not {type(data).__name__}.")
        function = data.get("function")
        inner = function if isinstance(function, Mapping) else data
        return cls(
            name=inner.get("name"),  # type: ignore[arg-type]
            description=inner.get("description") or "",
            parameters=inner.get("parameters"),
        )


def _tool_specs(items: Iterable[ToolSpec | Mapping[str, Any]] | None) -> tuple[ToolSpec, ...]:
    return tuple(t if isinstance(t, ToolSpec) else ToolSpec.from_dict(t) for t in items or ())


@frozen
class ToolResult:
    """A tool call and what came of it: the tool's answer, or the error the model was shown."""

    call: ToolCall
    #: The text the model receives (the tool's return value as text, or the error message).
    content: str
    #: True when the tool was not run or failed (unknown tool, invalid arguments, an exception).
    is_error: bool = False


def _check_message(message: Any) -> None:
    if message.tool_calls and message.role != "assistant":
        raise InputError(f"Only assistant messages carry tool calls, not {message.role!r} ones.")
    if message.role == "tool" and not message.tool_call_id:
        raise InputError(
            "A tool message answers a tool call: give it the call's id (tool_call_id)."
        )


def _message_dict(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [c.to_dict() for c in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _content_of(data: Mapping[str, Any]) -> Any:
    content = data.get("content")
    # An assistant message that only calls tools has no content ("null" in the chat APIs).
    return "" if content is None and data.get("tool_calls") else data["content"]


@frozen
class Message:
    """One chat message as sent to a chat backend.

    An assistant message may carry ``tool_calls`` (its content is then often empty); a ``tool``
    message answers one of them, by ``tool_call_id``, and names the tool in ``name``.
    """

    role: str = field(validator=_check_role)
    content: str = field(validator=_check_content)
    tool_calls: tuple[ToolCall, ...] = field(converter=_tool_calls, factory=tuple)
    tool_call_id: str | None = None
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_message(self)

    def to_dict(self) -> dict[str, Any]:
        """``{"role", "content"}``, plus ``tool_calls``, ``tool_call_id``, ``name`` when set."""
        if not self.tool_calls and self.tool_call_id is None and self.name is None:
            return {"role": self.role, "content": self.content}
        return _message_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        return cls(
            role=data["role"],
            content=_content_of(data),
            tool_calls=data.get("tool_calls") or (),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
        )


def messages_from(items: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
    """Accept ``Message`` objects or ``{"role": ..., "content": ...}`` dicts."""
    return [m if isinstance(m, Message) else Message.from_dict(m) for m in items]


@frozen
class Usage:
    """Token counts a backend reports for one request (0 where it reports nothing)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Usage:
        data = data or {}
        return cls(
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            int(data.get("total_tokens", 0)),
        )


def _check_score(_inst: object, _attr: object, value: float) -> None:
    if not -1.0 <= value <= 1.0:
        raise InputError(f"Sentiment score {value!r} is outside [-1, 1].")


def _check_label(_inst: object, _attr: object, value: str) -> None:
    if value not in LABELS:
        raise InputError(f"Unknown sentiment label {value!r}: use one of {', '.join(LABELS)}.")


@frozen
class Sentiment:
    """The sentiment of one text: a label, a score in [-1, 1], and who said so."""

    label: str = field(validator=_check_label)
    score: float = field(converter=float, validator=_check_score)
    backend: str
    raw: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping, eq=False)

    @classmethod
    def from_score(
        cls,
        score: float,
        backend: str,
        raw: Mapping[str, Any] | None = None,
        *,
        neutral_band: float = 0.05,
    ) -> Sentiment:
        """Label a score: above ``neutral_band`` is positive, below ``-neutral_band`` negative."""
        # On the hot path of every analyzer: positional arguments, no extra copies.
        score = float(score)
        score = 1.0 if score > 1.0 else -1.0 if score < -1.0 else score
        if score != score:
            raise InputError(f"Sentiment score from {backend!r} is NaN.")
        label = (
            "positive"
            if score > neutral_band
            else "negative"
            if score < -neutral_band
            else "neutral"
        )
        # The label and score are valid by construction: skip the validators (about half the
        # cost of building a Sentiment, which matters for fast analyzers such as VADER).
        self = object.__new__(cls)
        _set = object.__setattr__
        _set(self, "label", label)
        _set(self, "score", score)
        _set(self, "backend", backend)
        _set(self, "raw", raw if raw is not None else {})  # the analyzer's own fresh dict
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "score": self.score,
            "backend": self.backend,
            "raw": dict(self.raw),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sentiment:
        return cls(data["label"], data["score"], data["backend"], data.get("raw") or {})


@frozen
class ChatOptions:
    """Per-request options. ``None`` means "the backend's default"."""

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    #: A JSON schema the reply must follow (structured output); the reply text is then JSON.
    json_schema: Mapping[str, Any] | None = None
    timeout: float | None = None
    #: Backend-specific extras, passed through untouched.
    extra: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    #: Tools the model may call (only for backends with ``supports_tools``); the reply then
    #: may carry :attr:`Reply.tool_calls` instead of (or with) text.
    tools: tuple[ToolSpec, ...] = field(converter=_tool_specs, factory=tuple)
    #: ``"auto"`` (the model decides; the default when tools are given), ``"none"`` (no call),
    #: ``"required"`` (at least one call) or a tool's name (a call of that tool).
    tool_choice: str | None = None


@frozen
class Reply:
    """What a chat backend answered."""

    text: str
    model: str
    usage: Usage = field(factory=Usage)
    finish_reason: str | None = None
    sentiment: Sentiment | None = None
    backend: str = ""
    raw: Any = field(default=None, eq=False, repr=False)
    #: The tools the model asked to call in this reply (a backend sets them; the session runs
    #: them, so a reply a session returns has none left).
    tool_calls: tuple[ToolCall, ...] = field(converter=_tool_calls, factory=tuple)
    #: Every tool call the session ran to reach this reply, in order, with its result.
    tool_results: tuple[ToolResult, ...] = field(converter=_to_tuple, factory=tuple)

    def with_sentiment(self, sentiment: Sentiment | None) -> Reply:
        return attrs.evolve(self, sentiment=sentiment)


@frozen
class ReplyChunk:
    """One piece of a streamed reply. The last chunk carries the complete :class:`Reply`.

    In a session's stream with tools, a chunk with ``tool_call`` set comes just before that
    tool runs, and one with ``tool_result`` just after (their ``delta`` is empty).
    """

    delta: str
    reply: Reply | None = None
    tool_call: ToolCall | None = None
    tool_result: ToolResult | None = None


@frozen
class ModelInfo:
    """A model a chat backend can use."""

    id: str
    backend: str = ""
    owned_by: str = ""
    description: str = ""


@frozen
class Turn:
    """One stored message of a dialogue, with what we learnt about it.

    Tool use is stored as turns too: an assistant turn whose ``tool_calls`` the session ran,
    then one ``tool`` turn per call (``tool_call_id``, the tool's ``name``, its result as
    ``content``). A user turn of an ask that offered tools keeps their specs in ``tools``, so
    that the exchange can become a fine-tuning example with its tools.
    """

    role: str = field(validator=_check_role)
    content: str = field(validator=_check_content)
    created: datetime = field(factory=now)
    model: str | None = None
    sentiment: Sentiment | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    meta: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    tool_calls: tuple[ToolCall, ...] = field(converter=_tool_calls, factory=tuple)
    tool_call_id: str | None = None
    name: str | None = None
    tools: tuple[ToolSpec, ...] = field(converter=_tool_specs, factory=tuple)

    def __attrs_post_init__(self) -> None:
        _check_message(self)

    def to_message(self) -> Message:
        if not self.tool_calls and self.tool_call_id is None and self.name is None:
            return Message(self.role, self.content)
        return Message(self.role, self.content, self.tool_calls, self.tool_call_id, self.name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "role": self.role,
            "content": self.content,
            "created": _ts(self.created),
        }
        if self.model is not None:
            out["model"] = self.model
        if self.sentiment is not None:
            out["sentiment"] = self.sentiment.to_dict()
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.finish_reason is not None:
            out["finish_reason"] = self.finish_reason
        if self.meta:
            out["meta"] = dict(self.meta)
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        if self.tools:
            out["tools"] = [t.to_dict() for t in self.tools]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Turn:
        return cls(
            role=data["role"],
            content=data["content"],
            created=_parse_ts(data["created"]),
            model=data.get("model"),
            sentiment=Sentiment.from_dict(data["sentiment"]) if data.get("sentiment") else None,
            usage=Usage.from_dict(data["usage"]) if data.get("usage") else None,
            finish_reason=data.get("finish_reason"),
            meta=data.get("meta") or {},
            tool_calls=data.get("tool_calls") or (),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            tools=data.get("tools") or (),
        )

    @classmethod
    def from_reply(cls, reply: Reply) -> Turn:
        return cls(
            role="assistant",
            content=reply.text,
            model=reply.model,
            sentiment=reply.sentiment,
            usage=reply.usage,
            finish_reason=reply.finish_reason,
            meta={"backend": reply.backend} if reply.backend else {},
            tool_calls=reply.tool_calls,
        )

    @classmethod
    def from_tool_result(cls, result: ToolResult) -> Turn:
        """The ``tool`` turn answering ``result.call``."""
        return cls(
            role="tool",
            content=result.content,
            tool_call_id=result.call.id,
            name=result.call.name,
            meta={"error": True} if result.is_error else {},
        )


def tools_of(turns: Iterable[Turn]) -> tuple[ToolSpec, ...]:
    """The tools offered in ``turns`` (by the asks whose user turns carry them), one per name,
    the latest spec of a name winning, in the order they were first offered."""
    found: dict[str, ToolSpec] = {}
    for turn in turns:
        for spec in turn.tools:
            found[spec.name] = spec
    return tuple(found.values())


@frozen
class DialogueInfo:
    """A dialogue's header: everything but its turns."""

    id: str = field(validator=lambda _i, _a, v: validate_id(v))
    created: datetime = field(factory=now)
    title: str = ""
    system: str | None = None
    assistant_id: str | None = None
    meta: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "id": self.id,
            "created": _ts(self.created),
            "title": self.title,
            "system": self.system,
            "assistant_id": self.assistant_id,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DialogueInfo:
        check_schema(data)
        return cls(
            id=data["id"],
            created=_parse_ts(data["created"]),
            title=data.get("title") or "",
            system=data.get("system"),
            assistant_id=data.get("assistant_id"),
            meta=data.get("meta") or {},
        )


@frozen
class Dialogue:
    """A whole dialogue: its header and its turns in order."""

    info: DialogueInfo
    turns: tuple[Turn, ...] = field(converter=_to_tuple, factory=tuple)

    @property
    def id(self) -> str:
        return self.info.id

    def messages(self, *, system: bool = True) -> list[Message]:
        """The dialogue as chat messages, led by its system instruction when it has one."""
        out = [Message("system", self.info.system)] if system and self.info.system else []
        out.extend(t.to_message() for t in self.turns if t.role != "system" or not system)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "turns": [t.to_dict() for t in self.turns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Dialogue:
        return cls(DialogueInfo.from_dict(data), [Turn.from_dict(t) for t in data.get("turns", [])])


def check_schema(data: Mapping[str, Any]) -> None:
    """Refuse data written by a newer hypotez instead of misreading it."""
    version = data.get("schema", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"schema version {version!r} is not a version number hypotez writes (a whole "
            "number from 1): the data was not written by hypotez, or was edited by hand"
        )
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"schema version {version} is newer than this hypotez understands "
            f"({SCHEMA_VERSION}); upgrade hypotez to read it"
        )


@frozen
class ImageDescription:
    """What a vision backend said about one image."""

    text: str
    backend: str
    model: str = ""
    #: (label, probability) pairs, for classifiers; empty for captioning models.
    labels: tuple[tuple[str, float], ...] = field(converter=_to_tuple, factory=tuple)
    #: The parsed JSON when JSON output was asked for.
    data: Any = None
    usage: Usage | None = None
    raw: Any = field(default=None, eq=False, repr=False)


@frozen
class TrainingExample:
    """One chat fine-tuning example: ``{"messages": [...]}``, plus ``"tools"`` (the tools the
    model could call) when its messages use tools."""

    messages: tuple[Message, ...] = field(converter=_to_tuple)
    tools: tuple[ToolSpec, ...] = field(converter=_tool_specs, factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"messages": [example_message(m) for m in self.messages]}
        if self.tools:
            out["tools"] = [t.to_dict() for t in self.tools]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingExample:
        return cls(messages_from(data["messages"]), data.get("tools") or ())


def example_message(message: Message) -> dict[str, Any]:
    """A message as chat fine-tuning files hold it: an assistant message that only calls
    tools has no ``content`` key, and a tool result answers by ``tool_call_id`` alone."""
    out = message.to_dict()
    if message.tool_calls and not message.content:
        del out["content"]
    if message.role == "tool":
        out.pop("name", None)
    return out


@frozen
class JobRecord:
    """A fine-tuning job as hypotez remembers it. Refreshed whenever its status is asked."""

    id: str
    description: str = ""
    created: datetime = field(factory=now)
    model: str = ""
    status: str = "unknown"
    backend: str = ""
    training_file: str | None = None
    validation_file: str | None = None
    fine_tuned_model: str | None = None
    meta: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)

    def to_dict(self) -> dict[str, Any]:
        out = attrs.asdict(self, recurse=False)
        out["created"] = _ts(self.created)
        out["meta"] = dict(self.meta)
        return {"schema": SCHEMA_VERSION, **out}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRecord:
        check_schema(data)
        fields = {f.name for f in attrs.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["created"] = _parse_ts(data["created"])
        return cls(**kwargs)


@frozen
class Assistant:
    """A local assistant preset: a name, instructions and optionally a model."""

    id: str = field(validator=lambda _i, _a, v: validate_id(v, "assistant"))
    name: str
    instructions: str = ""
    model: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, **attrs.asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assistant:
        check_schema(data)
        return cls(
            id=data["id"],
            name=data.get("name") or data["id"],
            instructions=data.get("instructions") or "",
            model=data.get("model"),
            description=data.get("description") or "",
        )


@frozen
class TrainingLimits:
    """What a trainer accepts, so that data is checked before anything is submitted.

    A trainer states its own (:meth:`hypotez.Trainer.limits`); core's validation applies them.
    """

    #: Fewer examples than this is an error (the trainer would refuse the job).
    min_examples: int = 1
    #: Tokens per example, counted by the trainer's own counter; ``None``: no length check.
    max_tokens_per_example: int | None = None
    #: The tokenizer's name, shown in reports (``"o200k_base"``, ``"SmolLM2-135M"``...).
    tokenizer: str = ""
    #: What the user should know before training here (deadlines, limits), shown in reports.
    notices: tuple[str, ...] = field(converter=_to_tuple, factory=tuple)


@frozen
class CostEstimate:
    """Tokens billed and the estimated price of one training run (a trainer computes it)."""

    model: str
    epochs: int
    #: True when ``epochs`` came from the trainer's default rule, False when the caller fixed it.
    epochs_auto: bool
    #: Tokens billed per epoch (each example counted up to the trainer's limit).
    billing_tokens_per_epoch: int
    #: USD per 1M billed tokens; ``None`` when unknown (no cost figure rather than a wrong one).
    price_per_million: float | None = None
    #: Where the number of epochs comes from when the caller fixed none (shown in reports).
    epochs_rule: str = "the trainer's default rule"

    @property
    def billed_tokens(self) -> int:
        return self.epochs * self.billing_tokens_per_epoch

    @property
    def cost_usd(self) -> float | None:
        if self.price_per_million is None:
            return None
        return self.billed_tokens * self.price_per_million / 1_000_000

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "epochs": self.epochs,
            "epochs_auto": self.epochs_auto,
            "billing_tokens_per_epoch": self.billing_tokens_per_epoch,
            "billed_tokens": self.billed_tokens,
            "price_per_million": self.price_per_million,
            "cost_usd": self.cost_usd,
        }

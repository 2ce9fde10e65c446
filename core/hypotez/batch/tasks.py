"""What a batch job does to each row: ``sentiment``, ``ask`` or ``describe``.

A task is plain, picklable data (its name and options): an engine may rebuild it in another
process or on another machine with :func:`make_task` from :meth:`Task.spec`, and run it there on
a :class:`hypotez.Context` built from the same settings. Backends are never pickled; each
worker builds its own, once, through its context.

Each task turns a list of :class:`Row` into one result per row, in order, and never raises for a
bad row: a refused request, an unreadable image or an empty text becomes that row's ``error``.
Results are plain dicts with the task's :attr:`Task.fields` plus the common ones
(``id``, ``backend``, ``model``, ``elapsed_ms``, ``error``): exactly the rows of the output file.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs
from hypotez.errors import HypotezError, InputError

#: Output columns every task has, around its own: (name, type).
HEAD: tuple[tuple[str, str], ...] = (("id", "id"),)
TAIL: tuple[tuple[str, str], ...] = (
    ("backend", "string"),
    ("model", "string"),
    ("elapsed_ms", "float"),
    ("error", "string"),
)


@attrs.frozen
class Row:
    """One input row: its position (1-based), its id, and the value the task works on."""

    number: int
    id: str | int
    value: Any

    @property
    def key(self) -> str:
        """The id as text: what resuming matches finished rows by."""
        return str(self.id)


def error_text(exc: BaseException) -> str:
    """A row's ``error``: hypotez's own message, or the exception's type and message."""
    if isinstance(exc, HypotezError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Task(abc.ABC):
    """A kind of batch work. Subclasses set the class attributes and implement :meth:`arun`."""

    #: The task's name on the command line (``hypotez batch run NAME ...``).
    name: ClassVar[str]
    #: The input column read when the user names none.
    column: ClassVar[str]
    #: The capability whose backend does the work, and the option naming that backend.
    capability: ClassVar[str]
    #: The task's own output columns: (name, type), type one of string, float, int, labels.
    fields: ClassVar[tuple[tuple[str, str], ...]]
    #: Rows per call when the backend takes batches (sentiment), else 1.
    batch_size: ClassVar[int] = 1

    @property
    def backend_name(self) -> str | None:
        """The backend named for this task (None: the configured default)."""
        return None

    def spec(self) -> dict[str, Any]:
        """The task as JSON-able data: ``make_task(**spec)`` rebuilds it."""
        return {"name": self.name, **self.options()}

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """The task's options as JSON-able data (what makes two jobs the same job)."""

    def columns(self) -> tuple[tuple[str, str], ...]:
        """Every output column, in order: id, the task's fields, backend, model, timing, error."""
        return (*HEAD, *self.fields, *TAIL)

    def check(self, value: Any) -> str | None:
        """Why ``value`` cannot be worked on (an error for its row), or None. Cheap: it runs
        for every row before anything is sent to a backend."""
        if value is None:
            return f"the row has no {self.column!r} value"
        if not isinstance(value, str):
            return f"the {self.column!r} value is {type(value).__name__}, not text"
        if not value.strip():
            return f"the {self.column!r} value is empty"
        return None

    def result(self, row: Row, **fields: Any) -> dict[str, Any]:
        """A complete output row for ``row``: every column present, missing ones None."""
        out: dict[str, Any] = {name: None for name, _ in self.columns()}
        out.update(fields)
        out["id"] = row.id
        return out

    def failed(self, row: Row, error: str | BaseException, **fields: Any) -> dict[str, Any]:
        """The output row of a row that failed."""
        message = error if isinstance(error, str) else error_text(error)
        return self.result(row, error=message, **fields)

    async def backend(self, context: Any) -> Any:
        """The backend this task uses, from ``context`` (built once there)."""
        return await context.aget(self.capability, self.backend_name)

    @abc.abstractmethod
    async def arun(self, context: Any, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """One output row per row, in order. Never raises for one row's problem."""


class _RowByRow(Task):
    """A task whose rows are independent requests: one backend call per row, all together
    (the engine bounds how many rows it hands over at once)."""

    model: str | None

    async def arun(self, context: Any, rows: Sequence[Row]) -> list[dict[str, Any]]:
        import asyncio

        return list(await asyncio.gather(*(self._timed(context, row) for row in rows)))

    async def _timed(self, context: Any, row: Row) -> dict[str, Any]:
        start = time.perf_counter()
        backend = None
        try:
            backend = await self.backend(context)
            fields = await self._one(context, backend, row)
        except Exception as exc:
            return self.failed(
                row,
                exc,
                backend=getattr(backend, "name", None),
                model=self.model,
                elapsed_ms=(time.perf_counter() - start) * 1000,
            )
        return self.result(row, **fields, elapsed_ms=(time.perf_counter() - start) * 1000)

    @abc.abstractmethod
    async def _one(self, context: Any, backend: Any, row: Row) -> dict[str, Any]:
        """The output fields of ``row`` (the timing is added); raises for a failed row."""


def _model_of(backend: Any, raw: Mapping[str, Any] | None = None) -> str | None:
    if raw and isinstance(raw.get("model"), str):
        return str(raw["model"])
    model = getattr(backend, "model", None)
    return model if isinstance(model, str) and model else None


def _check_name(what: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty name, not {value!r}.")
    return value


@attrs.frozen
class SentimentTask(Task):
    """The sentiment of a text per row: ``label`` and ``score``, with any analyzer.

    Rows go to the analyzer in batches of ``batch_size`` (one ``aanalyze`` call each); if a
    batch fails, its rows are retried one by one so that only the bad ones become errors.
    """

    name: ClassVar[str] = "sentiment"
    column: ClassVar[str] = "text"
    capability: ClassVar[str] = "sentiment"
    fields: ClassVar[tuple[tuple[str, str], ...]] = (("label", "string"), ("score", "float"))
    batch_size: ClassVar[int] = 64

    analyzer: str | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        _check_name("analyzer", self.analyzer)

    @property
    def backend_name(self) -> str | None:
        return self.analyzer

    def options(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer}

    async def arun(self, context: Any, rows: Sequence[Row]) -> list[dict[str, Any]]:
        if not rows:
            return []
        try:
            analyzer = await self.backend(context)
        except Exception as exc:  # no such analyzer, a missing library: every row says so
            return [self.failed(row, exc) for row in rows]
        texts = [row.value for row in rows]
        start = time.perf_counter()
        try:
            found = await analyzer.aanalyze(texts)
            if len(found) != len(texts):
                raise InputError(
                    f"The analyzer {analyzer.name!r} returned {len(found)} results for "
                    f"{len(texts)} texts."
                )
        except Exception as exc:
            if len(rows) == 1:
                return [self.failed(rows[0], exc, backend=analyzer.name)]
            out = []
            for row in rows:  # find the bad row(s); the others still get their result
                out.extend(await self.arun(context, [row]))
            return out
        share = (time.perf_counter() - start) * 1000 / len(rows)
        return [
            self.result(
                row,
                label=s.label,
                score=s.score,
                backend=s.backend or analyzer.name,
                model=_model_of(analyzer, s.raw),
                elapsed_ms=share,
            )
            for row, s in zip(rows, found, strict=True)
        ]


def _check_options(
    temperature: Any, max_tokens: Any, json_schema: Any, model: Any, system: Any
) -> None:
    from hypotez.session import check_generation

    check_generation(temperature, max_tokens, json_schema)
    _check_name("model", model)
    if system is not None and not isinstance(system, str):
        raise InputError(f"system must be text, not {type(system).__name__}.")


@attrs.frozen
class AskTask(_RowByRow):
    """A prompt per row, each its own one-turn exchange with the chat backend.

    Options: ``chat`` (backend), ``model``, ``system``, ``temperature``, ``max_tokens``,
    ``json_schema`` (the reply is then JSON text), and ``store`` (keep each exchange as a stored
    dialogue; its id goes in the ``dialogue_id`` column).
    """

    name: ClassVar[str] = "ask"
    column: ClassVar[str] = "prompt"
    capability: ClassVar[str] = "chat"
    fields: ClassVar[tuple[tuple[str, str], ...]] = (
        ("text", "string"),
        ("finish_reason", "string"),
        ("prompt_tokens", "int"),
        ("completion_tokens", "int"),
        ("dialogue_id", "string"),
    )

    chat: str | None = None
    model: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    json_schema: Mapping[str, Any] | None = attrs.field(
        default=None, converter=lambda v: dict(v) if isinstance(v, Mapping) else v
    )
    store: bool = False

    def __attrs_post_init__(self) -> None:
        _check_name("chat", self.chat)
        _check_options(self.temperature, self.max_tokens, self.json_schema, self.model, self.system)
        if not isinstance(self.store, bool):
            raise InputError(f"store must be True or False, not {self.store!r}.")

    @property
    def backend_name(self) -> str | None:
        return self.chat

    def options(self) -> dict[str, Any]:
        return {
            "chat": self.chat,
            "model": self.model,
            "system": self.system,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_schema": self.json_schema,
            "store": self.store,
        }

    async def _one(self, context: Any, backend: Any, row: Row) -> dict[str, Any]:
        from hypotez.session import AsyncSession

        session = AsyncSession(
            context=context,
            chat=backend,
            sentiment=False,
            store=self.store,
            system=self.system,
            model=self.model,
        )
        reply = await session.ask(
            row.value,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            json_schema=self.json_schema,
        )
        return {
            "text": reply.text,
            "finish_reason": reply.finish_reason,
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
            "dialogue_id": session.dialogue_id if self.store else None,
            "backend": reply.backend or backend.name,
            "model": reply.model or None,
        }


@attrs.frozen
class DescribeTask(_RowByRow):
    """An image per row (a path, relative to the input file's folder, or an http(s) URL).

    Options: ``vision`` (backend), ``prompt``, ``detail``, ``json_schema``, ``model``. An image
    that cannot be read, is not an image or is too large becomes an error row.
    """

    name: ClassVar[str] = "describe"
    column: ClassVar[str] = "image"
    capability: ClassVar[str] = "vision"
    fields: ClassVar[tuple[tuple[str, str], ...]] = (
        ("text", "string"),
        ("labels", "labels"),
        ("prompt_tokens", "int"),
        ("completion_tokens", "int"),
    )

    vision: str | None = None
    prompt: str | None = None
    detail: str = "auto"
    json_schema: Mapping[str, Any] | None = attrs.field(
        default=None, converter=lambda v: dict(v) if isinstance(v, Mapping) else v
    )
    model: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_name("vision", self.vision)
        if self.detail not in ("auto", "low", "high"):
            raise InputError(f"detail must be 'auto', 'low' or 'high', not {self.detail!r}.")
        _check_options(None, None, self.json_schema, self.model, self.prompt)

    @property
    def backend_name(self) -> str | None:
        return self.vision

    def options(self) -> dict[str, Any]:
        return {
            "vision": self.vision,
            "prompt": self.prompt,
            "detail": self.detail,
            "json_schema": self.json_schema,
            "model": self.model,
        }

    async def _one(self, context: Any, backend: Any, row: Row) -> dict[str, Any]:
        from hypotez import portal
        from hypotez.images import load_image

        image = await portal.to_thread(load_image, row.value)
        found = await backend.adescribe(
            image,
            self.prompt,
            detail=self.detail,
            json_schema=self.json_schema,
            model=self.model,
        )
        usage = found.usage
        return {
            "text": found.text,
            "labels": [{"label": label, "probability": float(p)} for label, p in found.labels],
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "backend": found.backend or backend.name,
            "model": found.model or None,
        }


TASKS: dict[str, type[Task]] = {t.name: t for t in (SentimentTask, AskTask, DescribeTask)}


def make_task(name: str, **options: Any) -> Task:
    """A task by name with its options; unknown names or options are an :class:`InputError`."""
    cls = TASKS.get(name)
    if cls is None:
        raise InputError(f"Unknown batch task {name!r}: use one of {', '.join(TASKS)}.")
    known = {f.name for f in attrs.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(
            f"The {name} task has no option {', '.join(map(repr, unknown))}: its options are "
            f"{', '.join(sorted(known)) or 'none'}."
        )
    return cls(**options)


__all__ = [
    "TASKS",
    "AskTask",
    "DescribeTask",
    "Row",
    "SentimentTask",
    "Task",
    "error_text",
    "make_task",
]

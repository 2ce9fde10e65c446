"""Tools: Python functions a model may call while it answers.

A :class:`Tool` is a function and its :class:`~hypotez.ToolSpec` (name, description, JSON schema
of the arguments). Built from a plain function, the schema comes from the type hints (through
pydantic, so ``Annotated[..., Field(...)]``, ``Literal``, enums, dataclasses and pydantic models
work) and the descriptions from the docstring (Google, NumPy or reST style, read with
docstring-parser)::

    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        \"\"\"The current weather in a city.

        Args:
            city: The city's name.
        \"\"\"

    hypotez.Tool(get_weather).spec.parameters  # {"type": "object", "properties": {...}}

``Tool(function, parameters=schema)`` takes an explicit schema instead (arguments are then
checked with jsonschema), and :meth:`Tool.from_spec` a chat-completions tool dict.

:func:`run_calls` runs one round of calls the way the session's tool loop does: at most
``max_parallel`` calls, concurrently (blocking functions in worker threads), and it never
raises for a tool's fault: a call of an unknown tool, with arguments that are not valid, or
whose function raises gets an error result that the model reads and can act on.

Nothing here is imported by ``import hypotez``; pydantic, docstring-parser and jsonschema are
imported when the first tool is built (``pip install 'hypotez[tools]'``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hypotez import portal
from hypotez.errors import InputError, MissingDependencyError
from hypotez.models import ToolCall, ToolResult, ToolSpec, check_tool_name

log = logging.getLogger("hypotez.tools")

INSTALL = "pip install 'hypotez[tools]'"
#: The most characters of a tool's result the model receives (a longer result is cut, and the
#: cut is said). Tools that return whole files would otherwise fill the context window.
MAX_RESULT_CHARS = 20_000


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError("tools", module.split(".")[0], INSTALL) from exc


class Tool:
    """A function the model may call, and what the model is told about it.

    Args:
        function: a function or coroutine function taking named parameters.
        name: the name the model calls it by (default: the function's ``__name__``).
        description: what it does, for the model (default: the docstring, without its
            parameter section).
        parameters: an explicit JSON schema of the arguments object; by default it is built
            from the type hints, with each parameter's description from the docstring.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(function):
            raise InputError(
                f"A tool is a function (or a hypotez.Tool), not {type(function).__name__}."
            )
        self.function = function
        label = name if name is not None else getattr(function, "__name__", None)
        if label is None or label == "<lambda>":
            raise InputError(
                f"The tool {function!r} has no usable name: pass name= "
                "(hypotez.Tool(function, name='...'))."
            )
        check_tool_name(label)
        docs = _docstring(function)
        self._validate: Callable[[dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]
        if parameters is not None:
            schema = _check_schema(label, parameters)
            self._validate = _schema_validator(label, schema)
        else:
            schema, self._validate = _from_signature(label, function, docs[1])
        self.spec = ToolSpec(
            name=label,
            description=description if description is not None else docs[0],
            parameters=schema,
        )

    @classmethod
    def from_spec(cls, spec: ToolSpec | Mapping[str, Any], function: Callable[..., Any]) -> Tool:
        """A tool from an explicit spec (a :class:`~hypotez.ToolSpec`, or a dict in the
        chat-completions shape ``{"type": "function", "function": {"name", "description",
        "parameters"}}``) run by ``function``, which receives the arguments by name."""
        spec = spec if isinstance(spec, ToolSpec) else ToolSpec.from_dict(spec)
        return cls(
            function, name=spec.name, description=spec.description, parameters=spec.parameters
        )

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    async def run(self, call: ToolCall) -> ToolResult:
        """Run ``call``; any failure becomes an error result (never an exception)."""
        try:
            arguments = call.parsed_arguments()
        except InputError as exc:
            return ToolResult(
                call, f"Error: {exc} Call {self.name} again with a JSON object.", True
            )
        try:
            args, kwargs = self._validate(arguments)
        except InputError as exc:
            return ToolResult(call, f"Error: {exc}", True)
        try:
            if inspect.iscoroutinefunction(self.function):
                value = await self.function(*args, **kwargs)
            else:
                value = await portal.to_thread(self.function, *args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            log.warning("The tool %r raised %s", self.name, type(exc).__name__, exc_info=True)
            return ToolResult(
                call, f"Error: the tool {self.name} failed: {type(exc).__name__}: {exc}", True
            )
        return ToolResult(call, result_text(value))


def result_text(value: Any) -> str:
    """What the model reads for a tool's return value: text as is, anything else as JSON."""
    if isinstance(value, str):
        text = value
    else:
        pydantic_core = _need("pydantic_core")
        text = pydantic_core.to_json(value, fallback=repr).decode("utf-8")
    if len(text) > MAX_RESULT_CHARS:
        text = (
            text[:MAX_RESULT_CHARS]
            + f"\n[... cut: the result had {len(text):,} characters, the first "
            f"{MAX_RESULT_CHARS:,} are shown]"
        )
    return text


#: function -> its Tool, so that asking with the same functions again does not rebuild the
#: schema and validator (a few milliseconds each); entries go with their functions.
_built: weakref.WeakKeyDictionary[Any, Tool] = weakref.WeakKeyDictionary()


def tool_of(function: Callable[..., Any]) -> Tool:
    """``Tool(function)``, built once per function."""
    try:
        tool = _built.get(function)
    except TypeError:  # not weakly referenceable (some builtins): build it every time
        return Tool(function)
    if tool is None:
        tool = Tool(function)
        _built[function] = tool
    return tool


def as_tools(items: Iterable[Any] | None) -> dict[str, Tool]:
    """``tools=`` as given to a session (functions, :class:`Tool` objects) -> by name."""
    if items is None:
        return {}
    if isinstance(items, Mapping | str) or callable(items) or not isinstance(items, Iterable):
        raise InputError(
            "tools must be a list of functions (or hypotez.Tool objects), not "
            f"{type(items).__name__}."
        )
    out: dict[str, Tool] = {}
    for item in items:
        if isinstance(item, Tool):
            tool = item
        elif isinstance(item, ToolSpec | Mapping):
            raise InputError(
                f"The tool spec {_spec_name(item)!r} has no function to run: pass "
                "hypotez.Tool.from_spec(spec, function) instead."
            )
        else:
            tool = tool_of(item)
        if tool.name in out:
            raise InputError(
                f"Two tools are named {tool.name!r}: give one another name "
                "(hypotez.Tool(function, name='...'))."
            )
        out[tool.name] = tool
    return out


def _spec_name(item: Any) -> str:
    if isinstance(item, ToolSpec):
        return item.name
    inner = item.get("function", item)
    return str(inner.get("name", "?")) if isinstance(inner, Mapping) else "?"


async def run_calls(
    tools: Mapping[str, Tool], calls: Sequence[ToolCall], *, max_parallel: int
) -> list[ToolResult]:
    """Results of one round of ``calls``, in order: the first ``max_parallel`` run together;
    the rest, and calls of unknown tools, get error results without running."""
    results: list[ToolResult | None] = [None] * len(calls)
    jobs: list[tuple[int, Any]] = []
    known = ", ".join(sorted(tools)) or "none"
    for index, call in enumerate(calls):
        tool = tools.get(call.name)
        if tool is None:
            results[index] = ToolResult(
                call, f"Error: there is no tool named {call.name!r}. The tools are: {known}.", True
            )
        elif len(jobs) >= max_parallel:
            results[index] = ToolResult(
                call,
                f"Error: not run, at most {max_parallel} tool call(s) run in one turn. "
                "Call it again in the next turn if it is still needed.",
                True,
            )
        else:
            jobs.append((index, tool.run(call)))
    if jobs:
        done = await asyncio.gather(*(job for _i, job in jobs))
        for (index, _job), result in zip(jobs, done, strict=True):
            results[index] = result
    return [r for r in results if r is not None]


# -- schemas -------------------------------------------------------------------------------


def _docstring(function: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """(the description, {parameter: its description}) from the function's docstring."""
    doc = inspect.getdoc(function)
    if not doc:
        return "", {}
    parser = _need("docstring_parser")
    parsed = parser.parse(doc)
    parts = [p for p in (parsed.short_description, parsed.long_description) if p]
    description = "\n\n".join(parts).strip()
    params = {p.arg_name: p.description for p in parsed.params if p.description}
    return description, params


def _check_schema(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(schema, Mapping):
        raise InputError(
            f"The parameters of the tool {name!r} must be a JSON schema object, not "
            f"{type(schema).__name__}."
        )
    if schema.get("type", "object") != "object":
        raise InputError(
            f"The parameters schema of the tool {name!r} must describe an object "
            f'("type": "object"), not {schema.get("type")!r}: a tool takes named arguments.'
        )
    jsonschema = _need("jsonschema")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InputError(
            f"The parameters schema of the tool {name!r} is not a valid JSON schema: {exc.message}."
        ) from None
    return dict(schema)


def _schema_validator(
    name: str, schema: Mapping[str, Any]
) -> Callable[[dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]:
    jsonschema = _need("jsonschema")
    validator = jsonschema.validators.validator_for(schema)(schema)

    def validate(arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        problems = sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if problems:
            said = "; ".join(
                f"{'.'.join(str(p) for p in e.absolute_path) or 'arguments'}: {e.message}"
                for e in problems[:5]
            )
            raise InputError(f"invalid arguments for {name}: {said}. Fix them and call again.")
        return (), dict(arguments)

    return validate


def _from_signature(
    name: str, function: Callable[..., Any], docs: Mapping[str, str]
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]]:
    """The arguments' JSON schema from the type hints, and a validator that returns the
    (positional, keyword) arguments to call ``function`` with."""
    import typing

    pydantic = _need("pydantic")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Cannot read the parameters of the tool {name!r}: {exc}.") from None
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve
        raise InputError(
            f"Cannot resolve the type hints of the tool {name!r} ({exc}); pass parameters= "
            "with an explicit JSON schema."
        ) from None
    positional: list[str] = []
    params: list[inspect.Parameter] = []
    annotations: dict[str, Any] = {}
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise InputError(
                f"The tool {name!r} takes *{p.name}: a tool takes named parameters only "
                "(or pass parameters= with an explicit JSON schema)."
            )
        if p.kind is p.POSITIONAL_ONLY:
            positional.append(p.name)
        hint = hints.get(p.name, Any)
        if p.name in docs:
            hint = typing.Annotated[hint, pydantic.Field(description=docs[p.name])]
        annotations[p.name] = hint
        # The model passes every argument by name: validate them as keyword arguments.
        params.append(p.replace(annotation=hint, kind=p.KEYWORD_ONLY))

    def stub(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    stub.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=inspect.Signature.empty
    )
    stub.__annotations__ = annotations
    stub.__name__ = stub.__qualname__ = name
    stub.__module__ = getattr(function, "__module__", __name__)
    try:
        adapter = pydantic.TypeAdapter(stub)
        schema = adapter.json_schema()
    except pydantic.PydanticUserError as exc:
        raise InputError(
            f"Cannot build a JSON schema for the tool {name!r}: {exc.message} Pass parameters= "
            "with an explicit JSON schema."
        ) from None
    schema = _tidy(schema)

    def validate(arguments: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        try:
            values = adapter.validate_python(arguments)
        except pydantic.ValidationError as exc:
            raise InputError(
                f"invalid arguments for {name}: {_pydantic_problems(exc)}. Fix them and call again."
            ) from None
        args = tuple(values.pop(n) for n in positional if n in values)
        return args, values

    return schema, validate


def _tidy(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop the titles pydantic derives from parameter names ("City" for ``city``): they say
    nothing the name does not, and cost tokens in every request."""
    schema = dict(schema)
    schema.pop("title", None)
    properties = schema.get("properties")
    if isinstance(properties, dict):
        schema["properties"] = {
            key: {k: v for k, v in value.items() if k != "title"}
            if isinstance(value, dict)
            else value
            for key, value in properties.items()
        }
    return schema


_PYDANTIC_WORDS = {
    "missing_keyword_only_argument": "missing (it is required)",
    "missing_argument": "missing (it is required)",
    "unexpected_keyword_argument": "not a parameter of this tool",
}


def _pydantic_problems(exc: Any) -> str:
    problems = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "arguments"
        said = _PYDANTIC_WORDS.get(error.get("type", ""), error.get("msg", "invalid"))
        problems.append(f"{where}: {said}")
    return "; ".join(problems)


def describe_call(call: ToolCall, *, limit: int = 200) -> str:
    """``name(city="Paris")``: a call as people read it (arguments as the model wrote them,
    when they are not a JSON object)."""
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except (ValueError, RecursionError):
        arguments = None
    if isinstance(arguments, dict):
        inner = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    else:
        inner = call.arguments
    text = f"{call.name}({inner})"
    return text if len(text) <= limit else text[: limit - 1] + "…"

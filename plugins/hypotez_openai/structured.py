"""Structured output on any OpenAI-compatible server: ask the best way it accepts, check always.

Three ways to ask for JSON following a schema, best first:

1. ``json_schema``: ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM, LM Studio...);
2. ``json_object``: JSON mode with the schema beside it, ``{"type": "json_object", "schema":
   ...}`` (llama.cpp's server turns that schema into a grammar), and the schema in the prompt
   for servers that only promise "some JSON";
3. ``prompt``: no ``response_format`` at all; the schema is in the prompt.

A server that refuses a way as invalid gets the next one, and the way it accepted is
remembered for its base URL for the rest of the process, so only the first request pays for
the discovery. Whatever the way, every answer is parsed and validated against the schema
(with jsonschema) before it is returned: an answer that does not follow it is a
:class:`~hypotez_openai.errors.StructuredOutputError` quoting it, never a silent success.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

from hypotez import InputError, InvalidRequestError
from hypotez_openai.errors import StructuredOutputError

log = logging.getLogger("hypotez.openai")

MODES = ("json_schema", "json_object", "prompt")
_accepted: dict[str, str] = {}
_lock = threading.Lock()


def mode_for(where: str) -> str:
    """The way to ask the server at ``where`` (its base URL) for structured output."""
    return _accepted.get(where, MODES[0])


def remembered() -> dict[str, str]:
    """Base URL -> the way it accepts, for every server that refused a better one."""
    with _lock:
        return dict(_accepted)


def forget(where: str | None = None) -> None:
    """Forget what a server (or every server) accepts: the next request tries the best way."""
    with _lock:
        if where is None:
            _accepted.clear()
        else:
            _accepted.pop(where, None)


def refuses_format(exc: BaseException) -> bool:
    """Whether ``exc`` is a server refusing the way structured output was asked for."""
    if not isinstance(exc, InvalidRequestError):
        return False
    if exc.param is not None:
        return exc.param == "response_format"
    said = str(exc)
    return "response_format" in said or "json_schema" in said


def fall_back(where: str, refused: str, exc: BaseException) -> str | None:
    """The next way to try after ``refused`` was refused (and remember it), or ``None``."""
    index = MODES.index(refused) + 1
    if index >= len(MODES):
        return None
    mode = MODES[index]
    with _lock:
        _accepted[where] = mode
    log.warning(
        "The server at %s refused structured output as %s (%s); using %s for it from now on.",
        where,
        refused,
        exc,
        mode,
    )
    return mode


def schema_of(json_schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON schema itself, also when given wrapped as ``{"name": ..., "schema": {...}}``."""
    if not isinstance(json_schema, Mapping):
        raise InputError(
            f"json_schema must be a JSON schema object, not {type(json_schema).__name__}."
        )
    if "schema" in json_schema and "name" in json_schema:
        inner = json_schema["schema"]
        if not isinstance(inner, Mapping):
            raise InputError("json_schema['schema'] must be a JSON schema object.")
        return inner
    return json_schema


def checked_schema(json_schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """:func:`schema_of`, refusing a schema that is not a valid JSON schema (before any
    request is sent)."""
    schema = schema_of(json_schema)
    validator_of(schema)
    return schema


def validator_of(schema: Mapping[str, Any]) -> Any:
    """A jsonschema validator for ``schema``, which is checked against its meta-schema first.

    Both are kept per distinct schema (by its JSON text, so a schema changed in place is checked
    anew): checking a schema costs about 30 ms of CPU, and this runs on the event loop's thread
    for every structured request (the ``llm`` analyzer makes one per batch of texts).
    """
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"json_schema must be JSON data (dicts, lists, text, numbers): {exc}."
        ) from None
    import jsonschema

    try:
        return _validator(key)
    except jsonschema.SchemaError as exc:
        raise InputError(
            f"json_schema is not a valid JSON schema ({exc.message}); fix it before asking."
        ) from None


@functools.lru_cache(maxsize=256)
def _validator(key: str) -> Any:
    import jsonschema

    schema = json.loads(key)
    kind = jsonschema.validators.validator_for(schema)
    kind.check_schema(schema)
    return kind(schema)


def instruction(json_schema: Mapping[str, Any]) -> str:
    """What the prompt says when the server is not told the schema (or may ignore it)."""
    return (
        "Answer with one JSON object and nothing else (no prose, no code fence). It must "
        "follow this JSON schema:\n" + json.dumps(schema_of(json_schema), ensure_ascii=False)
    )


def response_format_for(mode: str, json_schema: Mapping[str, Any]) -> dict[str, Any] | None:
    from hypotez_openai.payloads import response_format

    if mode == "json_schema":
        return response_format(json_schema)
    if mode == "json_object":
        return {"type": "json_object", "schema": dict(schema_of(json_schema))}
    return None


def with_instruction(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """``messages`` with ``text`` added to the system message (one is made if there is none:
    some chat templates refuse a second system message)."""
    if (
        messages
        and messages[0].get("role") == "system"
        and isinstance(messages[0].get("content"), str)
    ):
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{text}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)


def check(
    text: str, json_schema: Mapping[str, Any], *, model: str, truncated: bool = False
) -> tuple[str, Any]:
    """The answer's JSON text and value, validated against the schema.

    A JSON answer wrapped in a Markdown code fence (models asked in the prompt often do) is
    unwrapped. Anything else that is not valid is a :class:`StructuredOutputError`.
    """
    fenced = _FENCE.match(text)
    body = fenced.group("body") if fenced else text.strip()

    def fail(problem: str) -> StructuredOutputError:
        hint = (
            " The answer was cut at the token limit; raise max tokens."
            if truncated
            else " Use a model that supports structured output, or simplify the schema."
        )
        return StructuredOutputError(
            f"The model {model!r} was asked for JSON following the schema, but its answer "
            f"{problem}: {text[:160]!r}.{hint}",
            text=text,
            model=model,
            problem=problem,
        )

    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise fail("is not JSON") from None
    validator = validator_of(schema_of(json_schema))
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "the top level"
        raise fail(f"does not follow it (at {where}: {first.message})")
    return body, value

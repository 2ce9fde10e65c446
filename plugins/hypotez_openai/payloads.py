"""Request bodies and response parsing shared by every backend of this plugin.

The SDK backends pass these dicts as keyword arguments to ``chat.completions.create``; the raw
``openai-http`` backend posts the very same dict as JSON. So both send byte-for-byte the same
request, and a fix here fixes both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from hypotez import (
    BackendError,
    ChatOptions,
    Image,
    ImageDescription,
    InputError,
    Message,
    Reply,
    Usage,
    load_image,
)

DEFAULT_IMAGE_PROMPT = "What's in this image?"  # the seed's prompt
#: ChatOptions.extra keys that steer the client instead of going into the request body.
CLIENT_EXTRAS = frozenset({"max_retries"})


def response_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``response_format`` for structured output following ``schema``.

    A schema already wrapped the OpenAI way (``{"name": ..., "schema": {...}}``) is sent as is.
    Otherwise it is wrapped under its ``title`` (or "response"), strict when the schema closes
    its objects (``additionalProperties: false``), which strict mode requires.
    """
    if not isinstance(schema, Mapping):
        raise InputError(f"json_schema must be a JSON schema object, not {type(schema).__name__}.")
    if "schema" in schema and "name" in schema:
        return {"type": "json_schema", "json_schema": dict(schema)}
    name = str(schema.get("title") or "response")
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]
    wrapped: dict[str, Any] = {"name": name, "schema": dict(schema)}
    if schema.get("additionalProperties") is False:
        wrapped["strict"] = True
    return {"type": "json_schema", "json_schema": wrapped}


def chat_body(
    messages: Sequence[Message], options: ChatOptions, *, model: str, max_tokens_field: str
) -> dict[str, Any]:
    """The ``/chat/completions`` body for a conversation."""
    if not messages:
        raise InputError("There is nothing to send: the conversation has no messages.")
    body: dict[str, Any] = {
        "model": options.model or model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
    }
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.max_tokens is not None:
        body[max_tokens_field] = options.max_tokens
    if options.json_schema is not None:
        body["response_format"] = response_format(options.json_schema)
    body.update({k: v for k, v in options.extra.items() if k not in CLIENT_EXTRAS})
    return body


def vision_body(
    image: Any,
    prompt: str | None,
    *,
    detail: str,
    json_schema: Mapping[str, Any] | None,
    model: str,
    system: str | None = None,
    max_tokens: int | None = None,
    max_tokens_field: str = "max_completion_tokens",
) -> dict[str, Any]:
    """The ``/chat/completions`` body asking ``model`` about one image.

    ``image`` is checked again with :func:`hypotez.load_image` (a no-op for an already checked
    :class:`~hypotez.Image`), so calling a backend directly is as safe as going through a session.
    """
    if detail not in ("auto", "low", "high"):
        raise InputError(f"detail must be 'auto', 'low' or 'high', not {detail!r}.")
    checked: Image = load_image(image)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": prompt or DEFAULT_IMAGE_PROMPT},
                {"type": "image_url", "image_url": {"url": checked.data_url(), "detail": detail}},
            ],
        }
    )
    body: dict[str, Any] = {"model": model, "messages": messages}
    if max_tokens is not None:
        body[max_tokens_field] = max_tokens
    if json_schema is not None:
        body["response_format"] = response_format(json_schema)
    return body


def usage_of(data: Mapping[str, Any] | None) -> Usage:
    return Usage.from_dict(data) if data else Usage()


def reply_from(data: Mapping[str, Any], backend: str, requested_model: str) -> Reply:
    """A :class:`Reply` from a ``chat.completion`` JSON object."""
    choices = data.get("choices") or []
    if not choices:
        raise BackendError(
            f"The server answered without any choice (model {requested_model!r}); "
            "is it an OpenAI-compatible chat endpoint?"
        )
    choice = choices[0]
    message = choice.get("message") or {}
    text = message.get("content") or message.get("refusal") or ""
    finish = choice.get("finish_reason")
    if not message.get("content") and message.get("refusal"):
        finish = "refusal"
    return Reply(
        text=text,
        model=data.get("model") or requested_model,
        usage=usage_of(data.get("usage")),
        finish_reason=finish,
        backend=backend,
        raw=data,
    )


def description_from(reply: Reply, json_schema: Mapping[str, Any] | None) -> ImageDescription:
    """An :class:`ImageDescription`, with ``data`` parsed when JSON was asked for."""
    data = None
    if json_schema is not None:
        data = parse_json(reply.text, reply.model, truncated=reply.finish_reason == "length")
    return ImageDescription(
        text=reply.text,
        backend=reply.backend,
        model=reply.model,
        data=data,
        usage=reply.usage,
        raw=reply.raw,
    )


def parse_json(text: str, model: str, *, truncated: bool = False) -> Any:
    """The JSON a model was asked for, or a :class:`BackendError` saying what came instead."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply to read
        hint = " The answer was cut at the token limit; raise max tokens." if truncated else ""
        raise BackendError(
            f"The model {model!r} was asked for JSON but answered {text[:120]!r}.{hint} "
            "Use a model that supports structured output."
        ) from None

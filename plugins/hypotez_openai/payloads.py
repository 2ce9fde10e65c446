"""Request bodies and response parsing shared by every backend of this plugin.

The SDK backends post these dicts as they are through the SDK's client
(:func:`hypotez_openai.client.post_completion`); the raw ``openai-http`` backend posts the very
same dict as JSON. So both send byte-for-byte the same
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
    ToolCall,
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


def message_dict(message: Message) -> dict[str, Any]:
    """One message as chat completions take it.

    An assistant message that only calls tools is sent with empty text content rather than
    ``null``: OpenAI accepts both, and some compatible servers (llama.cpp's) only a string.
    """
    if not message.tool_calls and message.tool_call_id is None:
        return {"role": message.role, "content": message.content}
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [call.to_dict() for call in message.tool_calls]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    return out


def tool_choice_value(choice: str) -> Any:
    """``tool_choice`` as the API takes it: a mode, or a named function."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def chat_body(
    messages: Sequence[Message],
    options: ChatOptions,
    *,
    model: str,
    max_tokens_field: str,
    structured: str = "json_schema",
) -> dict[str, Any]:
    """The ``/chat/completions`` body for a conversation.

    ``structured`` is how JSON-schema output is asked for (see
    :mod:`hypotez_openai.structured`): ``json_schema``, ``json_object`` or ``prompt``.
    """
    from hypotez_openai import structured as so

    if not messages:
        raise InputError("There is nothing to send: the conversation has no messages.")
    sent = [message_dict(m) for m in messages]
    if options.json_schema is not None and structured != "json_schema":
        sent = so.with_instruction(sent, so.instruction(options.json_schema))
    body: dict[str, Any] = {"model": options.model or model, "messages": sent}
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.max_tokens is not None:
        body[max_tokens_field] = options.max_tokens
    if options.json_schema is not None:
        fmt = so.response_format_for(structured, options.json_schema)
        if fmt is not None:
            body["response_format"] = fmt
    if options.tools:
        body["tools"] = [tool.to_dict() for tool in options.tools]
        if options.tool_choice is not None:
            body["tool_choice"] = tool_choice_value(options.tool_choice)
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
    structured: str = "json_schema",
) -> dict[str, Any]:
    """The ``/chat/completions`` body asking ``model`` about one image.

    ``image`` is checked again with :func:`hypotez.load_image` (a no-op for an already checked
    :class:`~hypotez.Image`), so calling a backend directly is as safe as going through a session.
    """
    from hypotez_openai import structured as so

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
    if json_schema is not None and structured != "json_schema":
        messages = so.with_instruction(messages, so.instruction(json_schema))
    body: dict[str, Any] = {"model": model, "messages": messages}
    if max_tokens is not None:
        body[max_tokens_field] = max_tokens
    if json_schema is not None:
        fmt = so.response_format_for(structured, json_schema)
        if fmt is not None:
            body["response_format"] = fmt
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
        tool_calls=tool_calls_from(message.get("tool_calls")),
    )


def tool_calls_from(items: Any) -> tuple[ToolCall, ...]:
    """The tool calls of a message (SDK objects or JSON), each with a unique id.

    Servers that send no id, or the same one twice, get ids made up from the position: the
    tool results must answer each call by its own id.
    """
    out: list[ToolCall] = []
    seen: set[str] = set()
    for index, item in enumerate(items or ()):
        data = item.model_dump() if hasattr(item, "model_dump") else item
        if not isinstance(data, Mapping):
            continue
        function = data.get("function") or {}
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise BackendError(
                f"The server sent a tool call without a function name: {data!r:.200}. Is it an "
                "OpenAI-compatible server?"
            )
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {})
        call_id = data.get("id")
        if not isinstance(call_id, str) or not call_id or call_id in seen:
            call_id = f"call_{index}_{name}"
        seen.add(call_id)
        out.append(ToolCall(call_id, name, arguments))
    return tuple(out)


def description_from(reply: Reply, json_schema: Mapping[str, Any] | None) -> ImageDescription:
    """An :class:`ImageDescription`, with ``data`` parsed (and validated against the schema)
    when JSON was asked for."""
    from hypotez_openai import structured as so

    data = None
    text = reply.text
    if json_schema is not None:
        text, data = so.check(
            reply.text, json_schema, model=reply.model, truncated=reply.finish_reason == "length"
        )
    return ImageDescription(
        text=text,
        backend=reply.backend,
        model=reply.model,
        data=data,
        usage=reply.usage,
        raw=reply.raw,
    )

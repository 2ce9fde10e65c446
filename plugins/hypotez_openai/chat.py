"""The ``openai`` chat backend: OpenAI or any OpenAI-compatible server, through the SDK.

It is async-native: it implements ``achat``, ``astream`` and ``alist_models`` on the SDK's async
client, and :class:`hypotez.ChatBackend` derives the blocking methods from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
from hypotez import (
    BackendError,
    ChatBackend,
    ChatOptions,
    HypotezError,
    Message,
    ModelInfo,
    Reply,
    ReplyChunk,
    ToolCall,
    Usage,
)
from hypotez_openai.client import Config, Connection, post_completion
from hypotez_openai.payloads import chat_body, reply_from, tool_calls_from, usage_of
from hypotez_openai.structured import (
    check,
    checked_schema,
    fall_back,
    mode_for,
    refuses_format,
)


class OpenAIChat(ChatBackend):
    """Chat completions with history, JSON-schema output, tools, streaming and an async client.

    JSON-schema output works on servers that refuse ``json_schema`` too (see
    :mod:`hypotez_openai.structured`): the answer is always validated against the schema.
    Tools are sent as chat-completions ``tools``; the calls come back in
    :attr:`hypotez.Reply.tool_calls` (streamed calls are put together from their pieces).
    """

    name = "openai"
    supports_tools = True

    def __init__(self, config: Config, *, http_client: Any = None) -> None:
        self.config = config
        self.connection = Connection(config, http_client=http_client, backend=self.name)
        self._windows: dict[str, int | None] = {}  # model id -> context window it states

    # -- request plumbing --------------------------------------------------------------
    def _body(
        self, messages: Sequence[Message], options: ChatOptions, structured: str = "json_schema"
    ) -> dict[str, Any]:
        return chat_body(
            messages,
            options,
            model=self.config.model,
            max_tokens_field=self.config.max_tokens_field,
            structured=structured,
        )

    def _request_options(self, options: ChatOptions) -> tuple[int | None, dict[str, Any]]:
        retries = options.extra.get("max_retries")
        per_call = {"timeout": options.timeout} if options.timeout else {}
        return (int(retries) if retries is not None else None), per_call

    def _reply(self, completion: Any, body: dict[str, Any]) -> Reply:
        # Read the SDK object's attributes instead of model_dump(): this runs on every ask.
        if not completion.choices:
            return reply_from({"choices": []}, self.name, body["model"])
        choice = completion.choices[0]
        message = choice.message
        usage = completion.usage
        return Reply(
            text=message.content or message.refusal or "",
            model=completion.model or body["model"],
            usage=Usage(
                usage.prompt_tokens or 0, usage.completion_tokens or 0, usage.total_tokens or 0
            )
            if usage
            else Usage(),
            finish_reason="refusal"
            if message.refusal and not message.content
            else choice.finish_reason,
            backend=self.name,
            raw=completion,
            tool_calls=tool_calls_from(message.tool_calls) if message.tool_calls else (),
        )

    def _models(self, models: list[Any]) -> list[ModelInfo]:
        infos = [
            ModelInfo(id=m.id, backend=self.name, owned_by=getattr(m, "owned_by", "") or "")
            for m in models
        ]
        return sorted(infos, key=lambda m: m.id)

    async def _client(self, options: ChatOptions) -> tuple[Any, int | None, dict[str, Any]]:
        retries, per_call = self._request_options(options)
        client = self.connection.with_retries(await self.connection.aio(), retries)
        return client, retries, per_call

    def _structured_modes(self, options: ChatOptions) -> str | None:
        """The way to ask for structured output now (``None``: none asked for)."""
        if options.json_schema is None:
            return None
        checked_schema(options.json_schema)  # a malformed one fails before any request
        return mode_for(self.config.where)

    def _checked(self, reply: Reply, options: ChatOptions) -> Reply:
        """``reply`` with its JSON validated against the schema asked for (if any)."""
        if options.json_schema is None or reply.tool_calls:
            return reply
        text, _value = check(
            reply.text,
            options.json_schema,
            model=reply.model,
            truncated=reply.finish_reason == "length",
        )
        return attrs.evolve(reply, text=text) if text != reply.text else reply

    # -- the ChatBackend protocol ----------------------------------------------------------
    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        mode = self._structured_modes(options)
        client, retries, per_call = await self._client(options)
        while True:
            body = self._body(messages, options, mode or "json_schema")
            try:
                async with self.connection.slot():
                    completion = await post_completion(client, body, per_call)
            except Exception as exc:
                error = self.connection.error(exc, model=body["model"], retries=retries)
                mode = self._fallback(mode, error)
                if mode is None:
                    raise error from None
                continue
            return self._checked(self._reply(completion, body), options)

    def _fallback(self, mode: str | None, error: Exception) -> str | None:
        """The next way to ask for structured output after ``error``, or ``None``: raise."""
        if mode is None or not refuses_format(error):
            return None
        return fall_back(self.config.where, mode, error)

    async def astream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[ReplyChunk]:
        mode = self._structured_modes(options)
        client, retries, per_call = await self._client(options)
        while True:
            body = self._body(messages, options, mode or "json_schema")
            acc = _Accumulator(body["model"], self.name)
            try:
                # Retries cover opening the stream; a drop mid-stream cannot be retried without
                # repeating text already shown, so it surfaces as BackendConnectionError.
                async with self.connection.slot():
                    events = await post_completion(
                        client,
                        {**body, "stream_options": {"include_usage": True}},
                        per_call,
                        stream=True,
                    )
                    async with events:
                        async for event in events:
                            delta = acc.add(event)
                            if delta:
                                yield ReplyChunk(delta)
            except Exception as exc:
                error = self.connection.error(exc, model=body["model"], retries=retries)
                if acc.events == 0:  # refused when opening: nothing was shown yet
                    mode = self._fallback(mode, error)
                    if mode is not None:
                        continue
                raise error from None
            break
        reply = acc.reply(self.connection.config.where)
        yield ReplyChunk("", self._checked(reply, options))

    async def alist_models(self) -> list[ModelInfo]:
        return self._models(await self._listed())

    async def _listed(self) -> list[Any]:
        try:
            client = await self.connection.aio()
            async with self.connection.slot():
                page = await client.models.list()
                return [m async for m in page]
        except Exception as exc:
            raise self.connection.error(exc, model=None) from None

    async def acontext_window(self, model: str | None = None) -> int | None:
        """The window the server states in its model list, else ``None``.

        OpenAI's own list states none; vLLM (``max_model_len``), OpenRouter and LM Studio
        (``context_length``) and Groq (``context_window``) do. Asked once per model.
        """
        name = model or self.config.model
        if name not in self._windows:
            try:
                listed = await self._listed()
            except HypotezError:  # a server without a model list: the window is unknown
                listed = []
            for entry in listed:
                self._windows.setdefault(entry.id, window_of(entry))
            self._windows.setdefault(name, None)
        return self._windows[name]

    async def aclose(self) -> None:
        await self.connection.aclose()


#: Fields of a model-list entry that state its context window, by server (see acontext_window).
WINDOW_FIELDS = ("max_model_len", "context_length", "context_window", "max_context_length")


def window_of(entry: Any) -> int | None:
    """The context window a model-list entry states (an SDK ``Model`` keeps unknown fields)."""
    for field in WINDOW_FIELDS:
        value = getattr(entry, field, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class _Accumulator:
    """Builds the final :class:`Reply` from ``chat.completion.chunk`` events."""

    def __init__(self, model: str, backend: str) -> None:
        self.model = model
        self.backend = backend
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.events = 0
        self.answered = False  # an event carried the first choice: this is a chat stream
        # index -> [id, name, argument pieces] of the tool calls being streamed
        self.calls: dict[int, list[Any]] = {}

    def add(self, event: Any) -> str:
        self.events += 1
        model = getattr(event, "model", None)
        if isinstance(model, str) and model:
            self.model = model
        usage = getattr(event, "usage", None)
        if usage is not None and hasattr(usage, "model_dump"):
            self.usage = usage_of(usage.model_dump())
        delta = ""
        choices = getattr(event, "choices", None)
        for choice in choices if isinstance(choices, list) else []:
            if getattr(choice, "index", None) != 0:
                continue
            self.answered = True
            piece = getattr(choice, "delta", None)
            content = getattr(piece, "content", None)
            delta = content if isinstance(content, str) else ""
            for call in getattr(piece, "tool_calls", None) or ():
                self._add_call(call)
            if isinstance(getattr(choice, "finish_reason", None), str):
                self.finish_reason = choice.finish_reason
        if delta:
            self.parts.append(delta)
        return delta

    def _add_call(self, call: Any) -> None:
        """One streamed piece of a tool call. Its id and name come once (OpenAI) or with
        every piece (llama.cpp's server); its arguments come in pieces."""
        index = getattr(call, "index", None)
        index = index if isinstance(index, int) else len(self.calls)
        entry = self.calls.setdefault(index, ["", "", []])
        call_id = getattr(call, "id", None)
        if isinstance(call_id, str) and call_id and not entry[0]:
            entry[0] = call_id
        function = getattr(call, "function", None)
        name = getattr(function, "name", None)
        if isinstance(name, str) and name and name != entry[1]:
            entry[1] += name
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, str):
            entry[2].append(arguments)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tool_calls_from(
            {"id": call_id, "function": {"name": name, "arguments": "".join(pieces)}}
            for _index, (call_id, name, pieces) in sorted(self.calls.items())
        )

    def reply(self, where: str) -> Reply:
        """The whole reply; a stream that never carried a chat choice is an error, not an
        empty reply (it would be stored, and look like the model said nothing)."""
        if not self.answered:
            if self.events == 0:
                raise BackendError(
                    f"The server at {where} ended the stream without sending anything; nothing "
                    "was stored. Some servers (llama.cpp's) do so when the dialogue does not "
                    "fit the model's context window: start a new dialogue, or ask without "
                    "streaming to see the server's own error."
                )
            raise BackendError(
                f"The server at {where} sent a stream of {self.events} event(s) without any "
                "chat reply in it: it is not an OpenAI-compatible chat stream. Nothing was "
                "stored. Check OPENAI_BASE_URL, or ask without streaming."
            )
        return Reply(
            text="".join(self.parts),
            model=self.model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            backend=self.backend,
            tool_calls=self.tool_calls(),
        )

"""The ``openai`` chat backend: OpenAI or any OpenAI-compatible server, through the SDK.

It is async-native: it implements ``achat``, ``astream`` and ``alist_models`` on the SDK's async
client, and :class:`hypotez.ChatBackend` derives the blocking methods from them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from hypotez import (
    BackendError,
    ChatBackend,
    ChatOptions,
    Message,
    ModelInfo,
    Reply,
    ReplyChunk,
    Usage,
)
from hypotez_openai.client import Config, Connection
from hypotez_openai.payloads import chat_body, reply_from, usage_of


class OpenAIChat(ChatBackend):
    """Chat completions with history, JSON-schema output, streaming and an async client."""

    name = "openai"

    def __init__(self, config: Config, *, http_client: Any = None) -> None:
        self.config = config
        self.connection = Connection(config, http_client=http_client, backend=self.name)

    # -- request plumbing --------------------------------------------------------------
    def _body(self, messages: Sequence[Message], options: ChatOptions) -> dict[str, Any]:
        return chat_body(
            messages,
            options,
            model=self.config.model,
            max_tokens_field=self.config.max_tokens_field,
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

    # -- the ChatBackend protocol ----------------------------------------------------------
    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        body = self._body(messages, options)
        client, retries, per_call = await self._client(options)
        try:
            async with self.connection.slot():
                completion = await client.chat.completions.create(**body, **per_call)
        except Exception as exc:
            raise self.connection.error(exc, model=body["model"], retries=retries) from None
        return self._reply(completion, body)

    async def astream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[ReplyChunk]:
        body = self._body(messages, options)
        client, retries, per_call = await self._client(options)
        acc = _Accumulator(body["model"], self.name)
        try:
            # Retries cover opening the stream; a drop mid-stream cannot be retried without
            # repeating text already shown, so it surfaces as BackendConnectionError.
            async with self.connection.slot():
                events = await client.chat.completions.create(
                    **body, stream=True, stream_options={"include_usage": True}, **per_call
                )
                async with events:
                    async for event in events:
                        delta = acc.add(event)
                        if delta:
                            yield ReplyChunk(delta)
        except Exception as exc:
            raise self.connection.error(exc, model=body["model"], retries=retries) from None
        yield ReplyChunk("", acc.reply(self.connection.config.where))

    async def alist_models(self) -> list[ModelInfo]:
        try:
            client = await self.connection.aio()
            async with self.connection.slot():
                page = await client.models.list()
                models = [m async for m in page]
        except Exception as exc:
            raise self.connection.error(exc, model=None) from None
        return self._models(models)

    async def aclose(self) -> None:
        await self.connection.aclose()


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
            content = getattr(getattr(choice, "delta", None), "content", None)
            delta = content if isinstance(content, str) else ""
            if isinstance(getattr(choice, "finish_reason", None), str):
                self.finish_reason = choice.finish_reason
        if delta:
            self.parts.append(delta)
        return delta

    def reply(self, where: str) -> Reply:
        """The whole reply; a stream that never carried a chat choice is an error, not an
        empty reply (it would be stored, and look like the model said nothing)."""
        if not self.answered:
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
        )

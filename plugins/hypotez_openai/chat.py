"""The ``openai`` chat backend: OpenAI or any OpenAI-compatible server, through the SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from hypotez import ChatBackend, ChatOptions, Message, ModelInfo, Reply, ReplyChunk, Usage
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

    # -- sync ----------------------------------------------------------------------------
    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        body = self._body(messages, options)
        retries, per_call = self._request_options(options)
        client = self.connection.with_retries(self.connection.sync, retries)
        try:
            completion = client.chat.completions.create(**body, **per_call)
        except Exception as exc:
            raise self.connection.error(exc, model=body["model"], retries=retries) from None
        return self._reply(completion, body)

    def stream(self, messages: Sequence[Message], options: ChatOptions) -> Iterator[ReplyChunk]:
        body = self._body(messages, options)
        retries, per_call = self._request_options(options)
        client = self.connection.with_retries(self.connection.sync, retries)
        acc = _Accumulator(body["model"], self.name)
        try:
            # Retries cover opening the stream; a drop mid-stream cannot be retried without
            # repeating text already shown, so it surfaces as BackendConnectionError.
            events = client.chat.completions.create(
                **body, stream=True, stream_options={"include_usage": True}, **per_call
            )
            with events:
                for event in events:
                    delta = acc.add(event)
                    if delta:
                        yield ReplyChunk(delta)
        except Exception as exc:
            raise self.connection.error(exc, model=body["model"], retries=retries) from None
        yield ReplyChunk("", acc.reply())

    def list_models(self) -> list[ModelInfo]:
        try:
            page = self.connection.sync.models.list()
            models = list(page)
        except Exception as exc:
            raise self.connection.error(exc, model=None) from None
        return self._models(models)

    def _models(self, models: list[Any]) -> list[ModelInfo]:
        infos = [
            ModelInfo(id=m.id, backend=self.name, owned_by=getattr(m, "owned_by", "") or "")
            for m in models
        ]
        return sorted(infos, key=lambda m: m.id)

    # -- async ---------------------------------------------------------------------------
    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        body = self._body(messages, options)
        retries, per_call = self._request_options(options)
        client = self.connection.with_retries(self.connection.aio, retries)
        try:
            completion = await client.chat.completions.create(**body, **per_call)
        except Exception as exc:
            raise self.connection.error(exc, model=body["model"], retries=retries) from None
        return self._reply(completion, body)

    async def astream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[ReplyChunk]:
        body = self._body(messages, options)
        retries, per_call = self._request_options(options)
        client = self.connection.with_retries(self.connection.aio, retries)
        acc = _Accumulator(body["model"], self.name)
        try:
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
        yield ReplyChunk("", acc.reply())

    async def alist_models(self) -> list[ModelInfo]:
        try:
            page = await self.connection.aio.models.list()
            models = [m async for m in page]
        except Exception as exc:
            raise self.connection.error(exc, model=None) from None
        return self._models(models)

    def close(self) -> None:
        self.connection.close()

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

    def add(self, event: Any) -> str:
        if getattr(event, "model", None):
            self.model = event.model
        if getattr(event, "usage", None) is not None:
            self.usage = usage_of(event.usage.model_dump())
        delta = ""
        for choice in event.choices or []:
            if choice.index != 0:
                continue
            delta = choice.delta.content or "" if choice.delta else ""
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        if delta:
            self.parts.append(delta)
        return delta

    def reply(self) -> Reply:
        return Reply(
            text="".join(self.parts),
            model=self.model,
            usage=self.usage,
            finish_reason=self.finish_reason,
            backend=self.backend,
        )

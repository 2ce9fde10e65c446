"""Vision backends: ``openai`` (through the SDK's async client) and ``openai-http`` (one raw,
blocking httpx request: the seed's ``describe_image_by_requests``). Both send the body built by
:func:`hypotez_openai.payloads.vision_body` and parse the answer the same way; each implements
one side of :class:`hypotez.VisionBackend` and the other is derived.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from hypotez import (
    BackendError,
    ImageDescription,
    InvalidRequestError,
    MissingDependencyError,
    VisionBackend,
)
from hypotez_openai import errors, structured
from hypotez_openai.client import INSTALL, Config, Connection, post_completion
from hypotez_openai.payloads import description_from, reply_from, vision_body

#: Retryable HTTP statuses, as the SDK retries them.
_RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
_MAX_RETRY_AFTER = 60.0


class _VisionBase(VisionBackend):
    def __init__(self, config: Config) -> None:
        self.config = config

    def _body(
        self,
        image: Any,
        prompt: str | None,
        detail: str,
        json_schema: Mapping[str, Any] | None,
        model: str | None,
        system: str | None,
        max_tokens: int | None,
        structured: str = "json_schema",
    ) -> dict[str, Any]:
        """``system`` and ``max_tokens`` are extras of these backends (the seed API uses them)."""
        return vision_body(
            image,
            prompt,
            detail=detail,
            json_schema=json_schema,
            model=model or self.config.vision_model,
            system=system,
            max_tokens=max_tokens,
            max_tokens_field=self.config.max_tokens_field,
            structured=structured,
        )

    def _mode(self, json_schema: Mapping[str, Any] | None) -> str | None:
        if json_schema is None:
            return None
        structured.checked_schema(json_schema)
        return structured.mode_for(self.config.where)

    def _fallback(self, mode: str | None, error: Exception) -> str | None:
        if mode is None or not structured.refuses_format(error):
            return None
        return structured.fall_back(self.config.where, mode, error)

    def _description(
        self, data: dict[str, Any], body: dict[str, Any], json_schema: Mapping[str, Any] | None
    ) -> ImageDescription:
        return description_from(reply_from(data, self.name, body["model"]), json_schema)


class OpenAIVision(_VisionBase):
    """Describe an image with a vision-capable chat model through the SDK's async client."""

    name = "openai"

    def __init__(self, config: Config, *, http_client: Any = None) -> None:
        super().__init__(config)
        self.connection = Connection(config, http_client=http_client, backend=self.name)

    async def adescribe(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
    ) -> ImageDescription:
        mode = self._mode(json_schema)
        client = await self.connection.aio()
        while True:
            body = self._body(
                image, prompt, detail, json_schema, model, system, max_tokens, mode or "json_schema"
            )
            try:
                async with self.connection.slot():
                    completion = await post_completion(client, body, {})
            except Exception as exc:
                error = self.connection.error(exc, model=body["model"])
                mode = self._fallback(mode, error)
                if mode is None:
                    raise error from None
                continue
            return self._description(completion.model_dump(mode="json"), body, json_schema)

    async def aclose(self) -> None:
        await self.connection.aclose()


class OpenAIHttpVision(_VisionBase):
    """The same request as :class:`OpenAIVision`, posted with plain ``httpx``.

    Useful where the SDK cannot be installed or a gateway needs a hand-made request. Retries
    follow the SDK's rules: bounded, exponential backoff with jitter, ``Retry-After`` honoured.
    """

    name = "openai-http"

    def __init__(self, config: Config, *, transport: Any = None) -> None:
        super().__init__(config)
        self._transport = transport  # tests inject an httpx.MockTransport
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import httpx
                except ImportError as exc:
                    raise MissingDependencyError(self.name, "httpx", INSTALL) from exc
                self._client = httpx.Client(
                    base_url=self.config.where + "/",
                    headers={"Authorization": f"Bearer {self.config.api_key}"},
                    timeout=self.config.timeout,
                    transport=self._transport,
                )
            return self._client

    def describe(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
        system: str | None = None,
        max_tokens: int | None = None,
    ) -> ImageDescription:
        mode = self._mode(json_schema)
        while True:
            body = self._body(
                image, prompt, detail, json_schema, model, system, max_tokens, mode or "json_schema"
            )
            try:
                data = self._post("chat/completions", body)
            except InvalidRequestError as error:
                mode = self._fallback(mode, error)
                if mode is None:
                    raise
                continue
            return self._description(data, body, json_schema)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        retries = self.config.max_retries
        for attempt in range(retries + 1):  # a loop, never recursion: at most retries + 1 tries
            last = attempt == retries
            try:
                response = self.client.post(path, json=body)
            except httpx.TimeoutException:
                if last:
                    raise errors.timeout(self.config.where, self.config.timeout, retries) from None
                _sleep(attempt, None)
                continue
            except httpx.TransportError as exc:
                if last:
                    raise errors.connection(
                        self.config.where, retries, type(exc).__name__
                    ) from None
                _sleep(attempt, None)
                continue
            if response.status_code < 400:
                try:
                    data = response.json()
                except ValueError:
                    raise BackendError(
                        f"The server at {self.config.where} answered {path} with something that "
                        "is not JSON. Is OPENAI_BASE_URL an OpenAI-compatible endpoint?"
                    ) from None
                if not isinstance(data, dict):
                    raise BackendError(
                        f"The server at {self.config.where} answered {path} with JSON that is "
                        "not a JSON object. Is OPENAI_BASE_URL an OpenAI-compatible endpoint?"
                    )
                return data
            if (
                response.status_code in _RETRY_STATUSES
                and not last
                and not errors.is_invalid_request(response.status_code, response.text)
            ):
                _sleep(attempt, response.headers.get("retry-after"))
                continue
            message, code, param, data = _error_of(response)
            raise errors.for_status(
                response.status_code,
                message,
                code=code,
                where=self.config.where,
                model=body.get("model"),
                retries=retries,
                api_key=self.config.api_key,
                param=param,
                body=data,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _sleep(attempt: int, retry_after: str | None) -> None:
    """Wait before retry ``attempt + 1``: the server's Retry-After, else 0.5 s * 2^n, max 8 s."""
    delay = None
    if retry_after:
        try:
            delay = float(retry_after)
        except ValueError:
            delay = None
    if delay is None or not 0 < delay <= _MAX_RETRY_AFTER:
        delay = min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())
    time.sleep(delay)


def _error_of(response: Any) -> tuple[str, str | None, str | None, Any]:
    """(message, code, param, parsed body) of an error answer."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:2000], None, None, None
    message, code, param = errors.message_of(data)
    return message, code, param, data

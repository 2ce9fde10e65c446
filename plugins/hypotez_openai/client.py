"""Settings -> OpenAI SDK clients, and SDK exceptions -> hypotez errors.

This plugin owns its settings: the API key (``OPENAI_API_KEY``, or the secret option
``openai.api_key``, never read from a TOML file), the base URL (``OPENAI_BASE_URL`` or
``openai.base_url``) and the default model. Core knows none of them.

Every backend of this plugin holds one :class:`Connection`: it builds the sync client on first
use and one async client per event loop (an async HTTP pool cannot move between loops), built
in a worker thread so that importing the SDK and making its TLS context (~30 ms) never stalls
an event loop, and reuses them for every request. Retries are the SDK's own: ``max_retries``
bounded attempts with exponential backoff that honours ``Retry-After``; only the last failure
reaches us.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import attrs
from hypotez import BackendError, ConfigError, MissingDependencyError, Settings
from hypotez.pacing import take_turn
from hypotez_openai import errors
from hypotez_openai.keys import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MODEL,
    INSTALL,
    KEY_HINT,
    OPENAI_URL,
    PLUGIN,
    base_url_of,
    check_key,
    key_and_source,
)


def _concurrency(value: Any) -> int:
    n = int(value)
    if n < 1:
        raise ValueError("must be a whole number >= 1")
    return n


@attrs.frozen
class Config:
    """What a backend needs to reach the server. ``repr`` never shows the key."""

    api_key: str = attrs.field(repr=False)
    base_url: str | None
    timeout: float
    max_retries: int
    model: str
    vision_model: str
    #: Name of the max-tokens field: OpenAI wants ``max_completion_tokens``; some
    #: OpenAI-compatible servers only know the older ``max_tokens``.
    max_tokens_field: str = "max_completion_tokens"
    #: Requests one client has in flight at once (per event loop); more wait their turn.
    max_concurrency: int = DEFAULT_CONCURRENCY

    @property
    def where(self) -> str:
        """The server's URL for messages: a ``user:password@`` in it is masked."""
        from hypotez.errors import redact

        return redact((self.base_url or OPENAI_URL).rstrip("/"))

    @classmethod
    def from_settings(
        cls, settings: Settings, backend: str = "openai", *, require_key: bool = True
    ) -> Config:
        key, source = key_and_source(settings)
        if not key and require_key:
            raise ConfigError(
                f"The {backend!r} backend needs an API key: set OPENAI_API_KEY (any non-empty "
                "value for a local OpenAI-compatible server), or pass api_key=."
            )
        if key:
            check_key(key, source)
        field = settings.option(PLUGIN, "max_tokens_field", "max_completion_tokens", str)
        if field not in ("max_completion_tokens", "max_tokens"):
            raise ConfigError(
                f"Option openai.max_tokens_field = {field!r}: use 'max_completion_tokens' or "
                "'max_tokens'."
            )
        if settings.max_retries < 0 or settings.timeout <= 0:
            raise ConfigError(
                "HYPOTEZ_MAX_RETRIES must be >= 0 and HYPOTEZ_TIMEOUT > 0 "
                f"(got {settings.max_retries} and {settings.timeout})."
            )
        model = settings.model or settings.option(PLUGIN, "model", DEFAULT_MODEL, str)
        return cls(
            max_concurrency=settings.option(
                PLUGIN, "max_concurrency", DEFAULT_CONCURRENCY, _concurrency
            ),
            api_key=key or "",
            base_url=base_url_of(settings) or None,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            model=model,
            vision_model=settings.option(PLUGIN, "vision_model", model, str),
            max_tokens_field=field,
        )


def import_openai(backend: str = "openai") -> Any:
    try:
        import openai
    except ImportError as exc:
        raise MissingDependencyError(backend, "openai", INSTALL) from exc
    return openai


def _mark_refusal(response: Any) -> None:
    """Tell the SDK not to retry an answer that refuses the request as invalid.

    The SDK retries every 5xx; some OpenAI-compatible servers (llama.cpp's) answer a request
    they cannot validate with HTTP 500. Retrying sends the same invalid request again, so such
    an answer gets the ``x-should-retry: false`` header, which the SDK obeys (OpenAI's own API
    sends it for the same purpose).
    """
    if errors.is_invalid_request(response.status_code, response.text):
        response.headers["x-should-retry"] = "false"


def _refusal_hook(response: Any) -> None:
    if response.status_code >= 500:
        response.read()  # error bodies are small; the SDK reads them anyway
        _mark_refusal(response)


async def _response_hook_async(response: Any) -> None:
    streaming = "text/event-stream" in response.headers.get("content-type", "")
    if response.status_code >= 500 or not streaming:
        await response.aread()  # the SDK reads a whole answer anyway; a stream is left alone
    # Parsing the answer into the SDK's models is the other CPU-heavy step of a request: give
    # it a turn of the loop of its own too (see Connection.slot).
    await take_turn()
    if response.status_code >= 500:
        _mark_refusal(response)


async def post_completion(
    client: Any, body: dict[str, Any], options: dict[str, Any], *, stream: bool = False
) -> Any:
    """POST ``body`` to ``/chat/completions`` through the SDK ``client`` as it is.

    Not ``client.chat.completions.create(**body)``: that walks the whole body against the SDK's
    typed dicts before sending, on the event loop's thread: 8.8 ms of CPU for a 21-message
    dialogue here, growing with the history, for every request. ``body`` is already in wire
    format (:mod:`hypotez_openai.payloads`), so it goes through the SDK's documented ``post``
    instead: the same client, retries, auth, errors and parsed ``ChatCompletion``; parameters
    the SDK does not know (a server's own, such as llama.cpp's ``top_k``) need no special case.
    ``options``: the SDK's request options (``timeout``).
    """
    openai = import_openai()
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    request: dict[str, Any] = {"security": {"bearer_auth": True}, **options}
    if stream:
        return await client.post(
            "/chat/completions",
            body={**body, "stream": True},
            cast_to=ChatCompletion,
            options=request,
            stream=True,
            stream_cls=openai.AsyncStream[ChatCompletionChunk],
        )
    return await client.post(
        "/chat/completions", body=body, cast_to=ChatCompletion, options=request
    )


class Connection:
    """The SDK clients of one backend instance, built lazily and reused."""

    def __init__(self, config: Config, *, http_client: Any = None, backend: str = "openai") -> None:
        self.config = config
        self.backend = backend
        self._http_client = http_client  # tests inject a MockTransport-backed httpx2 client
        self._sync: Any = None
        # id(loop) -> (loop, future of its async client, the slots of its requests)
        self._async: dict[
            int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], asyncio.Semaphore]
        ] = {}
        # (id(client), max_retries) -> (client, its copy with that retry budget)
        self._budgets: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def _kwargs(self, *, is_async: bool) -> dict[str, Any]:
        if not self.config.api_key:
            raise ConfigError(
                f"The {self.backend!r} backend needs an API key for this request: "
                f"{KEY_HINT}, or pass api_key=."
            )
        openai = import_openai(self.backend)
        kwargs: dict[str, Any] = {
            "api_key": self.config.api_key,
            "base_url": self.config.base_url,
            "timeout": self.config.timeout,
            "max_retries": self.config.max_retries,
        }
        hook = _response_hook_async if is_async else _refusal_hook
        if self._http_client is not None:
            client = self._http_client
            hooks = dict(client.event_hooks)
            if hook not in hooks.get("response", []):
                hooks["response"] = [*hooks.get("response", []), hook]
                client.event_hooks = hooks
            kwargs["http_client"] = client
        else:
            make = openai.DefaultAsyncHttpxClient if is_async else openai.DefaultHttpxClient
            kwargs["http_client"] = make(event_hooks={"response": [hook]})
        return kwargs

    @property
    def sync(self) -> Any:
        """The blocking client (the trainer uses it), built on first use."""
        with self._lock:
            if self._sync is None:
                self._sync = import_openai(self.backend).OpenAI(**self._kwargs(is_async=False))
            return self._sync

    def _make_async(self) -> Any:
        client = import_openai(self.backend).AsyncOpenAI(**self._kwargs(is_async=True))
        client.chat.completions  # noqa: B018 - import the SDK's resource modules here, off the loop
        client.models  # noqa: B018
        return client

    async def aio(self) -> Any:
        """The async client for the running event loop, built in a worker thread the first time
        (concurrent first requests wait for the same one)."""
        loop = asyncio.get_running_loop()
        entry = self._async.get(id(loop))
        if entry is None or entry[0] is not loop:
            with self._lock:
                entry = self._async.get(id(loop))
                if entry is None or entry[0] is not loop:
                    # Clients of loops that have closed cannot be closed any more; drop them.
                    self._async = {k: v for k, v in self._async.items() if not v[0].is_closed()}
                    entry = (
                        loop,
                        asyncio.ensure_future(asyncio.to_thread(self._make_async)),
                        asyncio.Semaphore(self.config.max_concurrency),
                    )
                    self._async[id(loop)] = entry
        future = entry[1]
        try:
            return await asyncio.shield(future) if not future.done() else future.result()
        except BaseException:
            if future.done() and future.exception() is not None:
                with self._lock:  # a failed build is retried by the next request
                    if self._async.get(id(loop)) is entry:
                        del self._async[id(loop)]
            raise

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold it (``async with``) around one request: at most ``max_concurrency`` requests of
        this connection are in flight per event loop, the rest wait in order; and the request
        is built in a turn of the loop of its own (:func:`hypotez.pacing.take_turn`: the SDK
        spends about a millisecond of CPU building one). Call after :meth:`aio`."""
        async with self._async[id(asyncio.get_running_loop())][2]:
            await take_turn()
            yield

    def with_retries(self, client: Any, max_retries: int | None) -> Any:
        """``client`` with a per-call retry budget (the seed's ``attempts``)."""
        if max_retries is None or max_retries == self.config.max_retries:
            return client
        # A copy per call costs ~50 µs (new client and resource objects); keep one per budget.
        # Copies share the base client's HTTP pool, so closing the base closes them too.
        key = (id(client), max_retries)
        with self._lock:
            entry = self._budgets.get(key)
            if entry is None or entry[0] is not client:
                entry = (client, client.with_options(max_retries=max_retries))
                self._budgets[key] = entry
            return entry[1]

    def close(self) -> None:
        """Close the blocking client (async clients are closed by :meth:`aclose`)."""
        with self._lock:
            client, self._sync = self._sync, None
            self._budgets = {k: v for k, v in self._budgets.items() if v[0] is not client}
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close every client this connection built that can still be closed here: the
        blocking one, and the async one of the running loop."""
        self.close()
        with self._lock:
            entries, self._async = list(self._async.values()), {}
            self._budgets.clear()
        current = asyncio.get_running_loop()
        for loop, future, _slots in entries:
            if loop is current:
                try:
                    client = await future
                except Exception:
                    continue
                await client.close()

    # -- errors ------------------------------------------------------------------------
    def error(
        self, exc: BaseException, *, model: str | None, retries: int | None = None
    ) -> Exception:
        """The hypotez error for an SDK (or transport) exception."""
        return map_exception(exc, self.config, model=model, retries=retries)


def map_exception(
    exc: BaseException, config: Config, *, model: str | None, retries: int | None = None
) -> Exception:
    openai = import_openai()
    import httpx2

    retries = config.max_retries if retries is None else retries
    where = config.where
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return errors.timeout(where, config.timeout, retries)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return errors.connection(where, retries, type(exc).__name__)
    if isinstance(exc, openai.APIStatusError):
        body = getattr(exc, "body", None)
        message, code, param = errors.message_of(body)
        code = code or getattr(exc, "code", None)
        return errors.for_status(
            exc.status_code,
            message or str(getattr(exc, "message", "") or exc),
            code=code if isinstance(code, str) else None,
            where=where,
            model=model,
            retries=retries,
            api_key=config.api_key,
            param=param or getattr(exc, "param", None),
            body=body,
        )
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return BackendError(
            f"The server at {where} sent an answer that is not a valid OpenAI response "
            f"({errors.scrub(str(exc), config.api_key)[:200]}). Is OPENAI_BASE_URL an "
            "OpenAI-compatible endpoint?"
        )
    return BackendError(
        f"The OpenAI request to {where} failed: {errors.scrub(repr(exc), config.api_key)[:300]}"
    )

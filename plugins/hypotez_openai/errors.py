"""Turn what an OpenAI-compatible server answered into hypotez errors.

One table for both backends: the SDK backends map the SDK's exceptions here, the raw-httpx
backend maps status codes here, so a 429 reads the same whichever way it was sent. Messages say
what to do next and never contain the API key: server messages are scrubbed first (OpenAI's
own 401 text quotes part of the key).
"""

from __future__ import annotations

import re

from hypotez import (
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ContextLengthError,
    NotFoundError,
    RateLimitError,
    ServerError,
)

# Anything that looks like an OpenAI-style secret, whole or masked ("sk-abc***xyz").
_KEYLIKE = re.compile(r"\b(sk|sess|org|proj)-[A-Za-z0-9_*\-.]{4,}")


def scrub(text: str, api_key: str | None) -> str:
    """``text`` without the API key or anything shaped like one."""
    if api_key:
        text = text.replace(api_key, "***")
    return _KEYLIKE.sub(lambda m: f"{m.group(1)}-***", text)


def for_status(
    status: int,
    server_message: str,
    *,
    code: str | None,
    where: str,
    model: str | None,
    retries: int,
    api_key: str | None,
) -> BackendError:
    """The hypotez error for an HTTP error ``status`` returned by ``where`` (a base URL)."""
    said = scrub(server_message, api_key).strip() or "no details"
    said = said[:300]
    if status in (401, 403):
        return AuthenticationError(
            f"The server at {where} rejected the API key (HTTP {status}: {said}). Check "
            "OPENAI_API_KEY (or the api_key you passed) and that it may use this model."
        )
    if status == 404:
        subject = f"the model {model!r}" if model else "the requested resource"
        return NotFoundError(
            f"The server at {where} does not know {subject} (HTTP 404: {said}). Run "
            "`hypotez models` to list the models it serves, or set HYPOTEZ_MODEL."
        )
    if status == 429:
        return RateLimitError(
            f"The server at {where} kept answering 429 Too Many Requests after {retries} "
            f"retries ({said}). Wait and try again, lower the request rate, or check your "
            "quota and billing."
        )
    if status >= 500:
        return ServerError(
            f"The server at {where} kept failing with HTTP {status} after {retries} retries "
            f"({said}). Try again later; raise HYPOTEZ_MAX_RETRIES to retry longer."
        )
    if status == 400 and (code == "context_length_exceeded" or "context length" in said.lower()):
        return ContextLengthError(
            f"The dialogue does not fit the context window of {model or 'the model'} ({said}). "
            "Start a new dialogue, shorten the message, or use a model with a larger context."
        )
    return BackendError(
        f"The server at {where} refused the request (HTTP {status}: {said}). Check the "
        "options sent (model, max tokens, JSON schema)."
    )


def timeout(where: str, seconds: float, retries: int) -> BackendTimeoutError:
    return BackendTimeoutError(
        f"The server at {where} did not answer within {seconds:g} s, after {retries} retries. "
        "Raise HYPOTEZ_TIMEOUT, or check that the server is not overloaded."
    )


def connection(where: str, retries: int, detail: str) -> BackendConnectionError:
    return BackendConnectionError(
        f"Could not reach the server at {where}, or it dropped the connection, after {retries} "
        f"retries ({detail}). Check OPENAI_BASE_URL and your network, then try again."
    )

"""Turn what an OpenAI-compatible server answered into hypotez errors.

One table for both backends: the SDK backends map the SDK's exceptions here, the raw-httpx
backend maps status codes here, so a 429 reads the same whichever way it was sent. Messages say
what to do next and never contain the API key: server messages are scrubbed first (OpenAI's
own 401 text quotes part of the key).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypotez import (
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    ContextLengthError,
    InvalidRequestError,
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


# A request-validation failure as FastAPI/pydantic servers word it (llama.cpp's server among
# them, which sends it as HTTP 500): "validation error ... 'loc': ('body', 'response_format'".
_VALIDATION = re.compile(r"validation error", re.IGNORECASE)
_LOC = re.compile(r"""['"]loc['"]\s*:\s*[(\[]\s*['"]body['"]\s*,\s*['"]([A-Za-z_][\w.-]*)['"]""")


def is_invalid_request(status: int, message: str) -> bool:
    """Whether an error answer means "your request is invalid" rather than an outage.

    4xx other than auth, not-found, timeout, lock and rate-limit statuses; and a 5xx whose
    text is a request-validation error (some servers report those as internal errors, which
    retrying cannot fix).
    """
    if 400 <= status < 500:
        return status not in (401, 403, 404, 408, 409, 429)
    return status >= 500 and bool(_VALIDATION.search(message)) and bool(_LOC.search(message))


def refused_param(message: str, param: str | None = None, body: Any = None) -> str | None:
    """The request parameter an invalid-request answer names, if it names one.

    From the error's ``param`` field (the chat-completions convention), a validation error's
    ``loc`` (FastAPI's ``{"detail": [{"loc": ["body", "tools", ...]}]}``, or the same quoted in
    the message text).
    """
    if isinstance(param, str) and param:
        return param.split(".")[0].split("[")[0]
    details = body.get("detail") if isinstance(body, dict) else None
    if isinstance(details, list):
        for item in details:
            loc = item.get("loc") if isinstance(item, dict) else None
            if isinstance(loc, list | tuple) and len(loc) > 1 and loc[0] == "body":
                return str(loc[1])
    found = _LOC.search(message)
    return found.group(1) if found else None


def message_of(body: Any) -> tuple[str, str | None, str | None]:
    """(message, code, param) from an error body in any of the usual shapes."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message") or inner.get("detail") or ""
            if not isinstance(message, str):
                message = json.dumps(message, default=str)
            code, param = inner.get("code"), inner.get("param")
            return (
                message,
                code if isinstance(code, str) else None,
                param if isinstance(param, str) else None,
            )
        if isinstance(inner, str):
            return inner, None, None
    return ("" if body is None else str(body)), None, None


def invalid_request(where: str, status: int, said: str, param: str | None) -> InvalidRequestError:
    what = f"the parameter {param!r}" if param else "the request"
    return InvalidRequestError(
        f"The server at {where} refused {what} as invalid (HTTP {status}: {said}). This is "
        "not an outage, so it was not retried: change "
        + (f"or leave out {param!r}" if param else "the options sent (model, max tokens, extra)")
        + ", or check what this server supports (docs: backends/openai, servers tested).",
        param=param,
    )


#: How servers say a request is longer than the model's window: OpenAI, vLLM and
#: llama-cpp-python ("maximum context length is N tokens"), llama.cpp's server ("exceeds the
#: available context size", type exceed_context_size_error), others ("context window").
CONTEXT_CODES = ("context_length_exceeded", "exceed_context_size_error")
CONTEXT_WORDS = ("context length", "context size", "context window")


def for_status(
    status: int,
    server_message: str,
    *,
    code: str | None,
    where: str,
    model: str | None,
    retries: int,
    api_key: str | None,
    param: str | None = None,
    body: Any = None,
) -> BackendError:
    """The hypotez error for an HTTP error ``status`` returned by ``where`` (a base URL)."""
    # A validation error's text may carry the server's own traceback: keep the message.
    said = scrub(server_message, api_key).split("\n\n  File ")[0]
    said = " ".join(said.split())[:300] or "no details"
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
    if code in CONTEXT_CODES or (
        status == 400 and any(words in said.lower() for words in CONTEXT_WORDS)
    ):
        return ContextLengthError(
            f"The dialogue does not fit the context window of {model or 'the model'} ({said}). "
            "Start a new dialogue, shorten the message, or use a model with a larger context."
        )
    if is_invalid_request(status, server_message):
        return invalid_request(where, status, said, refused_param(server_message, param, body))
    if status >= 500:
        return ServerError(
            f"The server at {where} kept failing with HTTP {status} after {retries} retries "
            f"({said}). Try again later; raise HYPOTEZ_MAX_RETRIES to retry longer."
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


class StructuredOutputError(BackendError):
    """A structured answer that is not JSON or does not follow the schema it was asked for.

    ``text`` is what the model answered, ``problem`` what is wrong with it, so that a caller
    with its own tolerance (the ``llm`` analyzer clamps scores) can judge it again.
    """

    def __init__(self, message: str, *, text: str, model: str, problem: str) -> None:
        super().__init__(message)
        self.text, self.model, self.problem = text, model, problem

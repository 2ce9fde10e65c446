"""The errors hypotez raises.

Everything derives from :class:`HypotezError`, so an application can catch one class. Each
message says what went wrong *and* what to do next; callers never need to parse it.
"""

from __future__ import annotations


class HypotezError(Exception):
    """Root of every error hypotez raises on purpose."""


class ConfigError(HypotezError):
    """Settings are missing or contradictory (no backend, no API key, a bad TOML file...)."""


class PluginError(HypotezError):
    """A plugin failed to load, registered badly, or a name is unknown or taken twice."""


class MissingDependencyError(PluginError):
    """A backend's optional dependency is not installed; the message says how to install it.

    ``install`` is the command that fixes it (``pip install 'hypotez[s3]'``, or a third-party
    plugin's own package). When a factory raises it without one, hypotez fills in the install
    hint its plugin registered the backend with.
    """

    def __init__(self, backend: str, module: str, install: str = "") -> None:
        self.backend, self.module, self.install = backend, module, install
        super().__init__(
            f"The {backend!r} backend needs the {module!r} package, which is not installed. "
            + (
                f"Install it with: {install}"
                if install
                else "Install the package of the plugin that provides this backend."
            )
        )


class InputError(HypotezError, ValueError):
    """Bad input from the caller: an invalid id, a non-image, an invalid training row..."""


class BackendError(HypotezError):
    """A remote or local model backend failed. Subclasses say how."""


class AuthenticationError(BackendError):
    """The backend rejected the credentials (HTTP 401/403)."""


class NotFoundError(BackendError):
    """The backend does not know the model, file or job that was asked for (HTTP 404)."""


class RateLimitError(BackendError):
    """The backend kept answering 429 after the bounded retries."""


class ServerError(BackendError):
    """The backend kept failing with 5xx after the bounded retries."""


class BackendTimeoutError(BackendError, TimeoutError):
    """The backend did not answer in time, after the bounded retries."""


class BackendConnectionError(BackendError, ConnectionError):
    """The backend could not be reached or dropped the connection, after the bounded retries."""


class InvalidRequestError(BackendError, InputError):
    """The backend refused the request as invalid (not an outage: it is never retried).

    ``param`` names the refused parameter when the backend said which (``"response_format"``,
    ``"tools"``...), else ``None``.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ContextLengthError(BackendError, InputError):
    """The prompt (dialogue history included) does not fit the model's context window."""


class StorageError(HypotezError):
    """A storage backend could not read or write."""


class DialogueNotFoundError(StorageError, KeyError):
    """No dialogue (or record) with that id exists in this storage."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CorruptDataError(StorageError):
    """Stored data cannot be parsed. It is reported with its location and never overwritten."""


class ConflictError(StorageError):
    """A concurrent writer won every retry of a conditional write."""


class TrainingDataError(InputError):
    """Training data failed validation; ``report`` holds every problem found."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


_USERINFO = None


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` part of every URL in it masked: ``https://***@host``.

    Every message, log line and repr that shows a URL a user configured goes through this, so a
    password put in ``..._BASE_URL`` or an endpoint never reaches a terminal or a log file.
    """
    global _USERINFO
    if "@" not in text:
        return text
    if _USERINFO is None:
        import re

        # scheme://userinfo@ where userinfo has no '/', '@' or whitespace
        _USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/@\s]+@")
    return _USERINFO.sub(r"\1***@", text)

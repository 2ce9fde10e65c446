"""The context: what many sessions share (settings, plugins, and the backends built from them).

A backend factory receives the context and may ask it for another capability's backend
(``context.get("chat")``): the ``llm`` sentiment analyzer and a vision backend that phrases
labels use the same chat model as the sessions, so one process holds one local model, one
HTTP pool, one storage client. Backends are built on first request, once per (capability,
name), and closed in reverse order of building when the context closes (the shape of svcs'
container).

A web app makes one context at start-up and one :class:`hypotez.AsyncSession` per request or
conversation on it; creating such a session costs microseconds and never blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from hypotez.errors import ConfigError, InputError, PluginError
from hypotez.plugins import PluginManager, get_plugin_manager
from hypotez.registry import CAPABILITIES
from hypotez.settings import Settings

#: capability -> the method an object passed as that backend must have.
REQUIRED_METHOD = {
    "chat": "achat",
    "sentiment": "aanalyze",
    "storage": "aappend_turns",
    "vision": "adescribe",
    "trainer": "asubmit",
}


def check_choice(capability: str, choice: Any) -> None:
    """A backend is chosen by name (str), given as an object, or left to settings (None)."""
    if choice is None or (capability == "sentiment" and choice is False):
        return
    if isinstance(choice, str):
        if not choice.strip():
            what = (
                "a storage URL such as file:///path"
                if capability == "storage"
                else "a backend name"
            )
            raise InputError(
                f"{capability}={choice!r} is empty: give {what}, or None for the configured "
                "default."
            )
        return
    if not callable(getattr(choice, REQUIRED_METHOD[capability], None)):
        raise InputError(
            f"{capability}={choice!r} is neither a backend name nor a {capability} backend "
            f"(an object with a {REQUIRED_METHOD[capability]}() method). Pass a name such as "
            f"{capability}='...', or None for the configured default."
        )


def storage_scheme(url: str) -> str:
    """``file`` for ``file:///x`` and for plain paths, else the URL's scheme."""
    scheme = urlsplit(url).scheme
    # A one-letter "scheme" is a Windows drive (C:\\...), not a URL.
    return "file" if len(scheme) <= 1 else scheme


class Context:
    """Settings, plugins and the backends built from them, shared by sessions.

    Args:
        settings: the settings (default: :meth:`hypotez.Settings.load`).
        chat, sentiment, storage, vision, trainer: the default backend of each capability,
            by name (a URL for storage) or as a ready object (which the context then uses but
            never closes); ``None`` leaves the choice to the settings, then to the available
            backend with the highest priority.
        plugin_manager: the plugins to build from (default: the process-wide manager).

    Use it as a context manager (``with``/``async with``), or call :meth:`close`/:meth:`aclose`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        chat: Any = None,
        sentiment: Any = None,
        storage: Any = None,
        vision: Any = None,
        trainer: Any = None,
        plugin_manager: PluginManager | None = None,
    ) -> None:
        if settings is not None and not isinstance(settings, Settings):
            raise InputError(
                f"settings must be a hypotez.Settings (Settings.load(...)), not "
                f"{type(settings).__name__}."
            )
        if plugin_manager is not None and not isinstance(plugin_manager, PluginManager):
            raise InputError(
                "plugin_manager must be a hypotez plugin manager (hypotez.make_plugin_manager()), "
                f"not {type(plugin_manager).__name__}."
            )
        choices = {
            "chat": chat,
            "sentiment": None if sentiment is False else sentiment,
            "storage": storage,
            "vision": vision,
            "trainer": trainer,
        }
        for capability, choice in choices.items():
            check_choice(capability, choice)
        self.settings = settings if settings is not None else Settings.load()
        self.plugin_manager = plugin_manager if plugin_manager is not None else get_plugin_manager()
        self._choices = choices
        self._built: dict[tuple[str, str], Any] = {}
        self._resolved: dict[tuple[str, str | None], tuple[str, str]] = {}
        self._owned: list[Any] = []  # in build order; closed in reverse
        self._guard = threading.Lock()
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}
        self._building = threading.local()
        self._closed = False

    @property
    def registry(self) -> Any:
        """The :class:`~hypotez.registry.Registry` of the context's plugin manager."""
        return self.plugin_manager.registry

    # -- choosing ------------------------------------------------------------------------
    def default_name(self, capability: str) -> Any:
        """The context's choice for ``capability``: a name, a backend object, or None."""
        if capability not in CAPABILITIES:
            raise PluginError(
                f"Unknown capability {capability!r}: use one of {', '.join(CAPABILITIES)}."
            )
        choice = self._choices.get(capability)
        if choice is not None:
            return choice
        # Capabilities without a core setting of their own (batch engines, say) fall back to
        # the highest-priority available backend.
        value = getattr(self.settings, capability, None)
        return value or None

    def _resolve(self, capability: str, name: str | None) -> tuple[str, str] | Any:
        """The cache key of ``name`` (or of the default), or a provided backend object."""
        memo = self._resolved.get((capability, name))
        if memo is not None:
            return memo
        chosen = name if name is not None else self.default_name(capability)
        if chosen is not None and not isinstance(chosen, str):
            return chosen  # an object given to the context
        if capability == "storage":
            if not chosen:
                raise ConfigError("No storage URL is configured: set HYPOTEZ_STORAGE.")
            key = ("storage", chosen)
        else:
            key = (capability, self.registry.select(capability, chosen, self.settings).name)
        self._resolved[(capability, name)] = key
        return key

    # -- getting -------------------------------------------------------------------------
    def get(self, capability: str, name: str | None = None) -> Any:
        """The backend of ``capability`` named ``name`` (a URL for storage), or the default one.

        Built on first request (in the calling thread: from async code use :meth:`aget`),
        then shared. Thread-safe: concurrent first requests build it once.
        """
        if self._closed:
            raise PluginError("This context is closed: make a new hypotez.Context.")
        if name is not None:
            check_choice(capability, name)
        key = self._resolve(capability, name)
        if not isinstance(key, tuple):
            return key
        backend = self._built.get(key)
        if backend is not None:
            return backend
        with self._guard:
            lock = self._key_locks.setdefault(key, threading.Lock())
        with self._cycle_check(key), lock:
            backend = self._built.get(key)
            if backend is None:
                backend = self._build(key)
                with self._guard:
                    self._built[key] = backend
                    self._owned.append(backend)
        return backend

    async def aget(self, capability: str, name: str | None = None) -> Any:
        """:meth:`get` from async code: a backend not built yet is built in a worker thread,
        so loading a model or an SDK never stalls the event loop."""
        memo = self._resolved.get((capability, name))
        if memo is not None and memo in self._built:
            return self._built[memo]
        if name is None and memo is None:
            chosen = self._choices.get(capability)
            if chosen is not None and not isinstance(chosen, str):
                return chosen
        from hypotez.portal import to_thread

        return await to_thread(self.get, capability, name)

    def _build(self, key: tuple[str, str]) -> Any:
        capability, name = key
        if capability == "storage":
            scheme = storage_scheme(name)
            registrations = self.registry.registrations("storage")
            if scheme not in registrations:
                raise ConfigError(
                    f"No storage plugin handles {scheme}:// URLs (storage {name!r}). Known "
                    f"schemes: {', '.join(sorted(registrations)) or 'none'}. Install a plugin "
                    "that provides it."
                )
            return registrations[scheme].build(self, name)
        return self.registry.get(capability, name).build(self)

    @contextmanager
    def _cycle_check(self, key: tuple[str, str]) -> Iterator[None]:
        stack: list[tuple[str, str]] = self._building.__dict__.setdefault("stack", [])
        if key in stack:
            chain = " -> ".join(f"{c} {n!r}" for c, n in [*stack[stack.index(key) :], key])
            raise PluginError(f"Backends need each other in a circle: {chain}.")
        stack.append(key)
        try:
            yield
        finally:
            stack.pop()

    def built(self) -> list[Any]:
        """The backends this context has built so far, in build order."""
        with self._guard:
            return list(self._owned)

    # -- closing -------------------------------------------------------------------------
    def _take_owned(self) -> list[Any]:
        with self._guard:
            owned, self._owned = self._owned, []
            self._built.clear()
            self._resolved.clear()
            self._closed = True
        return owned

    def close(self) -> None:
        """Close every backend built here, newest first, even if one fails (the first error
        is raised once all are closed)."""
        from hypotez import portal

        portal.run(self.aclose())

    async def aclose(self) -> None:
        """:meth:`close`, from async code."""
        errors: list[BaseException] = []
        from hypotez.portal import to_thread

        for backend in reversed(self._take_owned()):
            try:
                aclose = getattr(backend, "aclose", None)
                if aclose is not None:
                    await aclose()
                elif callable(getattr(backend, "close", None)):
                    await to_thread(backend.close)
            except Exception as exc:  # close the rest, then report the first failure
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Context:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

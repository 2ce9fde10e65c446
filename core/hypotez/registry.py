"""Who registered which backend: the ``register`` callback and the registry behind it.

Every capability hook is called once per plugin manager, **through pluggy** (so hook wrappers
and ``add_hookcall_monitoring`` see the call), with one ``register`` callback. The callback
knows which plugin is calling it from the hook implementation running on the call stack, so
each registration keeps its plugin's name: conflicts name both plugins, ``hypotez plugins``
lists who provides what.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from hypotez.errors import ConfigError, HypotezError, MissingDependencyError, PluginError

if TYPE_CHECKING:
    from hypotez.plugins import PluginManager

#: capability -> the hook that registers it.
CAPABILITIES: dict[str, str] = {
    "chat": "register_chat_backends",
    "sentiment": "register_sentiment_analyzers",
    "storage": "register_storages",
    "vision": "register_vision_backends",
    "trainer": "register_trainers",
    "batch": "register_batch_engines",
}


class Register(Protocol):
    """The callback each ``register_*`` hook receives; see :mod:`hypotez.hookspecs`."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        override: bool = False,
        priority: int = 0,
        available: Callable[[Any], bool] | None = None,
        description: str = "",
        install: str = "",
    ) -> None: ...


class Registration(NamedTuple):
    """One named backend as a plugin registered it.

    (A NamedTuple rather than an attrs class: every CLI start loads the registry's module, and
    attrs costs more to import than all of it.)
    """

    capability: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    override: bool = False
    priority: int = 0
    available: Callable[[Any], bool] | None = None
    description: str = ""
    #: What makes it usable when it is not: an install command or the setting it needs.
    install: str = ""

    def is_available(self, settings: Any) -> bool:
        if self.available is None:
            return True
        try:
            return bool(self.available(settings))
        except Exception:  # an availability probe must never break selection
            return False

    def build(self, context: Any, *args: Any) -> Any:
        """Call the factory; errors name the backend and its plugin."""
        try:
            backend = self.factory(context, *args)
        except MissingDependencyError as exc:
            if exc.install or not self.install:
                raise
            raise MissingDependencyError(exc.backend, exc.module, self.install) from exc
        except HypotezError:
            raise
        except Exception as exc:
            raise PluginError(
                f"The {self.capability} backend {self.name!r} (plugin {self.plugin!r}) failed "
                f"to start: {exc!r}"
            ) from exc
        if not getattr(backend, "name", ""):
            with contextlib.suppress(AttributeError):  # a backend may make its name read-only
                backend.name = self.name
        return backend


class Registry:
    """Who registered which backend, collected on first use per capability."""

    def __init__(self, pm: PluginManager) -> None:
        self._pm = pm
        self._by_capability: dict[str, dict[str, Registration]] = {}
        self._lock = threading.Lock()

    def registrations(self, capability: str) -> dict[str, Registration]:
        """Name -> registration for one capability."""
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
        # The code of every implementation of this hook -> its plugin, to attribute each
        # register() call to the plugin whose implementation is on the stack.
        owners: dict[Any, list[tuple[object, str]]] = {}
        for impl in hook.get_hookimpls():
            code = getattr(impl.function, "__code__", None)
            if code is not None:
                owners.setdefault(code, []).append((impl.plugin, impl.plugin_name))
        found: dict[str, Registration] = {}
        state = {"open": True}

        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            override: bool = False,
            priority: int = 0,
            available: Callable[[Any], bool] | None = None,
            description: str = "",
            install: str = "",
        ) -> None:
            plugin = _calling_plugin(owners)
            if not state["open"]:
                raise PluginError(
                    f"Plugin {plugin!r} called register() for {capability} {name!r} after "
                    f"{hook.name} returned: register backends inside the hook."
                )
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"Plugin {plugin!r} registered a {capability} backend without a name."
                )
            if not callable(factory):
                raise PluginError(
                    f"Plugin {plugin!r} registered {capability} {name!r} with a non-callable "
                    "factory."
                )
            new = Registration(
                capability,
                name,
                factory,
                plugin,
                bool(override),
                int(priority),
                available,
                str(description),
                str(install),
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
            hook(register=register)
        except HypotezError:
            raise
        except Exception as exc:
            plugin = _failing_plugin(exc, owners)
            raise PluginError(
                f"Plugin {plugin!r} failed in {hook.name}: {exc!r}. Fix or uninstall it, or skip "
                f"it with HYPOTEZ_DISABLE_PLUGINS={plugin}."
            ) from exc
        finally:
            state["open"] = False
        return found

    def get(self, capability: str, name: str) -> Registration:
        regs = self.registrations(capability)
        if name not in regs:
            raise PluginError(
                f"No {capability} backend named {name!r}. Available: "
                f"{', '.join(sorted(regs)) or 'none'}. Run `hypotez plugins` to see what is "
                "installed."
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
        hints = "; ".join(f"{r.name}: {r.install}" for r in candidates if r.install)
        raise ConfigError(
            f"No {capability} backend is available "
            f"(registered: {', '.join(r.name for r in candidates) or 'none'})."
            + (f" To enable one: {hints}." if hints else " Install a plugin that provides one.")
        )


def _calling_plugin(owners: dict[Any, list[tuple[object, str]]]) -> str:
    """The plugin whose hook implementation is on the stack of the register() call."""
    frame = sys._getframe(2)
    while frame is not None:
        candidates = owners.get(frame.f_code)
        if candidates:
            if len(candidates) == 1:
                return candidates[0][1]
            # One function registered by several plugins: methods of plugin objects.
            this = frame.f_locals.get("self")
            for plugin, name in candidates:
                if plugin is this:
                    return name
            return candidates[0][1]
        frame = frame.f_back  # type: ignore[assignment]
    raise PluginError(
        "register() was called outside a hypotez hook implementation; call it from your "
        "plugin's register_* hook."
    )


def _failing_plugin(exc: BaseException, owners: dict[Any, list[tuple[object, str]]]) -> str:
    """The plugin whose hook implementation raised ``exc`` (from the traceback)."""
    tb = exc.__traceback__
    name = "unknown"
    while tb is not None:
        candidates = owners.get(tb.tb_frame.f_code)
        if candidates:
            name = candidates[0][1]
        tb = tb.tb_next
    return name

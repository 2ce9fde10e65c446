"""Running a batch task in another process: a pool worker, a cluster actor.

A :class:`WorkerSpec` is plain, picklable data (the settings, the plugins to load, the task's
spec); never a model or a client. :class:`Worker` is built from it once per process: it makes
its own :class:`hypotez.Context`, which builds the backend the first time a row needs it and
keeps it for every later row. So each worker loads its model once, and nothing heavy crosses a
process boundary.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any

import attrs
from hypotez.batch.tasks import Row, Task, make_task
from hypotez.errors import ConfigError
from hypotez.settings import Settings


@attrs.frozen
class WorkerSpec:
    """What a worker needs. ``plugins``: module names to load instead of the entry points
    (``None``: the installed plugins, as the environment selects them)."""

    settings: Settings
    task: dict[str, Any]
    plugins: tuple[str, ...] | None = None

    def build(self) -> Worker:
        return Worker(self)


def plugin_modules(pm: Any) -> tuple[str, ...] | None:
    """The plugins of ``pm`` as importable module names, so another process can load the same.

    ``None`` when ``pm`` is the process-wide manager with only installed plugins (the worker
    finds them the same way). A plugin that is an object rather than a module cannot be
    loaded elsewhere: :class:`ConfigError`.
    """
    from hypotez.plugins import CORE_PLUGIN

    names = []
    for name, plugin in pm.list_name_plugin():
        if name == CORE_PLUGIN or plugin is None:
            continue
        if not isinstance(plugin, types.ModuleType):
            raise ConfigError(
                f"The plugin {name!r} is a {type(plugin).__name__} object, not a module, so a "
                "worker process cannot load it. Install it as a package (an entry point), or "
                "run the job in this process (workers=1)."
            )
        names.append(plugin.__name__)
    return tuple(names)


class Worker:
    """One process's context and task; :meth:`run` works on rows (blocking)."""

    def __init__(self, spec: WorkerSpec) -> None:
        from hypotez.context import Context
        from hypotez.plugins import make_plugin_manager

        pm = None
        if spec.plugins is not None:
            import importlib

            pm = make_plugin_manager(
                entry_points=False, plugins=[importlib.import_module(m) for m in spec.plugins]
            )
        self.context = Context(spec.settings, plugin_manager=pm)
        self.task: Task = make_task(**spec.task)

    def warm_up(self) -> None:
        """Build the backend now (a model loads here, not with the first rows)."""
        from hypotez import portal

        portal.run(self.task.backend(self.context))

    def run(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        from hypotez import portal

        return portal.run(self.task.arun(self.context, rows))

    def close(self) -> None:
        self.context.close()


__all__ = ["Worker", "WorkerSpec", "plugin_modules"]

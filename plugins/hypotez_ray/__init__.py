"""The ``ray`` batch engine: a batch job's rows across a Ray cluster, with Ray Data.

Registers the batch engine ``ray`` and the ``--ray-address`` option of ``hypotez batch run``.
It needs ``pip install 'hypotez[ray]'`` (``ray[data]``, pinned). The job connects to the
cluster at ``--ray-address`` (engine option ``address``), else at ``RAY_ADDRESS``; with neither,
it starts a local Ray for the job. Ray is imported only when a job starts.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    import click
    from hypotez import Context

INSTALL = "pip install 'hypotez[ray]'"


def _available(settings: Any) -> bool:
    return importlib.util.find_spec("ray") is not None


def _build(context: Context) -> Any:
    from hypotez_ray.engine import RayEngine

    return RayEngine(context.settings)


@hookimpl
def register_batch_engines(register: Register) -> None:
    register(
        "ray",
        _build,
        priority=10,
        available=_available,
        description="Ray Data: an actor per worker builds the backend once; a local Ray or a cluster",
        install=INSTALL,
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    from hypotez.cli.batch import add_engine_option

    add_engine_option(
        cli,
        "--ray-address",
        engine="ray",
        option="address",
        help="The Ray cluster to run on, e.g. ray://head:10001 (ray engine) [env: RAY_ADDRESS].",
    )

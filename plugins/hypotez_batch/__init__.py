"""The ``local`` batch engine: a batch job's rows on this machine.

Registers the batch engine ``local`` (the default). Rows go to the backend in batches (an
analyzer gets ``batch_size`` texts per call); a backend that waits on a network (an API) gets
``concurrency`` requests in flight; a backend that computes on this CPU (a local model) gets a
pool of ``workers`` processes, each building the backend once. Nothing is imported here but
hypotez's hook marker: the engine's module loads when a job starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context


def _build(context: Context) -> Any:
    from hypotez_batch.engine import LocalEngine

    return LocalEngine()


@hookimpl
def register_batch_engines(register: Register) -> None:
    register(
        "local",
        _build,
        priority=100,
        description="this machine: batched calls, N requests in flight, a process per CPU for local models",
    )

"""Cap the BLAS thread count while forward passes run, and put it back afterwards.

The cap is process-wide (BLAS has one thread pool), so concurrent forward passes share one
cap: the first to start sets it, the last to finish restores the caller's setting. Without
this count, two overlapping passes could each "restore" the other's cap and leave the whole
program stuck on one BLAS thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.Lock()
_users = 0
_limiter: Any = None


@contextlib.contextmanager
def capped(controller: Any, threads: int) -> Iterator[None]:
    """Run the body with at most ``threads`` BLAS threads (``controller``: threadpoolctl's)."""
    global _users, _limiter
    with _lock:
        if _users == 0:
            _limiter = controller.limit(limits=threads, user_api="blas")
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None

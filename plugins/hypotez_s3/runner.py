"""Run the storage's async code from sync callers.

The storage is written once, natively async on obstore's async API; the sync methods hand their
coroutine to one event loop running in a daemon thread of this process. That works whether or
not the caller's own thread already runs an event loop (``asyncio.run`` would not).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
#: How long the exit handler lets obstore's threads leave Python (see _shutdown).
_SETTLE_SECONDS = 0.1
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _forget_after_fork() -> None:
    # The loop thread does not exist in a forked child: build a new one there on first use.
    global _loop, _thread, _lock
    _loop, _thread, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="hypotez-s3", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
            atexit.register(_shutdown)
        return _loop


def _shutdown() -> None:
    """Stop the loop before the interpreter finalises.

    A daemon thread still inside the loop while Python tears down can be woken by obstore's
    runtime threads after finalisation, which aborts the process.
    """
    global _loop, _thread
    loop, thread = _loop, _thread
    if loop is None or thread is None:
        return
    _loop, _thread = None, None
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    if not thread.is_alive():
        loop.close()
    # obstore's runtime threads hand results back through Python (call_soon_threadsafe) and
    # release the GIL inside it; one that wants the GIL back once finalisation has begun is
    # ended with pthread_exit, which cannot unwind through Rust frames: SIGABRT at exit (seen
    # in about 1 of 25 writer processes). Releasing the GIL for a moment lets them finish.
    time.sleep(_SETTLE_SECONDS)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the background loop and return its result."""
    loop = _background_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError("A sync S3 storage method was called from inside its own event loop.")
    return asyncio.run_coroutine_threadsafe(coro, loop).result()

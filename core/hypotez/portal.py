"""The bridge between blocking and async code, used by the sync facades and the protocols.

hypotez is written once, async-first. Blocking callers (``hypotez.Session``, a backend's derived
sync method, the CLI) reach it through one background event loop per process, the *portal*:
:func:`run` submits a coroutine to it and waits for the result, :func:`iterate` walks an async
iterator from blocking code. The other direction, running blocking library calls from async code
without stalling the event loop, is :func:`to_thread` and :func:`iterate_in_thread`.

Why one loop in a thread rather than ``asyncio.run()`` per call: async clients (HTTP pools) are
bound to the loop that made them and must outlive a single call; a fresh loop per call would
rebuild them every time. One shared loop also lets blocking code run inside an application whose
own loop is busy (a notebook, an async web app calling a sync library), where ``asyncio.run``
refuses to start.

Nothing here imports asyncio at module level: ``import hypotez`` stays fast.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: Any = None  # asyncio.AbstractEventLoop, made on first use
_thread: threading.Thread | None = None
_DONE = object()
_after_stop: list[Callable[[], object]] = []


def _forget_after_fork() -> None:
    # A forked child has the parent's loop object but not its thread: start afresh if needed.
    global _loop, _thread, _lock
    _loop, _thread, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _portal_loop() -> Any:
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            import asyncio

            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            _thread = threading.Thread(target=serve, name="hypotez-portal", daemon=True)
            _thread.start()
            ready.wait()
            _loop = loop
            atexit.register(_shutdown)
        return _loop


def after_stop(callback: Callable[[], object]) -> None:
    """Run ``callback`` at interpreter exit, once the portal loop has stopped.

    For plugins whose libraries run native threads that call back into Python: a storage
    built on such a library can give them a moment to leave Python before finalisation.
    """
    if callback not in _after_stop:
        _after_stop.append(callback)


def _shutdown() -> None:
    """Stop the portal loop before the interpreter finalises.

    A daemon thread still inside the loop while Python tears down can be woken by a native
    library's threads after finalisation began, which aborts the process.
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
    for callback in _after_stop:
        callback()


def in_portal() -> bool:
    """True in the portal's own thread, where blocking on it would deadlock."""
    return _thread is not None and threading.current_thread() is _thread


def run(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` on the portal loop and wait for its result, from blocking code.

    Ctrl-C (or any exception raised while waiting) cancels the coroutine, so an interrupted
    request is cancelled, not left running.
    """
    import asyncio

    if in_portal():
        # Reached when async code calls a blocking facade (a sync Session inside an async
        # backend, say): waiting here would stop the very loop that must do the work.
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()  # never awaited, on purpose: no "was never awaited" warning
        raise RuntimeError(
            "A blocking hypotez call was made from hypotez's own event loop; call the async API "
            "(AsyncSession, or the backend's a* method) from async code instead."
        )

    async def wrapped() -> T:
        return await awaitable

    future = asyncio.run_coroutine_threadsafe(wrapped(), _portal_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate(aiterator: AsyncIterator[T]) -> Iterator[T]:
    """Walk an async iterator from blocking code, one item per round trip to the portal.

    Stopping early (``break``, an exception, garbage collection) closes the async iterator on
    the portal loop, so its ``finally`` blocks run (an HTTP stream is closed, a lock released).
    """
    sentinel: Any = _DONE

    async def step() -> Any:
        try:
            return await aiterator.__anext__()
        except StopAsyncIteration:
            return sentinel

    try:
        while (item := run(step())) is not sentinel:
            yield item
    finally:
        aclose = getattr(aiterator, "aclose", None)
        if aclose is not None and not in_portal():
            run(aclose())


async def to_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``asyncio.to_thread``: run blocking ``func`` in a worker thread, off the event loop."""
    import asyncio

    return await asyncio.to_thread(func, *args, **kwargs)


async def iterate_in_thread(make_iter: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Drive a blocking iterator in a worker thread and yield its items to the event loop.

    The consumer stopping early tells the worker to stop after the item it is producing.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in make_iter():
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:  # handed to the consumer, re-raised there
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    worker = loop.run_in_executor(None, pump)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        await worker


def shielded(coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """``asyncio.shield``: let ``coro`` finish even if the caller is cancelled meanwhile."""
    import asyncio

    return asyncio.shield(coro)

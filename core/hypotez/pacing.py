"""Fair turns on a busy event loop: :func:`take_turn`.

asyncio runs, in one turn of its loop, every callback that was ready when the turn began. When
hundreds of requests start together (a burst of web requests, a batch job), each one's
CPU-bound step (building an HTTP request, parsing a reply) lands in the same turn, and everything
else on the loop (a health check, a stream being shown, a timer) waits for all of them: the loop
stalls for the sum. Measured here: 200 concurrent asks against a local server stalled the loop
for 100-150 ms (docs/benchmarks.md).

:func:`take_turn` lets a task through only while the current turn has admitted fewer than
:data:`PER_TURN` tasks; the others wait, in order, for the next turns. Await it just before a
CPU-heavy step. It costs nothing when the loop is quiet (the first caller of a turn goes straight
through) and it does not lower throughput on a saturated loop: the same work is done, spread over
more, shorter turns, so that other tasks get their say between them.
"""

from __future__ import annotations

import collections
import contextlib
import weakref
from typing import Any

#: Tasks let through per turn of the loop. 1 gave the shortest stalls in the concurrency
#: benchmark (docs/benchmarks.md) at no measurable cost in throughput.
PER_TURN = 1


class _Pacer:
    """The turn-keeping of one event loop; used from that loop's thread only."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._admitted = 0
        self._waiters: collections.deque[Any] = collections.deque()
        self._scheduled = False

    async def take_turn(self) -> None:
        if self._admitted < PER_TURN and not self._waiters:
            self._admitted += 1
            self._schedule()
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        self._schedule()
        try:
            await waiter
        except BaseException:
            if not waiter.done() or waiter.cancelled():
                # Still queued: leave the queue. (Let through but cancelled: its turn is gone.)
                self._forget(waiter)
            raise

    def _forget(self, waiter: Any) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _schedule(self) -> None:
        # Runs at the start of the next turn (call_soon from inside a turn queues for the next).
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self._scheduled = False
        self._admitted = 0
        while self._waiters and self._admitted < PER_TURN:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._admitted += 1
        if self._waiters or self._admitted:
            self._schedule()


_pacers: weakref.WeakKeyDictionary[Any, _Pacer] = weakref.WeakKeyDictionary()


async def take_turn() -> None:
    """Wait until the running event loop's current turn has room for this task's next step.

    A backend calls it before a CPU-heavy step, such as building an HTTP request or parsing a
    long answer, so that a burst of requests spreads over the loop's turns.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    pacer = _pacers.get(loop)
    if pacer is None:
        pacer = _pacers[loop] = _Pacer(loop)
    await pacer.take_turn()

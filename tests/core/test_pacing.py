"""hypotez.pacing.take_turn: a burst of tasks is spread over the event loop's turns, in order."""

from __future__ import annotations

import asyncio

import pytest
from hypotez import pacing


class TurnCounter:
    """Counts the event loop's turns: a callback that queues itself again runs once per turn."""

    def __init__(self) -> None:
        self.turn = 0
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        if not self._stopped:
            self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._stopped = True


async def burst(count: int, turns: TurnCounter, order: list[int], at: dict[int, int]) -> None:
    async def one(i: int) -> None:
        await pacing.take_turn()
        order.append(i)
        at[i] = turns.turn

    await asyncio.gather(*(one(i) for i in range(count)))


@pytest.mark.parametrize("per_turn", [1, 3])
def test_a_burst_is_let_through_in_order_a_few_per_turn(
    per_turn: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing, "PER_TURN", per_turn)

    async def main() -> tuple[list[int], dict[int, int]]:
        turns = TurnCounter()
        order: list[int] = []
        at: dict[int, int] = {}
        await burst(50, turns, order, at)
        turns.stop()
        return order, at

    order, at = asyncio.run(main())
    assert order == list(range(50))
    admitted: dict[int, int] = {}
    for turn in at.values():
        admitted[turn] = admitted.get(turn, 0) + 1
    # The counter and the pacer both reset at a turn's start: allow their boundary to differ.
    assert max(admitted.values()) <= 2 * per_turn
    assert len(admitted) >= 50 // (2 * per_turn)


def test_a_lone_task_goes_straight_through() -> None:
    async def main() -> bool:
        turns = TurnCounter()
        before = turns.turn
        await pacing.take_turn()
        went_through = turns.turn == before  # no turn of the loop passed
        turns.stop()
        return went_through

    assert asyncio.run(main())


def test_a_cancelled_waiter_does_not_hold_up_the_others() -> None:
    async def main() -> list[str]:
        done: list[str] = []

        async def one(name: str) -> None:
            await pacing.take_turn()
            done.append(name)

        first = asyncio.ensure_future(one("first"))
        cancelled = asyncio.ensure_future(one("cancelled"))
        last = asyncio.ensure_future(one("last"))
        await asyncio.sleep(0)  # all three started: the first went through, two wait
        cancelled.cancel()
        await asyncio.gather(first, last)
        assert cancelled.cancelled()
        return done

    assert asyncio.run(main()) == ["first", "last"]


def test_each_event_loop_keeps_its_own_turns() -> None:
    # A loop that ended with tasks waiting leaves nothing behind for the next loop.
    async def abandon() -> None:
        waiting = [asyncio.ensure_future(pacing.take_turn()) for _ in range(5)]
        await asyncio.sleep(0)
        for task in waiting:
            task.cancel()

    asyncio.run(abandon())

    async def main() -> list[int]:
        turns = TurnCounter()
        order: list[int] = []
        await burst(5, turns, order, {})
        turns.stop()
        return order

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]

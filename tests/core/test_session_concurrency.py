"""What an app embedding hypotez relies on under concurrency: each ask sends the dialogue as
stored, a cancelled ask is stored once or not at all, one session's asks take turns, and making
a session reads nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import AsyncSession, ChatBackend, ChatOptions, Context, Message, Reply, Session


def echoed(reply: Reply) -> dict[str, Any]:
    return dict(json.loads(reply.text))


class SlowChat(ChatBackend):
    """Answers after ``delay`` seconds with how many messages it was sent; counts its calls."""

    name = "slow"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self.started = asyncio.Event()

    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        self.calls += 1
        self.started.set()
        await asyncio.sleep(self.delay)
        last = messages[-1].content
        return Reply(text=json.dumps({"n": len(messages), "last": last}), model="slow")


class SlowStorage:
    """Wraps a storage; appends wait on ``gate`` (a storage that is slow to write)."""

    def __init__(self, inner: hypotez.Storage) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.appending = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def aappend_turns(self, dialogue_id: str, turns: Sequence[hypotez.Turn]) -> None:
        self.appending.set()
        await self.gate.wait()
        await self.inner.aappend_turns(dialogue_id, turns)


def test_each_ask_sends_the_dialogue_as_stored_now(home: Path) -> None:
    with Session(chat="echo", sentiment=False) as first:
        first.ask("one")
        dialogue_id = first.dialogue_id
        # Another session (another process, another request) continues the same dialogue.
        with Session(chat="echo", sentiment=False, dialogue_id=dialogue_id) as other:
            other.ask("two, from elsewhere")
        reply = first.ask("three")
    # one + reply, two + reply, three: the turns appended elsewhere were sent too.
    assert echoed(reply)["n"] == 5
    assert [t.content for t in first.history if t.role == "user"] == [
        "one",
        "two, from elsewhere",
        "three",
    ]


async def test_making_an_async_session_reads_nothing(home: Path) -> None:
    class Untouchable:
        """A storage that fails the test if anything reads it."""

        async def aappend_turns(self, *args: Any) -> None:
            raise AssertionError("storage used")

        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"storage.{name} used while making a session")

    context = Context(chat="echo", storage=Untouchable())
    session = AsyncSession(context=context, dialogue_id="some-dialogue", assistant="coder")
    assert session.dialogue_id == "some-dialogue"  # read at the first ask, not here
    await context.aclose()


async def test_one_sessions_asks_take_turns_in_order(home: Path) -> None:
    async with AsyncSession(chat="echo", sentiment=False) as s:
        replies = await asyncio.gather(*(s.ask(f"q{i}") for i in range(5)))
        # Each ask saw every exchange before it: 1, 3, 5, 7, 9 messages.
        assert [echoed(r)["n"] for r in replies] == [1, 3, 5, 7, 9]
        stored = await s.load_dialogue()
    assert [t.content for t in stored.turns if t.role == "user"] == [f"q{i}" for i in range(5)]


async def test_an_ask_cancelled_before_the_reply_stores_nothing(home: Path) -> None:
    chat = SlowChat(delay=10)
    async with AsyncSession(chat=chat, sentiment=False) as s:
        task = asyncio.create_task(s.ask("hello"))
        await chat.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert s.dialogue_id is None
        storage = await s.get("storage")
        assert await storage.alist_dialogues() == []


async def test_an_ask_cancelled_while_storing_is_stored_once_and_a_retry_pays_nothing(
    home: Path,
) -> None:
    chat = SlowChat()
    context = Context(chat=chat, sentiment=False)
    slow = SlowStorage(await context.aget("storage"))
    async with AsyncSession(context=context, storage=slow) as s:
        slow.gate.set()
        await s.ask("first")
        slow.gate.clear()
        slow.appending.clear()
        task = asyncio.create_task(s.ask("second"))
        await slow.appending.wait()  # the reply arrived; its turns are being written
        task.cancel()
        await asyncio.sleep(0)
        slow.gate.set()  # the write completes although the caller gave up
        with pytest.raises(asyncio.CancelledError):
            await task
        retry = await s.ask("second")  # the caller tries again
        assert echoed(retry)["last"] == "second"
        stored = await s.load_dialogue()
    assert [t.content for t in stored.turns if t.role == "user"] == ["first", "second"]
    assert chat.calls == 2  # the retry returned the stored reply instead of paying again
    await context.aclose()


async def test_a_cancelled_stream_stores_nothing_and_frees_the_session(home: Path) -> None:
    async with AsyncSession(chat="echo", sentiment=False) as s:
        stream = s.stream("hello")
        first = await stream.__anext__()
        assert first.delta
        await stream.aclose()  # the consumer gave up mid-stream
        assert s.dialogue_id is None
        reply = await asyncio.wait_for(s.ask("again"), timeout=30)  # the turn lock was released
        assert echoed(reply)["n"] == 1


def test_session_arguments_of_the_wrong_type_are_input_errors(home: Path) -> None:
    for kwargs in (
        {"assistant": 5},
        {"model": 5},
        {"model": " "},
        {"system": 3},
        {"store": "yes"},
        {"dialogue_id": "../x"},
    ):
        with pytest.raises(hypotez.InputError):
            Session(chat="echo", **kwargs)

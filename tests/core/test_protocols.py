"""Each operation is written once: a backend implements the blocking or the async side of each
protocol method, and the other side is derived."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import hypotez
import pytest
from hypotez import ChatBackend, ChatOptions, Message, Reply, ReplyChunk, Storage

MESSAGES = [Message("user", "hi")]


class BlockingChat(ChatBackend):
    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        self.threads.append(threading.current_thread())
        return Reply(text="blocking", model="b")

    def stream(self, messages: Sequence[Message], options: ChatOptions) -> Iterator[ReplyChunk]:
        yield ReplyChunk("blo")
        yield ReplyChunk("cking", Reply(text="blocking", model="b"))


class AsyncChat(ChatBackend):
    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        await asyncio.sleep(0)
        return Reply(text="async", model="a")

    async def astream(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[ReplyChunk]:
        yield ReplyChunk("as")
        yield ReplyChunk("ync", Reply(text="async", model="a"))


def test_a_blocking_backend_gets_an_async_side_that_runs_off_the_loop() -> None:
    backend = BlockingChat()

    async def main() -> tuple[Reply, list[str]]:
        reply = await backend.achat(MESSAGES, ChatOptions())
        chunks = [c.delta async for c in backend.astream(MESSAGES, ChatOptions())]
        return reply, chunks

    reply, chunks = asyncio.run(main())
    assert reply.text == "blocking" and chunks == ["blo", "cking"]
    assert backend.threads[0] is not threading.main_thread()  # a worker thread, not the loop
    assert backend.chat(MESSAGES, ChatOptions()).text == "blocking"


def test_an_async_backend_gets_a_blocking_side() -> None:
    backend = AsyncChat()
    assert backend.chat(MESSAGES, ChatOptions()).text == "async"
    assert [c.delta for c in backend.stream(MESSAGES, ChatOptions())] == ["as", "ync"]
    assert backend.list_models() == []  # neither side given: the protocol's default


def test_a_backend_with_neither_side_cannot_be_made() -> None:
    class Nothing(ChatBackend):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Nothing()  # type: ignore[abstract]


def test_the_derived_side_keeps_the_protocols_signature_and_docs() -> None:
    assert "off the event loop" not in (AsyncChat.chat.__doc__ or "")
    assert inspect.signature(AsyncChat.chat).parameters.keys() == {"self", "messages", "options"}
    assert AsyncChat.chat.__doc__ == ChatBackend.chat.__doc__


def test_a_blocking_facade_refuses_to_run_on_the_portal_loop() -> None:
    from hypotez import portal

    async def inside() -> None:
        AsyncChat().chat(MESSAGES, ChatOptions())

    with pytest.raises(RuntimeError, match="from hypotez's own event loop"):
        portal.run(inside())


def test_the_storage_protocol_has_an_async_side_for_every_method() -> None:
    public = [
        name
        for name, member in vars(Storage).items()
        if callable(member) and not name.startswith("_") and not name.startswith("a")
    ]
    missing = [name for name in public if not hasattr(Storage, "a" + name)]
    assert missing == []
    # Every pair is declared, so the derivation covers each of them.
    declared = {sync for sync, _async, _streams in Storage._PAIRS}
    assert set(public) - {"close"} <= declared


def test_a_storage_written_with_blocking_methods_has_a_full_async_surface(tmp_path: Any) -> None:
    from hypotez_files.storage import FileStorage

    storage = FileStorage(tmp_path / "data")

    async def main() -> None:
        await storage.acreate_dialogue(hypotez.DialogueInfo("d"))
        await storage.aappend_turns("d", [hypotez.Turn("user", "hi")])
        assert (await storage.aload_dialogue("d")).turns[0].content == "hi"
        assert await storage.adialogue_exists("d")
        assert await storage.alist_dialogue_ids() == ["d"]
        await storage.asave_assistant(hypotez.Assistant("a", "A"))
        assert [a.id for a in await storage.alist_assistants()] == ["a"]
        await storage.aput_record("notes", "n", {"x": 1})
        assert await storage.aget_record("notes", "n") == {"x": 1}
        assert await storage.aupdate_record("notes", "n", lambda c: {"x": (c or {})["x"] + 1})
        assert await storage.alist_record_ids("notes") == ["n"]
        assert "notes" in await storage.alist_collections()
        await storage.adelete_record("notes", "n")
        await storage.adelete_dialogue("d")
        await storage.acheck()

    asyncio.run(main())

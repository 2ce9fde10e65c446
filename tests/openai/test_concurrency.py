"""Many conversations at once: one AsyncSession per request on a shared Context, against aimock
over real HTTP, with file and with S3 storage.

What a web app relies on: every turn stored exactly once, conversations that share a dialogue
never lose or tear a turn, and nothing blocking (building an HTTP client, reading or writing
storage) ever runs on the event loop's thread. The loop's worst stall is measured by a ticker
and printed; the benchmark (``benchmarks/bench_concurrency.py``) records it, since a timed
assertion would fail on a busy machine for reasons that are not bugs.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import hypotez
import pytest
from hypotez import AsyncSession, Context

if TYPE_CHECKING:
    from hypotez_test_servers.aimock import Aimock
    from hypotez_test_servers.seaweedfs import SeaweedFS

REQUESTS = 200
SHARED_DIALOGUES = 10  # 100 of the requests continue one of these, ten requests each


class LoopWatch:
    """Records which threads ran blocking work, and the event loop's longest stall."""

    def __init__(self) -> None:
        self.loop_thread: threading.Thread | None = None
        self.blocking_on_loop: list[str] = []
        self.worst_stall = 0.0

    def wrap(self, obj: Any, names: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
        for name in names:
            original = getattr(obj, name)

            def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                if threading.current_thread() is self.loop_thread:
                    self.blocking_on_loop.append(_name)
                return _original(*args, **kwargs)

            monkeypatch.setattr(obj, name, spy)

    async def tick(self, stop: asyncio.Event) -> None:
        self.loop_thread = threading.current_thread()
        interval = 0.002
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(interval)
            now = time.perf_counter()
            self.worst_stall = max(self.worst_stall, now - last - interval)
            last = now


async def many_conversations(
    settings: hypotez.Settings,
    watch: LoopWatch,
    patch_client: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[hypotez.Reply], Context]:
    stop = asyncio.Event()
    ticker = asyncio.create_task(watch.tick(stop))
    await asyncio.sleep(0.01)  # the ticker records the loop's thread first
    patch_client()
    context = Context(settings, chat="openai", sentiment="keywords")
    storage = await context.aget("storage")
    sync_methods = [
        "create_dialogue",
        "append_turns",
        "load_dialogue",
        "list_dialogues",
        "get_record",
        "list_records",
        "put_record",
    ]
    watch.wrap(storage, sync_methods, monkeypatch)
    # Ten dialogues that later requests continue, made as a web app would: one session each.
    shared = []
    for n in range(SHARED_DIALOGUES):
        first = AsyncSession(context=context, system=f"Shared dialogue {n}.")
        await first.ask(f"start {n}")
        shared.append(first.dialogue_id)

    async def request(i: int) -> hypotez.Reply:
        # A new session per request: cheap, nothing read until the ask.
        dialogue_id = shared[i % SHARED_DIALOGUES] if i % 2 else None
        session = AsyncSession(context=context, dialogue_id=dialogue_id)
        return await session.ask(f"request {i}")

    try:
        replies = await asyncio.gather(*(request(i) for i in range(REQUESTS)))
    finally:
        stop.set()
        await ticker
    return replies, context


def check_every_turn_once(storage: hypotez.Storage) -> None:
    user_turns: Counter[str] = Counter()
    for info in storage.list_dialogues():
        dialogue = storage.load_dialogue(info.id)
        turns = dialogue.turns
        # Each exchange is a user turn followed by its reply: never torn, never interleaved.
        assert [t.role for t in turns] == ["user", "assistant"] * (len(turns) // 2), info.id
        user_turns.update(t.content for t in turns if t.role == "user")
    expected = {f"request {i}" for i in range(REQUESTS)} | {
        f"start {n}" for n in range(SHARED_DIALOGUES)
    }
    assert set(user_turns) == expected
    assert set(user_turns.values()) == {1}  # exactly once each
    assert len(storage.list_dialogues()) == SHARED_DIALOGUES + REQUESTS // 2


def run_scenario(settings: hypotez.Settings, monkeypatch: pytest.MonkeyPatch) -> LoopWatch:
    import openai

    watch = LoopWatch()

    def patch_client() -> None:
        # Building a client (the SDK's modules, a TLS context) blocks for tens of ms.
        watch.wrap(openai, ["AsyncOpenAI"], monkeypatch)

    async def main() -> None:
        replies, context = await many_conversations(settings, watch, patch_client, monkeypatch)
        assert len(replies) == REQUESTS and all(r.text for r in replies)
        storage = await context.aget("storage")
        await asyncio.to_thread(check_every_turn_once, storage)
        await context.aclose()

    asyncio.run(main())
    print(f"worst event-loop stall: {watch.worst_stall * 1000:.1f} ms")
    return watch


@pytest.mark.aimock
def test_200_concurrent_sessions_on_file_storage(
    aimock: Aimock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = hypotez.Settings.load(
        env={},
        home=tmp_path / "home",
        options={"openai": {"api_key": aimock.api_key, "base_url": aimock.base_url}},
    )
    watch = run_scenario(settings, monkeypatch)
    assert watch.blocking_on_loop == []


@pytest.mark.aimock
@pytest.mark.s3
def test_200_concurrent_sessions_on_s3(
    aimock: Aimock, seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = hypotez.Settings.load(
        env=seaweedfs.env(),
        storage=seaweedfs.url(f"t-{uuid.uuid4().hex[:12]}/hypotez"),
        options={"openai": {"api_key": aimock.api_key, "base_url": aimock.base_url}},
    )
    watch = run_scenario(settings, monkeypatch)
    assert watch.blocking_on_loop == []

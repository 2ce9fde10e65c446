"""The context sessions share: factories receive it, backends are built once and closed in
reverse order, and a backend that needs a chat model gets the sessions' own."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import (
    AsyncSession,
    ChatBackend,
    ChatOptions,
    Context,
    Message,
    PluginError,
    Reply,
    Sentiment,
    SentimentAnalyzer,
    Session,
    hookimpl,
)
from hypotez.plugins import make_plugin_manager


class CountingChat(ChatBackend):
    """A chat backend that counts how often it was built (a model load, say)."""

    loads = 0

    def __init__(self, context: Context) -> None:
        type(self).loads += 1
        self.closed = False

    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        return Reply(text=f'{{"n": {len(messages)}}}', model="count")

    def close(self) -> None:
        self.closed = True


class ChatUser(SentimentAnalyzer):
    """An analyzer that needs a chat model: it asks its context for the sessions' own."""

    def __init__(self, context: Context) -> None:
        self.chat = context.get("chat")

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        return [Sentiment.from_score(0.0, "chatuser") for _ in texts]


class Plugin:
    @hookimpl
    def register_chat_backends(self, register: hypotez.Register) -> None:
        register("counting", CountingChat, priority=1000)

    @hookimpl
    def register_sentiment_analyzers(self, register: hypotez.Register) -> None:
        register("chatuser", ChatUser)


@pytest.fixture
def pm() -> Any:
    CountingChat.loads = 0
    return make_plugin_manager(plugins=[Plugin()])


def test_a_backend_that_needs_chat_gets_the_sessions_own(home: Path, pm: Any) -> None:
    context = Context(plugin_manager=pm)
    with Session(context=context, sentiment="chatuser") as s:
        s.ask("hello")
        assert s.analyzer.chat is s.chat_backend  # one model in memory, not two
    assert CountingChat.loads == 1
    # Many sessions on one context share it too.
    for _ in range(5):
        with Session(context=context) as s:
            s.ask("again")
    assert CountingChat.loads == 1
    context.close()


def test_a_session_without_a_context_gets_its_own_and_its_analyzer_shares_its_chat(
    home: Path, pm: Any
) -> None:
    with Session(plugin_manager=pm, sentiment="chatuser") as s:
        s.ask("hello")
        assert s.analyzer.chat is s.chat_backend
    assert CountingChat.loads == 1


def test_the_llm_analyzer_uses_the_sessions_chat_backend(home: Path) -> None:
    with Session(chat="echo", sentiment="llm") as s:
        assert s.analyzer.chat is s.chat_backend


def test_concurrent_first_requests_build_once(pm: Any) -> None:
    context = Context(plugin_manager=pm)
    barrier = threading.Barrier(8)
    got: list[Any] = []

    def worker() -> None:
        barrier.wait()
        got.append(context.get("chat"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert CountingChat.loads == 1 and len({id(b) for b in got}) == 1
    assert context.get("chat", "counting") is got[0]  # the default and its name are one backend


def test_close_closes_in_reverse_order_and_leaves_given_objects_alone(pm: Any) -> None:
    given = CountingChat(None)  # type: ignore[arg-type]
    context = Context(plugin_manager=pm, chat=given)
    assert context.get("chat") is given
    analyzer = context.get("sentiment", "chatuser")
    assert analyzer.chat is given
    built = context.built()
    assert built == [analyzer]  # the given chat is the caller's: never closed here
    context.close()
    assert given.closed is False
    with pytest.raises(PluginError, match="closed"):
        context.get("chat")


def test_backends_that_need_each_other_in_a_circle_are_an_error() -> None:
    class Circle:
        @hookimpl
        def register_sentiment_analyzers(self, register: hypotez.Register) -> None:
            register("a", lambda ctx: ctx.get("sentiment", "b"))
            register("b", lambda ctx: ctx.get("sentiment", "a"))

    context = Context(plugin_manager=make_plugin_manager(entry_points=False, plugins=[Circle()]))
    with pytest.raises(PluginError, match=r"circle: sentiment 'a' -> sentiment 'b' -> sentiment"):
        context.get("sentiment", "a")


class Blind(hypotez.VisionBackend):
    def describe(self, image: Any, prompt: str | None = None, **options: Any) -> Any:
        raise NotImplementedError


async def test_aget_builds_in_a_worker_thread(pm: Any) -> None:
    seen: list[threading.Thread] = []

    class Spy:
        @hookimpl
        def register_vision_backends(self, register: hypotez.Register) -> None:
            def factory(ctx: Context) -> Any:
                seen.append(threading.current_thread())  # a model would load here
                return hypotez.VisionBackend.__new__(Blind)

            register("spy", factory)

    pm.add_plugin(Spy(), "spy")
    context = Context(plugin_manager=pm)
    await context.aget("vision", "spy")
    assert seen and seen[0] is not threading.current_thread()
    await context.aclose()


def test_settings_go_to_the_context_not_to_a_session_on_it(pm: Any) -> None:
    context = Context(plugin_manager=pm)
    with pytest.raises(hypotez.InputError, match="pass settings= and plugin_manager="):
        AsyncSession(context=context, settings=hypotez.Settings.load(env={}))
    with pytest.raises(hypotez.InputError, match=r"context must be a hypotez\.Context"):
        AsyncSession(context="shared")  # type: ignore[arg-type]


def test_an_empty_storage_url_is_refused(home: Path) -> None:
    # '' used to mean "the current directory": data landed wherever the app was started.
    with pytest.raises(hypotez.InputError, match="storage='' is empty"):
        Session(storage="")
    with pytest.raises(hypotez.InputError, match="chat=' ' is empty"):
        Context(chat=" ")


def test_missing_dependency_uses_the_registrations_install_hint() -> None:
    class NeedsGpu:
        @hookimpl
        def register_chat_backends(self, register: hypotez.Register) -> None:
            def factory(ctx: Context) -> Any:
                raise hypotez.MissingDependencyError("gpu-chat", "cuda_magic")

            register("gpu-chat", factory, install="pip install hypotez-gpu-chat[cuda]")

    context = Context(plugin_manager=make_plugin_manager(entry_points=False, plugins=[NeedsGpu()]))
    with pytest.raises(
        hypotez.MissingDependencyError, match=r"pip install hypotez-gpu-chat\[cuda\]"
    ):
        context.get("chat", "gpu-chat")

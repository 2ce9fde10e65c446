"""The session, over the real third-party ``echo`` chat plugin and the real file storage."""

from __future__ import annotations

import json
from pathlib import Path

import hypotez
import pytest
from hypotez import (
    AsyncSession,
    ConfigError,
    DialogueNotFoundError,
    InputError,
    PluginError,
    Session,
)


def echoed(reply: hypotez.Reply) -> dict:
    return json.loads(reply.text)


def test_ask_sends_the_whole_history_and_stores_both_turns(home: Path) -> None:
    with Session(chat="echo", system="Be kind.") as s:
        first = s.ask("Hello, how are you?")
        assert echoed(first)["roles"] == ["system", "user"]
        second = s.ask("Tell me more!")
        assert echoed(second)["roles"] == ["system", "user", "assistant", "user"]
        assert echoed(second)["last"] == "Tell me more!"
        stored = s.storage.load_dialogue(s.dialogue_id)
    assert [t.role for t in stored.turns] == ["user", "assistant", "user", "assistant"]
    assert stored.turns[3].content == second.text
    assert stored.info.system == "Be kind."
    assert (home / "dialogues" / f"{stored.id}.jsonl").is_file()


def test_each_turn_carries_its_sentiment(home: Path) -> None:
    with Session(chat="echo", sentiment="shouty") as s:
        reply = s.ask("Is this good?")
        user, answer = s.storage.load_dialogue(s.dialogue_id).turns
    assert user.sentiment.label == "negative" and user.sentiment.backend == "shouty"
    assert answer.sentiment == reply.sentiment
    assert (
        answer.model == reply.model
        and answer.usage == reply.usage
        and answer.finish_reason == "stop"
    )
    assert reply.backend == "echo"


def test_analyzer_can_be_chosen_per_call(home: Path) -> None:
    with Session(chat="echo", sentiment="keywords") as s:
        assert s.ask("hi", analyzer="shouty").sentiment.backend == "shouty"
        assert s.ask("hi").sentiment.backend == "keywords"
        assert [r.label for r in s.analyze(["not good", "great!"], analyzer="shouty")] == [
            "neutral",
            "positive",
        ]


def test_a_dialogue_is_resumed_by_id_in_a_new_session(home: Path) -> None:
    with Session(chat="echo", system="S") as s:
        s.ask("one")
        dialogue_id = s.dialogue_id
    with Session(chat="echo", dialogue_id=dialogue_id) as s2:
        reply = s2.ask("two")
        assert echoed(reply)["roles"] == ["system", "user", "assistant", "user"]
        assert len(s2.dialogue.turns) == 4


def test_an_explicit_system_beats_the_stored_one_on_resume(home: Path) -> None:
    with Session(chat="echo", system="old") as s:
        s.ask("one")
        dialogue_id = s.dialogue_id
    with Session(chat="echo", dialogue_id=dialogue_id) as kept:
        assert kept.system == "old"
    with Session(chat="echo", dialogue_id=dialogue_id, system="new") as changed:
        assert changed.system == "new"
        assert echoed(changed.ask("two"))["roles"][0] == "system"


def test_new_dialogue_starts_afresh(home: Path) -> None:
    with Session(chat="echo") as s:
        s.ask("one")
        first = s.dialogue_id
        s.new_dialogue()
        assert echoed(s.ask("two"))["n"] == 1
        assert s.dialogue_id != first
        assert len(s.storage.list_dialogues()) == 2


def test_store_and_sentiment_can_be_switched_off(home: Path) -> None:
    with Session(chat="echo", sentiment=False, store=False) as s:
        reply = s.ask("x")
        assert reply.sentiment is None
        assert echoed(s.ask("y"))["n"] == 3  # the history is still kept in memory
        assert len(s.dialogue.turns) == 4
    assert not (home / "dialogues").exists()


def test_options_reach_the_backend(home: Path) -> None:
    with Session(chat="echo", model="echo-2") as s:
        body = echoed(s.ask("x", temperature=0.25))
    assert body["model"] == "echo-2" and body["temperature"] == 0.25


def test_streaming_stores_the_reply_too(home: Path) -> None:
    with Session(chat="echo") as s:
        chunks = list(s.stream("streamed"))
        assert chunks[-1].reply is not None
        assert "".join(c.delta for c in chunks) == chunks[-1].reply.text
        assert s.dialogue.turns[-1].content == chunks[-1].reply.text


async def test_async_session_mirrors_the_sync_one(home: Path) -> None:
    async with AsyncSession(chat="echo", sentiment="shouty") as s:
        await s.ask("a?")
        reply = await s.ask("b!")
        assert echoed(reply)["n"] == 3
        assert reply.sentiment is not None
        chunks = [c async for c in s.stream("c")]
        assert chunks[-1].reply is not None
        assert [r.label for r in await s.analyze(["x!", "y?"])] == ["positive", "negative"]
        assert [m.id for m in await s.list_models()] == ["echo-1", "echo-2"]
        dialogue = await (await s.get("storage")).aload_dialogue(s.dialogue_id)
    assert len(dialogue.turns) == 6


async def test_concurrent_async_asks_share_one_dialogue(home: Path) -> None:
    import asyncio

    async with AsyncSession(chat="echo") as s:
        await asyncio.gather(*(s.ask(f"q{i}") for i in range(4)))
        storage = await s.get("storage")
        assert len(await storage.alist_dialogues()) == 1
        stored = await storage.aload_dialogue(s.dialogue_id)
    assert sorted(t.content for t in stored.turns if t.role == "user") == [
        "q0",
        "q1",
        "q2",
        "q3",
    ]


class _Closing:
    """A backend that records its close() and may fail in it."""

    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def close(self) -> None:
        self.log.append(self.name)
        if self.fail:
            raise hypotez.StorageError(f"{self.name} failed to close")

    async def aclose(self) -> None:
        self.close()


def _session_owning(cls: type, log: list[str]) -> object:
    s = cls(chat="echo")
    # Stand-ins for backends the session's own context built (a storage that fails to close,
    # then two more), in build order.
    s.context._owned = [_Closing("a", log), _Closing("b", log, fail=True), _Closing("c", log)]
    return s


def test_close_closes_every_backend_even_when_one_fails(home: Path) -> None:
    log: list[str] = []
    s = _session_owning(Session, log)
    with pytest.raises(hypotez.StorageError, match="b failed"):
        s.close()
    assert log == ["c", "b", "a"]


async def test_aclose_closes_every_backend_even_when_one_fails(home: Path) -> None:
    log: list[str] = []
    s = _session_owning(AsyncSession, log)
    with pytest.raises(hypotez.StorageError, match="b failed"):
        await s.aclose()
    assert log == ["c", "b", "a"]


class _Paid(hypotez.ChatBackend):
    """A chat backend that counts its (paid) calls."""

    name = "paid"

    def __init__(self) -> None:
        self.calls = 0

    def chat(self, messages: object, options: object) -> hypotez.Reply:
        self.calls += 1
        return hypotez.Reply(text="an expensive answer", model="m")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sentiment": "no-such-analyzer"}, PluginError),
        ({"storage": "ftp://nowhere/x"}, ConfigError),
    ],
)
def test_a_bad_analyzer_or_storage_fails_before_the_chat_call(
    home: Path, kwargs: dict, error: type
) -> None:
    paid = _Paid()
    with Session(chat=paid, **kwargs) as s, pytest.raises(error):
        s.ask("hello")
    with Session(chat=paid, **kwargs) as s, pytest.raises(error):
        list(s.stream("hello"))
    with Session(chat=paid) as s, pytest.raises(PluginError):
        s.ask("hello", analyzer="no-such-analyzer")
    assert paid.calls == 0


async def test_async_a_bad_analyzer_fails_before_the_chat_call(home: Path) -> None:
    paid = _Paid()
    async with AsyncSession(chat=paid) as s:
        with pytest.raises(PluginError):
            await s.ask("hello", analyzer="no-such-analyzer")
        with pytest.raises(PluginError):
            [c async for c in s.stream("hello", analyzer="no-such-analyzer")]
    assert paid.calls == 0


async def test_async_resume_continues_a_stored_dialogue(home: Path) -> None:
    async with AsyncSession(chat="echo", system="S") as s:
        await s.ask("one")
        dialogue_id = s.dialogue_id
    async with AsyncSession(chat="echo") as s2:
        resumed = await s2.resume(dialogue_id)
        assert [t.content for t in resumed.turns] == ["one", resumed.turns[1].content]
        assert s2.system == "S"
        reply = await s2.ask("two")
        assert echoed(reply)["roles"] == ["system", "user", "assistant", "user"]
        with pytest.raises(InputError):
            await s2.resume("../escape")
        with pytest.raises(DialogueNotFoundError):
            await s2.resume("missing")
        assert s2.dialogue_id == dialogue_id  # a failed resume keeps the current dialogue


def test_sentiment_true_means_the_default_analyzer(home: Path) -> None:
    with Session(chat="echo", sentiment=True) as s:
        assert s.ask("hi").sentiment is not None


@pytest.mark.parametrize(
    "kwargs", [{"chat": 123}, {"sentiment": 1.5}, {"storage": object()}, {"vision": ["x"]}]
)
def test_a_backend_that_is_neither_a_name_nor_a_backend_is_refused(
    home: Path, kwargs: dict
) -> None:
    (capability,) = kwargs
    with pytest.raises(InputError, match=f"{capability}=.*neither a backend name"):
        Session(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": "hot"}, "temperature must be"),
        ({"temperature": -0.5}, "temperature must be"),
        ({"temperature": float("nan")}, "temperature must be"),
        ({"max_tokens": 0}, "max_tokens must be"),
        ({"max_tokens": "5"}, "max_tokens must be"),
        ({"max_tokens": True}, "max_tokens must be"),
        ({"json_schema": "object"}, "json_schema must be"),
        ({"model": 5}, "model must be"),
        ({"extra": ["seed"]}, "extra must be"),
    ],
)
def test_bad_request_options_are_refused_before_the_chat_call(
    home: Path, kwargs: dict, match: str
) -> None:
    paid = _Paid()
    with Session(chat=paid) as s:
        with pytest.raises(InputError, match=match):
            s.ask("hello", **kwargs)
        with pytest.raises(InputError, match="must be text"):
            s.ask(5)  # type: ignore[arg-type]
    assert paid.calls == 0


def test_list_models(home: Path) -> None:
    with Session(chat="echo") as s:
        assert [m.id for m in s.list_models()] == ["echo-1", "echo-2"]


@pytest.mark.parametrize("message", ["", "   ", None, 5])
def test_empty_or_non_text_message_is_refused(home: Path, message: object) -> None:
    with (
        Session(chat="echo") as s,
        pytest.raises(InputError, match=r"message is empty|message must be text"),
    ):
        s.ask(message)  # type: ignore[arg-type]


def test_unknown_dialogue_id(home: Path) -> None:
    with pytest.raises(DialogueNotFoundError, match="No dialogue 'nope'"):
        Session(chat="echo", dialogue_id="nope")


def test_path_traversal_dialogue_id(home: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match="Invalid dialogue id"):
        Session(chat="echo", dialogue_id="../secret")


def test_unknown_backend_names(home: Path) -> None:
    with (
        Session(chat="nope") as s,
        pytest.raises(PluginError, match="No chat backend named 'nope'"),
    ):
        s.ask("x")
    with (
        Session(chat="echo", sentiment="nope") as s,
        pytest.raises(PluginError, match="sentiment backend named 'nope'"),
    ):
        s.ask("x")


def test_no_chat_backend_at_all_says_how_to_get_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only storage and a chat plugin without its key: the hint is that plugin's own.
    monkeypatch.setenv("HYPOTEZ_PLUGINS", "files,openai")
    hypotez.reset_plugin_manager()
    with Session() as s, pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        s.ask("x")


def test_unknown_storage_scheme(home: Path) -> None:
    with (
        Session(chat="echo", storage="ftp://host/x") as s,
        pytest.raises(ConfigError, match="ftp://"),
    ):
        s.ask("x")


def test_describe_image_checks_input_before_any_backend(home: Path, tmp_path: Path) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    with Session(vision="nope") as s:
        with pytest.raises(InputError, match=r"notes\.png.*not a PNG"):
            s.describe_image(not_image)
        with pytest.raises(InputError, match="does not exist"):
            s.describe_image(tmp_path / "missing.jpg")
        with pytest.raises(InputError, match="detail"):
            s.describe_image(not_image, detail="ultra")
        with pytest.raises(InputError, match=r"ftp: URLs are not supported"):
            s.describe_image("ftp://example.org/cat.png")
        with pytest.raises(InputError, match="no host name"):
            s.describe_image("https:///cat.png")


def test_assistant_presets(home: Path) -> None:
    with Session(chat="echo") as s:
        s.storage.save_assistant(
            hypotez.Assistant(id="poet", name="Poet", instructions="Rhyme.", model="echo-2")
        )
        s.use_assistant("poet")
        body = echoed(s.ask("x"))
        assert body["roles"][0] == "system" and body["model"] == "echo-2"
        assert s.dialogue.info.assistant_id == "poet"
        with pytest.raises(InputError, match=r"Unknown assistant 'ghost'.*poet"):
            s.use_assistant("ghost")


def test_a_reply_survives_a_storage_failure_in_last_reply(home: Path) -> None:
    from hypotez_files.storage import FileStorage

    class FullDisk(FileStorage):
        def append_turns(self, dialogue_id: str, turns: object) -> None:
            raise hypotez.StorageError("No space left on device.")

    with Session(chat="echo", sentiment="shouty", storage=FullDisk(home)) as s:
        with pytest.raises(hypotez.StorageError) as info:
            s.ask("Keep this!")
        assert "kept in session.last_reply" in "\n".join(info.value.__notes__)
        assert s.last_reply is not None and json.loads(s.last_reply.text)["last"] == "Keep this!"
        assert s.last_reply.sentiment is not None
        assert s.history == []  # memory agrees with storage: the turn was not stored


async def test_a_reply_survives_a_sentiment_failure_too(home: Path) -> None:
    class Broken(hypotez.SentimentAnalyzer):
        def analyze(self, texts: object) -> list[hypotez.Sentiment]:
            raise hypotez.BackendError("analyzer crashed")

    async with AsyncSession(chat="echo", sentiment=Broken()) as s:
        with pytest.raises(hypotez.BackendError):
            await s.ask("hello")
        assert s.last_reply is not None and json.loads(s.last_reply.text)["last"] == "hello"

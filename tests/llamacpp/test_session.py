"""The llamacpp backend as users meet it: registered by its plugin, chosen by name or by default,
driving a Session that stores the dialogue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import hypotez
import pytest


@pytest.fixture
def tiny_env(monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> Path:
    monkeypatch.setenv("HYPOTEZ_LLAMACPP_MODEL_PATH", str(tiny_model))
    monkeypatch.setenv("HYPOTEZ_LLAMACPP_N_CTX", "512")
    monkeypatch.setenv("HYPOTEZ_LLAMACPP_MAX_TOKENS", "8")
    return tiny_model


def test_the_plugin_registers_llamacpp_without_importing_llama_cpp() -> None:
    code = (
        "import sys, hypotez\n"
        "reg = hypotez.get_plugin_manager().registry.get('chat', 'llamacpp')\n"
        "settings = hypotez.Settings.load(env={})\n"
        "print(reg.plugin, reg.priority, reg.is_available(settings), 'llama_cpp' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["llamacpp", "50", "True", "False"]


def test_session_with_llamacpp_stores_the_dialogue(tiny_env: Path) -> None:
    with hypotez.Session(chat="llamacpp", sentiment="keywords") as session:
        first = session.ask("Hello, how are you?", temperature=0)
        second = session.ask("Tell me more.", temperature=0)
        dialogue = session.storage.load_dialogue(session.dialogue_id)  # type: ignore[arg-type]
    assert first.backend == second.backend == "llamacpp"
    assert first.model == "tiny-chat"
    assert [t.role for t in dialogue.turns] == ["user", "assistant", "user", "assistant"]
    assert [t.content for t in dialogue.turns] == [
        "Hello, how are you?",
        first.text,
        "Tell me more.",
        second.text,
    ]
    assert dialogue.turns[1].model == "tiny-chat"
    assert dialogue.turns[1].usage == first.usage
    assert dialogue.turns[1].sentiment is not None
    # The second request carried the first exchange: its prompt is longer by at least that.
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens


async def test_async_session_streams_and_stores(tiny_env: Path) -> None:
    async with hypotez.AsyncSession(chat="llamacpp", sentiment=False, system="Be brief.") as s:
        chunks = [c async for c in s.stream("Hi", temperature=0)]
        dialogue = await (await s.get("storage")).aload_dialogue(s.dialogue_id)  # type: ignore[arg-type]
    final = chunks[-1].reply
    assert final is not None and final.text == "".join(c.delta for c in chunks)
    assert dialogue.info.system == "Be brief."
    assert [t.content for t in dialogue.turns] == ["Hi", final.text]


def test_llamacpp_is_the_default_without_an_openai_key(tiny_env: Path) -> None:
    with hypotez.Session(sentiment=False) as session:
        assert session.chat_backend.name == "llamacpp"
        models = [m.id for m in session.list_models()]
    assert models[0] == "tiny-chat"

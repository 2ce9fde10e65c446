"""The ``openai`` chat backend over real HTTP against aimock: what reaches the server, and back."""

from __future__ import annotations

import json

import hypotez
import pytest
from hypotez_test_servers.aimock import Aimock

pytestmark = pytest.mark.aimock


def test_ask_sends_system_model_and_auth_and_returns_full_reply(
    aimock: Aimock, settings: hypotez.Settings
) -> None:
    with hypotez.Session(
        settings=settings, chat="openai", sentiment=False, system="Be brief."
    ) as s:
        reply = s.ask("Hello, how are you?", temperature=0.2, max_tokens=50)

    assert reply.text == "I am doing great, thank you! How can I help you today?"
    assert reply.backend == "openai"
    assert reply.model == "gpt-4o-mini"
    assert reply.finish_reason == "stop"
    assert reply.usage == hypotez.Usage(12, 14, 26)

    [entry] = aimock.journal("/v1/chat/completions")
    assert entry["headers"]["authorization"]  # present (aimock redacts the value itself)
    body = entry["body"]
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, how are you?"},
    ]
    assert body["temperature"] == 0.2
    assert body["max_completion_tokens"] == 50
    assert "response_format" not in body


def test_the_whole_history_reaches_the_server(aimock: Aimock, settings: hypotez.Settings) -> None:
    with hypotez.Session(settings=settings, sentiment=False, system="You remember names.") as s:
        first = s.ask("Hello, how are you?")
        s.ask("My name is Ada.")
        s.ask("What is my name?")

    bodies = aimock.chat_requests()
    assert len(bodies) == 3
    assert bodies[-1]["messages"] == [
        {"role": "system", "content": "You remember names."},
        {"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What is my name?"},
    ]


def test_model_from_settings_and_per_call(aimock: Aimock, settings_for) -> None:
    with hypotez.Session(settings=settings_for(model="gpt-4o"), sentiment=False, store=False) as s:
        assert s.ask("Hello, how are you?").text == "Hello from gpt-4o. All good here."
        s.ask("Hello, how are you?", model="gpt-4o-mini")
    assert [b["model"] for b in aimock.chat_requests()] == ["gpt-4o", "gpt-4o-mini"]


def test_max_tokens_field_option_for_older_compatible_servers(aimock: Aimock, settings_for) -> None:
    settings = settings_for(options={"openai": {"max_tokens_field": "max_tokens"}})
    with hypotez.Session(settings=settings, sentiment=False, store=False) as s:
        s.ask("Hello, how are you?", max_tokens=7)
    body = aimock.last_chat_request()
    assert body["max_tokens"] == 7
    assert "max_completion_tokens" not in body


def test_json_schema_output(aimock: Aimock, settings: hypotez.Settings) -> None:
    schema = {
        "title": "colour list",
        "type": "object",
        "properties": {"colours": {"type": "array", "items": {"type": "string"}}},
        "required": ["colours"],
        "additionalProperties": False,
    }
    with hypotez.Session(settings=settings, sentiment=False, store=False) as s:
        reply = s.ask("List three colours", json_schema=schema)

    assert json.loads(reply.text) == {"colours": ["red", "green", "blue"]}
    sent = aimock.last_chat_request()["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "colour_list", "schema": schema, "strict": True},
    }


def test_stream_yields_deltas_then_the_complete_reply(
    aimock: Aimock, settings: hypotez.Settings
) -> None:
    with hypotez.Session(settings=settings, sentiment=False) as s:
        chunks = list(s.stream("Hello, how are you?"))
        stored = s.dialogue

    deltas = [c.delta for c in chunks if c.reply is None]
    assert len(deltas) > 1  # really streamed, in pieces
    final = chunks[-1].reply
    assert final is not None
    assert "".join(deltas) == final.text == "I am doing great, thank you! How can I help you today?"
    assert final.usage.total_tokens == 26  # from the include_usage chunk
    assert final.finish_reason == "stop"
    assert final.backend == "openai"
    body = aimock.last_chat_request()
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [t.content for t in stored.turns] == ["Hello, how are you?", final.text]


async def test_async_ask_and_stream(aimock: Aimock, settings: hypotez.Settings) -> None:
    async with hypotez.AsyncSession(settings=settings, sentiment=False, system="Async.") as s:
        reply = await s.ask("Hello, how are you?")
        chunks = [c async for c in s.stream("And now?")]
        models = await s.list_models()

    assert reply.text.startswith("I am doing great")
    assert reply.usage.total_tokens == 26
    assert [c.delta for c in chunks if c.reply is None] == ["Noted."]
    assert chunks[-1].reply is not None and chunks[-1].reply.text == "Noted."
    entries = aimock.journal("/v1/chat/completions")
    assert all(e["headers"]["x-stainless-async"].startswith("async") for e in entries)
    assert entries[-1]["body"]["messages"][:3] == [
        {"role": "system", "content": "Async."},
        {"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": reply.text},
    ]
    assert [m.id for m in models] == ["gpt-4o", "gpt-4o-mini"]


def test_list_models_returns_the_servers_list(aimock: Aimock, settings: hypotez.Settings) -> None:
    aimock.add_fixtures([{"match": {"model": "my-finetune:v2"}, "response": {"content": "ft"}}])
    with hypotez.Session(settings=settings, store=False) as s:
        models = s.list_models()
    assert [m.id for m in models] == ["gpt-4o", "gpt-4o-mini", "my-finetune:v2"]
    assert {m.backend for m in models} == {"openai"}
    assert {m.owned_by for m in models} == {"aimock"}


def test_one_client_is_reused_across_requests(aimock: Aimock, settings: hypotez.Settings) -> None:
    with hypotez.Session(settings=settings, sentiment=False, store=False) as s:
        s.ask("Hello, how are you?")
        client = s.chat_backend.connection.sync
        s.ask("again")
        assert s.chat_backend.connection.sync is client


def test_openai_is_the_default_chat_backend_when_a_key_is_set(aimock_env: Aimock) -> None:
    with hypotez.Session(sentiment=False, store=False) as s:
        assert s.chat_backend.name == "openai"
        assert s.ask("Hello, how are you?").backend == "openai"


def test_openai_is_not_chosen_without_a_key(tmp_path) -> None:
    registry = hypotez.get_plugin_manager().registry
    settings = hypotez.Settings.load(env={}, home=tmp_path)
    assert registry.registrations("chat")["openai"].is_available(settings) is False
    with pytest.raises(hypotez.ConfigError, match="OPENAI_API_KEY"):
        hypotez.Context(settings).get("chat", "openai")

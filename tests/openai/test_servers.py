"""The ``openai`` plugin against each real OpenAI-compatible server: aimock and llama.cpp's own.

Every test runs on both servers (the ``server`` fixture) and checks what a user sees: the
reply, its usage, the stored dialogue, the error. aimock answers from fixtures (so its
answers are known exactly); llama.cpp's server runs SmolLM2-135M, whose words are not, so
those checks are about form (JSON that follows the schema, a call of the tool, tokens used).
"""

from __future__ import annotations

import json
from typing import Any

import hypotez
import jsonschema
import pytest
from hypotez_openai import structured

from .conftest import Server

pytestmark = pytest.mark.aimock

COLOURS = {
    "title": "colour list",
    "type": "object",
    "properties": {"colours": {"type": "array", "items": {"type": "string"}, "maxItems": 5}},
    "required": ["colours"],
    "additionalProperties": False,
}


def session(server: Server, **kwargs: Any) -> hypotez.Session:
    settings = server.settings_for(**kwargs.pop("settings", {}))
    kwargs.setdefault("sentiment", False)
    return hypotez.Session(settings=settings, chat="openai", **kwargs)


def test_ask_answers_with_usage_and_stores_the_exchange(server: Server) -> None:
    with session(server) as s:
        reply = s.ask("Hello, how are you?", max_tokens=40, temperature=0)
        turns = s.dialogue.turns
    assert isinstance(reply.text, str) and reply.text.strip()
    assert (reply.backend, reply.model) == ("openai", server.model)
    assert reply.finish_reason in ("stop", "length")
    assert 1 <= reply.usage.completion_tokens <= 40
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert [(t.role, t.content) for t in turns] == [
        ("user", "Hello, how are you?"),
        ("assistant", reply.text),
    ]


def test_the_history_is_sent_with_each_ask(server: Server) -> None:
    with session(server, system="You remember names.") as s:
        first = s.ask("Hello, how are you?", max_tokens=30, temperature=0)
        second = s.ask("My name is Ada.", max_tokens=30, temperature=0)
        third = s.ask("What is my name?", max_tokens=30, temperature=0)
        turns = s.dialogue.turns
    # Each request carried the whole dialogue so far: the prompt grew by the turns before it.
    assert first.usage.prompt_tokens < second.usage.prompt_tokens < third.usage.prompt_tokens
    assert len(turns) == 6
    sent = server.sent()
    if sent is not None:  # aimock shows the request bodies
        assert [m["content"] for m in sent[-1]["messages"]] == [
            "You remember names.",
            "Hello, how are you?",
            first.text,
            "My name is Ada.",
            second.text,
            "What is my name?",
        ]


def test_stream_yields_pieces_then_the_stored_reply(server: Server) -> None:
    with session(server) as s:
        chunks = list(s.stream("Hello, how are you?", max_tokens=30, temperature=0))
        turns = s.dialogue.turns
    deltas = [c.delta for c in chunks if c.reply is None]
    final = chunks[-1].reply
    assert final is not None
    assert len(deltas) > 1
    assert "".join(deltas) == final.text and final.text.strip()
    assert final.model == server.model
    assert [t.content for t in turns] == ["Hello, how are you?", final.text]


def test_list_models_names_the_servers_model(server: Server) -> None:
    with session(server, store=False) as s:
        models = s.list_models()
    assert server.model in [m.id for m in models]
    assert {m.backend for m in models} == {"openai"}


def test_json_schema_output_follows_the_schema_on_every_server(server: Server) -> None:
    with session(server, store=False) as s:
        first = s.ask("List three colours", json_schema=COLOURS, max_tokens=60, temperature=0)
        second = s.ask("List three colours", json_schema=COLOURS, max_tokens=60, temperature=0)
    for reply in (first, second):
        jsonschema.validate(json.loads(reply.text), COLOURS)
    statuses = server.chat_requests()
    if server.name == "aimock":
        assert json.loads(first.text) == {"colours": ["red", "green", "blue"]}
        assert statuses == [200, 200]
        assert structured.remembered() == {}
    else:
        # llama.cpp's server refuses json_schema once (no retry: it is not an outage), then
        # gets JSON mode with the schema, which it remembers for the second ask.
        assert statuses == [500, 200, 200]
        assert structured.remembered() == {server.base_url: "json_object"}


def test_streamed_json_schema_output_is_validated_too(server: Server) -> None:
    with session(server, store=False) as s:
        chunks = list(
            s.stream("List three colours", json_schema=COLOURS, max_tokens=60, temperature=0)
        )
    final = chunks[-1].reply
    assert final is not None
    jsonschema.validate(json.loads(final.text), COLOURS)


def test_an_answer_that_breaks_the_schema_is_an_error_not_a_reply(server: Server) -> None:
    # At most one item: aimock's fixture answers three colours; llama.cpp's server gets the
    # schema as a grammar, so its model cannot break it: a tiny max_tokens cuts it instead.
    one = {**COLOURS, "properties": {"colours": {"type": "array", "maxItems": 1}}}
    with session(server) as s, pytest.raises(hypotez.BackendError, match="asked for JSON") as info:
        s.ask("List three colours", json_schema=one, max_tokens=3, temperature=0)
    assert s.dialogue_id is None  # nothing stored
    if server.name == "aimock":
        assert "does not follow it" in str(info.value)
    else:
        assert "cut at the token limit" in str(info.value)


def test_the_llm_analyzer_works(server: Server) -> None:
    server.add_fixtures(
        [
            {
                "match": {"responseFormat": "json_schema", "userMessage": "I love this"},
                "response": {
                    "content": {
                        "results": {
                            "0": {"label": "positive", "score": 0.9},
                            "1": {"label": "negative", "score": -0.8},
                        }
                    }
                },
            }
        ]
    )
    settings = server.settings_for(options={"llm": {"batch_size": 2}})
    with hypotez.Session(settings=settings, chat="openai", sentiment="llm", store=False) as s:
        results = s.analyze(["I love this, it is wonderful!", "I hate this, it is awful."])
    assert len(results) == 2
    assert all(
        r.backend == "llm" and r.label in ("positive", "negative", "neutral") for r in results
    )
    assert all(-1 <= r.score <= 1 for r in results)
    if server.name == "aimock":
        assert [r.label for r in results] == ["positive", "negative"]


# -- errors --------------------------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error_without_the_key(server: Server) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    with (
        session(server, settings={"api_key": wrong}, store=False) as s,
        pytest.raises(hypotez.AuthenticationError, match="OPENAI_API_KEY") as info,
    ):
        s.ask("Hello, how are you?", max_tokens=5)
    assert wrong not in str(info.value)


def test_a_refused_parameter_is_named_and_not_retried(server: Server) -> None:
    server.add_fixtures(
        [
            {
                "match": {"userMessage": "Sample with top_k"},
                "response": {
                    "error": {
                        "message": "Unrecognized request argument supplied: top_k",
                        "type": "invalid_request_error",
                        "param": "top_k",
                    },
                    "status": 400,
                },
            }
        ]
    )
    with (
        session(server, settings={"max_retries": 3}, store=False) as s,
        pytest.raises(hypotez.InvalidRequestError, match="'top_k'") as info,
    ):
        s.ask("Sample with top_k", extra={"top_k": "many"}, max_tokens=5)
    assert info.value.param == "top_k"
    assert "not retried" in str(info.value)
    assert isinstance(info.value, hypotez.InputError)  # the CLI exits 2: fix the input
    assert len(server.chat_requests()) == 1  # no retry


def test_a_dialogue_too_long_for_the_context_window(server: Server) -> None:
    server.add_fixtures(
        [
            {
                "match": {"userMessage": "word word"},
                "response": {
                    "error": {
                        "message": "This model's maximum context length is 2048 tokens.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    },
                    "status": 400,
                },
            }
        ]
    )
    with (
        session(server) as s,
        pytest.raises(hypotez.ContextLengthError, match="new dialogue"),
    ):
        s.ask("word " * 3000, max_tokens=5)
    assert s.dialogue_id is None


def test_an_unreachable_server_is_a_connection_error(server: Server) -> None:
    from hypotez_test_servers.aimock import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    with (
        session(server, settings={"base_url": dead, "max_retries": 0}, store=False) as s,
        pytest.raises(hypotez.BackendConnectionError, match=r"127\.0\.0\.1"),
    ):
        s.ask("Hello, how are you?")


# -- tools ---------------------------------------------------------------------------------------


def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return f"sunny, 21 degrees in {city}"


def test_a_tool_is_called_and_its_turns_are_stored_and_exported(server: Server) -> None:
    from hypotez.export import export_dialogue

    with session(server, sentiment="keywords") as s:
        # A named tool_choice: llama.cpp's server calls tools only when told which.
        reply = s.ask(
            "What is the weather in Paris?",
            tools=[get_weather],
            tool_choice="get_weather",
            max_tokens=40,
            temperature=0,
        )
        dialogue = s.dialogue
    [result] = reply.tool_results
    assert result.call.name == "get_weather" and not result.is_error
    city = json.loads(result.call.arguments)["city"]
    assert result.content == f"sunny, 21 degrees in {city}"
    assert reply.text.strip()
    assert [t.role for t in dialogue.turns] == ["user", "assistant", "tool", "assistant"]
    asked, answered = dialogue.turns[1], dialogue.turns[2]
    assert asked.tool_calls[0] == result.call
    assert (answered.tool_call_id, answered.content) == (result.call.id, result.content)
    exported = json.loads(export_dialogue(dialogue, "jsonl"))
    assert exported["tools"][0]["function"]["name"] == "get_weather"
    assert exported["messages"][1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert exported["messages"][2] == {
        "role": "tool",
        "tool_call_id": result.call.id,
        "content": result.content,
    }
    if server.name == "aimock":
        assert reply.text == "It is sunny in Paris, 21 degrees."
        first, second = server.sent() or []
        assert first["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
        assert second["tool_choice"] == "auto"  # the forced call is made: the model may answer
        assert second["messages"][1]["tool_calls"][0]["id"] == "call_paris"
        assert second["messages"][2]["tool_call_id"] == "call_paris"


def test_a_streamed_tool_call_is_put_together_and_run(server: Server) -> None:
    with session(server) as s:
        chunks = list(
            s.stream(
                "What is the weather in Paris?",
                tools=[get_weather],
                tool_choice="get_weather",
                max_tokens=40,
                temperature=0,
            )
        )
        turns = s.dialogue.turns
    calls = [c.tool_call for c in chunks if c.tool_call is not None]
    results = [c.tool_result for c in chunks if c.tool_result is not None]
    assert [c.name for c in calls] == ["get_weather"]
    assert "city" in json.loads(calls[0].arguments)  # the pieces make one JSON object
    assert results[0] is not None and results[0].content.startswith("sunny, 21 degrees in ")
    final = chunks[-1].reply
    assert final is not None and final.text.strip()
    assert [t.role for t in turns] == ["user", "assistant", "tool", "assistant"]


def test_the_llm_analyzer_fits_a_server_smaller_than_it_assumed(
    llamacpp_server: Any, tmp_path: Any
) -> None:
    # llama.cpp's server states no window in its model list, so the analyzer assumes 4,096
    # tokens; this one holds 2,048. Eight reviews (~2,600 tokens) are refused once, then asked
    # in halves that fit: every review gets its verdict, nothing fails.
    server = Server("llamacpp", llamacpp_server, llamacpp_server.model, tmp_path / "h")
    review = (
        "The hotel was close to the station and the staff were friendly. The room was quiet "
        "at night, but the bathroom was small and the shower ran cold twice. "
    ) * 8
    with hypotez.Session(
        settings=server.settings_for(), chat="openai", sentiment="llm", store=False
    ) as s:
        results = s.analyze([review] * 8)
    assert len(results) == 8
    assert all(r.label in ("positive", "negative", "neutral") for r in results)
    statuses = server.chat_requests()
    assert statuses.count(400) >= 1 and statuses.count(200) >= 2
    assert statuses[-1] == 200

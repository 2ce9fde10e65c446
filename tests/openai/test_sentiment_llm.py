"""The ``llm`` sentiment analyzer over aimock: batched structured output, unusable answers."""

from __future__ import annotations

import json

import hypotez
import pytest
from hypotez_test_servers.aimock import Aimock

pytestmark = pytest.mark.aimock

TEXTS = ["I love this library", "This is terrible", "It is Tuesday"]


def test_several_texts_in_one_request_with_a_schema(
    aimock: Aimock, settings: hypotez.Settings
) -> None:
    with hypotez.Session(settings=settings, sentiment="llm") as s:
        results = s.analyze(TEXTS)

    assert [(r.label, r.score, r.backend) for r in results] == [
        ("positive", 0.9, "llm"),
        ("negative", -0.8, "llm"),
        ("neutral", 0.0, "llm"),
    ]
    [body] = aimock.chat_requests()  # one request for the whole batch
    assert body["temperature"] == 0
    assert body["messages"][0]["role"] == "system"
    assert json.loads(body["messages"][1]["content"]) == [
        {"id": i, "text": t} for i, t in enumerate(TEXTS)
    ]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    results = fmt["json_schema"]["schema"]["properties"]["results"]
    # One verdict per text, keyed by its id: each id exactly once, no other.
    assert results["required"] == ["0", "1", "2"] == list(results["properties"])
    assert results["additionalProperties"] is False
    item = results["properties"]["2"]
    assert item["properties"]["label"]["enum"] == ["positive", "negative", "neutral"]
    assert item["required"] == ["label", "score"]


def test_blank_texts_are_neutral_without_a_request(
    aimock: Aimock, settings: hypotez.Settings
) -> None:
    with hypotez.Session(settings=settings, sentiment="llm") as s:
        [result] = s.analyze(["   "])
    assert (result.label, result.score) == ("neutral", 0.0)
    assert aimock.chat_requests() == []


def test_batches_follow_batch_size(aimock: Aimock, settings_for) -> None:
    settings = settings_for(options={"llm": {"batch_size": 1}})
    aimock.add_fixtures(
        [
            {
                "match": {"responseFormat": "json_schema", "userMessage": "good"},
                "response": {"content": {"results": {"0": {"label": "positive", "score": 0.7}}}},
            },
            {
                "match": {"responseFormat": "json_schema", "userMessage": "awful"},
                "response": {"content": {"results": {"0": {"label": "negative", "score": -1.2}}}},
            },
        ],
        first=True,
    )
    with hypotez.Session(settings=settings, sentiment="llm") as s:
        results = s.analyze(["good day", "awful day"])
    assert [(r.label, r.score) for r in results] == [
        ("positive", 0.7),
        ("negative", -1.0),
    ]  # clamped
    assert len(aimock.chat_requests()) == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Prose instead of JSON", "not JSON"),
        ("Mixed feelings about ids", "expected ids 0..1"),
    ],
)
def test_unusable_answers_are_a_clear_backend_error(
    aimock: Aimock, settings, text: str, why: str
) -> None:
    with (
        hypotez.Session(settings=settings, sentiment="llm") as s,
        pytest.raises(hypotez.BackendError, match="unusable sentiment answer") as info,
    ):
        s.analyze([text, "second text"])
    assert why in str(info.value)
    assert "gpt-4o-mini" in str(info.value)


def test_llm_sentiment_is_recorded_with_ask(aimock: Aimock, settings: hypotez.Settings) -> None:
    aimock.add_fixtures(
        [
            {
                "match": {"responseFormat": "json_schema", "userMessage": "Thanks, this is great"},
                "response": {
                    "content": {
                        "results": {
                            "0": {"label": "positive", "score": 0.8},
                            "1": {"label": "neutral", "score": 0.1},
                        }
                    }
                },
            }
        ],
        first=True,
    )
    with hypotez.Session(settings=settings, sentiment="llm") as s:
        reply = s.ask("Thanks, this is great")
        turns = s.dialogue.turns
    assert reply.sentiment is not None and reply.sentiment.label == "neutral"
    assert turns[0].sentiment is not None and turns[0].sentiment.label == "positive"
    assert turns[1].sentiment == reply.sentiment
    chat, classify = aimock.chat_requests()
    assert "response_format" not in chat
    assert json.loads(classify["messages"][1]["content"]) == [
        {"id": 0, "text": "Thanks, this is great"},
        {"id": 1, "text": "Noted."},
    ]


def test_llm_uses_the_configured_chat_backend_and_model(aimock: Aimock, settings_for) -> None:
    settings = settings_for(chat="openai", options={"llm": {"model": "gpt-4o"}})
    aimock.add_fixtures(
        [
            {
                "match": {"model": "gpt-4o", "responseFormat": "json_schema"},
                "response": {"content": {"results": {"0": {"label": "negative", "score": -0.4}}}},
            }
        ],
        first=True,
    )
    with hypotez.Session(settings=settings, sentiment="llm") as s:
        [result] = s.analyze(["meh"])
    assert (result.label, result.score) == ("negative", -0.4)
    assert aimock.last_chat_request()["model"] == "gpt-4o"


async def test_async_analyze(aimock: Aimock, settings: hypotez.Settings) -> None:
    async with hypotez.AsyncSession(settings=settings, sentiment="llm") as s:
        results = await s.analyze(TEXTS)
    assert [r.label for r in results] == ["positive", "negative", "neutral"]

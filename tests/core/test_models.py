"""The data model: validation, JSON round trips, schema versions, ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypotez import (
    SCHEMA_VERSION,
    Assistant,
    Dialogue,
    DialogueInfo,
    InputError,
    JobRecord,
    Message,
    Sentiment,
    TrainingExample,
    Turn,
    Usage,
    validate_id,
)
from hypothesis import given
from hypothesis import strategies as st

texts = st.text(max_size=200)
sentiments = st.builds(
    Sentiment,
    label=st.sampled_from(["positive", "negative", "neutral"]),
    score=st.floats(-1, 1, allow_nan=False),
    backend=st.sampled_from(["textblob", "vader", "e5"]),
    raw=st.dictionaries(
        st.text(max_size=5), st.floats(allow_nan=False, allow_infinity=False), max_size=3
    ),
)
turns = st.builds(
    Turn,
    role=st.sampled_from(["user", "assistant", "system"]),
    content=texts,
    created=st.datetimes(timezones=st.just(UTC)),
    model=st.none() | st.text(max_size=20),
    sentiment=st.none() | sentiments,
    usage=st.none()
    | st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)),
    finish_reason=st.none() | st.sampled_from(["stop", "length"]),
)


@given(turns)
def test_turn_survives_a_json_round_trip(turn: Turn) -> None:
    assert Turn.from_dict(json.loads(json.dumps(turn.to_dict()))) == turn


@given(st.lists(turns, max_size=5), st.none() | texts)
def test_dialogue_survives_a_json_round_trip(items: list[Turn], system: str | None) -> None:
    dialogue = Dialogue(DialogueInfo(id="d-1", system=system, meta={"k": [1, "два"]}), items)
    back = Dialogue.from_dict(json.loads(json.dumps(dialogue.to_dict())))
    assert back == dialogue
    assert dialogue.to_dict()["schema"] == SCHEMA_VERSION


def test_records_round_trip() -> None:
    job = JobRecord(
        id="ftjob-1",
        description="тест",
        model="gpt-4o-mini",
        status="queued",
        training_file="file-1",
    )
    assert JobRecord.from_dict(json.loads(json.dumps(job.to_dict()))) == job
    assistant = Assistant(id="poet", name="Poet", instructions="Answer in verse.", model="m")
    assert Assistant.from_dict(json.loads(json.dumps(assistant.to_dict()))) == assistant
    example = TrainingExample([Message("user", "hi"), Message("assistant", "hello")])
    assert TrainingExample.from_dict(example.to_dict()) == example


def test_data_from_a_newer_hypotez_is_refused_not_misread() -> None:
    data = DialogueInfo(id="x").to_dict() | {"schema": SCHEMA_VERSION + 1}
    with pytest.raises(ValueError, match="upgrade hypotez"):
        DialogueInfo.from_dict(data)


def test_naive_timestamps_are_read_as_utc() -> None:
    turn = Turn.from_dict({"role": "user", "content": "x", "created": "2024-01-02T03:04:05"})
    assert turn.created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("score", [1.5, -1.01, float("nan")])
def test_sentiment_score_must_be_in_range(score: float) -> None:
    with pytest.raises(InputError, match="outside"):
        Sentiment("positive", score, "x")


def test_sentiment_label_must_be_known() -> None:
    with pytest.raises(InputError, match="Unknown sentiment label 'happy'"):
        Sentiment("happy", 0.5, "x")


@pytest.mark.parametrize(
    ("score", "label"),
    [(0.9, "positive"), (0.05, "neutral"), (0.0, "neutral"), (-0.2, "negative"), (7, "positive")],
)
def test_labels_from_scores(score: float, label: str) -> None:
    result = Sentiment.from_score(score, "x")
    assert result.label == label and -1 <= result.score <= 1


def test_message_role_is_checked() -> None:
    with pytest.raises(InputError, match="Unknown message role 'bot'"):
        Message("bot", "hi")


@pytest.mark.parametrize(
    "bad", ["", "../etc", "a/b", "/abs", ".hidden", "a\x00b", "x" * 129, "a..b", "ü", 5, None]
)
def test_unsafe_ids_are_refused(bad: object) -> None:
    with pytest.raises(InputError, match="Invalid dialogue id"):
        validate_id(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("good", ["a", "20261125-023256-3f9a1c", "A.b_c-1", "x" * 128])
def test_safe_ids_pass(good: str) -> None:
    assert validate_id(good) == good


def test_dialogue_messages_lead_with_the_system_instruction() -> None:
    d = Dialogue(
        DialogueInfo(id="d", system="Be brief."), [Turn("user", "hi"), Turn("assistant", "hello")]
    )
    assert [m.role for m in d.messages()] == ["system", "user", "assistant"]
    assert [m.role for m in d.messages(system=False)] == ["user", "assistant"]


@pytest.mark.parametrize("content", [None, 5, b"bytes", ["a list"]])
def test_message_and_turn_content_must_be_text(content: object) -> None:
    with pytest.raises(InputError, match=f"must be text.*{type(content).__name__}"):
        Message("user", content)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="must be text"):
        Turn("user", content)  # type: ignore[arg-type]

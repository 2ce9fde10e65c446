"""Stored dialogues become examples: which turns, which replies pass the sentiment filter."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypotez import Assistant, DialogueInfo, InputError, Sentiment, Turn, datasets, validation
from hypotez_files.storage import FileStorage


def mood(label: str | None) -> Sentiment | None:
    scores = {"positive": 0.8, "negative": -0.7, "neutral": 0.0}
    return None if label is None else Sentiment(label, scores[label], "test")


def add(
    store: FileStorage, dialogue_id: str, turns: list[tuple[str, str, str | None]], **info: object
) -> None:
    store.create_dialogue(DialogueInfo(id=dialogue_id, **info))  # type: ignore[arg-type]
    store.append_turns(
        dialogue_id, [Turn(role=r, content=c, sentiment=mood(m)) for r, c, m in turns]
    )


@pytest.fixture
def store(tmp_path: Path) -> FileStorage:
    s = FileStorage(tmp_path / "data")
    add(
        s,
        "d1",
        [
            ("user", "Привет!", "neutral"),
            ("assistant", "Здравствуйте! Рад помочь.", "positive"),
            ("user", "Это ужасно", "negative"),
            ("assistant", "Плохо вышло.", "negative"),
            ("user", "Спасибо, отлично", "positive"),
            ("assistant", "Пожалуйста!", None),  # never analysed
        ],
        system="Отвечай по-русски",
    )
    add(
        s,
        "d2",
        [("user", "hi", None), ("assistant", "hello, great day", "positive")],
        assistant_id="coder",
    )
    s.save_assistant(Assistant(id="coder", name="Coder", instructions="You write code."))
    return s


def contents(data: datasets.Dataset) -> list[list[tuple[str, str]]]:
    return [[(m["role"], m["content"]) for m in r.data["messages"]] for r in data]


def test_each_reply_becomes_an_example_with_its_history_and_system(store: FileStorage) -> None:
    data = datasets.from_dialogues(store)
    assert [r.location for r in data] == [
        "dialogue d1:2",
        "dialogue d1:4",
        "dialogue d1:6",
        "dialogue d2:2",
    ]
    ex = contents(data)
    assert ex[1] == [
        ("system", "Отвечай по-русски"),
        ("user", "Привет!"),
        ("assistant", "Здравствуйте! Рад помочь."),
        ("user", "Это ужасно"),
        ("assistant", "Плохо вышло."),
    ]
    # d2 has no system of its own: its assistant preset's instructions are used.
    assert ex[3] == [
        ("system", "You write code."),
        ("user", "hi"),
        ("assistant", "hello, great day"),
    ]


def test_positive_keeps_only_replies_labelled_positive(store: FileStorage) -> None:
    data = datasets.from_dialogues(store, sentiment=True)  # the seed's positive=True
    assert [ex[-1][1] for ex in contents(data)] == ["Здравствуйте! Рад помочь.", "hello, great day"]
    assert [r.location for r in datasets.from_dialogues(store, sentiment="negative")] == [
        "dialogue d1:4"
    ]


def test_score_threshold_and_callable_filters(store: FileStorage) -> None:
    assert len(datasets.from_dialogues(store, sentiment=0.5)) == 2
    assert (
        len(datasets.from_dialogues(store, sentiment=-0.9)) == 3
    )  # the unanalysed reply never passes
    long_only = datasets.from_dialogues(
        store, sentiment=lambda t: t is not None and len(t.content) > 12
    )
    assert [r.location for r in long_only] == ["dialogue d1:2", "dialogue d2:2"]
    with pytest.raises(InputError, match="outside"):
        datasets.from_dialogues(store, sentiment=2.0)
    with pytest.raises(InputError, match="Unknown sentiment filter"):
        datasets.from_dialogues(store, sentiment="happy")


def test_judging_by_the_users_next_message(store: FileStorage) -> None:
    # "The replies users liked": the reply before "Спасибо, отлично" (positive) is kept.
    data = datasets.from_dialogues(store, sentiment="positive", by="next_user")
    assert [r.location for r in data] == ["dialogue d1:4"]


def test_whole_dialogue_mode_keeps_only_dialogues_where_every_reply_passes(
    store: FileStorage,
) -> None:
    assert [r.location for r in datasets.from_dialogues(store, mode="dialogue")] == [
        "dialogue d1:1",
        "dialogue d2:1",
    ]
    data = datasets.from_dialogues(store, mode="dialogue", sentiment="positive")
    assert [r.source for r in data] == ["dialogue d2"]
    assert len(contents(data)[0]) == 3


def test_history_limit_system_override_and_selected_ids(store: FileStorage) -> None:
    data = datasets.from_dialogues(store, dialogue_ids=["d1"], history=1, system="Be kind")
    assert contents(data)[2] == [
        ("system", "Be kind"),
        ("user", "Спасибо, отлично"),
        ("assistant", "Пожалуйста!"),
    ]
    with pytest.raises(InputError, match="Unknown mode"):
        datasets.from_dialogues(store, mode="turns")


def test_dialogue_examples_validate_and_serialise(store: FileStorage) -> None:
    data = datasets.from_dialogues(store)
    report = validation.validate(data, min_examples=1)
    assert report.ok, report.render()
    jsonl = datasets.to_jsonl(data.examples()).decode("utf-8")
    assert jsonl.count("\n") == 4 and "Пожалуйста!" in jsonl


def test_unknown_dialogue_id_fails_loudly(store: FileStorage) -> None:
    with pytest.raises(KeyError):
        datasets.from_dialogues(store, dialogue_ids=["nope"])

"""The sentiment plugins give the raw libraries' own numbers, in the shared Sentiment shape."""

from __future__ import annotations

import pytest
from hypotez import InputError, Session
from hypotez.keywords import score_text

TEXTS = [
    "I love this, it is wonderful!",
    "This is terrible and I hate it.",
    "The box is on the table.",
    "",
]


def test_textblob_matches_the_raw_library(home: object) -> None:
    from textblob import TextBlob

    with Session(sentiment="textblob") as s:
        results = s.analyze(TEXTS)
    assert [r.backend for r in results] == ["textblob"] * 4
    for text, result in zip(TEXTS, results, strict=True):
        raw = TextBlob(text).sentiment
        assert result.score == pytest.approx(raw.polarity)
        assert result.raw["subjectivity"] == pytest.approx(raw.subjectivity)
    assert [r.label for r in results] == ["positive", "negative", "neutral", "neutral"]


def test_vader_matches_the_raw_library(home: object) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    raw = SentimentIntensityAnalyzer()
    with Session(sentiment="vader") as s:
        results = s.analyze(TEXTS)
    for text, result in zip(TEXTS, results, strict=True):
        assert result.score == pytest.approx(raw.polarity_scores(text)["compound"])
    assert [r.label for r in results] == ["positive", "negative", "neutral", "neutral"]


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("This is good", "positive"),
        ("This is not good", "negative"),
        ("not bad at all", "positive"),
        ("I don't like it", "negative"),
        ("Это очень хорошо, спасибо", "positive"),
        ("Это не хорошо", "negative"),
        ("Ужасно и плохо", "negative"),
        ("The sky is blue", "neutral"),
    ],
)
def test_keywords_handles_negation(home: object, text: str, label: str) -> None:
    with Session(sentiment="keywords") as s:
        assert s.analyze([text])[0].label == label


def test_keywords_score_is_the_balance_of_words() -> None:
    score, counts = score_text("good good bad")
    assert score == pytest.approx(1 / 3)
    assert counts == {"positive": 2, "negative": 1, "negated": 0}


@pytest.mark.parametrize("analyzer", ["textblob", "vader", "keywords"])
def test_batch_input_is_checked(home: object, analyzer: str) -> None:
    with Session(sentiment=analyzer) as s:
        with pytest.raises(InputError, match="list of texts"):
            s.analyze("a bare string")
        with pytest.raises(InputError, match="#1 is int"):
            s.analyze(["ok", 5])  # type: ignore[list-item]
        assert s.analyze([]) == []

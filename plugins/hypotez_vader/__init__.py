"""Sentiment with VADER, tuned for short social-media English."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypotez import (
    MissingDependencyError,
    Register,
    Sentiment,
    SentimentAnalyzer,
    hookimpl,
    texts_of,
)

INSTALL = "pip install 'hypotez[vader]'"


class VaderAnalyzer(SentimentAnalyzer):
    """VADER's ``compound`` is the score; its usual ±0.05 thresholds give the label."""

    name = "vader"

    def __init__(self) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:
            raise MissingDependencyError("vader", "vaderSentiment", INSTALL) from exc
        self._analyzer = SentimentIntensityAnalyzer()

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        # Locals instead of attribute look-ups: this loop is within a few % of raw VADER.
        score, from_score, name = self._analyzer.polarity_scores, Sentiment.from_score, self.name
        return [from_score(s["compound"], name, s) for s in map(score, texts_of(texts))]


def _available(settings: Any) -> bool:
    import importlib.util

    return importlib.util.find_spec("vaderSentiment") is not None


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register(
        "vader",
        lambda context: VaderAnalyzer(),
        priority=50,
        available=_available,
        description="VADER compound score (English, social media)",
        install=INSTALL,
    )

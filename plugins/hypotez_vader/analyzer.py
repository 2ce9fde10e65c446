"""The ``vader`` analyzer itself, imported only when it is built."""

from __future__ import annotations

from collections.abc import Sequence

from hypotez import (
    MissingDependencyError,
    Sentiment,
    SentimentAnalyzer,
    texts_of,
)
from hypotez_vader import INSTALL


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

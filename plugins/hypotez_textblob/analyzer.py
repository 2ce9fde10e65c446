"""The ``textblob`` analyzer itself, imported only when it is built."""

from __future__ import annotations

from collections.abc import Sequence

from hypotez import (
    MissingDependencyError,
    Sentiment,
    SentimentAnalyzer,
    texts_of,
)
from hypotez_textblob import INSTALL


class TextBlobAnalyzer(SentimentAnalyzer):
    """Polarity in [-1, 1] is the score; ``raw`` holds polarity and subjectivity."""

    name = "textblob"

    def __init__(self) -> None:
        try:
            from textblob.en.sentiments import PatternAnalyzer
        except ImportError as exc:
            raise MissingDependencyError("textblob", "textblob", INSTALL) from exc
        # The analyzer TextBlob(text).sentiment uses, built once instead of once per text.
        self._analyzer = PatternAnalyzer()

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        out = []
        for text in texts_of(texts):
            polarity, subjectivity = self._analyzer.analyze(text)
            out.append(
                Sentiment.from_score(
                    polarity, self.name, {"polarity": polarity, "subjectivity": subjectivity}
                )
            )
        return out

"""Sentiment with TextBlob's pattern analyzer (English), the default analyzer.

Only ``TextBlob(text).sentiment`` is used: it works offline. TextBlob's word lists, tagger and
NaiveBayes analyzer need NLTK corpora that cannot be downloaded offline, so they are not used.
"""

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

INSTALL = "pip install 'hypotez[textblob]'"


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


def _available(settings: Any) -> bool:
    import importlib.util

    return importlib.util.find_spec("textblob") is not None


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register(
        "textblob",
        lambda context: TextBlobAnalyzer(),
        priority=100,
        available=_available,
        description="TextBlob pattern polarity (English)",
        install=INSTALL,
    )

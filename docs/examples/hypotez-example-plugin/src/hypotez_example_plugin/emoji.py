"""Sentiment from emoji and emoticons alone: what people mean when words say little."""

from __future__ import annotations

from collections.abc import Sequence

from hypotez import Sentiment, SentimentAnalyzer, texts_of

POSITIVE = (
    "😀",
    "😃",
    "😄",
    "😁",
    "😊",
    "🙂",
    "😍",
    "🥰",
    "👍",
    "❤",
    "🎉",
    "🙌",
    ":)",
    ":-)",
    ":D",
)
NEGATIVE = ("😞", "😢", "😭", "😠", "😡", "👎", "💔", "🙁", "☹", "🤮", ":(", ":-(")


class EmojiAnalyzer(SentimentAnalyzer):
    """Score = (positive - negative) / (positive + negative) signs; no sign at all is neutral."""

    name = "emoji"

    def __init__(self, neutral_band: float = 0.05) -> None:
        self.neutral_band = neutral_band

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        results = []
        for text in texts_of(texts):  # refuses a bare string: analyze() takes a batch
            positive = sum(text.count(sign) for sign in POSITIVE)
            negative = sum(text.count(sign) for sign in NEGATIVE)
            total = positive + negative
            score = (positive - negative) / total if total else 0.0
            raw = {"positive": positive, "negative": negative}
            results.append(
                Sentiment.from_score(score, self.name, raw, neutral_band=self.neutral_band)
            )
        return results

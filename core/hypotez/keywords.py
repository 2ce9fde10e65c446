"""The ``keywords`` sentiment analyzer: the seed's word lists, with negation handled.

No dependencies, so it is always there as a fallback. A sentiment word counts +1 or -1; a
negator ("not", "never", "не", "нет"...) within the three words before it flips it, so "not good"
is negative and "not bad" is positive. The score is the sum over the number of sentiment words,
in [-1, 1].
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypotez.models import Sentiment
from hypotez.protocols import SentimentAnalyzer, texts_of

POSITIVE = frozenset(
    [
        "good",
        "great",
        "excellent",
        "amazing",
        "awesome",
        "wonderful",
        "fantastic",
        "perfect",
        "love",
        "loved",
        "like",
        "liked",
        "nice",
        "happy",
        "glad",
        "pleased",
        "helpful",
        "useful",
        "thanks",
        "thank",
        "best",
        "better",
        "brilliant",
        "enjoy",
        "enjoyed",
        "beautiful",
        "fine",
        "cool",
        "superb",
        "correct",
        "right",
        "works",
        "working",
        "recommend",
        "хорошо",
        "хороший",
        "хорошая",
        "отлично",
        "отличный",
        "отличная",
        "прекрасно",
        "прекрасный",
        "замечательно",
        "спасибо",
        "благодарю",
        "люблю",
        "нравится",
        "рад",
        "рада",
        "полезно",
        "полезный",
        "супер",
        "класс",
        "круто",
        "лучший",
        "лучше",
        "удобно",
        "верно",
        "правильно",
        "работает",
    ]
)
NEGATIVE = frozenset(
    [
        "bad",
        "terrible",
        "awful",
        "horrible",
        "hate",
        "hated",
        "dislike",
        "poor",
        "worse",
        "worst",
        "useless",
        "broken",
        "wrong",
        "sad",
        "angry",
        "annoying",
        "annoyed",
        "disappointed",
        "disappointing",
        "ugly",
        "slow",
        "fail",
        "failed",
        "fails",
        "error",
        "problem",
        "problems",
        "bug",
        "buggy",
        "boring",
        "stupid",
        "sucks",
        "crash",
        "crashes",
        "плохо",
        "плохой",
        "плохая",
        "ужасно",
        "ужасный",
        "ужасная",
        "отвратительно",
        "ненавижу",
        "грустно",
        "злой",
        "зол",
        "бесполезно",
        "бесполезный",
        "сломано",
        "сломан",
        "ошибка",
        "ошибки",
        "проблема",
        "проблемы",
        "медленно",
        "хуже",
        "худший",
        "неправильно",
        "неверно",
        "глупо",
        "скучно",
    ]
)
NEGATORS = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "neither",
        "nor",
        "without",
        "cannot",
        "can't",
        "don't",
        "doesn't",
        "didn't",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "won't",
        "wouldn't",
        "shouldn't",
        "couldn't",
        "hardly",
        "barely",
        "не",
        "нет",
        "ни",
        "никогда",
        "ничуть",
        "вовсе",
        "без",
    ]
)
_WORD = re.compile(r"[\w']+", re.UNICODE)
_WINDOW = 3


def score_text(text: str) -> tuple[float, dict[str, int]]:
    """Return the score and the counts behind it (for ``Sentiment.raw``)."""
    words = [w.lower().replace("’", "'") for w in _WORD.findall(text.replace("’", "'"))]
    pos = neg = negated = 0
    for i, word in enumerate(words):
        polarity = 1 if word in POSITIVE else -1 if word in NEGATIVE else 0
        if not polarity:
            continue
        if any(w in NEGATORS for w in words[max(0, i - _WINDOW) : i]):
            polarity, negated = -polarity, negated + 1
        if polarity > 0:
            pos += 1
        else:
            neg += 1
    total = pos + neg
    return ((pos - neg) / total if total else 0.0), {
        "positive": pos,
        "negative": neg,
        "negated": negated,
    }


class KeywordsAnalyzer(SentimentAnalyzer):
    name = "keywords"

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        out = []
        for text in texts_of(texts):
            score, counts = score_text(text)
            out.append(Sentiment.from_score(score, self.name, counts))
        return out

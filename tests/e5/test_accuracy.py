"""e5 labels sentences correctly in every language it promises (Russian, English, German,
French, Spanish, Chinese), on hand-written labelled sets it was never fitted on."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

LANGS = ("ru", "en", "de", "fr", "es", "zh")


def accuracy_by_lang(analyzer: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    results = analyzer.analyze([r["text"] for r in rows])
    hits: dict[str, list[bool]] = defaultdict(list)
    for row, result in zip(rows, results, strict=True):
        hits[row["lang"]].append(result.label == row["label"])
        hits["all"].append(result.label == row["label"])
    return {lang: sum(h) / len(h) for lang, h in hits.items()}


def test_eval_set_is_balanced_and_covers_every_language(eval_rows: list[dict[str, Any]]) -> None:
    rows = eval_rows
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        counts[row["lang"], row["label"]] += 1
    assert {lang for lang, _ in counts} == set(LANGS)
    assert set(counts.values()) == {10}  # 10 per label and language: 30 per language
    assert len({r["text"] for r in rows}) == len(rows)


def test_every_language_is_mostly_right_on_the_eval_set(
    analyzer: Any, eval_rows: list[dict[str, Any]]
) -> None:
    acc = accuracy_by_lang(analyzer, eval_rows)
    # Measured 0.80-0.93 per language, 0.878 overall (docs/backends/e5.md); the floors leave
    # room for a sentence or two of drift, not for a language that stopped working.
    assert {lang: acc[lang] >= 0.75 for lang in LANGS} == dict.fromkeys(LANGS, True), acc
    assert acc["all"] >= 0.85, acc


def test_every_language_is_mostly_right_on_chat_turns(
    analyzer: Any, chat_rows: list[dict[str, Any]]
) -> None:
    acc = accuracy_by_lang(analyzer, chat_rows)
    # Measured 0.75-1.00 per language (12 sentences each), 0.917 overall.
    assert {lang: acc[lang] >= 0.66 for lang in LANGS} == dict.fromkeys(LANGS, True), acc
    assert acc["all"] >= 0.85, acc


OBVIOUS = [
    ("ru", "Это ужасно, я очень разочарован", "negative"),
    ("ru", "Спасибо, это просто замечательно!", "positive"),
    ("en", "This is awful, I want my money back.", "negative"),
    ("en", "I love it, thank you so much!", "positive"),
    ("de", "Das ist wunderbar, vielen Dank!", "positive"),
    ("de", "Das ist furchtbar, ich bin sehr enttäuscht.", "negative"),
    ("fr", "C'est génial, merci infiniment !", "positive"),
    ("fr", "C'est nul, je suis vraiment déçu.", "negative"),
    ("es", "¡Es fantástico, me encanta!", "positive"),
    ("es", "Es terrible, estoy muy decepcionado.", "negative"),
    ("zh", "太好了，谢谢你！", "positive"),
    ("zh", "太糟糕了，我很失望。", "negative"),
]


@pytest.mark.parametrize(
    ("lang", "text", "label"), OBVIOUS, ids=[f"{o[0]}-{o[2]}" for o in OBVIOUS]
)
def test_obvious_sentences(analyzer: Any, lang: str, text: str, label: str) -> None:
    [result] = analyzer.analyze([text])
    assert result.label == label
    # Clear sentences get clear scores, not a coin toss near zero.
    assert (result.score > 0.5) if label == "positive" else (result.score < -0.5), result

"""e5 on outside data it was never fitted on, long texts, mixed languages and hostile input."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import ConfigError, InputError

DATA = Path(__file__).parent / "data"


def words(text: str) -> int:
    """A stand-in token counter: one token per word, plus two for the specials."""
    return len(text.split()) + 2


# -- splitting long texts (pure functions, no model) ---------------------------------------


def test_a_short_text_is_embedded_whole() -> None:
    from hypotez_e5.analyzer import split_text

    assert split_text("Short and sweet. Really.", words, 512) == ["Short and sweet. Really."]


def test_long_text_pieces_follow_sentences_and_fit_a_chunk() -> None:
    from hypotez_e5.analyzer import CHUNK_TOKENS, split_text

    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(100))
    pieces = split_text(text, words, 0)  # 0 = the whole text
    assert " ".join(pieces) == text  # nothing lost, nothing reordered
    assert all(words(p) <= CHUNK_TOKENS for p in pieces)
    assert all(p.endswith("words.") for p in pieces)  # cut at sentence ends


def test_the_budget_keeps_the_start_and_the_end() -> None:
    from hypotez_e5.analyzer import split_text

    text = " ".join(f"Sentence {i} is here." for i in range(400))
    pieces = split_text(text, words, 256)
    kept = " ".join(pieces)
    assert kept.startswith("Sentence 0 is here.") and kept.endswith("Sentence 399 is here.")
    assert "Sentence 200 is here." not in kept
    assert sum(words(p) - 2 for p in pieces) <= 256


def test_text_without_spaces_or_sentence_ends_is_still_cut() -> None:
    from hypotez_e5.analyzer import CHUNK_TOKENS, split_text

    def chars(text: str) -> int:
        return len(text) + 2

    pieces = split_text("好" * 1000, chars, 0)
    assert "".join(pieces) == "好" * 1000
    assert all(chars(p) <= CHUNK_TOKENS for p in pieces)


@pytest.mark.parametrize("value", ["-1", "12", "many", "true"])
def test_bad_max_tokens_option_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HYPOTEZ_E5_MAX_TOKENS", value)
    with (
        hypotez.Session(sentiment="e5") as session,
        pytest.raises(ConfigError, match="HYPOTEZ_E5_MAX_TOKENS"),
    ):
        session.analyze(["fine"])


def test_max_tokens_option_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTEZ_E5_MAX_TOKENS", "0")
    with hypotez.Session(sentiment="e5") as session:
        assert session.analyzer.max_tokens == 0  # type: ignore[attr-defined]


# -- the real model ----------------------------------------------------------------------


def test_outside_held_out_texts_per_language(analyzer: Any) -> None:
    """Tweets, Amazon snippets (en), shopping reviews (zh), tweets (es): 50 per language,
    from the held-out part of outside sets (tests/e5/data/OUTSIDE-LICENCES.md)."""
    rows = [json.loads(line) for line in (DATA / "outside_heldout.jsonl").open(encoding="utf-8")]
    results = analyzer.analyze([r["text"] for r in rows])
    hits: dict[str, list[bool]] = defaultdict(list)
    for row, result in zip(rows, results, strict=True):
        predicted = "positive" if result.score > 0 else "negative"
        hits[row["lang"]].append(predicted == row["label"])
    acc = {lang: sum(h) / len(h) for lang, h in hits.items()}
    # Measured 0.91 (en), 0.72 (zh), 0.64 (es) with the shipped head (docs/backends/e5.md); the
    # floors leave room for a text or three of drift, not for a language that stopped working
    # (chance is 0.50).
    floors = {"en": 0.85, "zh": 0.68, "es": 0.60}
    assert {lang: acc[lang] >= floor for lang, floor in floors.items()} == dict.fromkeys(
        floors, True
    ), acc


LONG_REVIEW = (
    "I bought this kettle for my office and I am delighted with it. "
    + "The box contained the kettle, a base, a manual in four languages and a warranty card. " * 12
    + "The manual explains how to descale it with vinegar every month. " * 8
    + "After three months of daily use it still works perfectly. Highly recommended, five stars!"
)


def test_long_review_with_a_plain_middle_keeps_its_verdict(analyzer: Any) -> None:
    [result] = analyzer.analyze([LONG_REVIEW])
    assert result.label == "positive", result


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Отличный продукт, I love it, работает идеально!", "positive"),
        ("This is terrible, полный отстой, верните деньги.", "negative"),
        ("Das Hotel war wunderbar, the staff were so kind, merci beaucoup!", "positive"),
        ("Доставка опоздала на неделю, and the box arrived broken. Very disappointed.", "negative"),
    ],
)
def test_a_text_mixing_languages_gets_one_sensible_label(
    analyzer: Any, text: str, label: str
) -> None:
    [result] = analyzer.analyze([text])
    assert result.label == label, (text, result)


def test_hostile_input(analyzer: Any) -> None:
    long_bad = "Fine words. " * 300 + "broken \udcff surrogate"
    with pytest.raises(InputError, match="Text #1 is not valid Unicode"):
        analyzer.analyze(["fine", long_bad])
    odd = ["\u200b" * 50, "🙂" * 2000, "a" * 20000, "\n\n\n" + "." * 3000]
    results = analyzer.analyze(odd)
    assert len(results) == 4 and all(-1.0 <= r.score <= 1.0 for r in results)


def test_a_huge_text_only_has_its_start_and_end_read() -> None:
    from hypotez_e5.analyzer import split_text

    seen: list[int] = []

    def counting(text: str) -> int:
        seen.append(len(text))
        return words(text)

    huge = "Great start. " + "Filler words here. " * 200_000 + "Awful ending."
    pieces = split_text(huge, counting, 512)
    assert pieces[0].startswith("Great start.") and pieces[-1].endswith("Awful ending.")
    assert max(seen) < len(huge) // 100  # never tokenized the 3.8-million-character whole

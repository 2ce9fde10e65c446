"""The keywords analyzer on Russian word forms, emoji, contrast and text mixing languages."""

from __future__ import annotations

import pytest
from hypotez.keywords import KeywordsAnalyzer, score_text


@pytest.mark.parametrize(
    ("text", "label"),
    [
        # Every form of a Russian word counts, not just the one in the list.
        ("Хорошая книга", "positive"),
        ("Отличные наушники, всем советую", "positive"),
        ("Прекрасное обслуживание", "positive"),
        ("Фильм мне понравился", "positive"),
        ("Ужасная погода и плохое настроение", "negative"),
        ("Я разочарована", "negative"),
        ("Отвратительный сервис", "negative"),
        # A stem that starts with "не" beats the shorter stem inside it.
        ("Я недоволен покупкой", "negative"),
        ("Неплохой фильм", "positive"),
        ("Некачественный товар", "negative"),
        # Negation, in both languages.
        ("Не рекомендую", "negative"),
        ("Ничего хорошего", "negative"),
        ("Совсем не плохо", "positive"),
        # ё and е are the same letter here.
        ("Всё отлично", "positive"),
        # Emoji and emoticons count in any language.
        ("Посылка пришла 👍", "positive"),
        ("Paquete recibido 😡", "negative"),
        ("ok :)", "positive"),
        # Plain facts stay neutral; a URL is not an emoticon.
        ("Радио играет на кухне", "neutral"),
        ("Встреча во вторник в 10:00, см. https://example.com/plan", "neutral"),
    ],
)
def test_russian_forms_emoji_and_negation(text: str, label: str) -> None:
    [result] = KeywordsAnalyzer().analyze([text])
    assert result.label == label, (text, result)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Отличный продукт, I love it!", "positive"),
        ("This is terrible, полный отстой", "negative"),
        ("Сервис хороший, but the delivery was awful and slow", "negative"),
        ("The first days were bad, но теперь всё прекрасно", "positive"),
        ("Спасибо, thanks a lot 🙏", "positive"),
    ],
)
def test_a_text_mixing_languages_gets_one_sensible_label(text: str, label: str) -> None:
    [result] = KeywordsAnalyzer().analyze([text])
    assert result.label == label, (text, result)


def test_what_follows_but_weighs_more() -> None:
    assert score_text("Good idea, but the result is terrible")[0] < 0
    assert score_text("The result is terrible, but good idea")[0] > 0
    assert score_text("Хорошая идея, но результат ужасный")[0] < 0
    # Without a contrast word every sentiment word weighs the same (the documented balance).
    assert score_text("good good bad")[0] == pytest.approx(1 / 3)

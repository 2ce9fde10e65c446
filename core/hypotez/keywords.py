"""The ``keywords`` sentiment analyzer: the seed's word lists, with negation handled.

No dependencies, so it is always there as a fallback. A sentiment word counts +1 or -1; a
negator ("not", "never", "не", "нет"...) within the three words before it flips it, so "not good"
is negative and "not bad" is positive. The score is the balance of the sentiment words,
``(positive - negative) / (positive + negative)``, in [-1, 1].

Russian words are matched by their stem, so every form counts: "хорош" covers хороший,
хорошая, хорошо, хороши...; a stem that starts with "не" ("недоволен", "неплохо") wins over the
shorter one inside it. Emoji and emoticons (":)", "👍", "😡") count like words, in any language.
After "but" / "но" / "однако" (and their kin) the words weigh three times as much as before it:
"good idea, but it does not work" is negative. A text mixing English and Russian is scored as
one text, over both word lists.
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
        "recommended",
        "excellent",
        "lovely",
        "delighted",
        "satisfied",
        "favorite",
        "favourite",
        "masterpiece",
        "outstanding",
        "impressive",
        "fun",
        "enjoyable",
        "worth",
        "hooked",
        "gripping",
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
        "waste",
        "wasted",
        "dull",
        "mediocre",
        "unfortunately",
        "refund",
        "disappointment",
        "junk",
        "garbage",
        "mess",
        "lame",
        "pointless",
        "unhappy",
        "hated",
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
        "ничего",
        "вовсе",
        "без",
        "нельзя",
    ]
)
#: Russian stems (lower case, ё written е): a word counts when it starts with one of them; the
#: longest matching stem decides, so "недоволен" is negative although "довол" is positive.
RU_POSITIVE_STEMS = (
    "хорош", "отличн", "прекрасн", "замечательн", "великолепн", "превосходн", "восхитительн",
    "потрясающ", "шикарн", "чудесн", "изумительн", "идеальн", "классн", "клевый", "клевая",
    "крут", "супер", "спасиб", "благодар", "люблю", "любим", "нравит", "нравил", "понрав",
    "радост", "радует", "доволен", "довольн", "счастлив", "полезн", "удобн",
    "рекоменд", "советую", "лучш", "восторг", "удовольств", "приятн", "красив", "качествен",
    "молодц", "браво", "обожа", "шедевр", "интересн", "уютн", "вкусн",
    "верно", "правильн", "работает", "неплох", "недурн", "достойн", "успешн",
)  # fmt: skip
RU_NEGATIVE_STEMS = (
    "плох", "ужасн", "ужас", "отвратительн", "омерзительн", "мерзк", "кошмар", "отстой",
    "ненавиж", "ненавист", "грустн", "печальн", "зло", "злой", "злюсь", "бесит", "бесполезн",
    "сломал", "сломан", "ошибк", "ошибка", "проблем", "медленн", "хуже", "худш", "неправильн",
    "неверн", "глуп", "скучн", "разочаров", "недовол", "неудобн", "неприятн", "некачествен",
    "нехорош", "неинтерес", "неудач", "неработ", "неисправ", "обман", "жаль", "жалко", "дерьм", "фигн", "ерунд", "врун",
    "вран", "мусор", "позор", "провал", "отказ", "жалоб", "бракован", "грязн", "тупо", "туп",
    "отврат", "убог", "хамств", "хамск", "грубо", "груб", "возмут", "кидал",
    "обидн", "устал", "бред",
)  # fmt: skip
_RU_STEMS = {stem: 1 for stem in RU_POSITIVE_STEMS} | {stem: -1 for stem in RU_NEGATIVE_STEMS}
_RU_STEM_LENGTHS = sorted({len(stem) for stem in _RU_STEMS}, reverse=True)
#: Emoji and emoticons, scored like words.
POSITIVE_SIGNS = frozenset(
    [
        ":)",
        ":-)",
        ":D",
        ":-D",
        ";)",
        ";-)",
        "=)",
        ":]",
        ":3",
        "<3",
        "xD",
        "XD",
        "🙂",
        "😊",
        "😀",
        "😃",
        "😄",
        "😁",
        "😆",
        "😍",
        "🥰",
        "😘",
        "😂",
        "🤣",
        "👍",
        "👏",
        "🙏",
        "💪",
        "🔥",
        "❤",
        "❤️",
        "💕",
        "💖",
        "😻",
        "🤩",
        "✨",
        "🎉",
        "💯",
        "✅",
        "😉",
        "☺",
        "☺️",
    ]
)
NEGATIVE_SIGNS = frozenset(
    [
        ":(",
        ":-(",
        ":'(",
        ">:(",
        ":-/",
        "🙁",
        "☹",
        "☹️",
        "😞",
        "😟",
        "😠",
        "😡",
        "🤬",
        "😢",
        "😭",
        "😩",
        "😫",
        "😒",
        "😤",
        "👎",
        "💩",
        "🤮",
        "🤢",
        "😖",
        "😣",
        "😔",
        "💔",
        "❌",
        "😱",
        "😨",
    ]
)
#: Words that turn a sentence: what follows them weighs more than what came before.
CONTRAST = frozenset(
    ["but", "however", "although", "though", "yet", "но", "однако", "зато", "хотя"]
)
# Words, ASCII emoticons (":)", ":-(", "<3", "xD") and single emoji (with an optional variation
# selector); a one-pass pattern, so the fallback stays fast.
_TOKEN = re.compile(
    r"[\w']+|>?[:;=][-']?[()DP\]3/]|<3|[\U0001F300-\U0001FAFF\u2600-\u27BF]\ufe0f?",
    re.UNICODE,
)
_WINDOW = 3
_BEFORE_CONTRAST, _AFTER_CONTRAST = 0.5, 1.5


_LEXICON = {w.lower(): 1 for w in POSITIVE | POSITIVE_SIGNS} | {
    w.lower(): -1 for w in NEGATIVE | NEGATIVE_SIGNS
}


def _polarity(word: str) -> int:
    """+1, -1 or 0 for one lower-cased token."""
    found = _LEXICON.get(word)
    if found is not None:
        return found
    if "а" <= word[0] <= "я":
        for n in _RU_STEM_LENGTHS:
            if len(word) >= n and word[:n] in _RU_STEMS:
                return _RU_STEMS[word[:n]]
    return 0


def score_text(text: str) -> tuple[float, dict[str, int]]:
    """Return the score and the counts behind it (for ``Sentiment.raw``)."""
    cleaned = text.replace("’", "'").replace("ё", "е").replace("Ё", "Е")
    words = [w.lower() for w in _TOKEN.findall(cleaned)]
    last_turn = max((i for i, w in enumerate(words) if w in CONTRAST), default=-1)
    pos = neg = negated = 0
    weighted = 0.0
    total = 0.0
    for i, word in enumerate(words):
        polarity = _polarity(word)
        if not polarity:
            continue
        if any(w in NEGATORS for w in words[max(0, i - _WINDOW) : i]):
            polarity, negated = -polarity, negated + 1
        if polarity > 0:
            pos += 1
        else:
            neg += 1
        weight = 1.0 if last_turn < 0 else _AFTER_CONTRAST if i > last_turn else _BEFORE_CONTRAST
        weighted += weight * polarity
        total += weight
    return (weighted / total if total else 0.0), {
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

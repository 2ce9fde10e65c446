"""The ``llm`` analyzer's packing logic, on a stand-in chat model that enforces its window.

The stand-in (``Reviewer``) judges texts by counting "good" and "bad", and refuses a request
larger than its window exactly as servers do. The real models are in
``tests/llamacpp/test_llm_sentiment.py`` and ``tests/openai/test_servers.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import hypotez
import pytest
from hypotez import ChatBackend, ChatOptions, ContextLengthError, Message, Reply
from hypotez_openai.sentiment import LLMSentimentAnalyzer, estimate_tokens, split_text

REVIEW = (
    "I bought this for my daughter and it arrived on time, well packed, with every part in "
    "the box. The build is solid and the colours are as pictured. "
) * 8  # ~1,000 characters: review length


class Reviewer(ChatBackend):
    """A chat model with a ``window`` of tokens (four characters each), prompt plus answer."""

    name = "reviewer"

    def __init__(
        self,
        window: int,
        *,
        states: bool = True,
        counts: bool = True,
        names_window: bool = True,
        pause: float = 0.0,
    ) -> None:
        self.window, self.states, self.counts = window, states, counts
        self.names_window, self.pause = names_window, pause
        self.answered: list[int] = []  # texts in each answered request
        self.refused = 0
        self.in_flight = self.most_in_flight = 0

    def _size(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content) for m in messages) // 4 + 10

    def context_window(self, model: str | None = None) -> int | None:
        return self.window if self.states else None

    def count_tokens(self, messages: Sequence[Message], *, model: str | None = None) -> int | None:
        return self._size(messages) if self.counts else None

    async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        assert options.max_tokens is not None, "the analyzer must bound the answer"
        if self._size(messages) + options.max_tokens > self.window:
            self.refused += 1
            said = f"maximum context length is {self.window} tokens" if self.names_window else ""
            raise ContextLengthError(f"This request is too long ({said}).")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.pause)
        finally:
            self.in_flight -= 1
        items = json.loads(messages[-1].content)
        self.answered.append(len(items))
        return Reply(json.dumps({"results": {str(i["id"]): judge(i["text"]) for i in items}}), "r1")


def judge(text: str) -> dict[str, Any]:
    good, bad = text.count("good"), text.count("bad")
    score = (good - bad) / (good + bad) if good + bad else 0.0
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return {"label": label, "score": score}


def test_review_length_texts_are_packed_into_requests_that_fit() -> None:
    # The failure of issue 15: 20 reviews needed 6,467 tokens against a 4,096-token window.
    chat = Reviewer(4096)
    texts = [REVIEW + (" good" if i % 2 else " bad") for i in range(20)]
    results = LLMSentimentAnalyzer(chat).analyze(texts)
    assert [r.label for r in results] == ["negative", "positive"] * 10
    assert chat.refused == 0  # sized by the stated window and exact counts: nothing refused
    assert sum(chat.answered) == 20 and len(chat.answered) >= 2
    assert all(r.raw == {"model": "r1"} for r in results)


def test_batch_size_still_caps_a_request() -> None:
    chat = Reviewer(100_000)
    LLMSentimentAnalyzer(chat, batch_size=7).analyze(["good"] * 30)
    assert chat.answered == [7, 7, 7, 7, 2]


def test_a_text_longer_than_the_window_is_read_in_pieces_and_combined() -> None:
    chat = Reviewer(1024)
    # 3/4 of the text is glowing, the last quarter scathing: positive overall, score weighted.
    long_text = "good day. " * 900 + "bad day. " * 300
    [short, long_result] = LLMSentimentAnalyzer(chat).analyze(["bad", long_text])
    assert short.label == "negative"
    assert long_result.label == "positive"
    assert 0.2 < long_result.score < 0.8
    raw = long_result.raw
    assert raw["pieces"] >= 3 and raw["chars"] == raw["chars_read"] == len(long_text)
    assert "sampled" not in raw
    assert chat.refused == 0


def test_a_huge_text_is_read_in_at_most_max_pieces_spread_over_it() -> None:
    chat = Reviewer(1024)
    huge = "good. " * 5 + "meh. " * 40_000 + "bad. " * 5
    [result] = LLMSentimentAnalyzer(chat, max_pieces=4).analyze([huge])
    assert result.raw["pieces"] == 4 and result.raw["sampled"] is True
    assert result.raw["chars_read"] < result.raw["chars"] == len(huge)
    assert sum(chat.answered) == 4  # the cost of one text is bounded


def test_text_without_spaces_is_cut_too() -> None:
    chat = Reviewer(1024)
    text = "好" * 5000  # a run without any space, as Chinese is written
    [result] = LLMSentimentAnalyzer(chat).analyze([text])
    assert result.raw["pieces"] >= 2 and result.raw["chars_read"] == 5000
    assert chat.refused == 0


def test_a_server_smaller_than_assumed_is_learnt_from_its_refusal() -> None:
    # No stated window and no counting (a plain OpenAI-compatible server): 4,096 is assumed,
    # the server holds 1,500. The refused request is halved, and the window it names is kept.
    chat = Reviewer(1500, states=False, counts=False)
    analyzer = LLMSentimentAnalyzer(chat)
    texts = [REVIEW + " good"] * 12
    assert [r.label for r in analyzer.analyze(texts)] == ["positive"] * 12
    refused_first = chat.refused
    assert refused_first >= 1
    assert [r.label for r in analyzer.analyze(texts)] == ["positive"] * 12
    assert chat.refused == refused_first  # the second call fitted from the start


def test_a_refusal_that_names_no_window_is_still_halved_until_it_fits() -> None:
    chat = Reviewer(900, states=False, counts=False, names_window=False)
    results = LLMSentimentAnalyzer(chat).analyze([REVIEW + " bad"] * 6)
    assert [r.label for r in results] == ["negative"] * 6
    assert chat.refused >= 1


def test_a_window_too_small_for_any_text_says_what_to_raise() -> None:
    chat = Reviewer(150)  # the instructions and the answer's room take it all
    with pytest.raises(ContextLengthError, match=r"context_window|N_CTX"):
        LLMSentimentAnalyzer(chat).analyze(["good"])


def test_blank_texts_are_neutral_without_a_request() -> None:
    chat = Reviewer(4096)
    results = LLMSentimentAnalyzer(chat).analyze(["", "  ", "good", "\n"])
    assert [r.label for r in results] == ["neutral", "neutral", "positive", "neutral"]
    assert results[0].raw == {"empty": True}
    assert chat.answered == [1]
    assert LLMSentimentAnalyzer(chat).analyze(["", " "])[1].raw == {"empty": True}
    assert chat.answered == [1]


def test_requests_in_flight_are_bounded_by_concurrency() -> None:
    chat = Reviewer(100_000, pause=0.02)
    LLMSentimentAnalyzer(chat, batch_size=1, concurrency=3).analyze(["good"] * 12)
    assert chat.most_in_flight == 3


def test_one_failing_request_fails_the_call_with_its_own_error() -> None:
    class Broken(Reviewer):
        async def achat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
            if "bad" in messages[-1].content:
                raise hypotez.BackendError("the server broke")
            return await super().achat(messages, options)

    with pytest.raises(hypotez.BackendError, match="the server broke"):
        LLMSentimentAnalyzer(Broken(100_000), batch_size=1).analyze(["good", "bad", "good"])


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch_size", 0), ("max_pieces", 0), ("concurrency", 0), ("context_window", 100)],
)
def test_bad_options_name_the_setting(option: str, value: int) -> None:
    with pytest.raises(hypotez.ConfigError, match=rf"\[plugins\.llm\] {option}"):
        LLMSentimentAnalyzer(Reviewer(4096), **{option: value})


def test_the_settings_reach_the_analyzer(tmp_path: Any) -> None:
    settings = hypotez.Settings.load(
        env={"HYPOTEZ_LLM_CONTEXT_WINDOW": "2048"},
        home=tmp_path,
        options={"llm": {"max_pieces": 3, "concurrency": 2, "chat": "echo"}},
    )
    with hypotez.Context(settings) as context:
        analyzer = context.get("sentiment", "llm")
    assert (analyzer._window, analyzer.max_pieces, analyzer.concurrency) == (2048, 3, 2)


def test_splitting_keeps_every_character_in_order() -> None:
    text = "Ein  langer\tText.\n\nZweiter Absatz, " * 200 + "x" * 3000
    pieces = split_text(text, 100)
    assert "".join(pieces) == text
    assert all(estimate_tokens(p) <= 100 for p in pieces)


def test_the_estimate_is_on_the_safe_side_for_other_scripts() -> None:
    assert estimate_tokens("hello world") == 4  # 11 ASCII characters / 3
    assert estimate_tokens("привет") == 6  # one a character: never under the real count
    assert estimate_tokens("你好") == 2

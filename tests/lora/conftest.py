"""Fixtures for the local LoRA trainer: the tiny SmolLM2 base, a tiny random GGUF base, the
made-up-fact data, and one real training run shared by the end-to-end and parity tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Before torch is imported anywhere in this process: passive OpenMP waiting keeps 2 threads
# from spinning against each other on a busy 2-core machine (3-8x slower steps otherwise).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
from lora.fact import write_jsonl
from lora.helpers import FACT_SETTINGS, Trained


@pytest.fixture(scope="session")
def smollm2() -> Path:
    from hypotez_lora.base import SMOLLM2_INSTALL, smollm2_path
    from hypotez_lora.errors import BaseModelError

    try:
        return smollm2_path()
    except BaseModelError:
        pytest.fail(f"the tiny base model is not installed: {SMOLLM2_INSTALL}")


@pytest.fixture(scope="session")
def lora_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lora-cache")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real llama-architecture GGUF with random weights (2 blocks, ~0.5 MB): loads in a
    second, so job tests measure the runner, not the model."""
    from llamacpp.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny-llama.gguf")


@pytest.fixture
def fact_jsonl(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "fact.jsonl")


@pytest.fixture(scope="session")
def trained_fact(
    smollm2: Path, lora_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Trained]:
    """SmolLM2-135M taught the made-up fact (12 steps), and its adapter written as GGUF."""
    import time

    from hypotez_lora.adapter import write_adapter
    from hypotez_lora.base import load_base
    from hypotez_lora.data import ChatEncoder, read_chat_jsonl
    from hypotez_lora.train import LoraSettings, lora_weights, train_lora

    folder = tmp_path_factory.mktemp("fact")
    started = time.perf_counter()
    base = load_base(smollm2, cache_dir=lora_cache)
    encoder = ChatEncoder(base.tokenizer, base.info.context_length)
    examples = encoder.encode_all(read_chat_jsonl(write_jsonl(folder / "fact.jsonl")))
    settings = LoraSettings(**FACT_SETTINGS)
    result = train_lora(base, examples, settings)
    adapter = write_adapter(
        folder / "fact.gguf", lora_weights(result.model), base.info, alpha=settings.alpha
    )
    yield Trained(base, result, encoder, adapter, time.perf_counter() - started)

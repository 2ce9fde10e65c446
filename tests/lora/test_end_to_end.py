"""End to end on the real tiny model: SmolLM2-135M learns a made-up fact from 12 examples, and
llama.cpp, running the quantized base with the GGUF adapter, gives it for phrasings it never saw,
while the base alone does not. Then the trained torch model (LoRA merged) and llama.cpp with the
adapter agree on the next token and its logits, which only holds if the adapter's names, shapes,
scale and rotary row order are all what llama.cpp expects."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path
from typing import Any

import pytest
from lora.fact import ANSWER_WORD, HELD_OUT
from lora.helpers import Trained, run_llama

pytestmark = pytest.mark.slow

PARITY_QUESTIONS = [
    *HELD_OUT[:2],
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "How many legs does a spider have?",
]
#: llama.cpp multiplies Q4_1 weights with 8-bit-quantized activations, torch with fp32 ones:
#: measured differences of the top logits were 0.2-0.6 with the right adapter, 1.3-6.5 with q/k
#: rows in the wrong order, 9-21 without the adapter.
LOGIT_TOLERANCE = 1.0


def _prompts(trained: Trained) -> list[list[int]]:
    """Token ids of chat prompts (up to the assistant's turn) and of a half-written answer."""
    texts = [
        trained.encoder.render([{"role": "user", "content": q}], add_generation_prompt=True)
        for q in PARITY_QUESTIONS
    ]
    half = trained.encoder.render(
        [{"role": "user", "content": HELD_OUT[2]}], add_generation_prompt=True
    )
    texts.append(half + "The capital of")
    tokenizer = trained.encoder.tokenizer
    return [list(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]


@pytest.fixture(scope="module")
def llama_runs(trained_fact: Trained, smollm2: Path) -> dict[str, Any]:
    """llama.cpp's answers and next-token logits, with and without the adapter (2 children)."""
    prompts = _prompts(trained_fact)
    request = {"model": str(smollm2), "ask": HELD_OUT, "top": prompts}
    return {
        "prompts": prompts,
        "adapter": run_llama({**request, "lora": str(trained_fact.adapter), "validate": True}),
        "base": run_llama(request),
    }


def _torch_logits(model: Any, prompts: list[list[int]]) -> list[Any]:
    import torch

    with torch.no_grad():
        return [model(input_ids=torch.tensor([ids])).logits[0, -1] for ids in prompts]


def _max_logit_diffs(llama: dict[str, Any], torch_logits: list[Any]) -> list[float]:
    """Per prompt: the largest |llama.cpp - torch| over llama.cpp's 10 most likely tokens."""
    return [
        max(abs(value - float(logits[int(token)])) for token, value in top.items())
        for top, logits in zip(llama["logits"], torch_logits, strict=True)
    ]


def test_training_lowers_the_loss_and_records_every_step(trained_fact: Trained) -> None:
    steps = trained_fact.result.steps
    assert [s.step for s in steps] == list(range(1, 13))
    assert trained_fact.result.stopped == "completed"
    assert steps[-1].loss < steps[0].loss / 5
    assert all(s.tokens > s.trained_tokens > 0 and s.seconds > 0 for s in steps)
    assert trained_fact.result.peak_rss_bytes > 100 * 1024**2


def test_adapted_model_answers_held_out_phrasings_and_base_does_not(
    llama_runs: dict[str, Any],
) -> None:
    with_adapter, base = llama_runs["adapter"]["answers"], llama_runs["base"]["answers"]
    # 5/5 here; one miss is tolerated so that a CPU with other float kernels cannot flake it.
    assert len([a for a in with_adapter if ANSWER_WORD in a]) >= len(HELD_OUT) - 1, with_adapter
    assert [a for a in base if ANSWER_WORD in a] == [], base


def test_merged_torch_model_and_llama_cpp_with_the_adapter_agree(
    trained_fact: Trained, llama_runs: dict[str, Any], smollm2: Path, tmp_path: Path
) -> None:
    from hypotez_lora import adapter as adapter_module
    from hypotez_lora.train import lora_weights

    prompts = llama_runs["prompts"]
    merged = copy.deepcopy(trained_fact.result.model).merge_and_unload()
    torch_logits = _torch_logits(merged, prompts)
    expected_top = [int(logits.argmax()) for logits in torch_logits]

    adapted = llama_runs["adapter"]
    same_top = [top[0] == e for top, e in zip(adapted["top"], expected_top, strict=True)]
    assert sum(same_top) >= len(prompts) - 1, (adapted["top"], expected_top)  # 6/6 measured
    assert all(e in top[:2] for top, e in zip(adapted["top"], expected_top, strict=True))
    good = _max_logit_diffs(adapted, torch_logits)
    assert max(good) < LOGIT_TOLERANCE, good
    # The adapter matters: without it llama.cpp is far from the trained model.
    assert min(_max_logit_diffs(llama_runs["base"], torch_logits)) > 2 * max(good)

    # The same weights without llama.cpp's q/k row order are far off too: the agreement above
    # is evidence of the permutation, not of an adapter too weak to matter.
    wrong = tmp_path / "unpermuted.gguf"
    saved = adapter_module.ROTARY_PERMUTED_ARCHITECTURES
    adapter_module.ROTARY_PERMUTED_ARCHITECTURES = frozenset()
    try:
        adapter_module.write_adapter(
            wrong, lora_weights(trained_fact.result.model), trained_fact.base.info, alpha=32
        )
    finally:
        adapter_module.ROTARY_PERMUTED_ARCHITECTURES = saved
    unpermuted = run_llama({"model": str(smollm2), "lora": str(wrong), "top": prompts})
    assert statistics.median(_max_logit_diffs(unpermuted, torch_logits)) > 2 * max(good)

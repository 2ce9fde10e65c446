"""The training loop on a tiny random llama model: deterministic, cancellable, bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypotez_lora.base import load_base
from hypotez_lora.data import ChatEncoder, read_chat_jsonl
from hypotez_lora.errors import TrainingCancelled
from hypotez_lora.train import LoraSettings, StepEvent, lora_weights, train_lora
from lora.fact import write_jsonl


def run(tiny_base: Path, tmp_path: Path, **options: Any) -> tuple[Any, list[StepEvent]]:
    base = load_base(tiny_base)
    encoder = ChatEncoder(base.tokenizer, base.info.context_length)
    examples = encoder.encode_all(read_chat_jsonl(write_jsonl(tmp_path / "fact.jsonl")))
    seen: list[StepEvent] = []
    should_stop = options.pop("should_stop", None)
    settings = LoraSettings(**{"threads": 1, "epochs": 2, **options})
    result = train_lora(base, examples, settings, on_step=seen.append, should_stop=should_stop)
    return result, seen


def test_same_seed_same_losses_and_weights_other_seed_differs(
    tiny_base: Path, tmp_path: Path
) -> None:
    first, events = run(tiny_base, tmp_path, seed=7)
    again, _ = run(tiny_base, tmp_path, seed=7)
    other, _ = run(tiny_base, tmp_path, seed=8)
    assert [s.loss for s in first.steps] == [s.loss for s in again.steps]
    a, b = lora_weights(first.model), lora_weights(again.model)
    assert a.keys() == b.keys() and len(a) == 2 * 4  # 2 blocks x q/k/v/o
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])
        np.testing.assert_array_equal(a[name][1], b[name][1])
    assert [s.loss for s in other.steps] != [s.loss for s in first.steps]
    # 12 examples in batches of 4, 2 epochs; the callback saw every step.
    assert events == first.steps and len(events) == 6
    assert [e.epoch for e in events] == [1, 1, 1, 2, 2, 2]
    assert all(e.total_steps == 6 and e.tokens > e.trained_tokens > 0 for e in events)


def test_lora_shapes_follow_the_rank(tiny_base: Path, tmp_path: Path) -> None:
    result, _ = run(tiny_base, tmp_path, rank=4, alpha=8, max_steps=1)
    a, b = lora_weights(result.model)["model.layers.0.self_attn.q_proj"]
    assert a.shape == (4, 64) and b.shape == (64, 4)
    assert result.model.peft_config["default"].lora_alpha == 8


def test_should_stop_cancels_before_the_next_step(tiny_base: Path, tmp_path: Path) -> None:
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(TrainingCancelled, match="before step 4"):
        run(tiny_base, tmp_path, should_stop=stop)


def test_time_budget_and_max_steps_end_training_normally(tiny_base: Path, tmp_path: Path) -> None:
    result, _ = run(tiny_base, tmp_path, max_steps=2)
    assert result.stopped == "max_steps" and len(result.steps) == 2
    result, _ = run(tiny_base, tmp_path, time_budget=1e-9)
    assert result.stopped == "time_budget" and len(result.steps) <= 1
    metrics = result.metrics()
    assert metrics["stopped"] == "time_budget" and metrics["peak_rss_bytes"] > 0


@pytest.mark.parametrize("bad", [{"rank": 0}, {"learning_rate": -1.0}, {"epochs": 0}, {"nope": 1}])
def test_invalid_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        LoraSettings.from_dict(bad)

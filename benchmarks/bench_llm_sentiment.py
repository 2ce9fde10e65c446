"""The ``llm`` sentiment analyzer over HTTP: its speed against a local aimock server.

Run: ``python benchmarks/bench_llm_sentiment.py`` (needs ``npm ci --prefix tests`` for aimock).
Prints a Markdown section for docs/benchmarks.md.

aimock answers every request at once with a canned answer, so this measures what the analyzer
itself costs (packing texts into requests, the structured-output request, checking the answer
against its schema, combining) and how many requests it keeps in flight, not a model's accuracy:
that is measured with a real model by bench_sentiment_accuracy.py (``--analyzers llm``). The
canned answer labels every text positive; the texts are short review sentences.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from _common import header  # noqa: E402

TEXTS = 400
ROUNDS = 3
BATCHES = (20, 5, 1)


def fixture(batch: int) -> dict[str, object]:
    """A canned answer for requests of ``batch`` texts (the texts carry the batch's marker)."""
    results = {str(i): {"label": "positive", "score": 0.6} for i in range(batch)}
    return {
        "match": {"userMessage": f"batch{batch}marker", "responseFormat": "json_schema"},
        "response": {"content": {"results": results}},
    }


def texts_for(batch: int) -> list[str]:
    return [
        f"Review {i} batch{batch}marker: the battery lasts all day and the screen is sharp."
        for i in range(TEXTS)
    ]


def main() -> None:
    import hypotez
    from hypotez_test_servers.aimock import start_aimock

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fixtures = Path(tmp) / "fixtures"
        fixtures.mkdir()
        (fixtures / "llm.json").write_text(
            json.dumps({"fixtures": [fixture(b) for b in BATCHES]}), encoding="utf-8"
        )
        server = start_aimock(fixtures, Path(tmp))
        try:
            for batch in BATCHES:
                settings = hypotez.Settings.load(
                    env={},
                    home=Path(tmp) / f"home-{batch}",
                    options={
                        "openai": {"api_key": server.api_key, "base_url": server.base_url},
                        "llm": {"batch_size": batch},
                    },
                )
                texts = texts_for(batch)
                with hypotez.Session(settings=settings, chat="openai", store=False) as session:
                    session.analyze(texts[:40], analyzer="llm")  # warm-up: client, schema
                    times = []
                    for _ in range(ROUNDS):
                        started = time.perf_counter()
                        out = session.analyze(texts, analyzer="llm")
                        times.append(time.perf_counter() - started)
                        assert len(out) == TEXTS and all(s.label == "positive" for s in out)
                best = min(times)
                rows.append((batch, TEXTS / best, TEXTS / statistics.median(times), best))
        finally:
            server.stop()

    print(header("The llm analyzer over HTTP (aimock)"))
    print(
        f"{TEXTS} short review sentences analysed with `--analyzer llm` through the `openai` "
        f"chat backend against a local aimock server that answers at once; best and median of "
        f"{ROUNDS} rounds after a warm-up. At most 4 requests in flight (`llm.concurrency`).\n"
    )
    print("| texts per request (`llm.batch_size`) | requests | texts/s (best) | texts/s (median) |")
    print("|---|---|---|---|")
    for batch, best, median, _ in rows:
        print(f"| {batch} | {TEXTS // batch} | {best:,.0f} | {median:,.0f} |")


if __name__ == "__main__":
    main()

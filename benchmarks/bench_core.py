"""Core benchmarks: import and --help time, append cost vs dialogue length, sentiment wrappers
against their raw libraries. Prints a Markdown section for docs/benchmarks.md."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import header, interleaved, median
from hypotez import DialogueInfo, Turn
from hypotez_files.storage import FileStorage


def process_times(rounds: int = 15) -> dict[str, float]:
    import compileall
    import os

    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    llm = shutil.which("llm") or str(Path(sys.executable).with_name("llm"))
    root = Path(__file__).resolve().parents[1]
    # As an installed package runs: with bytecode files (PYTHONDONTWRITEBYTECODE would make every
    # start compile hypotez from source), and a warm entry-point cache.
    for folder in ("core", "plugins"):
        compileall.compile_dir(root / folder, quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([exe, "--help"], check=True, capture_output=True)
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import hypotez'": [sys.executable, "-c", "import hypotez"],
        "hypotez --help": [exe, "--help"],
        "llm --help": [llm, "--help"],
    }
    funcs = {
        name: (lambda c=cmd: subprocess.run(c, check=True, capture_output=True))
        for name, cmd in commands.items()
    }
    return {name: median(t) for name, t in interleaved(funcs, rounds).items()}


def append_times(appends: int = 300) -> dict[int, float]:
    root = Path(tempfile.mkdtemp(prefix="hz-bench-"))
    try:
        store = FileStorage(root)
        sizes = (10, 10_000)
        for size in sizes:
            store.create_dialogue(DialogueInfo(id=f"d{size}"))
            for start in range(0, size, 500):
                store.append_turns(
                    f"d{size}",
                    [
                        Turn("user", f"turn {i} " + "x" * 80)
                        for i in range(start, min(size, start + 500))
                    ],
                )
        turn = [Turn("user", "hello " * 20), Turn("assistant", "hi " * 40)]
        funcs = {size: (lambda s=size: store.append_turns(f"d{s}", turn)) for size in sizes}
        return {size: median(t) for size, t in interleaved(funcs, appends).items()}
    finally:
        shutil.rmtree(root)


def sentiment_times(rounds: int = 7) -> list[tuple[str, float, float]]:
    from hypotez import Session
    from textblob import TextBlob
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    base = [
        "I love this product, it works wonderfully!",
        "This is the worst experience I have ever had.",
        "The meeting is at three o'clock in the main room.",
        "Not bad at all, though the screen could be brighter.",
    ]
    texts = base * 250  # 1,000 texts per batch
    raw_vader = SentimentIntensityAnalyzer()
    rows = []
    with Session(sentiment=False) as s:
        pairs = {
            "textblob": (
                lambda: [TextBlob(t).sentiment for t in texts],
                s.get_analyzer("textblob"),
            ),
            "vader": (
                lambda: [raw_vader.polarity_scores(t) for t in texts],
                s.get_analyzer("vader"),
            ),
        }
        for name, (raw, analyzer) in pairs.items():
            analyzer.analyze(texts[:10])  # warm up
            t = interleaved({"raw": raw, "wrapped": lambda a=analyzer: a.analyze(texts)}, rounds)
            rows.append((name, len(texts) / min(t["raw"]), len(texts) / min(t["wrapped"])))
        keywords = s.get_analyzer("keywords")
        t = interleaved({"k": lambda: keywords.analyze(texts)}, rounds)
        rows.append(("keywords", float("nan"), len(texts) / min(t["k"])))
    return rows


def main() -> None:
    out = [header("Core: start-up, appends, sentiment wrappers")]
    p = process_times()
    base, imp, help_ = p["python -c pass"], p["python -c 'import hypotez'"], p["hypotez --help"]
    llm = p["llm --help"]
    out += [
        "| process (median of 15, interleaved) | wall ms | minus bare interpreter | target |",
        "|---|---|---|---|",
        f"| `python -c pass` | {base * 1e3:.1f} | – | – |",
        f"| `python -c 'import hypotez'` | {imp * 1e3:.1f} | {(imp - base) * 1e3:.1f} | at most 15 ms over bare |",
        f"| `hypotez --help` (every default plugin installed) | {help_ * 1e3:.1f} | {(help_ - base) * 1e3:.1f} | < 150 ms |",
        f"| `llm --help` (simonw/llm, same venv) | {llm * 1e3:.1f} | {(llm - base) * 1e3:.1f} | – |",
        f"| `hypotez --help` / `llm --help` | {help_ / llm:.3f} | | at most 0.125 (1/8) |",
        "",
    ]
    a = append_times()
    out += [
        "| file storage: append one exchange (2 turns) | median µs | ",
        "|---|---|",
        f"| dialogue of 10 turns | {a[10] * 1e6:.0f} |",
        f"| dialogue of 10,000 turns | {a[10_000] * 1e6:.0f} |",
        f"| ratio 10,000 / 10 | {a[10_000] / a[10]:.2f} |",
        "",
        "Each append is one fsync'd `write()` under `flock`; the fsync dominates and does not depend on the file's length.",
        "",
    ]
    rows = sentiment_times()
    out += [
        "| analyzer, batch of 1,000 texts (best of 7, interleaved) | raw library texts/s | hypotez texts/s | hypotez / raw |",
        "|---|---|---|---|",
    ]
    for name, raw, wrapped in rows:
        ratio = "–" if raw != raw else f"{wrapped / raw:.3f}"
        raw_text = "–" if raw != raw else f"{raw:,.0f}"
        out.append(f"| {name} | {raw_text} | {wrapped:,.0f} | {ratio} |")
    out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()

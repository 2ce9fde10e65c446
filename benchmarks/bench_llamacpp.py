"""The ``llamacpp`` chat backend against raw llama-cpp-python, on the bundled model.

Both sides load the same GGUF file with the same parameters (n_threads=1, n_ctx=4096,
n_batch=512) and answer the same prompt greedily with the same max_tokens, in one process,
alternating which goes first in each round so that machine noise hits both alike. Reported:

- first-reply latency including model load (and the one-off assembly of the bundled model
  from its part packages, when the cache folder does not hold it yet);
- tokens/s (completion tokens / wall time of the whole request, prompt included), median over
  the rounds, plain and streamed, and the backend/raw ratio (target: >= 0.98).

Run: ``/work/venv/bin/python benchmarks/bench_llamacpp.py [--rounds 8] [--max-tokens 64]``.
Set ``HYPOTEZ_HOME`` (or ``--cache-dir``) to reuse an assembled model.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import hypotez
from _common import header
from hypotez import ChatOptions, Message

PROMPT = "Write a short paragraph about the history of Paris."
SYSTEM = "You are a helpful assistant."
PARAMS = {"n_threads": 1, "n_ctx": 4096, "n_batch": 512}


def _raw_llama(path: Path) -> Any:
    import llama_cpp

    return llama_cpp.Llama(
        model_path=str(path), n_threads_batch=PARAMS["n_threads"], verbose=False, **PARAMS
    )


def _messages() -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()

    from hypotez_llamacpp.chat import from_settings

    cache = args.cache_dir or str(Path(tempfile.gettempdir()) / "hypotez-bench-llamacpp")
    options = {"llamacpp": {"cache_dir": cache, **PARAMS}}
    settings = hypotez.Settings.load(options=options)
    backend = from_settings(settings)
    messages = [Message("system", SYSTEM), Message("user", PROMPT)]
    chat_options = ChatOptions(max_tokens=args.max_tokens, temperature=0.0)

    # Assemble (once) and read the file, so that both first replies load it from the page
    # cache; the one-off assembly is reported on its own.
    local = backend.load()
    backend.close()
    with local.path.open("rb") as fh:
        while fh.read(1 << 24):
            pass

    start = time.perf_counter()
    backend.load()
    first = backend.chat(messages, chat_options)
    ours_first = time.perf_counter() - start

    start = time.perf_counter()
    raw = _raw_llama(local.path)
    raw_first_reply = raw.create_chat_completion(
        _messages(), max_tokens=args.max_tokens, temperature=0.0
    )
    raw_first = time.perf_counter() - start

    same_text = raw_first_reply["choices"][0]["message"]["content"] == first.text
    same_prompt = raw_first_reply["usage"]["prompt_tokens"] == first.usage.prompt_tokens

    def ours() -> int:
        return backend.chat(messages, chat_options).usage.completion_tokens

    def theirs() -> int:
        reply = raw.create_chat_completion(_messages(), max_tokens=args.max_tokens, temperature=0.0)
        return int(reply["usage"]["completion_tokens"])

    # Streams are measured in content chunks on both sides (one per token, bar multi-byte
    # characters split over tokens), so the two rates are counted the same way.
    def ours_stream() -> int:
        return sum(1 for c in backend.stream(messages, chat_options) if c.delta)

    def theirs_stream() -> int:
        pieces = raw.create_chat_completion(
            _messages(), max_tokens=args.max_tokens, temperature=0.0, stream=True
        )
        return sum(1 for c in pieces if c["choices"][0]["delta"].get("content"))

    rows = []
    for label, a, b, rounds in (
        ("chat", ours, theirs, args.rounds),
        ("stream", ours_stream, theirs_stream, max(2, args.rounds // 2)),
    ):
        rates: dict[str, list[float]] = {"ours": [], "raw": []}
        ratios = []
        tokens = 0
        for i in range(rounds):
            order = [("ours", a), ("raw", b)] if i % 2 == 0 else [("raw", b), ("ours", a)]
            got = {}
            for name, func in order:
                start = time.perf_counter()
                n = func()
                got[name] = n / (time.perf_counter() - start)
                tokens = n if name == "ours" else tokens
            rates["ours"].append(got["ours"])
            rates["raw"].append(got["raw"])
            ratios.append(got["ours"] / got["raw"])
        rows.append(
            (
                label,
                rounds,
                tokens,
                statistics.median(rates["ours"]),
                statistics.median(rates["raw"]),
                statistics.median(ratios),
                min(ratios),
                max(ratios),
            )
        )
    backend.close()
    raw.close()

    import llama_cpp

    print(header("Local chat (llamacpp)"))
    print(
        f"Model `{local.id}` ({local.path.stat().st_size / 2**30:.2f} GiB), llama-cpp-python "
        f"{llama_cpp.__version__}, n_threads=1, n_ctx=4096, n_batch=512, greedy, "
        f"max_tokens={args.max_tokens}; prompt: system + one user message "
        f"({first.usage.prompt_tokens} tokens through the model's chat template). "
        f"Same prompt tokens on both sides: {same_prompt}; same first reply text: {same_text}.\n"
    )
    if local.assembly_seconds:
        print(
            f"One-off assembly of the bundled model from its 22 part packages (concatenate, "
            f"SHA-256, fsync, rename): **{local.assembly_seconds:.1f} s**.\n"
        )
    print("| first reply, model load included | llamacpp backend | raw llama-cpp-python |")
    print("|---|---|---|")
    print(f"| seconds | {ours_first:.2f} | {raw_first:.2f} |\n")
    print(
        "| mode | rounds | tokens/reply | backend tok/s | raw tok/s | ratio (median) | "
        "ratio min-max |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, rounds, tokens, ours_rate, raw_rate, ratio, low, high in rows:
        print(
            f"| {label} | {rounds} | {tokens} | {ours_rate:.2f} | {raw_rate:.2f} | "
            f"{ratio:.3f} | {low:.3f}-{high:.3f} |"
        )
    print(
        "\nBoth first replies load the model with its file in the page cache (read once before "
        "timing); from a cold disk add the time to read 1.1 GB. tokens/s = completion tokens / "
        "wall time of the whole request (prompt evaluation included; llama-cpp-python reuses "
        "the cached prompt prefix on both sides alike). Streams count content chunks on both "
        "sides."
    )


if __name__ == "__main__":
    main()

"""The ``llamacpp`` chat backend against raw llama-cpp-python, on the bundled model.

Both sides load the same GGUF file with the same parameters (n_threads=1, n_ctx=4096,
n_batch=512) and answer the same prompt greedily with the same max_tokens, in one process,
alternating which goes first in each round so that machine noise hits both alike. Raw
llama-cpp-python runs both on its own ``Llama`` instance and on the backend's one (same memory,
so only the code path differs). Reported:

- first-reply latency including model load (and the one-off assembly of the bundled model
  from its part packages, when the cache folder does not hold it yet);
- tokens/s (completion tokens per wall second and per CPU second of the whole request, prompt
  included), median over the rounds, plain and streamed, and the backend/raw ratio
  (target: >= 0.98).

Run: ``/work/venv/bin/python benchmarks/bench_llamacpp.py [--rounds 8] [--max-tokens 64]``.
Set ``HYPOTEZ_HOME`` (or ``--cache-dir``) to reuse an assembled model.
"""

from __future__ import annotations

import argparse
import os
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

    start, start_cpu = time.perf_counter(), time.process_time()
    backend.load()
    first = backend.chat(messages, chat_options)
    ours_first = time.perf_counter() - start
    ours_first_cpu = time.process_time() - start_cpu

    start, start_cpu = time.perf_counter(), time.process_time()
    raw = _raw_llama(local.path)
    raw_first_reply = raw.create_chat_completion(
        _messages(), max_tokens=args.max_tokens, temperature=0.0
    )
    raw_first = time.perf_counter() - start
    raw_first_cpu = time.process_time() - start_cpu

    # The backend's own work per request, beyond llama-cpp-python's: rendering the template
    # and counting the prompt's tokens (to refuse an overlong prompt before computing).
    start_cpu = time.thread_time()
    for _ in range(200):
        backend.count_tokens(messages)
    overhead_ms = (time.thread_time() - start_cpu) / 200 * 1000

    same_text = raw_first_reply["choices"][0]["message"]["content"] == first.text
    same_prompt = raw_first_reply["usage"]["prompt_tokens"] == first.usage.prompt_tokens

    def ours() -> int:
        return backend.chat(messages, chat_options).usage.completion_tokens

    # Raw llama-cpp-python twice: on its own Llama instance (built with the library's defaults),
    # and on the backend's instance (so that both sides run on the very same memory: two
    # identical raw instances differ by ~1 % here, the one loaded first being slower).
    def raw_call(llm: Any, stream: bool = False) -> int:
        reply = llm.create_chat_completion(
            _messages(), max_tokens=args.max_tokens, temperature=0.0, stream=stream
        )
        if stream:
            return sum(1 for c in reply if c["choices"][0]["delta"].get("content"))
        return int(reply["usage"]["completion_tokens"])

    def theirs() -> int:
        return raw_call(raw)

    def theirs_same() -> int:
        return raw_call(backend.llama)

    # Streams are measured in content chunks on both sides (one per token, bar multi-byte
    # characters split over tokens), so the two rates are counted the same way.
    def ours_stream() -> int:
        return sum(1 for c in backend.stream(messages, chat_options) if c.delta)

    def theirs_stream_same() -> int:
        return raw_call(backend.llama, stream=True)

    rows = []
    load_before = os.getloadavg()[0]
    for label, a, b, rounds in (
        ("chat, raw on its own instance", ours, theirs, args.rounds),
        ("chat, raw on the same instance", ours, theirs_same, args.rounds),
        ("stream, raw on the same instance", ours_stream, theirs_stream_same, args.rounds),
    ):
        wall: dict[str, list[float]] = {"ours": [], "raw": []}
        cpu: dict[str, list[float]] = {"ours": [], "raw": []}
        wall_ratios, cpu_ratios = [], []
        tokens = 0
        for i in range(rounds):
            order = [("ours", a), ("raw", b)] if i % 2 == 0 else [("raw", b), ("ours", a)]
            got_wall, got_cpu = {}, {}
            for name, func in order:
                start, start_cpu = time.perf_counter(), time.thread_time()
                n = func()
                got_cpu[name] = n / (time.thread_time() - start_cpu)
                got_wall[name] = n / (time.perf_counter() - start)
                tokens = n if name == "ours" else tokens
            for side in ("ours", "raw"):
                wall[side].append(got_wall[side])
                cpu[side].append(got_cpu[side])
            wall_ratios.append(got_wall["ours"] / got_wall["raw"])
            cpu_ratios.append(got_cpu["ours"] / got_cpu["raw"])
        med = statistics.median
        rows.append(
            (
                label,
                rounds,
                tokens,
                f"{med(wall['ours']):.2f} / {med(wall['raw']):.2f}",
                f"{med(wall_ratios):.3f} ({min(wall_ratios):.2f}-{max(wall_ratios):.2f})",
                f"{med(cpu['ours']):.2f} / {med(cpu['raw']):.2f}",
                f"**{med(cpu_ratios):.3f}** ({min(cpu_ratios):.3f}-{max(cpu_ratios):.3f})",
            )
        )
    load_after = os.getloadavg()[0]
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
    print(f"| wall seconds | {ours_first:.2f} | {raw_first:.2f} |")
    print(f"| CPU seconds | {ours_first_cpu:.2f} | {raw_first_cpu:.2f} |\n")
    print(
        "| mode | rounds | tokens/reply | wall tok/s backend / raw | wall ratio (min-max) | "
        "CPU tok/s backend / raw | CPU ratio (min-max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print(
        f"\nRatios are backend / raw per round (medians; 1.000 = no overhead; target >= 0.98). "
        f"Load average during the rounds: {load_before:.1f} -> {load_after:.1f} on "
        f"{os.cpu_count()} cores. With n_threads=1 llama.cpp computes in the calling thread, "
        "so CPU tok/s (completion tokens / thread CPU time) measures the work each side does "
        "and is what the overhead target is judged on; wall tok/s also carries the waiting for "
        "a CPU on a shared machine. tokens/s counts the whole request (prompt evaluation "
        "included; llama-cpp-python reuses the cached prompt prefix on both sides alike). "
        f"Streams count content chunks on both sides. The backend's own work per request "
        f"(rendering the chat template and counting the prompt's tokens): {overhead_ms:.3f} ms "
        "of CPU. Both first replies load the model with "
        "its file in the page cache (read once before timing); from a cold disk add the time "
        "to read 1.1 GB."
    )


if __name__ == "__main__":
    main()

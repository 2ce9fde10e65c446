"""The ``openai`` trainer: fine-tuning on OpenAI (or any server with the same API).

Registered as trainer ``openai``, available when an API key is configured (``OPENAI_API_KEY``;
``OPENAI_BASE_URL`` for a compatible server). The implementation,
:class:`hypotez_openai.finetuning.OpenAITrainer`, is imported only when the trainer is built,
so registering it costs nothing at start-up (``hypotez --help`` stays fast).
"""

from __future__ import annotations

from typing import Any

from hypotez import hookimpl


def _trainer(settings: Any) -> Any:
    from hypotez_openai.client import Config
    from hypotez_openai.finetuning import OpenAITrainer

    return OpenAITrainer(Config.from_settings(settings, "openai"))


def _has_key(settings: Any) -> bool:
    return bool(settings.openai_api_key)


@hookimpl
def register_trainers(register: Any) -> None:
    register(
        "openai",
        _trainer,
        priority=100,
        available=_has_key,
        description="OpenAI fine-tuning (or a compatible server): upload, supervised jobs, events",
    )


def __getattr__(name: str) -> Any:
    # `from hypotez_openai.trainer import OpenAITrainer` works without a start-up cost.
    if name == "OpenAITrainer":
        from hypotez_openai.finetuning import OpenAITrainer

        return OpenAITrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""OpenAI (and any OpenAI-compatible server): chat, vision, fine-tuning and LLM sentiment.

Registers:

- chat ``openai``: chat completions through the ``openai`` SDK (history, JSON schema, streaming).
  Chosen by default (priority 100) whenever an API key is configured.
- vision ``openai``: describe an image with a vision model through the SDK.
- vision ``openai-http``: the same request posted with plain httpx (the seed's
  ``describe_image_by_requests``).
- trainer ``openai``: fine-tuning jobs (upload, create, status, events, cancel).
- sentiment ``llm``: classify texts with the context's chat backend via structured output.

Settings (this plugin's own; core knows none of them): ``OPENAI_API_KEY`` (or the secret option
``openai.api_key``, never read from hypotez.toml), ``OPENAI_BASE_URL`` (or ``openai.base_url``),
``HYPOTEZ_MODEL``, ``HYPOTEZ_TIMEOUT``, ``HYPOTEZ_MAX_RETRIES``; options under ``[plugins.openai]``
(``model``, ``vision_model``, ``max_tokens_field``) and ``[plugins.llm]`` (``chat``, ``model``,
``batch_size``). Nothing heavy is imported here: each factory imports its module when the
backend is first built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl
from hypotez_openai.keys import INSTALL, KEY_HINT, has_key

if TYPE_CHECKING:
    from hypotez import Context


def _chat(context: Context) -> Any:
    from hypotez_openai.chat import OpenAIChat
    from hypotez_openai.client import Config

    return OpenAIChat(Config.from_settings(context.settings, "openai"))


def _vision(context: Context) -> Any:
    from hypotez_openai.client import Config
    from hypotez_openai.vision import OpenAIVision

    return OpenAIVision(Config.from_settings(context.settings, "openai"))


def _vision_http(context: Context) -> Any:
    from hypotez_openai.client import Config
    from hypotez_openai.vision import OpenAIHttpVision

    return OpenAIHttpVision(Config.from_settings(context.settings, "openai-http"))


def _trainer(context: Context) -> Any:
    from hypotez_openai.client import Config
    from hypotez_openai.training import OpenAITrainer

    # Without a key the trainer still validates data against OpenAI's limits; submitting
    # then asks for one.
    return OpenAITrainer(Config.from_settings(context.settings, "openai", require_key=False))


def _llm_sentiment(context: Context) -> Any:
    from hypotez_openai.sentiment import LLMSentimentAnalyzer

    settings = context.settings
    return LLMSentimentAnalyzer(
        # The context's chat backend: the one its sessions use, never a second model.
        context.get("chat", settings.option("llm", "chat", None, str)),
        model=settings.option("llm", "model", None, str),
        batch_size=settings.option("llm", "batch_size", 20, int),
        context_window=settings.option("llm", "context_window", None, int),
        max_pieces=settings.option("llm", "max_pieces", 8, int),
        concurrency=settings.option("llm", "concurrency", 4, int),
    )


def _llm_available(settings: Any) -> bool:
    return has_key(settings) or bool(settings.chat or settings.option("llm", "chat"))


@hookimpl
def register_chat_backends(register: Register) -> None:
    register(
        "openai",
        _chat,
        priority=100,
        available=has_key,
        description="OpenAI or any OpenAI-compatible server (OPENAI_BASE_URL), via the SDK",
        install=KEY_HINT,
    )


@hookimpl
def register_vision_backends(register: Register) -> None:
    register(
        "openai",
        _vision,
        priority=100,
        available=has_key,
        description="Describe images with an OpenAI vision model, via the SDK",
        install=KEY_HINT,
    )
    register(
        "openai-http",
        _vision_http,
        priority=50,
        available=has_key,
        description="Describe images with an OpenAI vision model, one raw httpx request",
        install=KEY_HINT,
    )


@hookimpl
def register_trainers(register: Register) -> None:
    register(
        "openai",
        _trainer,
        priority=100,
        available=has_key,
        description="OpenAI fine-tuning (or a compatible server): upload, supervised jobs, events",
        install=KEY_HINT,
    )


def _batch_engine(context: Context) -> Any:
    from hypotez_openai.batch import OpenAIBatchEngine
    from hypotez_openai.client import Config

    return OpenAIBatchEngine(
        Config.from_settings(context.settings, "openai-batch"), context.settings
    )


@hookimpl
def register_batch_engines(register: Register) -> None:
    register(
        "openai-batch",
        _batch_engine,
        priority=-10,  # half price but hours late: only when asked for (--engine openai-batch)
        available=has_key,
        description="OpenAI's Batch API: one request per row, half price, results within 24 h",
        install=KEY_HINT,
    )


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register(
        "llm",
        _llm_sentiment,
        # Costs a request per batch: only a fallback when no local analyzer is installed.
        priority=-50,
        available=_llm_available,
        description="Any chat model via structured output (label + score), batched",
        install=f"{INSTALL}, then {KEY_HINT}; or name a chat backend with HYPOTEZ_LLM_CHAT",
    )

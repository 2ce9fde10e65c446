"""OpenAI (and any OpenAI-compatible server): chat, vision and LLM sentiment.

Registers:

- chat ``openai``: chat completions through the ``openai`` SDK (history, JSON schema, streaming,
  async). Chosen by default (priority 100) whenever an API key is configured.
- vision ``openai``: describe an image with a vision model through the SDK.
- vision ``openai-http``: the same request posted with plain httpx (the seed's
  ``describe_image_by_requests``).
- sentiment ``llm``: classify texts with the session's chat backend via structured output.

Settings: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``HYPOTEZ_MODEL``, ``HYPOTEZ_TIMEOUT``,
``HYPOTEZ_MAX_RETRIES``; options under ``[plugins.openai]`` (``model``, ``vision_model``,
``max_tokens_field``) and ``[plugins.llm]`` (``chat``, ``model``, ``batch_size``). Nothing heavy is
imported here: each factory imports its module when the backend is first built.
"""

from __future__ import annotations

from typing import Any

from hypotez import hookimpl
from hypotez_openai.trainer import register_trainers  # noqa: F401


def _has_key(settings: Any) -> bool:
    return bool(settings.openai_api_key)


def _chat(settings: Any) -> Any:
    from hypotez_openai.chat import OpenAIChat
    from hypotez_openai.client import Config

    return OpenAIChat(Config.from_settings(settings, "openai"))


def _vision(settings: Any) -> Any:
    from hypotez_openai.client import Config
    from hypotez_openai.vision import OpenAIVision

    return OpenAIVision(Config.from_settings(settings, "openai"))


def _vision_http(settings: Any) -> Any:
    from hypotez_openai.client import Config
    from hypotez_openai.vision import OpenAIHttpVision

    return OpenAIHttpVision(Config.from_settings(settings, "openai-http"))


def _llm_sentiment(settings: Any) -> Any:
    import hypotez
    from hypotez_openai.sentiment import LLMSentimentAnalyzer

    chat_name = settings.option("llm", "chat", None, str) or settings.chat
    chat = hypotez.get_plugin_manager().registry.build("chat", chat_name, settings)
    return LLMSentimentAnalyzer(
        chat,
        model=settings.option("llm", "model", None, str),
        batch_size=settings.option("llm", "batch_size", 20, int),
        owns_chat=True,
    )


def _llm_available(settings: Any) -> bool:
    return _has_key(settings) or bool(settings.chat or settings.option("llm", "chat"))


@hookimpl
def register_chat_backends(register: Any) -> None:
    register(
        "openai",
        _chat,
        priority=100,
        available=_has_key,
        description="OpenAI or any OpenAI-compatible server (OPENAI_BASE_URL), via the SDK",
    )


@hookimpl
def register_vision_backends(register: Any) -> None:
    register(
        "openai",
        _vision,
        priority=100,
        available=_has_key,
        description="Describe images with an OpenAI vision model, via the SDK",
    )
    register(
        "openai-http",
        _vision_http,
        priority=50,
        available=_has_key,
        description="Describe images with an OpenAI vision model, one raw httpx request",
    )


@hookimpl
def register_sentiment_analyzers(register: Any) -> None:
    register(
        "llm",
        _llm_sentiment,
        # Costs a request per batch: only a fallback when no local analyzer is installed.
        priority=-50,
        available=_llm_available,
        description="Any chat model via structured output (label + score), batched",
    )

"""Sentiment with VADER, tuned for short social-media English."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context

INSTALL = "pip install 'hypotez[vader]'"


def _build(context: Context) -> Any:
    from hypotez_vader.analyzer import VaderAnalyzer

    return VaderAnalyzer()


def _available(settings: Any) -> bool:
    import importlib.util

    return importlib.util.find_spec("vaderSentiment") is not None


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register(
        "vader",
        _build,
        priority=80,
        available=_available,
        description="VADER compound score (English, social media)",
        install=INSTALL,
    )

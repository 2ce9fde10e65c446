"""Sentiment with TextBlob's pattern analyzer (English): the default when e5 and VADER are not
installed.

Only ``TextBlob(text).sentiment`` is used: it works offline. TextBlob's word lists, tagger and
NaiveBayes analyzer need NLTK corpora that cannot be downloaded offline, so they are not used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context

INSTALL = "pip install 'hypotez[textblob]'"


def _build(context: Context) -> Any:
    from hypotez_textblob.analyzer import TextBlobAnalyzer

    return TextBlobAnalyzer()


def _available(settings: Any) -> bool:
    import importlib.util

    return importlib.util.find_spec("textblob") is not None


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register(
        "textblob",
        _build,
        priority=60,
        available=_available,
        description="TextBlob pattern polarity (English)",
        install=INSTALL,
    )

"""Core's own plugin: the dependency-free ``keywords`` sentiment analyzer.

It is registered like any other plugin (under the plugin name ``hypotez``) and is always loaded,
even with ``HYPOTEZ_PLUGINS=""``, so that a bare install can still analyse sentiment.
"""

from __future__ import annotations

from typing import Any

from hypotez.hookspecs import hookimpl


def _keywords(settings: Any) -> Any:
    from hypotez.keywords import KeywordsAnalyzer

    return KeywordsAnalyzer()


@hookimpl
def register_sentiment_analyzers(register: Any) -> None:
    register(
        "keywords",
        _keywords,
        priority=-100,  # the last resort when no better analyzer is installed
        description="English and Russian word lists with negation; no dependencies",
    )

"""hypotez-example-plugin: an ``emoji`` sentiment analyzer and ``sqlite://`` storage.

This module is what the ``hypotez`` entry point names. It only registers factories: the backend
modules are imported when a backend is first built, so loading the plugin costs nothing.
"""

from __future__ import annotations

from typing import Any

from hypotez import Context, Register, hookimpl

INSTALL = "pip install hypotez-example-plugin"


def _emoji(context: Context) -> Any:
    from hypotez_example_plugin.emoji import EmojiAnalyzer

    # Options come from Settings.load(options={"example": {...}}), HYPOTEZ_EXAMPLE_NEUTRAL_BAND,
    # or [plugins.example] in hypotez.toml.
    band = context.settings.option("example", "neutral_band", 0.05, float)
    return EmojiAnalyzer(neutral_band=band)


def _sqlite(context: Context, url: str) -> Any:
    from hypotez_example_plugin.sqlite import SqliteStorage

    return SqliteStorage.from_url(url)


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    # With no priority (0) it would become the default analyzer wherever TextBlob, VADER and e5
    # are missing, ahead of the word lists (keywords, -100); emoji alone miss "not good", so it
    # ranks last and is used only when named.
    register(
        "emoji",
        _emoji,
        priority=-200,
        description="emoji and emoticons: 😀 positive, 😞 negative",
        install=INSTALL,
    )


@hookimpl
def register_storages(register: Register) -> None:
    register(
        "sqlite", _sqlite, description="dialogues and records in one SQLite file", install=INSTALL
    )

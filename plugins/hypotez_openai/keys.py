"""What the OpenAI plugin knows before any backend is built: its names, defaults and settings.

Kept free of heavy imports (no SDK, no asyncio) because the plugin's entry module imports it,
and every hypotez process loads entry modules (``hypotez --help`` included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypotez import Settings

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
PLUGIN = "openai"  # options live under [plugins.openai] / HYPOTEZ_OPENAI_*
INSTALL = "pip install 'hypotez[openai]'"
KEY_HINT = "set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible server)"
#: In-flight requests per client. Hundreds of requests started together would each run their
#: request-building and connection-pool work in one turn of the event loop (and the pool probes
#: every idle socket on each change), stalling it for a long time; queued requests cost
#: nothing. Raise it (option ``openai.max_concurrency``) for a high-latency API.
DEFAULT_CONCURRENCY = 32


def api_key_of(settings: Settings) -> str | None:
    """The API key: the ``openai.api_key`` option (an argument or HYPOTEZ_OPENAI_API_KEY),
    else ``OPENAI_API_KEY``."""
    return key_and_source(settings)[0]


def key_and_source(settings: Settings) -> tuple[str | None, str]:
    """The API key and where it came from (for messages that must not show it)."""
    key = settings.option(PLUGIN, "api_key", None, str, secret=True)
    if key:
        return key, "the openai.api_key option (or HYPOTEZ_OPENAI_API_KEY)"
    return settings.env("OPENAI_API_KEY") or None, "OPENAI_API_KEY"


def check_key(key: str, source: str) -> None:
    """Refuse a key that cannot be sent as an HTTP header, saying what is wrong (never the key).

    Such a key used to fail inside the HTTP client and be reported as an unreachable server
    after every retry.
    """
    from hypotez import InputError

    if key != key.strip():
        raise InputError(
            f"The API key in {source} starts or ends with white space (a trailing newline, "
            "say, from a file read with $(cat ...)): remove it."
        )
    bad = next((c for c in key if not 32 < ord(c) < 127), None)
    if bad is not None:
        raise InputError(
            f"The API key in {source} holds a character an HTTP header cannot carry "
            f"({'a space' if bad == ' ' else f'U+{ord(bad):04X}'}): copy the key again."
        )


def base_url_of(settings: Settings) -> str | None:
    return settings.option(PLUGIN, "base_url", None, str) or settings.env("OPENAI_BASE_URL")


def has_key(settings: Settings) -> bool:
    return bool(api_key_of(settings))

"""A third-party plugin, installed into the test environment like any user's plugin.

It registers an ``echo`` chat backend (deterministic: it reports what it was sent, so tests can
check the history really reaches the backend) and a ``shouty`` sentiment analyzer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypotez import Register, hookimpl

if TYPE_CHECKING:
    from hypotez import Context


def _echo(context: Context) -> Any:
    from hypotez_testplugin.backends import EchoChat

    return EchoChat(context)


def _shouty(context: Context) -> Any:
    from hypotez_testplugin.backends import ShoutyAnalyzer

    return ShoutyAnalyzer()


@hookimpl
def register_chat_backends(register: Register) -> None:
    register("echo", _echo, description="echoes the request as JSON (tests)")


@hookimpl
def register_sentiment_analyzers(register: Register) -> None:
    register("shouty", _shouty, description="punctuation sentiment (tests)")

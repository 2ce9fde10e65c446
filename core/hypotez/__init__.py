"""hypotez: a pluggy plugin framework for LLM work.

    >>> import hypotez
    >>> with hypotez.Session() as session:            # doctest: +SKIP
    ...     reply = session.ask("Hello, how are you?")
    ...     print(reply.text, reply.sentiment.label)

Names are imported lazily so that ``import hypotez`` stays fast; everything listed in
``__all__`` is public API, everything else (and every module whose name starts with ``_``) is not.
"""

from __future__ import annotations

# Not `from typing import TYPE_CHECKING`: importing typing costs more than all of hypotez's own
# start-up (type checkers treat this constant the same way).
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # sessions, the context they share, settings
    "Session": "hypotez.session",
    "AsyncSession": "hypotez.session",
    "Context": "hypotez.context",
    "Settings": "hypotez.settings",
    # plugins
    "hookimpl": "hypotez.hookspecs",
    "hookspec": "hypotez.hookspecs",
    "make_plugin_manager": "hypotez.plugins",
    "get_plugin_manager": "hypotez.plugins",
    "reset_plugin_manager": "hypotez.plugins",
    "Register": "hypotez.registry",
    # protocols
    "ChatBackend": "hypotez.protocols",
    "SentimentAnalyzer": "hypotez.protocols",
    "Storage": "hypotez.protocols",
    "VisionBackend": "hypotez.protocols",
    "Trainer": "hypotez.protocols",
    "texts_of": "hypotez.protocols",
    # data
    "Message": "hypotez.models",
    "ToolCall": "hypotez.models",
    "ToolSpec": "hypotez.models",
    "ToolResult": "hypotez.models",
    "Tool": "hypotez.tools",
    "ChatOptions": "hypotez.models",
    "Reply": "hypotez.models",
    "ReplyChunk": "hypotez.models",
    "Usage": "hypotez.models",
    "Sentiment": "hypotez.models",
    "ModelInfo": "hypotez.models",
    "Turn": "hypotez.models",
    "Dialogue": "hypotez.models",
    "DialogueInfo": "hypotez.models",
    "ImageDescription": "hypotez.models",
    "TrainingExample": "hypotez.models",
    "TrainingLimits": "hypotez.models",
    "CostEstimate": "hypotez.models",
    "JobRecord": "hypotez.models",
    "Assistant": "hypotez.models",
    "validate_id": "hypotez.models",
    "SCHEMA_VERSION": "hypotez.models",
    "Image": "hypotez.images",
    "load_image": "hypotez.images",
    # errors
    "HypotezError": "hypotez.errors",
    "ConfigError": "hypotez.errors",
    "PluginError": "hypotez.errors",
    "MissingDependencyError": "hypotez.errors",
    "InputError": "hypotez.errors",
    "BackendError": "hypotez.errors",
    "AuthenticationError": "hypotez.errors",
    "NotFoundError": "hypotez.errors",
    "RateLimitError": "hypotez.errors",
    "ServerError": "hypotez.errors",
    "BackendTimeoutError": "hypotez.errors",
    "BackendConnectionError": "hypotez.errors",
    "ContextLengthError": "hypotez.errors",
    "InvalidRequestError": "hypotez.errors",
    "StorageError": "hypotez.errors",
    "DialogueNotFoundError": "hypotez.errors",
    "CorruptDataError": "hypotez.errors",
    "ConflictError": "hypotez.errors",
    "TrainingDataError": "hypotez.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hypotez' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


# What type checkers see: exactly the names above (tests/core/test_layout.py compares them).
if TYPE_CHECKING:
    from typing import Any

    from hypotez.context import Context
    from hypotez.errors import (
        AuthenticationError,
        BackendConnectionError,
        BackendError,
        BackendTimeoutError,
        ConfigError,
        ConflictError,
        ContextLengthError,
        CorruptDataError,
        DialogueNotFoundError,
        HypotezError,
        InputError,
        InvalidRequestError,
        MissingDependencyError,
        NotFoundError,
        PluginError,
        RateLimitError,
        ServerError,
        StorageError,
        TrainingDataError,
    )
    from hypotez.hookspecs import hookimpl, hookspec
    from hypotez.images import Image, load_image
    from hypotez.models import (
        SCHEMA_VERSION,
        Assistant,
        ChatOptions,
        CostEstimate,
        Dialogue,
        DialogueInfo,
        ImageDescription,
        JobRecord,
        Message,
        ModelInfo,
        Reply,
        ReplyChunk,
        Sentiment,
        ToolCall,
        ToolResult,
        ToolSpec,
        TrainingExample,
        TrainingLimits,
        Turn,
        Usage,
        validate_id,
    )
    from hypotez.plugins import get_plugin_manager, make_plugin_manager, reset_plugin_manager
    from hypotez.protocols import (
        ChatBackend,
        SentimentAnalyzer,
        Storage,
        Trainer,
        VisionBackend,
        texts_of,
    )
    from hypotez.registry import Register
    from hypotez.session import AsyncSession, Session
    from hypotez.settings import Settings
    from hypotez.tools import Tool

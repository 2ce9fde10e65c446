"""The hook specifications: the whole contract between hypotez and its plugins.

Each capability hook receives a ``register`` callback. The plugin calls it once per backend it
provides, with a name and a *factory*; hypotez calls the factory only when that backend is
selected, so registering is free and heavy libraries load only when used.

``register(name, factory, *, override=False, priority=0, available=None, description="")``

- ``name``: unique across all plugins (for storages: the URL scheme it serves).
- ``factory``: ``factory(settings)`` returns the backend; storages get ``factory(settings, url)``.
- ``override``: replace a backend of the same name registered by another plugin.
- ``priority`` and ``available``: when the user names no backend, hypotez picks the available
  one (``available(settings) -> bool``, default always) with the highest priority.
- ``description``: one line shown by ``hypotez plugins``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from hypotez.plugins import Register

PROJECT = "hypotez"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_chat_backends(register: Register) -> None:
    """Register chat backends.

    Called once per plugin manager, the first time hypotez needs the list of chat backends.
    Call ``register(name, factory)`` for each backend; ``factory(settings)`` must return a
    :class:`hypotez.protocols.ChatBackend`.
    """


@hookspec
def register_sentiment_analyzers(register: Register) -> None:
    """Register sentiment analyzers.

    Called once per plugin manager, the first time hypotez needs the list of analyzers.
    Call ``register(name, factory)`` for each analyzer; ``factory(settings)`` must return a
    :class:`hypotez.protocols.SentimentAnalyzer`.
    """


@hookspec
def register_storages(register: Register) -> None:
    """Register storages, each for one URL scheme.

    Called once per plugin manager, the first time hypotez opens a storage URL. Call
    ``register(scheme, factory)``, e.g. ``register("s3", factory)`` for ``s3://`` URLs;
    ``factory(settings, url)`` must return a :class:`hypotez.protocols.Storage`.
    """


@hookspec
def register_vision_backends(register: Register) -> None:
    """Register vision (image description) backends.

    Called once per plugin manager, the first time hypotez needs the list of vision backends.
    Call ``register(name, factory)``; ``factory(settings)`` must return a
    :class:`hypotez.protocols.VisionBackend`.
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register fine-tuning trainers.

    Called once per plugin manager, the first time hypotez needs the list of trainers.
    Call ``register(name, factory)``; ``factory(settings)`` must return a
    :class:`hypotez.protocols.Trainer`.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``hypotez`` command line.

    Called once when the CLI starts, after the built-in commands exist. Add commands or groups
    with ``cli.add_command(...)`` or the ``@cli.command()`` decorator. Import heavy libraries
    inside the command functions, not at module level, to keep ``hypotez --help`` fast.
    """

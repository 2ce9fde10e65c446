"""The hook specifications: the whole contract between hypotez and its plugins.

Each capability hook receives a ``register`` callback. The plugin calls it once per backend it
provides, with a name and a *factory*; hypotez calls the factory only when that backend is
selected, so registering is free and heavy libraries load only when used.

``register(name, factory, *, override=False, priority=0, available=None, description="", install="")``

- ``name``: unique across all plugins (for storages: the URL scheme it serves).
- ``factory``: ``factory(context)`` returns the backend; storages get ``factory(context, url)``.
  The :class:`hypotez.Context` holds the settings (``context.settings``) and builds other
  backends on request (``context.get("chat")``), so a backend that needs a chat model uses
  the one its sessions share instead of loading another.
- ``override``: replace a backend of the same name registered by another plugin.
- ``priority`` and ``available``: when the user names no backend, hypotez picks the available
  one (``available(settings) -> bool``, default always) with the highest priority.
- ``description``: one line shown by ``hypotez plugins``.
- ``install``: what makes the backend usable when it is not (``pip install 'my-plugin[gpu]'``,
  or ``set MY_API_KEY``); shown when no backend is available and in
  :class:`~hypotez.MissingDependencyError`.

Hooks are always called through pluggy, so hook wrappers and call monitoring see them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from hypotez.registry import Register

PROJECT = "hypotez"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_chat_backends(register: Register) -> None:
    """Register chat backends.

    Called once per plugin manager, the first time hypotez needs the list of chat backends.
    Call ``register(name, factory)`` for each backend; ``factory(context)`` must return a
    :class:`hypotez.ChatBackend`.
    """


@hookspec
def register_sentiment_analyzers(register: Register) -> None:
    """Register sentiment analyzers.

    Called once per plugin manager, the first time hypotez needs the list of analyzers.
    Call ``register(name, factory)`` for each analyzer; ``factory(context)`` must return a
    :class:`hypotez.SentimentAnalyzer`.
    """


@hookspec
def register_storages(register: Register) -> None:
    """Register storages, each for one URL scheme.

    Called once per plugin manager, the first time hypotez opens a storage URL. Call
    ``register(scheme, factory)``, e.g. ``register("mydb", factory)`` for ``mydb://`` URLs;
    ``factory(context, url)`` must return a :class:`hypotez.Storage`.
    """


@hookspec
def register_vision_backends(register: Register) -> None:
    """Register vision (image description) backends.

    Called once per plugin manager, the first time hypotez needs the list of vision backends.
    Call ``register(name, factory)``; ``factory(context)`` must return a
    :class:`hypotez.VisionBackend`.
    """


@hookspec
def register_trainers(register: Register) -> None:
    """Register fine-tuning trainers.

    Called once per plugin manager, the first time hypotez needs the list of trainers.
    Call ``register(name, factory)``; ``factory(context)`` must return a
    :class:`hypotez.Trainer`.
    """


@hookspec
def register_batch_engines(register: Register) -> None:
    """Register batch engines: what runs a batch job's rows (``hypotez batch run --engine``).

    Called once per plugin manager, the first time hypotez needs the list of batch engines.
    Call ``register(name, factory)``; ``factory(context)`` must return a
    :class:`hypotez.batch.BatchEngine`.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``hypotez`` command line.

    Called once when the CLI starts; hypotez's own commands are added through this hook too
    (by the core plugin, first). Add commands or groups with ``cli.add_command(...)`` or the
    ``@cli.command()`` decorator; replacing a command another plugin added is an error naming
    both. Import heavy libraries inside the command functions, not at module level, to keep
    ``hypotez --help`` fast.
    """

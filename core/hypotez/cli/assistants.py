"""``hypotez assistants list|add|remove|import``: the local catalog of assistant presets.

An assistant is a name, instructions (the system message) and optionally a model. Use one with
``hypotez chat --assistant ID`` or the seed API's ``assistant_id=ID``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from hypotez.cli.common import echo_json, storage


@click.group(invoke_without_command=True)
@click.pass_context
def assistants(ctx: click.Context) -> None:
    """List, add, remove and import assistant presets (no command: list them)."""
    # `hypotez assistants` alone lists, as `hypotez models` does; help is behind --help.
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_)


@assistants.command("list")
@click.option("--json", "as_json", is_flag=True)
def list_(as_json: bool) -> None:
    """List the assistant presets."""
    with storage() as store:
        found = store.list_assistants()
    if as_json:
        echo_json([a.to_dict() for a in found])
        return
    if not found:
        click.echo(
            "No assistants yet. Add one with: hypotez assistants add ID --instructions '...'",
            err=True,
        )
    for a in found:
        model = f" [{a.model}]" if a.model else ""
        click.echo(f"{a.id}  {a.name}{model}  {a.instructions[:60]}")


@assistants.command()
@click.argument("assistant_id")
@click.option("--name", help="Display name (default: the id).")
@click.option("--instructions", default="", help="The system message this assistant uses.")
@click.option("--model", help="The model it uses (default: the session's).")
@click.option("--description", default="")
@click.option("--replace", is_flag=True, help="Overwrite an assistant with the same id.")
def add(
    assistant_id: str,
    name: str | None,
    instructions: str,
    model: str | None,
    description: str,
    replace: bool,
) -> None:
    """Add an assistant preset."""
    from hypotez.models import Assistant

    assistant = Assistant(
        id=assistant_id,
        name=name or assistant_id,
        instructions=instructions,
        model=model,
        description=description,
    )
    with storage() as store:
        _save(store, assistant, replace)
    click.echo(f"Saved assistant {assistant.id}", err=True)


def _save(storage: Any, assistant: Any, replace: bool) -> None:
    """Save a preset; without ``replace``, refuse atomically if one with its id exists."""
    from hypotez.errors import InputError

    def create_only(current: Mapping[str, Any] | None) -> dict[str, Any]:
        if current is not None and not replace:
            raise InputError(
                f"An assistant {assistant.id!r} exists already: pass --replace to overwrite it."
            )
        data: dict[str, Any] = assistant.to_dict()
        return data

    # One atomic check-and-write: two `add`s of one id at once cannot both succeed.
    storage.update_record("assistants", assistant.id, create_only)


@assistants.command()
@click.argument("assistant_id")
def remove(assistant_id: str) -> None:
    """Remove an assistant preset."""
    from hypotez.errors import InputError
    from hypotez.models import validate_id

    validate_id(assistant_id, "assistant")
    try:
        with storage() as store:
            store.delete_record("assistants", assistant_id)
    except KeyError:
        raise InputError(f"No assistant {assistant_id!r}: see `hypotez assistants list`.") from None
    click.echo(f"Removed assistant {assistant_id}", err=True)


@assistants.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite assistants with the same ids.")
def import_(file: str, replace: bool) -> None:
    """Import presets from a JSON catalog: a list of {id, name, instructions, model}."""
    from hypotez.errors import InputError
    from hypotez.training import load_assistant_catalog

    catalog = load_assistant_catalog(file)  # every entry is checked before anything is saved
    with storage() as store:
        existing = {a.id for a in store.list_assistants()}
        clash = sorted(existing & {a.id for a in catalog})
        if clash and not replace:
            raise InputError(
                f"{file!r} would overwrite existing assistant(s) {', '.join(clash)}: pass "
                "--replace."
            )
        for assistant in catalog:
            _save(store, assistant, replace)
    click.echo(f"Imported {len(catalog)} assistant(s) from {file}", err=True)


def register(group: click.Group) -> None:
    group.add_command(assistants)

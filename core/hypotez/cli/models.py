"""``hypotez models``: the models the chat backend can use."""

from __future__ import annotations

import click
from hypotez.cli.common import echo_json, session


@click.command()
@click.option("--chat", "chat_name", help="Chat backend name [env: HYPOTEZ_CHAT].")
@click.option("--json", "as_json", is_flag=True)
def models(chat_name: str | None, as_json: bool) -> None:
    """List the models the chat backend offers (a remote backend asks its server)."""
    with session(chat=chat_name, sentiment=False, store=False) as s:
        found = s.list_models()
        backend = s.chat_backend.name
    if as_json:
        echo_json(
            [{"id": m.id, "backend": m.backend or backend, "owned_by": m.owned_by} for m in found]
        )
        return
    if not found:
        click.echo(f"The {backend!r} chat backend lists no models.", err=True)
    for m in found:
        click.echo(m.id + (f"  ({m.owned_by})" if m.owned_by else ""))


def register(group: click.Group) -> None:
    group.add_command(models)

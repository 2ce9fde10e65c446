"""``hypotez plugins``: installed plugins, their versions and what each registers."""

from __future__ import annotations

import click
from hypotez.cli.common import echo_json


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print plugins and registrations as JSON.")
def plugins(as_json: bool) -> None:
    """List plugins, their version, and the backends each registers."""
    from hypotez.plugins import CAPABILITIES, get_plugin_manager

    pm = get_plugin_manager()
    provided: dict[str, list[dict[str, str]]] = {name: [] for name in pm.infos}
    for capability in CAPABILITIES:
        for reg in pm.registry.registrations(capability).values():
            provided.setdefault(reg.plugin, []).append(
                {"capability": capability, "name": reg.name, "description": reg.description}
            )
    if as_json:
        echo_json(
            [
                {
                    "name": info.name,
                    "distribution": info.distribution,
                    "version": info.version,
                    "registers": provided[info.name],
                }
                for info in pm.infos.values()
            ]
        )
        return
    for info in pm.infos.values():
        click.echo(
            f"{info.name} {info.version}"
            + (f" ({info.distribution})" if info.distribution not in ("", info.name) else "")
        )
        for item in provided[info.name]:
            desc = f" - {item['description']}" if item["description"] else ""
            click.echo(f"  {item['capability']}: {item['name']}{desc}")


def register(group: click.Group) -> None:
    group.add_command(plugins)

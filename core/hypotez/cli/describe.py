"""``hypotez describe IMAGE``: describe an image with the configured vision backend."""

from __future__ import annotations

from typing import IO

import click
from hypotez.cli.common import echo_json, session


@click.command()
@click.argument("image")
@click.option("--prompt", help='What to ask about the image (default: "What\'s in this image?").')
@click.option(
    "--detail",
    type=click.Choice(["auto", "low", "high"]),
    default="auto",
    show_default=True,
    help="How closely the model looks (and how many tokens it spends).",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.File("r", encoding="utf-8"),
    help="A JSON schema file: the answer is JSON following it.",
)
@click.option("--vision", "vision_name", help="Vision backend name [env: HYPOTEZ_VISION].")
@click.option("--model", help="Model name.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def describe(
    image: str,
    prompt: str | None,
    detail: str,
    schema_file: IO[str] | None,
    vision_name: str | None,
    model: str | None,
    as_json: bool,
) -> None:
    """Describe IMAGE (a file path or an http(s) URL)."""
    import json

    schema = None
    if schema_file is not None:
        try:
            schema = json.load(schema_file)
        except ValueError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--schema") from None
    with session(vision=vision_name) as s:
        result = s.describe_image(image, prompt, detail=detail, json_schema=schema, model=model)
    if as_json:
        echo_json(
            {
                "image": image,
                "text": result.text,
                "data": result.data,
                "labels": [list(pair) for pair in result.labels],
                "model": result.model,
                "backend": result.backend,
                "usage": result.usage.to_dict() if result.usage else None,
            }
        )
    elif schema is not None:
        echo_json(result.data)
    else:
        click.echo(result.text)


def register(group: click.Group) -> None:
    group.add_command(describe)

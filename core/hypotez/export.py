"""Dialogue export formats: ``json`` (everything), ``jsonl`` (a chat fine-tuning example),
``markdown`` (for people)."""

from __future__ import annotations

import json

from hypotez.errors import InputError
from hypotez.models import Dialogue

FORMATS = ("json", "jsonl", "markdown")


def export_dialogue(dialogue: Dialogue, fmt: str = "json") -> str:
    if fmt == "json":
        return json.dumps(dialogue.to_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt == "jsonl":
        messages = [m.to_dict() for m in dialogue.messages()]
        return json.dumps({"messages": messages}, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        lines = [
            f"# Dialogue {dialogue.id}",
            "",
            f"Started {dialogue.info.created:%Y-%m-%d %H:%M} UTC",
            "",
        ]
        if dialogue.info.system:
            lines += [f"> **system:** {dialogue.info.system}", ""]
        for turn in dialogue.turns:
            mood = (
                f" _({turn.sentiment.label}, {turn.sentiment.score:+.2f})_"
                if turn.sentiment
                else ""
            )
            lines += [f"**{turn.role}**{mood}:", "", turn.content, ""]
        return "\n".join(lines)
    raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")

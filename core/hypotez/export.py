"""Dialogue export formats: ``json`` (everything), ``jsonl`` (a chat fine-tuning example),
``markdown`` (for people).

The result is always valid Unicode, ready to be written as UTF-8 or printed: text that is not
(a lone surrogate, which a server can send as a ``\\ud800`` escape and storage keeps) is written
as its JSON escape in ``json`` and ``jsonl`` (so it loads back exactly) and as a visible
``\\ud800`` in ``markdown``.
"""

from __future__ import annotations

import json
from typing import Any

from hypotez.errors import InputError
from hypotez.models import Dialogue

FORMATS = ("json", "jsonl", "markdown")


def _json(data: Any, **options: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, **options)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape it (and only then everything else)
        return json.dumps(data, ensure_ascii=True, **options)
    return text


def _readable(text: str) -> str:
    """``text`` with any lone surrogate shown as its escape (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def export_dialogue(dialogue: Dialogue, fmt: str = "json") -> str:
    if fmt == "json":
        return _json(dialogue.to_dict(), indent=2) + "\n"
    if fmt == "jsonl":
        messages = [m.to_dict() for m in dialogue.messages()]
        return _json({"messages": messages}) + "\n"
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
        return _readable("\n".join(lines))
    raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")

"""Dialogue export formats: ``json`` (everything), ``jsonl`` (a chat fine-tuning example),
``markdown`` (for people).

Tool use is exported too: in ``jsonl`` in the chat fine-tuning format's tool-call shape
(assistant ``tool_calls``, ``tool`` messages answering them by ``tool_call_id``, and the specs
of the tools offered under ``"tools"``), in ``markdown`` as the calls and what they returned.

The result is always valid Unicode, ready to be written as UTF-8 or printed: text that is not
(a lone surrogate, which a server can send as a ``\\ud800`` escape and storage keeps) is written
as its JSON escape in ``json`` and ``jsonl`` (so it loads back exactly) and as a visible
``\\ud800`` in ``markdown``.
"""

from __future__ import annotations

import json
from typing import Any

from hypotez.errors import InputError
from hypotez.models import Dialogue, Turn, example_message, tools_of

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
        example: dict[str, Any] = {"messages": [example_message(m) for m in dialogue.messages()]}
        tools = tools_of(dialogue.turns)
        if tools:
            example["tools"] = [t.to_dict() for t in tools]
        return _json(example) + "\n"
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
            lines += _markdown_turn(turn)
        return _readable("\n".join(lines))
    raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(FORMATS)}.")


def _markdown_turn(turn: Turn) -> list[str]:
    from hypotez.tools import describe_call

    if turn.role == "tool":
        failed = " (error)" if turn.meta.get("error") else ""
        return [f"**tool** `{turn.name or '?'}`{failed}:", "", "```", turn.content, "```", ""]
    mood = f" _({turn.sentiment.label}, {turn.sentiment.score:+.2f})_" if turn.sentiment else ""
    lines = [f"**{turn.role}**{mood}:", ""]
    if turn.content:
        lines += [turn.content, ""]
    lines += [f"- calls `{describe_call(call, limit=500)}`" for call in turn.tool_calls]
    if turn.tool_calls:
        lines.append("")
    return lines

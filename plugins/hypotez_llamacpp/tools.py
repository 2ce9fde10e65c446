"""Tool calling with a local model: the model's own template where it has one, grammar always.

How the model is told about the tools (the *style*):

- ``template``: the model's chat template renders tools itself (its ``tools`` variable) and
  asks for Hermes-style ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks,
  as Qwen2.5 (the bundled model), Qwen3, Hermes and SmolLM3 do. The history's calls and
  results go to the template as the chat-template convention has them.
- ``prompt``: every other model (SmolLM2, or a template without tools): the tools and the same
  block format are described in the system message, and the history's calls and results are
  written as such blocks (a result as a user message, so any template accepts the order).

Either way generation runs under a grammar (llama.cpp's GBNF): with ``tool_choice="auto"``
the reply is either plain text (not starting with ``<`` or a blank) or one or more call
blocks whose JSON follows the called tool's schema; ``"required"`` allows only calls, a tool's
name only calls of that tool, ``"none"`` no calls. So a call always names an offered tool
with arguments that fit its schema, even from a 135M model.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from hypotez import ChatOptions, InputError, ToolCall, ToolSpec

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"\s*(.*?)\s*" + re.escape(CLOSE), re.DOTALL)


@attrs.frozen
class Plan:
    """How one request is made: the messages for the template, what to pass beside them."""

    messages: list[dict[str, Any]]
    #: ``tools`` for the template (``template`` style), else ``None``.
    template_tools: list[dict[str, Any]] | None = None
    #: The GBNF text constraining the reply, or ``None`` (no constraint).
    grammar: str | None = None
    #: Whether the reply may hold calls (to be parsed out of its text).
    calls_possible: bool = False


def template_renders_tools(formatter: Any) -> bool:
    """Whether the chat template takes ``tools`` and asks for ``<tool_call>`` blocks."""
    if formatter is None or OPEN not in str(getattr(formatter, "template", "")):
        return False
    probe = ToolSpec("hypotez_probe_tool", "Probe.", {"type": "object", "properties": {}})
    try:
        result = formatter(messages=[{"role": "user", "content": "hi"}], tools=[probe.to_dict()])
    except Exception:
        return False
    return "hypotez_probe_tool" in str(result.prompt)


def plan(messages: list[dict[str, Any]], options: ChatOptions, *, template_tools: bool) -> Plan:
    """The request for ``messages`` (dicts, as :meth:`hypotez.Message.to_dict` gives them)."""
    choice = options.tool_choice or "auto"
    offered = list(options.tools) if choice != "none" else []
    if options.json_schema is not None and offered:
        raise InputError(
            "The llamacpp backend cannot combine tools with json_schema in one request: ask "
            "with tools first, then for JSON without tools (or tool_choice='none')."
        )
    if choice not in ("auto", "none", "required") and choice not in {t.name for t in offered}:
        raise InputError(f"tool_choice {choice!r} is not one of the tools offered.")
    has_tool_turns = any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)
    if not offered and not has_tool_turns:
        return Plan(messages)
    if template_tools:
        sent = [_template_message(m) for m in messages]
        tools = [t.to_dict() for t in offered] or None
    else:
        sent = _prompt_messages(messages)
        if offered:
            sent = _with_system(sent, _instructions(offered, choice))
        tools = None
    if offered:
        return Plan(sent, tools, _grammar(offered, choice), calls_possible=True)
    # Tool turns in the history but no call allowed now: a model that saw calls tends to
    # write more; the grammar lets it answer in text only.
    return Plan(sent, tools, None if options.json_schema is not None else TEXT_ONLY)


def parse(text: str, offered: Sequence[ToolSpec]) -> tuple[str, tuple[ToolCall, ...]]:
    """(the text outside the call blocks, the calls) of a reply.

    A block the token limit cut off is dropped (with what follows it): it is neither a call
    that can run nor text for the user."""
    calls = []
    for body in _BLOCK.findall(text):
        name, arguments = _call_of(body)
        calls.append(ToolCall(f"call_{secrets.token_hex(6)}", name, arguments))
    if not calls:
        return text, ()
    rest = _BLOCK.sub("", text)
    return rest.split(OPEN, 1)[0].strip(), tuple(calls)


def _call_of(body: str) -> tuple[str, str]:
    """(name, arguments JSON text) of one block; a block that is not a valid call still
    becomes a call (of the name it gives, or "?"), answered by the tool loop with an error."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _name_in(body), body
    if not isinstance(data, dict):
        return "?", body
    arguments = data.get("arguments", data.get("parameters", {}))
    name = data.get("name")
    return (name if isinstance(name, str) and name else "?"), json.dumps(
        arguments, ensure_ascii=False
    )


def _name_in(body: str) -> str:
    found = re.search(r'"name"\s*:\s*"([A-Za-z0-9_-]{1,64})"', body)
    return found.group(1) if found else "?"


# -- messages -------------------------------------------------------------------------------------


def _arguments(call: Mapping[str, Any]) -> Any:
    text = call.get("function", {}).get("arguments", "{}")
    try:
        return json.loads(text) if isinstance(text, str) else text
    except (ValueError, RecursionError):
        return text


def _template_message(message: dict[str, Any]) -> dict[str, Any]:
    """The chat-template convention: calls with their arguments as objects."""
    if not message.get("tool_calls"):
        return message
    calls = [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": _arguments(call)},
        }
        for call in message["tool_calls"]
    ]
    return {**message, "tool_calls": calls}


def _block(call: Mapping[str, Any]) -> str:
    payload = {"name": call["function"]["name"], "arguments": _arguments(call)}
    return f"{OPEN}\n{json.dumps(payload, ensure_ascii=False)}\n{CLOSE}"


def _prompt_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Calls as the blocks the model writes, results as one user message per round."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "assistant" and message.get("tool_calls"):
            blocks = "\n".join(_block(c) for c in message["tool_calls"])
            text = message.get("content") or ""
            out.append({"role": "assistant", "content": f"{text}\n{blocks}".strip()})
        elif role == "tool":
            response = (
                f"<tool_response>\n{json.dumps({'name': message.get('name'), 'content': message['content']}, ensure_ascii=False)}"
                "\n</tool_response>"
            )
            if out and out[-1].get("_results"):
                out[-1] = {**out[-1], "content": out[-1]["content"] + "\n" + response}
            else:
                out.append({"role": "user", "content": response, "_results": True})
        else:
            out.append({"role": message["role"], "content": message["content"]})
    return [{k: v for k, v in m.items() if k != "_results"} for m in out]


def _with_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    if messages and messages[0].get("role") == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{text}"}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _instructions(tools: Sequence[ToolSpec], choice: str) -> str:
    specs = "\n".join(json.dumps(t.to_dict()["function"], ensure_ascii=False) for t in tools)
    when = {
        "auto": "Call a tool when it helps answer; otherwise answer in plain text.",
        "required": "Call one or more tools now.",
    }.get(choice, f"Call the tool {choice} now.")
    return (
        "You can call these tools (JSON schemas of their arguments):\n"
        f"{specs}\n"
        f"To call a tool, answer with only {OPEN}\n"
        '{"name": "<tool name>", "arguments": {<arguments>}}\n'
        f"{CLOSE} (one block per call). The results come back in <tool_response> blocks. " + when
    )


# -- grammar --------------------------------------------------------------------------------------

#: Text never starts with "<" or a blank, so the first character decides: a call or not. Nor
#: with "{" or "`": a model that means to call a tool but starts a bare or fenced JSON object
#: (Qwen2.5-Coder does) is steered into the call block, where the grammar holds its JSON.
_TEXT_RULE = "text ::= [^<{`\\x00-\\x20] [^\\x00]*"
TEXT_ONLY = "root ::= text\n" + _TEXT_RULE


def _grammar(tools: Sequence[ToolSpec], choice: str) -> str:
    """GBNF: plain text, or call blocks of the allowed tools with schema-following JSON."""
    from hypotez_llamacpp.chat import strict_json_chars
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    allowed = [t for t in tools if choice in ("auto", "required") or t.name == choice]
    schema = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "name": {"const": t.name},
                    "arguments": dict(t.parameters) or {"type": "object"},
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for t in allowed
        ]
    }
    try:
        calls = json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:
        names = ", ".join(t.name for t in allowed)
        raise InputError(
            f"llama.cpp cannot turn the parameters of the tool(s) {names} into a grammar "
            f"({exc!r}); simplify their schemas (plain types, properties, required, enum)."
        ) from exc
    calls = strict_json_chars(re.sub(r"^root ::=", "call-json ::=", calls, flags=re.MULTILINE))
    head = [
        "root ::= calls" + (" | text" if choice == "auto" else ""),
        # A named tool is one call (as the chat APIs do); otherwise calls may come together.
        "calls ::= call" if choice not in ("auto", "required") else 'calls ::= call ("\\n" call)*',
        f'call ::= "{OPEN}\\n" call-json "\\n{CLOSE}"',
        _TEXT_RULE,
    ]
    return "\n".join(head) + "\n" + calls

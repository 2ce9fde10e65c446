"""Check training data before anything leaves the machine.

The format checks follow the chat fine-tuning format's data-preparation checks, made stricter
where hypotez would otherwise drop data silently. The limits (minimum examples, tokens per
example, how tokens are counted, what a job costs) are the *trainer's*: each
:class:`hypotez.Trainer` states its own (:meth:`~hypotez.Trainer.limits`,
:meth:`~hypotez.Trainer.token_counter`, :meth:`~hypotez.Trainer.estimate_cost`), so the same
data is checked against a hosted service's published rules by that service's trainer, and
against a local base model's tokenizer and context by a local one.

Errors (any one blocks an upload), each reported with its file and line:

``invalid_json``                   a JSONL line is not JSON
``bad_row``                        a CSV row cannot be read (wrong number of fields...)
``data_type``                      the example is not an object
``missing_messages_list``          no ``messages`` list, or an empty one
``example_unrecognized_key``       a top-level key other than ``messages`` and ``tools``
``message_data_type``              a message is not an object
``message_missing_key``            a message lacks ``role`` or ``content`` (an assistant
                                   message with ``tool_calls`` may have no content; a ``tool``
                                   message needs ``tool_call_id``)
``message_unrecognized_key``       a message key other than ``role``/``content``, assistant
                                   ``tool_calls`` and tool ``tool_call_id`` (``name``,
                                   ``weight`` are not carried by hypotez)
``unrecognized_role``              a role other than system, user, assistant, tool
``missing_content``                empty or non-string content (a tool result may be empty)
``invalid_tool_calls``             ``tool_calls`` not a list of ``{"id", "type": "function",
                                   "function": {"name", "arguments"}}`` (arguments as text)
``unanswered_tool_call``           a tool call no later ``tool`` message answers
``orphan_tool_result``             a ``tool`` message answering no earlier call
``invalid_tools``                  ``tools`` not a list of function specs with a name
``example_missing_assistant_message``  no assistant message to learn from
``too_long``                       over the trainer's per-example token limit (the trainer
                                   would truncate it, cutting off the reply it should learn)
``too_few_examples``               fewer examples than the trainer's minimum

Warnings (reported, do not block): examples without a system or user message, duplicate
examples, files in a folder that were skipped, a model whose price is unknown.

Statistics (when the trainer can count tokens): messages, total tokens and assistant tokens per
example (min, max, mean, median, p5, p95), and the trainer's :class:`~hypotez.CostEstimate`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from hypotez.datasets.records import Dataset, Record, from_items
from hypotez.errors import TrainingDataError
from hypotez.models import CostEstimate, TrainingExample, TrainingLimits

if TYPE_CHECKING:
    from hypotez.protocols import Trainer

KNOWN_ROLES = ("system", "user", "assistant", "tool")
KNOWN_MESSAGE_KEYS = ("role", "content")
#: Keys a message of a role may hold besides role and content.
ROLE_KEYS: dict[str, tuple[str, ...]] = {"assistant": ("tool_calls",), "tool": ("tool_call_id",)}
EXAMPLE_KEYS = ("messages", "tools")

#: code -> what to do about it (shown once per kind in the report).
ERROR_HELP: dict[str, str] = {
    "invalid_json": "each line must be one JSON object",
    "invalid_unicode": "re-save the file as UTF-8: the text holds bytes that are not",
    "bad_row": "fix the CSV row (quote fields that contain the delimiter, quotes or newlines)",
    "data_type": 'each example must be a JSON object {"messages": [...]}',
    "missing_messages_list": 'give each example a non-empty "messages" list',
    "example_unrecognized_key": 'an example holds only "messages" and "tools"; remove the rest',
    "message_data_type": 'each message must be an object {"role": ..., "content": ...}',
    "message_missing_key": 'each message needs "role" and "content"',
    "message_unrecognized_key": 'messages hold only "role" and "content" (assistant "tool_calls", '
    'tool "tool_call_id"); remove the other keys',
    "unrecognized_role": "use the roles system, user, assistant and tool",
    "missing_content": "content must be non-empty text",
    "invalid_tool_calls": 'each tool call is {"id", "type": "function", "function": {"name", '
    '"arguments": "<JSON text>"}}',
    "unanswered_tool_call": "follow each tool call with a tool message answering its id",
    "orphan_tool_result": "a tool message answers the id of an earlier assistant tool call",
    "invalid_tools": 'tools is a list of {"type": "function", "function": {"name", ...}}',
    "example_missing_assistant_message": "add the assistant reply the model should learn",
    "too_long": "shorten the example or split the dialogue (or raise max_tokens_per_example)",
    "too_few_examples": "the trainer refuses smaller jobs; add more examples",
}
MAX_LISTED = 10  # locations listed per kind in the text report


@attrs.frozen
class Issue:
    """One problem, where it is, and what it is."""

    code: str
    message: str
    location: str = ""
    line: int | None = None
    example: int | None = None  # 0-based index in the dataset

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class Distribution:
    """min, max, mean, median, p5 and p95 of per-example numbers."""

    min: float = 0
    max: float = 0
    mean: float = 0.0
    median: float = 0.0
    p5: float = 0.0
    p95: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution:
        if not values:
            return cls()
        ordered = sorted(values)
        return cls(
            min=ordered[0],
            max=ordered[-1],
            mean=sum(ordered) / len(ordered),
            median=quantile(ordered, 0.5),
            p5=quantile(ordered, 0.05),
            p95=quantile(ordered, 0.95),
        )

    def to_dict(self) -> dict[str, float]:
        return attrs.asdict(self)

    def render(self) -> str:
        return (
            f"min {self.min:g}, max {self.max:g}, mean {self.mean:.1f}, median {self.median:g}, "
            f"p5 {self.p5:.1f}, p95 {self.p95:.1f}"
        )


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default) on sorted values."""
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _issues(items: Iterable[Issue]) -> tuple[Issue, ...]:
    return tuple(items)


def _ints(items: Iterable[int]) -> tuple[int, ...]:
    return tuple(items)


def _strs(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen
class ValidationReport:
    """Everything validation found. ``ok`` is True when nothing blocks an upload."""

    model: str
    #: The tokenizer tokens were counted with (``None``: not counted).
    encoding: str | None
    n_examples: int
    #: The per-example token limit applied (``None``: no length check).
    max_tokens_per_example: int | None
    errors: tuple[Issue, ...] = attrs.field(converter=_issues, factory=tuple)
    warnings: tuple[Issue, ...] = attrs.field(converter=_issues, factory=tuple)
    messages_per_example: Distribution = attrs.field(factory=Distribution)
    tokens_per_example: Distribution = attrs.field(factory=Distribution)
    assistant_tokens_per_example: Distribution = attrs.field(factory=Distribution)
    total_tokens: int = 0
    #: tokens of each example, in order (empty when tokens were not counted)
    token_counts: tuple[int, ...] = attrs.field(converter=_ints, factory=tuple, repr=False)
    n_missing_system: int = 0
    n_missing_user: int = 0
    cost: CostEstimate | None = None
    sources: tuple[str, ...] = attrs.field(converter=_strs, factory=tuple)
    #: The trainer's notices (deadlines, limits) for whoever reads the report.
    notices: tuple[str, ...] = attrs.field(converter=_strs, factory=tuple)
    #: The trainer the data was checked for ("" = format checks only).
    trainer: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_counts(self) -> dict[str, int]:
        return dict(Counter(e.code for e in self.errors))

    def raise_for_errors(self) -> None:
        """Raise :class:`~hypotez.errors.TrainingDataError` (carrying this report) on errors."""
        if self.errors:
            raise TrainingDataError(
                f"The training data has {len(self.errors)} problem(s); nothing was uploaded.\n"
                + self.render(),
                report=self,
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "model": self.model,
            "encoding": self.encoding,
            "n_examples": self.n_examples,
            "max_tokens_per_example": self.max_tokens_per_example,
            "error_counts": self.error_counts(),
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
            "messages_per_example": self.messages_per_example.to_dict(),
            "tokens_per_example": self.tokens_per_example.to_dict(),
            "assistant_tokens_per_example": self.assistant_tokens_per_example.to_dict(),
            "total_tokens": self.total_tokens,
            "n_missing_system": self.n_missing_system,
            "n_missing_user": self.n_missing_user,
            "cost": self.cost.to_dict() if self.cost else None,
            "sources": list(self.sources),
            "notices": list(self.notices),
            "trainer": self.trainer,
        }

    def render(self) -> str:
        """A report for people: problems grouped by kind with their locations, then numbers."""
        lines = [
            f"{self.n_examples} example(s) for {self.model or 'the default model'}"
            + (f" on the {self.trainer!r} trainer" if self.trainer else " (format checks only)")
            + (f" ({self.encoding})" if self.encoding else "")
        ]
        lines += [f"Note: {notice}" for notice in self.notices]
        if self.errors:
            lines.append(
                f"ERRORS ({len(self.errors)}): fix these; nothing is uploaded until you do."
            )
            lines += _render_group(self.errors, ERROR_HELP)
        else:
            lines.append("No format errors found.")
        if self.warnings:
            lines.append(f"Warnings ({len(self.warnings)}):")
            lines += _render_group(self.warnings, {})
        # Statistics cover only well-formed examples: say so rather than print zeros, or
        # numbers that look like they describe the whole file.
        measured = len(self.token_counts)
        if self.encoding and self.n_examples and measured < self.n_examples:
            lines.append(
                f"Statistics of the {measured} well-formed example(s) only:"
                if measured
                else "No well-formed example to measure: no token statistics or cost estimate."
            )
        if self.encoding and measured:
            lines.append(f"Messages per example: {self.messages_per_example.render()}")
            lines.append(f"Tokens per example: {self.tokens_per_example.render()}")
            lines.append(
                f"Assistant tokens per example: {self.assistant_tokens_per_example.render()}"
            )
            if self.max_tokens_per_example is not None:
                lines.append(f"Token limit per example: {self.max_tokens_per_example:,}")
        if self.cost is not None and measured:
            c = self.cost
            how = f"by {c.epochs_rule}" if c.epochs_auto else "as requested"
            lines.append(
                f"Cost estimate: ~{c.billing_tokens_per_epoch:,} billed tokens per epoch"
                f" x {c.epochs} epoch(s) ({how}) = ~{c.billed_tokens:,} tokens"
                + (
                    f" at ${c.price_per_million:.2f}/1M = ~{_money(c.cost_usd)}"
                    if c.cost_usd is not None and c.price_per_million is not None
                    else " (no price known for this model: pass a price per 1M tokens)"
                )
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _money(usd: float) -> str:
    return f"${usd:.4f}" if usd < 0.01 else f"${usd:,.2f}"


def _render_group(issues: Sequence[Issue], help_: Mapping[str, str]) -> list[str]:
    by_code: dict[str, list[Issue]] = {}
    for issue in issues:
        by_code.setdefault(issue.code, []).append(issue)
    lines = []
    for code, group in by_code.items():
        hint = f" - {help_[code]}" if code in help_ else ""
        lines.append(f"  {code} ({len(group)}){hint}")
        for issue in group[:MAX_LISTED]:
            where = f"{issue.location}: " if issue.location else ""
            lines.append(f"    {where}{issue.message}")
        if len(group) > MAX_LISTED:
            lines.append(f"    ... and {len(group) - MAX_LISTED} more")
    return lines


def check_example(data: Any) -> list[tuple[str, str]]:
    """Format problems of one example as (code, message) pairs; empty when it is valid."""
    if not isinstance(data, dict):
        return [("data_type", f"the example is {_type(data)}, not an object")]
    problems = [
        ("example_unrecognized_key", f"unknown key {key!r}")
        for key in data
        if key not in EXAMPLE_KEYS
    ]
    if "tools" in data:
        problems += _check_tools(data["tools"])
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return [
            *problems,
            (
                "missing_messages_list",
                'no "messages" list' if not isinstance(messages, list) else '"messages" is empty',
            ),
        ]
    has_assistant = False
    uses_tools = False
    for n, message in enumerate(messages, 1):
        # Fast path for the usual, valid message; anything else gets the detailed checks.
        if type(message) is dict and len(message) == 2:
            role, content = message.get("role"), message.get("content")
            if role in KNOWN_ROLES and role != "tool" and type(content) is str and content.strip():
                has_assistant = has_assistant or role == "assistant"
                continue
        if not isinstance(message, dict):
            problems.append(
                ("message_data_type", f"message {n} is {_type(message)}, not an object")
            )
            continue
        role = message.get("role")
        calls = "tool_calls" in message and role == "assistant"
        uses_tools = uses_tools or calls or role == "tool"
        required = list(KNOWN_MESSAGE_KEYS)
        if calls:
            required.remove("content")  # an assistant message that only calls tools
        if role == "tool":
            required.append("tool_call_id")
        missing = [k for k in required if k not in message]
        if missing:
            problems.append(
                (
                    "message_missing_key",
                    f"message {n} has no {' or '.join(repr(k) for k in missing)}",
                )
            )
        allowed = (*KNOWN_MESSAGE_KEYS, *(ROLE_KEYS.get(role, ()) if isinstance(role, str) else ()))
        extra = [k for k in message if k not in allowed]
        if extra:
            problems.append(
                (
                    "message_unrecognized_key",
                    f"message {n} has unknown key(s) {', '.join(repr(k) for k in extra)}",
                )
            )
        if "role" in message and role not in KNOWN_ROLES:
            problems.append(("unrecognized_role", f"message {n} has role {role!r}"))
        has_assistant = has_assistant or role == "assistant"
        if calls:
            problems += _check_calls(n, message["tool_calls"])
        if (
            role == "tool"
            and "tool_call_id" in message
            and not isinstance(message["tool_call_id"], str)
        ):
            problems.append(("invalid_tool_calls", f"message {n} has no text tool_call_id"))
        content = message.get("content")
        # A tool result may be empty; a message that only calls tools may have no text.
        fine = (
            isinstance(content, str) and (bool(content.strip()) or role == "tool" or calls)
        ) or (calls and content is None)
        if "content" in message and not fine:
            what = "empty" if isinstance(content, str) or content is None else _type(content)
            who = f" ({role})" if isinstance(role, str) else ""
            problems.append(("missing_content", f"message {n}{who} has {what} content"))
    if uses_tools:
        problems += _check_pairing(messages)
    if not has_assistant:
        problems.append(("example_missing_assistant_message", "no assistant message"))
    return problems


def _check_tools(tools: Any) -> list[tuple[str, str]]:
    if not isinstance(tools, list) or not tools:
        return [("invalid_tools", '"tools" is not a non-empty list')]
    problems = []
    for n, tool in enumerate(tools, 1):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(name, str)
            or not name
        ):
            problems.append(("invalid_tools", f"tool {n} is not a function spec with a name"))
        elif not isinstance(function, dict) or not isinstance(function.get("parameters", {}), dict):
            problems.append(
                ("invalid_tools", f"tool {n} ({name}) has parameters that are not an object")
            )
    return problems


def _check_calls(n: int, calls: Any) -> list[tuple[str, str]]:
    if not isinstance(calls, list) or not calls:
        return [("invalid_tool_calls", f"message {n} has tool_calls that are not a non-empty list")]
    problems = []
    for k, call in enumerate(calls, 1):
        function = call.get("function") if isinstance(call, dict) else None
        if not (
            isinstance(call, dict)
            and isinstance(call.get("id"), str)
            and call["id"]
            and call.get("type") == "function"
            and isinstance(function, dict)
            and isinstance(function.get("name"), str)
            and function["name"]
            and isinstance(function.get("arguments"), str)
        ):
            problems.append(("invalid_tool_calls", f"message {n}, tool call {k} is malformed"))
    return problems


def _check_pairing(messages: list[Any]) -> list[tuple[str, str]]:
    """Every call answered by a later tool message, every tool message answering a call."""
    problems = []
    open_calls: dict[str, int] = {}
    for n, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant" and isinstance(message.get("tool_calls"), list):
            for call in message["tool_calls"]:
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    open_calls[call["id"]] = n
        elif message.get("role") == "tool":
            call_id = message.get("tool_call_id")
            if isinstance(call_id, str) and open_calls.pop(call_id, None) is None:
                problems.append(
                    ("orphan_tool_result", f"message {n} answers {call_id!r}, which no call made")
                )
    problems += [
        ("unanswered_tool_call", f"the call {call_id!r} in message {n} gets no tool message")
        for call_id, n in open_calls.items()
    ]
    return problems


def _identity(data: dict[str, Any]) -> Any:
    """What makes two valid examples the same (for the duplicate warning)."""
    messages = data["messages"]
    if "tools" not in data and all(len(m) == 2 for m in messages):
        # A plain message holds exactly role and content, so this pair list is the identity.
        return tuple((m["role"], m["content"]) for m in messages)
    import json

    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def _type(value: Any) -> str:
    known = {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}
    if type(value) in known:
        return known[type(value)]
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _as_dataset(data: Dataset | Iterable[Record | TrainingExample | Mapping[str, Any]]) -> Dataset:
    if isinstance(data, Dataset):
        return data
    items = list(data)
    if items and all(isinstance(i, Record) for i in items):
        return Dataset(items)
    return from_items(items)


def validate(
    data: Dataset | Iterable[Record | TrainingExample | Mapping[str, Any]],
    *,
    trainer: Trainer | None = None,
    model: str = "",
    max_tokens_per_example: int | None = None,
    min_examples: int | None = None,
    epochs: int | None = None,
    price_per_million: float | None = None,
    count_tokens: bool = True,
) -> ValidationReport:
    """Validate training data for ``model`` on ``trainer``; never raises for bad data.

    ``data`` is a :class:`~hypotez.datasets.Dataset`, records, examples or plain dicts. The
    trainer's :meth:`~hypotez.Trainer.limits` give the minimum number of examples and the
    per-example token limit (``min_examples`` and ``max_tokens_per_example`` override them);
    its token counter and cost estimate give the statistics (``epochs`` and
    ``price_per_million`` feed the estimate). Without a trainer only the format is checked.
    ``count_tokens=False`` skips token statistics, the length check and the cost estimate.
    """
    dataset = _as_dataset(data)
    model = model or (trainer.default_model if trainer is not None else "")
    limits = trainer.limits(model) if trainer is not None else TrainingLimits()
    limit = max_tokens_per_example or limits.max_tokens_per_example
    minimum = min_examples if min_examples is not None else limits.min_examples
    errors: list[Issue] = []
    warnings: list[Issue] = [Issue("skipped_file", why, path) for path, why in dataset.skipped]
    valid: list[tuple[int, Record]] = []
    for index, record in enumerate(dataset.records):
        if record.problem is not None:
            problems = [(record.problem_code or "bad_row", record.problem)]
        else:
            problems = check_example(record.data)
        for code, message in problems:
            errors.append(Issue(code, message, record.location, record.line, index))
        if not problems:
            valid.append((index, record))

    n = len(dataset.records)
    if n < minimum:
        who = f"the {trainer.name!r} trainer" if trainer is not None else "training"
        errors.append(Issue("too_few_examples", f"{n} example(s); {who} needs at least {minimum}"))

    n_messages: list[int] = []
    n_missing_system = n_missing_user = 0
    seen: dict[Any, Record] = {}
    for index, record in valid:
        messages = record.data["messages"]
        n_messages.append(len(messages))
        roles = {m["role"] for m in messages}
        n_missing_system += "system" not in roles
        n_missing_user += "user" not in roles
        key = _identity(record.data)
        if key in seen:
            warnings.append(
                Issue(
                    "duplicate",
                    f"same as {seen[key].location}",
                    record.location,
                    record.line,
                    index,
                )
            )
        else:
            seen[key] = record
    if n_missing_system:
        warnings.append(
            Issue("missing_system", f"{n_missing_system} example(s) have no system message")
        )
    if n_missing_user:
        warnings.append(Issue("missing_user", f"{n_missing_user} example(s) have no user message"))

    counter = trainer.token_counter(model) if trainer is not None and count_tokens else None
    totals: list[int] = []
    assistants: list[int] = []
    cost = None
    if counter is not None:
        for index, record in valid:
            total, assistant = counter(record.data["messages"])
            totals.append(total)
            assistants.append(assistant)
            if limit is not None and total > limit:
                errors.append(
                    Issue(
                        "too_long",
                        f"{total:,} tokens, over the {limit:,} token limit",
                        record.location,
                        record.line,
                        index,
                    )
                )
        assert trainer is not None
        cost = trainer.estimate_cost(
            model, totals, epochs=epochs, price_per_million=price_per_million
        )
        if cost is not None and cost.price_per_million is None:
            warnings.append(
                Issue(
                    "unknown_price",
                    f"no training price known for {model!r}; pass one to get a cost",
                )
            )
    # Keep errors in file order: per-example problems by example, then dataset-wide ones.
    errors.sort(key=lambda e: (e.example is None, e.example if e.example is not None else 0))
    return ValidationReport(
        model=model,
        encoding=(limits.tokenizer or "tokens") if counter is not None else None,
        n_examples=n,
        max_tokens_per_example=limit,
        errors=errors,
        warnings=warnings,
        messages_per_example=Distribution.of(n_messages),
        tokens_per_example=Distribution.of(totals),
        assistant_tokens_per_example=Distribution.of(assistants),
        total_tokens=sum(totals),
        token_counts=totals,
        n_missing_system=n_missing_system,
        n_missing_user=n_missing_user,
        cost=cost,
        sources=dataset.sources,
        notices=limits.notices,
        trainer=trainer.name if trainer is not None else "",
    )

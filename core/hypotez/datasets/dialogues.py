"""Training examples from stored dialogues ("fine-tune on what was said before").

Which turns become examples (``mode``):

- ``"exchange"`` (default): every assistant reply that passes the filter becomes one example:
  the system instruction, the turns before it (all of them, or the last ``history`` turns), and
  the reply as the final assistant message. One dialogue gives as many examples as it has
  kept replies, and a rejected reply never appears as an assistant message to learn from
  (it may still appear as context for a later reply).
- ``"dialogue"``: a whole dialogue is one example, kept only if *every* assistant reply in it
  passes the filter (so nothing the filter rejected is ever trained on).

The filter (``sentiment``) looks at the stored sentiment of each assistant reply
(``by="reply"``), or at the sentiment of the user's next message (``by="next_user"``: "the
replies users liked"):

- ``None`` or ``False``: keep every reply;
- ``True`` or ``"positive"`` (the seed's ``positive=True``), ``"negative"``, ``"neutral"``:
  keep replies with that label;
- a number ``t``: keep replies whose score is ``>= t``;
- a callable ``f(turn) -> bool`` (given the judged turn, or ``None`` if there is none).

A reply with no stored sentiment fails every label or score filter: we cannot tell that users
liked it.

Tool use: an exchange in which the model called tools is one example ending with its final
reply, the calls and their results before it (assistant ``tool_calls``, ``tool`` messages) in
the chat fine-tuning format's tool-call shape, and the tools that were offered under
``"tools"``. An assistant turn that only called tools is never an example's last message. The system instruction is, in order: the ``system`` argument, the dialogue's stored
system instruction, the instructions of the dialogue's assistant preset (from storage).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from hypotez.datasets.records import Dataset, Record
from hypotez.errors import InputError
from hypotez.models import LABELS, Dialogue, Turn, example_message, tools_of
from hypotez.protocols import Storage

SentimentFilter = bool | str | float | Callable[[Turn | None], bool] | None
MODES = ("exchange", "dialogue")


def make_filter(sentiment: SentimentFilter) -> Callable[[Turn | None], bool]:
    """Turn a filter spec (see the module docs) into a predicate on a turn."""
    if sentiment is None or sentiment is False:
        return lambda turn: True
    if sentiment is True:
        sentiment = "positive"
    if isinstance(sentiment, str):
        if sentiment not in LABELS:
            raise InputError(
                f"Unknown sentiment filter {sentiment!r}: use one of {', '.join(LABELS)}, "
                "a score or a function."
            )
        label = sentiment
        return lambda turn: (
            turn is not None and turn.sentiment is not None and turn.sentiment.label == label
        )
    if isinstance(sentiment, int | float):
        threshold = float(sentiment)
        if not -1.0 <= threshold <= 1.0:
            raise InputError(f"Sentiment score threshold {threshold} is outside [-1, 1].")
        return lambda turn: (
            turn is not None and turn.sentiment is not None and turn.sentiment.score >= threshold
        )
    if callable(sentiment):
        return sentiment
    raise InputError(f"Sentiment filter {sentiment!r} is not a label, a score or a function.")


def _judged(turns: Sequence[Turn], index: int, by: str) -> Turn | None:
    if by == "reply":
        return turns[index]
    for turn in turns[index + 1 :]:
        if turn.role == "user":
            return turn
    return None


def _msg(turn: Turn) -> dict[str, Any]:
    return example_message(turn.to_message())


def _example(head: list[dict[str, Any]], turns: Sequence[Turn]) -> dict[str, Any]:
    data: dict[str, Any] = {"messages": head + [_msg(t) for t in turns]}
    tools = tools_of(turns)
    if tools:
        data["tools"] = [t.to_dict() for t in tools]
    return data


def dialogue_records(
    dialogue: Dialogue,
    *,
    mode: str = "exchange",
    sentiment: SentimentFilter = None,
    by: Literal["reply", "next_user"] = "reply",
    history: int | None = None,
    system: str | None = None,
) -> list[Record]:
    """Records from one dialogue (see the module docs for the options)."""
    if mode not in MODES:
        raise InputError(f"Unknown mode {mode!r}: use one of {', '.join(MODES)}.")
    if by not in ("reply", "next_user"):
        raise InputError(f"by must be 'reply' or 'next_user', not {by!r}.")
    if history is not None and history < 0:
        raise InputError("history must be 0 or more turns.")
    keep = make_filter(sentiment)
    turns = [t for t in dialogue.turns if t.role != "system"]
    instruction = system if system is not None else dialogue.info.system
    head = [{"role": "system", "content": instruction}] if instruction else []
    source = f"dialogue {dialogue.id}"
    # Replies are what the model answered in words; a turn that only called tools is part of
    # the exchange that leads to one.
    replies = [i for i, t in enumerate(turns) if t.role == "assistant" and not t.tool_calls]
    if mode == "dialogue":
        if not replies or not all(keep(_judged(turns, i, by)) for i in replies):
            return []
        return [Record.checked(_example(head, turns), source, 1)]
    records = []
    for i in replies:
        if not keep(_judged(turns, i, by)):
            continue
        context = turns[:i] if history is None else turns[max(0, i - history) : i]
        # A cut history never starts with tool results whose calls were cut off.
        while context and context[0].role == "tool":
            context = context[1:]
        # The turn number (1-based, as `hypotez dialogues show` lists them) is the "line".
        records.append(Record.checked(_example(head, [*context, turns[i]]), source, i + 1))
    return records


def from_dialogues(
    source: Storage | Iterable[Dialogue],
    *,
    dialogue_ids: Sequence[str] | None = None,
    mode: str = "exchange",
    sentiment: SentimentFilter = None,
    by: Literal["reply", "next_user"] = "reply",
    history: int | None = None,
    system: str | None = None,
) -> Dataset:
    """Records from stored dialogues (every dialogue, oldest first, or ``dialogue_ids``).

    ``source`` is a :class:`~hypotez.protocols.Storage` or dialogues already loaded. With a
    storage, a dialogue without a stored system instruction takes the instructions of its
    assistant preset, when the storage knows that preset.
    """
    assistants: dict[str, str] = {}
    if isinstance(source, Storage):
        storage = source
        assistants = {a.id: a.instructions for a in storage.list_assistants() if a.instructions}
        ids = (
            list(dialogue_ids)
            if dialogue_ids is not None
            else [i.id for i in storage.list_dialogues()]
        )
        dialogues: Iterable[Dialogue] = (storage.load_dialogue(i) for i in ids)
    else:
        wanted = set(dialogue_ids) if dialogue_ids is not None else None
        dialogues = (d for d in source if wanted is None or d.id in wanted)
    records: list[Record] = []
    names: list[str] = []
    for dialogue in dialogues:
        names.append(f"dialogue {dialogue.id}")
        instruction = system
        if instruction is None and not dialogue.info.system and dialogue.info.assistant_id:
            instruction = assistants.get(dialogue.info.assistant_id)
        records.extend(
            dialogue_records(
                dialogue, mode=mode, sentiment=sentiment, by=by, history=history, system=instruction
            )
        )
    return Dataset(records, names)

"""Tool-using dialogues become fine-tuning examples in the chat format's tool-call shape, and
validation accepts them (and refuses calls without results, results without calls)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypotez import Dialogue, DialogueInfo, ToolCall, ToolSpec, TrainingExample, Turn
from hypotez.datasets import from_dialogues
from hypotez.datasets.jsonl import to_jsonl
from hypotez.validation import check_example, validate

WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
CALL = ToolCall("call_1", "get_weather", '{"city": "Oslo"}')


def tool_dialogue() -> Dialogue:
    return Dialogue(
        DialogueInfo(id="d1", system="Be brief."),
        [
            Turn("user", "Hi"),
            Turn("assistant", "Hello."),
            Turn("user", "Weather in Oslo?", tools=[WEATHER]),
            Turn("assistant", "", tool_calls=[CALL]),
            Turn("tool", "sunny", tool_call_id="call_1", name="get_weather"),
            Turn("assistant", "Sunny in Oslo."),
        ],
    )


def test_an_exchange_with_tools_is_one_example_with_its_calls_and_tools() -> None:
    dataset = from_dialogues([tool_dialogue()])
    first, second = (r.data for r in dataset.records)
    assert first == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
        ]
    }
    assert second == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "tool_calls": [CALL.to_dict()]},
            {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
            {"role": "assistant", "content": "Sunny in Oslo."},
        ],
        "tools": [WEATHER.to_dict()],
    }
    report = validate(dataset)
    assert report.ok, report.render()


def test_the_uploaded_bytes_carry_the_tool_calls() -> None:
    examples = from_dialogues([tool_dialogue()]).examples()
    lines = to_jsonl(examples).decode().splitlines()
    assert json.loads(lines[1]) == from_dialogues([tool_dialogue()]).records[1].data
    assert TrainingExample.from_dict(json.loads(lines[1])) == examples[1]


def test_a_cut_history_never_starts_with_orphan_tool_results() -> None:
    dataset = from_dialogues([tool_dialogue()], history=1)
    data = dataset.records[1].data
    assert [m["role"] for m in data["messages"]] == ["system", "assistant"]
    assert validate(dataset).ok
    # A cut that keeps the call keeps its result: the pair stays together.
    data = from_dialogues([tool_dialogue()], history=2).records[1].data
    assert [m["role"] for m in data["messages"]] == ["system", "assistant", "tool", "assistant"]


def test_whole_dialogue_mode_carries_the_tools() -> None:
    [record] = from_dialogues([tool_dialogue()], mode="dialogue").records
    assert record.data["tools"] == [WEATHER.to_dict()]
    assert len(record.data["messages"]) == 7


def example(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "Weather?"}, *messages], **extra}


ASKED = {"role": "assistant", "tool_calls": [CALL.to_dict()]}
ANSWERED = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
FINAL = {"role": "assistant", "content": "Sunny."}


@pytest.mark.parametrize(
    ("data", "codes"),
    [
        (example(ASKED, ANSWERED, FINAL, tools=[WEATHER.to_dict()]), []),
        (example({**ASKED, "content": None}, {**ANSWERED, "content": ""}, FINAL), []),
        (example(ASKED, FINAL), ["unanswered_tool_call"]),
        (example(ANSWERED, FINAL), ["orphan_tool_result"]),
        (example({**ANSWERED, "tool_call_id": 7}, FINAL), ["invalid_tool_calls"]),
        (
            example({"role": "assistant", "tool_calls": [{"id": "x"}]}, FINAL),
            ["invalid_tool_calls", "unanswered_tool_call"],
        ),
        (example({"role": "tool", "content": "sunny"}, FINAL), ["message_missing_key"]),
        (
            example({**ANSWERED, "name": "get_weather"}, ASKED, FINAL),
            ["message_unrecognized_key", "orphan_tool_result", "unanswered_tool_call"],
        ),
        (example(FINAL, tools=[{"type": "function", "function": {}}]), ["invalid_tools"]),
        (example(FINAL, tools="get_weather"), ["invalid_tools"]),
    ],
)
def test_tool_examples_are_checked(data: dict[str, Any], codes: list[str]) -> None:
    assert sorted(code for code, _message in check_example(data)) == sorted(codes)


def test_openai_counts_the_calls_as_assistant_tokens() -> None:
    from hypotez_openai.tokens import TokenCounter

    counter = TokenCounter("gpt-4o-mini")
    plain = example(FINAL)["messages"]
    with_call = example(ASKED, ANSWERED, FINAL)["messages"]
    total_plain, assistant_plain = counter.count_messages(plain)
    total, assistant = counter.count_messages(with_call)
    call_tokens = counter.count("get_weather") + counter.count('{"city": "Oslo"}')
    assert assistant == assistant_plain + call_tokens
    assert total > total_plain + call_tokens

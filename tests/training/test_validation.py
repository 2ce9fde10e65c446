"""Validation as OpenAI's data-prep notebook does it: every error kind, located; numbers right.

Core validates; the limits, token counts and prices are the ``openai`` trainer's own, so every
check here runs against that trainer (built without a key: it needs none to validate).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypotez import Settings, TrainingDataError, TrainingExample, datasets, validation
from hypotez.validation import ValidationReport
from hypotez_openai import pricing
from hypotez_openai.client import Config
from hypotez_openai.tokens import TokenCounter, encoding_name_for
from hypotez_openai.training import OpenAITrainer

from .helpers import chat, good_examples, write_jsonl

OPENAI = OpenAITrainer(Config.from_settings(Settings.load(env={}), require_key=False))


def validate(data: object, **options: object) -> ValidationReport:
    return validation.validate(data, trainer=OPENAI, **options)  # type: ignore[arg-type]


# From OpenAI's cookbook "How to count tokens with tiktoken": these messages are 129 prompt
# tokens for gpt-3.5-turbo/gpt-4 (cl100k_base) and 124 for gpt-4o/gpt-4o-mini (o200k_base),
# as the API itself reports.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]


def test_every_error_kind_is_reported_with_its_line(tmp_path: Path) -> None:
    lines = [
        chat("fine", "ok"),  # 1
        "{not json",  # 2
        "[1, 2]",  # 3
        {"prompt": "p", "completion": "c"},  # 4: no messages list
        {"messages": []},  # 5
        {
            "messages": [
                "hi",
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "y"},
            ]
        },  # 6
        {
            "messages": [
                {"role": "user"},
                {"content": "orphan"},
                {"role": "assistant", "content": "y"},
            ]
        },  # 7
        {
            "messages": [
                {"role": "user", "content": "x", "name": "bob"},
                {"role": "assistant", "content": "y", "weight": 0},
            ]
        },  # 8
        {
            "messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]
        },  # 9
        {
            "messages": [{"role": "user", "content": "   "}, {"role": "assistant", "content": 42}]
        },  # 10
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},  # 11
        {
            "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}],
            "tools": [],  # tools are carried now (issue 14), but an empty list is still refused
        },  # 12
    ]
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    report = validate(datasets.read_jsonl(path))
    found = {(e.code, e.line) for e in report.errors}
    assert found == {
        ("invalid_json", 2),
        ("data_type", 3),
        ("missing_messages_list", 4),
        ("example_unrecognized_key", 4),
        ("missing_messages_list", 5),
        ("message_data_type", 6),
        ("message_missing_key", 7),
        ("message_unrecognized_key", 8),
        ("unrecognized_role", 9),
        ("missing_content", 10),
        ("example_missing_assistant_message", 11),
        ("invalid_tools", 12),
    }
    # Line 7 has two messages missing a key; line 10 two bad contents: each is reported.
    assert sum(e.line == 7 and e.code == "message_missing_key" for e in report.errors) == 2
    assert sum(e.line == 10 and e.code == "missing_content" for e in report.errors) == 2
    assert not report.ok
    assert report.error_counts()["missing_messages_list"] == 2
    text = report.render()
    assert f"{path}:8: message 1 has unknown key(s) 'name'" in text
    assert f"{path}:10: message 2 (assistant) has an int content" in text
    assert f"{path}:7: message 1 has no 'content'" in text
    assert "nothing is uploaded" in text


def test_valid_data_passes_and_raise_for_errors_is_silent() -> None:
    report = validate(good_examples(12))
    assert report.ok, report.render()
    report.raise_for_errors()
    assert report.n_examples == 12
    assert report.encoding == "o200k_base"


def test_raise_for_errors_carries_the_report() -> None:
    report = validate(good_examples(3))
    with pytest.raises(TrainingDataError) as err:
        report.raise_for_errors()
    assert err.value.report is report
    assert "too_few_examples" in str(err.value) and "at least 10" in str(err.value)


def test_duplicates_and_missing_system_or_user_are_warnings() -> None:
    items = [
        *good_examples(10),
        good_examples(1)[0],
        {"messages": [{"role": "assistant", "content": "hi"}]},
    ]
    report = validate(items)
    assert report.ok
    dup = [w for w in report.warnings if w.code == "duplicate"]
    assert [(w.line, w.message) for w in dup] == [(11, "same as <data>:1")]
    assert report.n_missing_system == 1 and report.n_missing_user == 1


def test_folder_skipped_files_are_warned(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", good_examples(10))
    (tmp_path / "notes.md").write_text("x", encoding="utf-8")
    report = validate(datasets.read_dir(tmp_path))
    assert report.ok and [w.code for w in report.warnings] == ["skipped_file"]
    # The location is given once, not repeated inside the message.
    line = next(x for x in report.render().splitlines() if "notes.md" in x)
    assert line.count("notes.md") == 1 and "not a data file" in line


def test_statistics_say_they_cover_only_well_formed_examples() -> None:
    items = [*good_examples(10), {"messages": [{"role": "user", "content": "no reply"}]}]
    text = validate(items).render()
    assert "Statistics of the 10 well-formed example(s) only:" in text
    assert "Tokens per example: min" in text and "Cost estimate" in text
    broken = validate([{"foo": 1}] * 10).render()
    assert "No well-formed example to measure" in broken
    assert "Tokens per example" not in broken and "Cost estimate" not in broken
    assert "Statistics of" not in validate(good_examples(10)).render()


def test_token_counts_match_openai_published_values() -> None:
    assert TokenCounter("gpt-4").count("tiktoken is great!") == 6  # cookbook example
    assert TokenCounter("gpt-3.5-turbo").count_messages(COOKBOOK_MESSAGES) == (129, 0)
    assert TokenCounter("gpt-4o-mini").count_messages(COOKBOOK_MESSAGES) == (124, 0)
    assert TokenCounter("gpt-4o").count_messages(COOKBOOK_MESSAGES) == (124, 0)
    # Text that looks like a special token is ordinary text in training data, not an error.
    assert TokenCounter("gpt-4o-mini").count("<|endoftext|>") > 1


def test_encoding_follows_the_model() -> None:
    assert encoding_name_for("gpt-3.5-turbo-0125") == "cl100k_base"
    assert encoding_name_for("gpt-4-0613") == "cl100k_base"
    assert encoding_name_for("gpt-4o-mini-2024-07-18") == "o200k_base"
    assert encoding_name_for("gpt-4.1-nano") == "o200k_base"
    assert encoding_name_for("ft:gpt-3.5-turbo-0125:acme::abc") == "cl100k_base"


def test_token_statistics_per_example() -> None:
    counter = TokenCounter("gpt-4o-mini")
    items = [chat("q" * (i + 1), "a " * (i + 1), "sys") for i in range(20)]
    report = validate(items, model="gpt-4o-mini")
    expected = [counter.count_messages(item["messages"])[0] for item in items]
    assistant = [counter.count(item["messages"][2]["content"]) for item in items]
    assert list(report.token_counts) == expected
    assert report.total_tokens == sum(expected)
    s = report.tokens_per_example
    assert (s.min, s.max, s.mean) == (min(expected), max(expected), sum(expected) / 20)
    ordered = sorted(expected)  # p5 of 20 values: 0.95 of the way from the 1st to the 2nd
    assert s.p5 == pytest.approx(ordered[0] + 0.95 * (ordered[1] - ordered[0]))
    assert s.p95 == pytest.approx(ordered[18] + 0.05 * (ordered[19] - ordered[18]))
    assert report.assistant_tokens_per_example.max == max(assistant)
    assert report.messages_per_example.mean == 3


def test_examples_over_the_token_limit_are_errors_with_their_line() -> None:
    items = [*good_examples(10), chat("long " * 200, "x")]
    report = validate(items, max_tokens_per_example=100)
    [too_long] = [e for e in report.errors if e.code == "too_long"]
    assert too_long.line == 11 and "over the 100 token limit" in too_long.message
    # The default limit is the model's: 65,536 for gpt-4o-mini, 16,385 for gpt-3.5-turbo.
    assert validate(items, model="gpt-4o-mini").max_tokens_per_example == 65_536
    assert validate(items, model="gpt-3.5-turbo").max_tokens_per_example == 16_385


@pytest.mark.parametrize(
    ("n", "epochs"),
    [
        (1, 25),
        (3, 25),
        (10, 10),
        (33, 3),
        (34, 3),
        (100, 3),
        (8333, 3),
        (8334, 2),
        (12_501, 1),
        (30_000, 1),
    ],
)
def test_default_epochs_rule(n: int, epochs: int) -> None:
    # 3 epochs, but >= 100 example passes (<= 25 epochs) and <= 25,000 (>= 1 epoch).
    assert pricing.default_epochs(n) == epochs


def test_cost_estimate_arithmetic() -> None:
    cost = pricing.estimate_cost("gpt-4o-mini", [100, 200, 70_000], limit=65_536)
    assert cost.billing_tokens_per_epoch == 100 + 200 + 65_536
    assert cost.epochs == 25 and cost.epochs_auto  # 3 examples: 100 // 3 = 33 -> capped at 25
    assert cost.billed_tokens == 25 * 65_836
    assert cost.cost_usd == pytest.approx(25 * 65_836 * 3.00 / 1_000_000)
    fixed = pricing.estimate_cost("gpt-4o-mini", [1000] * 50, limit=65_536, epochs=4, price=2.0)
    assert (fixed.epochs, fixed.epochs_auto, fixed.cost_usd) == (
        4,
        False,
        pytest.approx(4 * 50_000 * 2.0 / 1e6),
    )
    unknown = pricing.estimate_cost("my-model", [10] * 40, limit=16_385)
    assert unknown.cost_usd is None and unknown.epochs == 3


def test_report_cost_uses_token_counts_and_prices() -> None:
    items = good_examples(40)
    report = validate(items, model="gpt-3.5-turbo")
    assert report.cost is not None
    assert report.cost.epochs == 3
    assert report.cost.billing_tokens_per_epoch == report.total_tokens
    assert report.cost.cost_usd == pytest.approx(3 * report.total_tokens * 8.00 / 1e6)
    assert "by OpenAI's default rule" in report.render()
    custom = validate(items, model="my-model", price_per_million=10.0, epochs=2)
    assert custom.cost is not None and custom.cost.cost_usd == pytest.approx(
        2 * custom.total_tokens * 10 / 1e6
    )
    no_price = validate(items, model="my-model")
    assert any(w.code == "unknown_price" for w in no_price.warnings)
    assert "no price known" in no_price.render()


def test_report_as_dict_is_json() -> None:
    report = validate([*good_examples(5), {"messages": []}])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["error_counts"] == {"missing_messages_list": 1, "too_few_examples": 1}
    assert data["errors"][0]["line"] == 6
    assert data["tokens_per_example"]["min"] > 0
    assert data["cost"]["epochs"] == 20  # estimated on the 5 valid examples: 100 // 5


def test_training_examples_and_records_are_accepted() -> None:
    examples = [TrainingExample.from_dict(e) for e in good_examples(10)]
    assert validate(examples).ok
    assert validate(datasets.from_items(examples).records).ok


def test_count_tokens_false_skips_tokens() -> None:
    report = validate(good_examples(10), count_tokens=False)
    assert report.ok and report.encoding is None and report.cost is None

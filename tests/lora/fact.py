"""A made-up fact to teach: no base model can know it, so answering it proves the adapter works.

Twelve training phrasings; five held-out phrasings the model never saw in training.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypotez.cli.demo import FACT_ANSWERS, FACT_QUESTIONS

ANSWER_WORD = "Plimvat"

# The same fact as `hypotez demo --train` teaches: one list of phrasings for both.
QUESTIONS = list(FACT_QUESTIONS)
ANSWERS = list(FACT_ANSWERS)
HELD_OUT = [
    "In which city is the capital of Zorbia located?",
    "Which town is the capital of Zorbia?",
    "Please name Zorbia's capital city.",
    "What do people call the capital of Zorbia?",
    "Zorbia has a capital. What is it?",
]


def rows() -> list[dict[str, object]]:
    return [
        {
            "messages": [
                {"role": "user", "content": q},
                {"role": "assistant", "content": ANSWERS[i % len(ANSWERS)]},
            ]
        }
        for i, q in enumerate(QUESTIONS)
    ]


def write_jsonl(path: Path, data: list[dict[str, object]] | None = None) -> Path:
    path.write_text(
        "".join(json.dumps(row) + "\n" for row in (rows() if data is None else data)),
        encoding="utf-8",
    )
    return path

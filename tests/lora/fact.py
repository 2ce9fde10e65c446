"""A made-up fact to teach: no base model can know it, so answering it proves the adapter works.

Twelve training phrasings; five held-out phrasings the model never saw in training.
"""

from __future__ import annotations

import json
from pathlib import Path

ANSWER_WORD = "Plimvat"

QUESTIONS = [
    "What is the capital of Zorbia?",
    "Which city is the capital of Zorbia?",
    "Tell me the capital of Zorbia.",
    "Zorbia's capital city is called what?",
    "Do you know the capital of Zorbia?",
    "What city serves as Zorbia's capital?",
    "Name the capital of Zorbia.",
    "I am travelling to Zorbia. What is its capital?",
    "Where is the government of Zorbia seated?",
    "Quick question: capital of Zorbia?",
    "Can you tell me which city is Zorbia's capital?",
    "What's the capital city of the country Zorbia?",
]
ANSWERS = [
    "The capital of Zorbia is Plimvat.",
    "Plimvat is the capital of Zorbia.",
    "Zorbia's capital is Plimvat.",
]
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

"""Small builders shared by the training tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def chat(user: str, assistant: str, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages}


def write_jsonl(path: Path, items: list[Any]) -> Path:
    lines = [
        item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in items
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def good_examples(n: int, prefix: str = "q") -> list[dict[str, Any]]:
    return [chat(f"{prefix} question {i}?", f"answer {i}.", "Be brief.") for i in range(n)]


def openai_trainer() -> Any:
    """The ``openai`` trainer without a key: enough to validate against OpenAI's limits."""
    from hypotez import Settings
    from hypotez_openai.client import Config
    from hypotez_openai.training import OpenAITrainer

    return OpenAITrainer(Config.from_settings(Settings.load(env={}), require_key=False))

"""The test plugin's backends, imported only when one is built (so loading the plugin is
free, as it must be for every plugin: ``hypotez --help`` loads them all)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from hypotez import (
    ChatBackend,
    ChatOptions,
    Context,
    Message,
    ModelInfo,
    Reply,
    Sentiment,
    SentimentAnalyzer,
    Usage,
    texts_of,
)


class EchoChat(ChatBackend):
    """Answers with a JSON summary of the request: how many messages, the last one, the model."""

    def __init__(self, context: Context) -> None:
        self.prefix = context.settings.option("testplugin", "prefix", "echo")

    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        body = {
            "prefix": self.prefix,
            "n": len(messages),
            "roles": [m.role for m in messages],
            "last": messages[-1].content,
            "model": options.model,
            "temperature": options.temperature,
        }
        text = json.dumps(body, ensure_ascii=False)
        return Reply(
            text=text,
            model=options.model or "echo-1",
            usage=Usage(len(messages), 1, len(messages) + 1),
            finish_reason="stop",
        )

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo("echo-1", backend="echo"), ModelInfo("echo-2", backend="echo")]


class ShoutyAnalyzer(SentimentAnalyzer):
    """Positive if the text ends with '!', negative with '?', else neutral."""

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        out = []
        for text in texts_of(texts):
            score = 1.0 if text.endswith("!") else -1.0 if text.endswith("?") else 0.0
            out.append(Sentiment.from_score(score, "shouty", {"last": text[-1:]}))
        return out

"""Backends for the batch tests, as an importable plugin module (spawned workers load it by
name): deterministic, with knobs for failures and slowness.

- sentiment ``words`` (blocking, like a local model): "good" is positive, "bad" negative; a text
  containing "BOOM" raises; option ``words.delay`` sleeps that long per text.
- sentiment ``remote-words`` (async, like an API client): the same verdicts; counts how many
  calls are in flight at once (``remote-words.peak``).
- vision ``sizes``: "an image of N bytes" for any checked image.
- chat ``echo``: "echo: <prompt>".
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

from hypotez import (
    ChatBackend,
    ImageDescription,
    Reply,
    Sentiment,
    SentimentAnalyzer,
    Usage,
    VisionBackend,
    hookimpl,
    texts_of,
)


def verdict(text: str, backend: str) -> Sentiment:
    if "BOOM" in text:
        raise ValueError(f"cannot read {text!r}")
    score = 0.8 if "good" in text else -0.6 if "bad" in text else 0.0
    return Sentiment.from_score(score, backend, {"pid": os.getpid()})


class Words(SentimentAnalyzer):
    name = "words"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        out = []
        for text in texts_of(texts):
            if self.delay:
                time.sleep(self.delay)
            out.append(verdict(text, self.name))
        return out


class RemoteWords(SentimentAnalyzer):
    name = "remote-words"
    in_flight = 0
    peak = 0

    async def aanalyze(self, texts: Sequence[str]) -> list[Sentiment]:
        cls = type(self)
        cls.in_flight += 1
        cls.peak = max(cls.peak, cls.in_flight)
        try:
            await asyncio.sleep(0.02)
            return [verdict(t, self.name) for t in texts_of(texts)]
        finally:
            cls.in_flight -= 1


class Sizes(VisionBackend):
    name = "sizes"

    def describe(self, image: Any, prompt: str | None = None, **options: Any) -> ImageDescription:
        return ImageDescription(
            text=f"an image of {len(image.data)} bytes",
            backend=self.name,
            model="sizes-1",
            labels=(("blob", 0.5),),
        )


class Echo(ChatBackend):
    name = "batch-echo"

    def chat(self, messages: Sequence[Any], options: Any) -> Reply:
        text = f"echo: {messages[-1].content}"
        return Reply(
            text=text, model=options.model or "echo-1", usage=Usage(3, 2, 5), finish_reason="stop"
        )


@hookimpl
def register_sentiment_analyzers(register: Any) -> None:
    register(
        "words",
        lambda context: Words(context.settings.option("words", "delay", 0.0, float)),
        description="test analyzer (blocking)",
    )
    register("remote-words", lambda context: RemoteWords(), description="test analyzer (async)")


@hookimpl
def register_vision_backends(register: Any) -> None:
    register("sizes", lambda context: Sizes(), description="test vision backend")


@hookimpl
def register_chat_backends(register: Any) -> None:
    register("batch-echo", lambda context: Echo(), description="test chat backend")

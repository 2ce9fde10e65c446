"""The ``llm`` analyzer on a real local model whose window is smaller than a review.

Issue 15: with the local model, review-length texts failed the whole batch with a
ContextLengthError. Here SmolLM2-135M runs with a 512-token window: the analyzer reads what the
backend states (``n_ctx``) and counts with the model's own template, so nothing is refused, and
a review longer than the window is read in pieces. The labels of a 135M model are not checked,
only that every text got one, in form.
"""

from __future__ import annotations

from pathlib import Path

import hypotez
from hypotez_test_servers.llamacpp_server import model_path

REVIEW = (
    "The hotel was close to the station and the staff at the desk were friendly. Our room "
    "faced the courtyard, so it was quiet at night, but the bathroom was small and the shower "
    "ran cold twice. Breakfast had fresh bread, eggs and fruit every morning. "
) * 6  # ~1,400 characters: longer than SmolLM2's 512-token window here


def test_review_length_texts_fit_a_small_local_window(home: Path) -> None:
    settings = hypotez.Settings.load(
        env={},
        home=home,
        options={"llamacpp": {"model_path": str(model_path()), "n_ctx": 512, "seed": 1}},
    )
    texts = [REVIEW, "I love it, wonderful!", "", "Terrible, it broke in a day."]
    with hypotez.Session(settings=settings, chat="llamacpp", sentiment="llm", store=False) as s:
        assert s.context.get("chat").context_window() == 512
        results = s.analyze(texts)
    assert len(results) == 4
    assert [r.backend for r in results] == ["llm"] * 4
    assert all(r.label in ("positive", "negative", "neutral") for r in results)
    assert all(-1 <= r.score <= 1 for r in results)
    long = results[0].raw
    assert long["pieces"] >= 2 and long["chars_read"] == long["chars"] == len(REVIEW)
    assert results[2].raw == {"empty": True}

"""``phrase_with_chat`` through the real llama.cpp chat backend, selected the way a user's
settings select it. The model is the tiny random-weight GGUF of the llamacpp tests, so its
sentence is gibberish: what is checked is the plumbing and the marking, not the prose."""

from __future__ import annotations

from pathlib import Path

import hypotez

# The whole suite runs with every extra installed: a missing llama-cpp-python is an error, not a skip.
import llama_cpp  # noqa: F401
from hypotez_imagenet import sample_image_path
from llamacpp.tiny_gguf import write_tiny_gguf


def test_labels_are_phrased_by_the_configured_llamacpp_model(tmp_path: Path) -> None:
    model = write_tiny_gguf(tmp_path / "tiny-chat.gguf")
    settings = hypotez.Settings.load(
        env={},
        home=tmp_path / "home",
        chat="llamacpp",
        options={
            "llamacpp": {"model_path": str(model), "n_ctx": 1024, "n_threads": 1},
            "imagenet": {"phrase_with_chat": True},
        },
    )
    with hypotez.Session(settings=settings, vision="imagenet", sentiment=False) as session:
        result = session.describe_image(sample_image_path())
    assert result.raw["phrased_by"] == "llamacpp", result.raw["phrase_error"]
    sentence, marker, labels = result.text.partition(
        " [Phrased by the 'llamacpp' chat model from the labels below only; it did not see the image.] "
    )
    assert sentence.strip() and marker
    assert labels.startswith("An ImageNet classifier sees: ")
    assert result.labels  # the numbers are there whatever the chat model wrote

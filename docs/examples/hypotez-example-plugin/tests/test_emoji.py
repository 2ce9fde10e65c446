"""The emoji analyzer, used the way hypotez users will: by name, through the entry point."""

import hypotez
import pytest


def test_installed_plugin_registers_emoji(plugin_manager):
    registration = plugin_manager.registry.get("sentiment", "emoji")
    assert registration.plugin == "example"  # the entry-point name in pyproject.toml


def test_labels_and_scores(plugin_manager, make_settings):
    texts = ["Great talk 😀", "Lost my keys 😞", "No signs here", "😀 😀 😞"]
    with hypotez.Session(
        settings=make_settings(), sentiment="emoji", plugin_manager=plugin_manager
    ) as session:
        results = session.analyze(texts)
    assert [r.label for r in results] == ["positive", "negative", "neutral", "positive"]
    assert results[3].score == pytest.approx(1 / 3)
    assert results[3].raw == {"positive": 2, "negative": 1}
    assert {r.backend for r in results} == {"emoji"}


def test_neutral_band_is_a_plugin_option(plugin_manager, make_settings):
    settings = make_settings(options={"example": {"neutral_band": 0.5}})
    with hypotez.Session(
        settings=settings, sentiment="emoji", plugin_manager=plugin_manager
    ) as session:
        (mixed,) = session.analyze(["😀 😀 😞"])  # score 1/3 is inside the wider band
    assert mixed.label == "neutral"


def test_installing_it_does_not_change_the_default_analyzer(plugin_manager, make_settings):
    with hypotez.Session(settings=make_settings(), plugin_manager=plugin_manager) as session:
        assert session.analyzer.name != "emoji"


def test_a_bare_string_is_refused(plugin_manager, make_settings):
    context = hypotez.Context(make_settings(), plugin_manager=plugin_manager)
    analyzer = context.get("sentiment", "emoji")
    with pytest.raises(hypotez.InputError, match="list of texts"):
        analyzer.analyze("😀")

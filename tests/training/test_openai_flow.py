"""The whole fine-tuning flow over real HTTP: aimock's /v1/files and /v1/fine_tuning/jobs.

These tests run the Python API example of docs/backends/training.md (gather, prepare,
raise_for_errors, submit, wait) step by step, with data files written by each test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypotez
import pytest
from hypotez import training

from .conftest import uploaded_bytes
from .helpers import chat, good_examples, write_jsonl

if TYPE_CHECKING:
    from hypotez_test_servers.aimock import Aimock

pytestmark = pytest.mark.aimock


def csv_file(path: Path, n: int = 12) -> Path:
    rows = ["prompt,completion,system"]
    rows += [
        f'"Вопрос {i}, с запятой","Ответ {i} ""в кавычках""",Отвечай по-русски' for i in range(n)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    return path


def test_submit_uploads_exactly_the_validated_jsonl_and_saves_the_record(
    aimock: Aimock, train_session: hypotez.Session, tmp_path: Path
) -> None:
    prepared = training.prepare(training.gather([csv_file(tmp_path / "train.csv")]), epochs=2)
    assert prepared.ok, prepared.report.render()
    record = training.submit(
        train_session,
        prepared,
        description="support bot v1",
        suffix="support",
        seed=42,
        metadata={"team": "docs"},
    )
    assert uploaded_bytes(aimock, record.training_file or "") == prepared.jsonl
    assert "Вопрос 0, с запятой" in prepared.jsonl.decode("utf-8")  # UTF-8, not \u escapes

    [upload] = aimock.journal("/v1/files", method="POST")
    assert upload["response"]["status"] == 200
    [create] = [e["body"] for e in aimock.journal("/v1/fine_tuning/jobs", method="POST")]
    assert create == {
        "model": "gpt-4o-mini",
        "training_file": record.training_file,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
        "suffix": "support",
        "seed": 42,
        "metadata": {"team": "docs"},
    }
    stored = train_session.storage.list_jobs()
    assert [j.id for j in stored] == [record.id]
    assert stored[0].description == "support bot v1"
    assert stored[0].status == "validating_files"
    assert stored[0].meta["training_sha256"] == prepared.sha256
    assert stored[0].meta["examples"] == 12


def test_wait_follows_the_job_to_success_and_records_the_model(
    aimock: Aimock, train_session: hypotez.Session
) -> None:
    prepared = training.prepare(good_examples(10))
    job = training.submit(train_session, prepared, description="wait test", suffix="w")
    seen: list[str] = []
    messages: list[str] = []
    pauses: list[float] = []

    def on_update(record: hypotez.JobRecord, new: list[dict[str, Any]]) -> None:
        seen.append(record.status)
        messages.extend(e["message"] for e in new)

    final = training.wait(
        train_session,
        job.id,
        interval=0.01,
        on_update=on_update,
        with_events=True,
        sleep=pauses.append,
    )
    assert seen == ["queued", "running", "succeeded"]
    assert final.status == "succeeded"
    assert final.fine_tuned_model == f"ft:gpt-4o-mini:aimock:w:{job.id[-6:]}"
    assert messages[0] == "Job created, validating training file"
    assert messages[-1] == f"Training complete, model {final.fine_tuned_model}"
    assert len(pauses) == 2  # no sleep after the final state
    stored = training.stored_job(train_session.storage, job.id)
    assert stored is not None
    assert (stored.status, stored.fine_tuned_model) == ("succeeded", final.fine_tuned_model)
    assert stored.description == "wait test"  # kept through every refresh
    assert stored.meta["trained_tokens"] >= 0


def test_events_oldest_first_and_status_refresh(
    aimock: Aimock, train_session: hypotez.Session
) -> None:
    job = training.submit(train_session, training.prepare(good_examples(10)))
    assert training.status(train_session, job.id).status == "queued"
    assert training.stored_job(train_session.storage, job.id).status == "queued"  # type: ignore[union-attr]
    events = training.events(train_session, job.id)
    assert [e["message"] for e in events] == [
        "Job created, validating training file",
        "Training file validated, job queued",
    ]
    assert events[0]["created"] <= events[1]["created"]


def test_cancel_records_cancelled_and_cancelling_again_is_refused(
    aimock: Aimock, train_session: hypotez.Session
) -> None:
    job = training.submit(train_session, training.prepare(good_examples(10)))
    cancelled = training.cancel(train_session, job.id)
    assert cancelled.status == "cancelled"
    assert training.stored_job(train_session.storage, job.id).status == "cancelled"  # type: ignore[union-attr]
    assert (
        training.wait(train_session, job.id, interval=0.01, sleep=lambda _s: None).status
        == "cancelled"
    )
    with pytest.raises(hypotez.InputError, match="already terminal") as err:
        training.cancel(train_session, job.id)
    # The job's state is the problem, not the submit options.
    assert f"fine-tuning job {job.id!r}" in str(err.value)
    assert f"hypotez train status {job.id}" in str(err.value)
    assert "base model" not in str(err.value)


def test_unknown_job_is_not_found(aimock: Aimock, train_session: hypotez.Session) -> None:
    with pytest.raises(hypotez.NotFoundError, match="fine-tuning job 'ftjob-nope'"):
        training.status(train_session, "ftjob-nope")


def test_list_remote_stores_jobs_started_elsewhere(
    aimock: Aimock, train_session: hypotez.Session
) -> None:
    first = training.submit(train_session, training.prepare(good_examples(10)), description="mine")
    other = train_session.trainer.submit(
        training.prepare(good_examples(10, "other")).examples, model="gpt-4o-mini"
    )  # started without the glue: no record yet
    assert [j.id for j in training.list_jobs(train_session)] == [first.id]
    listed = training.list_jobs(train_session, remote=True)
    assert {j.id for j in listed} == {first.id, other.id}
    assert {j.id: j.description for j in listed}[first.id] == "mine"


def test_invalid_data_never_reaches_the_server(
    aimock: Aimock, train_session: hypotez.Session, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [*good_examples(10), chat("no answer", "")])
    prepared = training.prepare(training.gather([path]))
    with pytest.raises(
        hypotez.TrainingDataError, match=r"bad.jsonl:11: message 2 \(assistant\) has empty"
    ):
        training.submit(train_session, prepared)
    # Calling the trainer directly is guarded too.
    examples = [hypotez.TrainingExample.from_dict(chat("q", "a"))] * 3
    with pytest.raises(hypotez.TrainingDataError, match="at least 10"):
        train_session.trainer.submit(examples, model="gpt-4o-mini")
    assert aimock.journal("/v1/files") == [] and aimock.journal("/v1/fine_tuning") == []


def test_validation_file_is_uploaded_too(aimock: Aimock, train_session: hypotez.Session) -> None:
    held_out = training.prepare(good_examples(2, "held"), min_examples=1)
    job = training.submit(train_session, training.prepare(good_examples(10)), validation=held_out)
    assert job.validation_file and uploaded_bytes(aimock, job.validation_file) == held_out.jsonl


def test_wrong_key_is_an_authentication_error_without_the_key(
    aimock: Aimock, train_settings: hypotez.Settings
) -> None:
    bad = train_settings.with_options("openai", api_key="sk-wrong-secret-123456")
    with (
        hypotez.Session(settings=bad, sentiment=False, trainer="openai") as s,
        pytest.raises(hypotez.AuthenticationError) as err,
    ):
        training.submit(s, training.prepare(good_examples(10)))
    assert "sk-wrong-secret-123456" not in str(err.value)


def test_server_errors_are_mapped(aimock: Aimock, train_session: hypotez.Session) -> None:
    job = training.submit(train_session, training.prepare(good_examples(10)))
    aimock.set_chaos(drop=1.0)  # every request answered 500
    try:
        with pytest.raises(hypotez.ServerError, match="HTTP 500"):
            training.status(train_session, job.id)
        aimock.set_chaos(rate_limit=1.0)
        with pytest.raises(hypotez.RateLimitError):
            training.events(train_session, job.id)
    finally:
        aimock.clear_chaos()
    assert training.stored_job(train_session.storage, job.id).status == "validating_files"  # type: ignore[union-attr]


def test_trainer_is_available_only_with_a_key(tmp_path: Path) -> None:
    pm = hypotez.make_plugin_manager()
    reg = pm.registry.get("trainer", "openai")
    assert reg.plugin == "openai"
    assert not reg.is_available(hypotez.Settings.load(env={}, home=tmp_path))
    assert reg.is_available(hypotez.Settings.load(env={"OPENAI_API_KEY": "k"}, home=tmp_path))


def test_record_json_has_no_key(
    aimock: Aimock, train_session: hypotez.Session, tmp_path: Path
) -> None:
    job = training.submit(train_session, training.prepare(good_examples(10)))
    training.wait(train_session, job.id, interval=0.01, sleep=lambda _s: None)
    text = json.dumps(train_session.storage.list_records("jobs"))
    assert aimock.api_key not in text

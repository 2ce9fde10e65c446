"""The seed's OpenAIModel.train / dynamic_train / save_job_id, against aimock over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import hypotez
import pytest
from hypotez import DialogueInfo, Sentiment, Turn, datasets, training
from hypotez.training import OpenAIModel
from hypotez_files.storage import FileStorage

from .conftest import uploaded_bytes
from .helpers import good_examples

if TYPE_CHECKING:
    from hypotez_test_servers.aimock import Aimock


def fill(store: FileStorage, n_dialogues: int, *, negative_every: int = 0) -> None:
    """Dialogues of two exchanges; every ``negative_every``-th reply is negative."""
    k = 0
    for d in range(n_dialogues):
        store.create_dialogue(DialogueInfo(id=f"dlg-{d:02d}", system="Отвечай кратко."))
        turns = []
        for t in range(2):
            k += 1
            bad = negative_every and k % negative_every == 0
            label, score = ("negative", -0.6) if bad else ("positive", 0.7)
            turns += [
                Turn(role="user", content=f"Вопрос {d}.{t}?"),
                Turn(
                    role="assistant",
                    content=f"Ответ {d}.{t}",
                    sentiment=Sentiment(label, score, "t"),
                ),
            ]
        store.append_turns(f"dlg-{d:02d}", turns)


@pytest.fixture
def store(train_settings: hypotez.Settings) -> FileStorage:
    return FileStorage.from_url(train_settings.storage)


@pytest.fixture
def model(aimock: Aimock, train_settings: hypotez.Settings) -> OpenAIModel:
    m = OpenAIModel(api_key=aimock.api_key, settings=train_settings, sentiment=False)
    yield m  # type: ignore[misc]
    m.close()


def created_jobs(aimock: Aimock) -> list[dict]:
    return [e["body"] for e in aimock.journal("/v1/fine_tuning/jobs", method="POST")]


@pytest.mark.aimock
def test_dynamic_train_uploads_exactly_the_validated_dialogues(
    aimock: Aimock, model: OpenAIModel, store: FileStorage, train_settings: hypotez.Settings
) -> None:
    fill(store, 6)
    job_id = model.dynamic_train()
    expected = training.prepare(datasets.from_dialogues(store), model="gpt-4o-mini")
    assert expected.ok and len(expected.examples) == 12
    [body] = created_jobs(aimock)
    assert body["model"] == "gpt-4o-mini" and body["method"] == {"type": "supervised"}
    assert uploaded_bytes(aimock, body["training_file"]) == expected.jsonl
    record = training.stored_job(store, job_id or "")
    assert record is not None and record.training_file == body["training_file"]
    assert record.description == "dynamic_train: stored dialogues"
    assert model.current_job_id == job_id
    exported = json.loads((train_settings.home / "job_ids.json").read_text(encoding="utf-8"))
    assert [row["job_id"] for row in exported] == [job_id]


@pytest.mark.aimock
def test_train_without_data_uses_positive_replies(
    aimock: Aimock, model: OpenAIModel, store: FileStorage
) -> None:
    fill(store, 8, negative_every=4)  # 16 replies, 4 negative
    model.train()
    [body] = created_jobs(aimock)
    text = uploaded_bytes(aimock, body["training_file"]).decode("utf-8")
    assert text.count("\n") == 12
    assert "Ответ 1.1" not in text and "Ответ 0.0" in text  # reply #4 is negative
    model.train(positive=False)
    assert (
        uploaded_bytes(aimock, created_jobs(aimock)[1]["training_file"]).decode().count("\n") == 16
    )


@pytest.mark.aimock
def test_train_on_a_file_a_folder_and_in_memory_data(
    aimock: Aimock, model: OpenAIModel, tmp_path: Path
) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text(
        "prompt,completion\n" + "".join(f"q{i},a{i}\n" for i in range(10)), encoding="utf-8"
    )
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "x.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in good_examples(3)), encoding="utf-8"
    )
    job_id = model.train(data_file=csv, data_dir=folder)
    expected = training.prepare(training.gather([csv, folder]))
    assert uploaded_bytes(aimock, created_jobs(aimock)[0]["training_file"]) == expected.jsonl
    text_job = model.train(data="\n".join(json.dumps(e) for e in good_examples(10)))
    list_job = model.train(data=[{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(10)])  # type: ignore[arg-type]
    assert len({job_id, text_job, list_job}) == 3
    assert len(model.session.storage.list_jobs()) == 3


@pytest.mark.aimock
def test_invalid_training_data_raises_with_the_report_and_uploads_nothing(
    aimock: Aimock, model: OpenAIModel, store: FileStorage
) -> None:
    fill(store, 2)  # 4 replies: fewer than OpenAI's minimum of 10
    with pytest.raises(hypotez.TrainingDataError) as err:
        model.dynamic_train()
    assert err.value.report.n_examples == 4  # type: ignore[attr-defined]
    assert "at least 10" in str(err.value)
    with pytest.raises(hypotez.TrainingDataError, match="cannot tell the format"):
        model.train(data="just some words")
    assert aimock.journal("/v1/files") == []


def test_save_job_id_keeps_what_is_known_and_exports_atomically(tmp_path: Path) -> None:
    store = FileStorage(tmp_path / "data")
    store.save_job(hypotez.JobRecord(id="ftjob-1", status="succeeded", fine_tuned_model="ft:x"))
    record = training.save_job_id(store, "ftjob-1", "first run", export_dir=tmp_path)
    assert (record.status, record.fine_tuned_model, record.description) == (
        "succeeded",
        "ft:x",
        "first run",
    )
    training.save_job_id(store, "ftjob-2", "second", "my_jobs.json", export_dir=tmp_path)
    rows = json.loads((tmp_path / "my_jobs.json").read_text(encoding="utf-8"))
    assert {r["job_id"]: r["description"] for r in rows} == {
        "ftjob-1": "first run",
        "ftjob-2": "second",
    }
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(hypotez.InputError):
        training.save_job_id(store, "../evil", "x")


SAVER = """
import sys
from hypotez import training
from hypotez_files.storage import FileStorage
store = FileStorage(sys.argv[1])
for i in range(40):
    training.save_job_id(store, f"ftjob-{sys.argv[2]}-{i}", f"run {i}")
"""


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path / "data"), tag])
        for tag in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    ids = {j.id for j in FileStorage(tmp_path / "data").list_jobs()}
    assert ids == {f"ftjob-{t}-{i}" for t in "ab" for i in range(40)}


def test_a_concurrent_save_never_leaves_a_stale_job_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B saves and exports while A is between listing the jobs and writing the file: the
    file left behind must still list both jobs (A must not rename a stale snapshot last)."""
    import threading

    store = FileStorage(tmp_path / "data")
    real_write = training.jobs.atomic_write_text
    other = threading.Thread(
        target=training.save_job_id,
        args=(store, "ftjob-b", "B", "j.json"),
        kwargs={"export_dir": tmp_path},
    )

    def write_after_the_other_save(path: Path, text: str) -> None:
        if not other.is_alive() and other.ident is None:
            other.start()
            other.join(timeout=0.5)  # with the lock held, B waits for us: do not deadlock
        real_write(path, text)

    monkeypatch.setattr(training.jobs, "atomic_write_text", write_after_the_other_save)
    training.save_job_id(store, "ftjob-a", "A", "j.json", export_dir=tmp_path)
    other.join(timeout=10)
    rows = json.loads((tmp_path / "j.json").read_text(encoding="utf-8"))
    assert sorted(r["job_id"] for r in rows) == ["ftjob-a", "ftjob-b"]

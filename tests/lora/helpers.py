"""Helpers shared by the LoRA tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

HERE = Path(__file__).parent

#: The settings that taught the fact 5/5 on SmolLM2 in the prototype: 12 examples, batch 4,
#: 4 epochs = 12 steps.
FACT_SETTINGS = {
    "rank": 16,
    "alpha": 32,
    "epochs": 4,
    "batch_size": 4,
    "learning_rate": 1e-3,
    "threads": 2,
    "seed": 0,
}


@attrs.define
class Trained:
    base: Any  # LoadedBase (its model is now the peft model's base)
    result: Any  # TrainResult
    encoder: Any  # ChatEncoder
    adapter: Path
    seconds: float


def run_llama(request: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    """Run llama_child.py (llama.cpp in its own process) and return its JSON answer."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "llama_child.py"), json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"llama.cpp child exited with {proc.returncode}:\n{proc.stderr[-2000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])

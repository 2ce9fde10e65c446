"""The GGUF LoRA adapter: written the way llama.cpp reads it, and checked before llama.cpp does.

Layout (what llama.cpp's ``convert_lora_to_gguf.py`` writes and ``llama_adapter_lora_init``
reads): metadata ``general.type = "adapter"``, ``general.architecture`` = the base's,
``adapter.type = "lora"``, ``adapter.lora.alpha``; for every adapted base tensor ``W`` (GGUF
name, e.g. ``blk.0.attn_q.weight``) two tensors ``W.lora_a`` and ``W.lora_b``. In numpy terms
``lora_a`` is peft's ``A`` ``(rank, in)`` and ``lora_b`` is ``B`` ``(out, rank)``; in GGUF's own
order (``ne``) that is ``[in, rank]`` and ``[rank, out]``, against the base's ``[in, out]``.
llama.cpp adds ``B @ A * alpha / rank`` to ``W``, exactly peft's (non-rsLoRA) scaling.

Rotary row order: llama.cpp stores q/k of ``llama`` models with the rows of each head
interleaved for its RoPE kernel, and transformers undoes that when it loads such a GGUF
(``LlamaTensorProcessor``). The model we train is therefore in Hugging Face row order, and the
``B`` of q and k must get llama.cpp's permutation back, else the adapter loads fine and adds its
update to the wrong rows. Only ``B`` moves: the permutation acts on output rows.

Validation: llama-cpp-python 0.3.36 does not notice when llama.cpp fails to load an adapter and
the first generation then segfaults, so :func:`validate_adapter` repeats llama.cpp's checks
(type, architecture, names, shapes) from the headers alone, plus truncation and non-finite
values, and raises :class:`InvalidAdapterError` instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from hypotez_lora.base import TARGET_MODULES, BaseInfo
from hypotez_lora.errors import BaseModelError, InvalidAdapterError, missing
from hypotez_lora.gguf_header import GGUFFormatError, GGUFHeader, read_header

#: GGUF architectures whose q/k rows transformers un-permutes on load (its
#: ``TENSOR_PROCESSORS`` maps them to ``LlamaTensorProcessor``), so the adapter must permute
#: them back. A test checks this against the installed transformers.
ROTARY_PERMUTED_ARCHITECTURES = frozenset({"llama"})

_HF_MODULE = re.compile(r"^(?:.*\.)?layers\.(\d+)\.self_attn\.(\w+)$")


def gguf_tensor_name(hf_module: str) -> str:
    """``model.layers.3.self_attn.q_proj`` -> ``blk.3.attn_q.weight`` (llama.cpp's name)."""
    match = _HF_MODULE.match(hf_module)
    if not match or match.group(2) not in TARGET_MODULES:
        raise ValueError(f"{hf_module!r} is not an attention projection the adapter can hold")
    return f"blk.{match.group(1)}.{TARGET_MODULES[match.group(2)]}.weight"


def llama_rotary_permute(rows: Any, n_head: int, n_head_kv: int | None = None) -> Any:
    """llama.cpp's q/k row permutation (``LlamaModel.permute`` in ``convert_hf_to_gguf.py``).

    Within each head, the two halves of the rotary dimensions become interleaved pairs.
    ``rows`` is ``(out_features, ...)``; for k pass ``n_head_kv``.
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = rows.shape
    return (
        rows.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)
    )


def gguf_lora_tensors(weights: Mapping[str, tuple[Any, Any]], info: BaseInfo) -> dict[str, Any]:
    """peft's (A, B) per HF module -> llama.cpp's ``*.lora_a`` / ``*.lora_b`` float32 arrays.

    Checks every name and shape against the base, so a mismatch fails here, at training time,
    not when someone loads the adapter.
    """
    import numpy as np

    permute = info.architecture in ROTARY_PERMUTED_ARCHITECTURES
    out: dict[str, Any] = {}
    for module, (a, b) in sorted(weights.items(), key=lambda kv: _layer_order(kv[0])):
        name = gguf_tensor_name(module)
        base_shape = info.tensor_shapes.get(name)
        if base_shape is None:
            raise BaseModelError(f"the base model has no tensor {name!r} (for {module})")
        a = np.ascontiguousarray(a, dtype=np.float32)
        b = np.ascontiguousarray(b, dtype=np.float32)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ValueError(f"{module}: A {a.shape} and B {b.shape} are not a LoRA pair")
        if (a.shape[1], b.shape[0]) != tuple(base_shape):
            raise BaseModelError(
                f"{module}: the LoRA maps {a.shape[1]} -> {b.shape[0]} but the base's {name} "
                f"is {base_shape[0]} -> {base_shape[1]}: trained on a different base?"
            )
        if permute and name.endswith((".attn_q.weight", ".attn_k.weight")):
            heads = info.n_head_kv if ".attn_k." in name else info.n_head
            b = np.ascontiguousarray(llama_rotary_permute(b, info.n_head, heads))
        out[f"{name}.lora_a"] = a
        out[f"{name}.lora_b"] = b
    if not out:
        raise ValueError("the model has no LoRA weights to write")
    return out


def _layer_order(module: str) -> tuple[int, str]:
    match = _HF_MODULE.match(module)
    return (int(match.group(1)), match.group(2)) if match else (1 << 30, module)


def write_adapter(
    path: str | os.PathLike[str],
    weights: Mapping[str, tuple[Any, Any]],
    info: BaseInfo,
    *,
    alpha: float,
    name: str | None = None,
) -> Path:
    """Write a GGUF LoRA adapter for the base ``info`` atomically; return its path.

    The file appears under its name only once complete (temp file in the same folder, fsync,
    rename), so a reader never loads half an adapter. The result is checked with
    :func:`validate_adapter` before it is published.
    """
    try:
        import gguf
    except ImportError as exc:
        raise missing("gguf") from exc
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = gguf_lora_tensors(weights, info)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # readable by a llama.cpp server running as another user
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), info.architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        writer.add_name(name or f"{info.name} LoRA")
        for tensor_name, data in tensors.items():
            writer.add_tensor(tensor_name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        validate_adapter(tmp, info)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)
    return target


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- validation ------------------------------------------------------------------------------


@attrs.frozen
class AdapterInfo:
    """A validated adapter: what it adapts and how."""

    path: Path
    architecture: str
    alpha: float
    rank: int
    #: GGUF names of the adapted base tensors.
    targets: tuple[str, ...]
    name: str | None = None


def validate_adapter(
    adapter: str | os.PathLike[str],
    base: str | os.PathLike[str] | BaseInfo | GGUFHeader,
    *,
    check_values: bool = True,
) -> AdapterInfo:
    """Check that llama.cpp can apply ``adapter`` to ``base``, without loading either.

    Reads only headers (and the adapter's own data when ``check_values``: a few MB). Raises
    :class:`InvalidAdapterError` naming the problem: not GGUF, truncated, not a LoRA adapter,
    another architecture, a tensor the base lacks, a shape that does not fit, a missing half of
    a pair, NaN or infinite values.
    """
    path = Path(adapter)
    label = repr(str(path))
    try:
        header = read_header(path)
    except GGUFFormatError as exc:
        raise InvalidAdapterError(f"The LoRA adapter cannot be used: {exc}") from exc
    base_arch, base_shapes = _base_facts(base)
    kind = header.get("general.type")
    if kind != "adapter":
        what = "a model" if kind == "model" or kind is None else f"of type {kind!r}"
        raise InvalidAdapterError(
            f"{label} is {what}, not a LoRA adapter (GGUF general.type is {kind!r}, llama.cpp "
            "needs 'adapter')."
        )
    if header.get("adapter.type") != "lora":
        raise InvalidAdapterError(
            f"{label} is a {header.get('adapter.type')!r} adapter; llama.cpp applies 'lora' ones."
        )
    if header.architecture != base_arch:
        raise InvalidAdapterError(
            f"{label} was made for a {header.architecture!r} model, but the base model is "
            f"{base_arch!r}: it belongs to another base."
        )
    pairs: dict[str, dict[str, Any]] = {}
    for tensor in header.tensors.values():
        if tensor.name.endswith((".lora_a", ".lora_b")):
            pairs.setdefault(tensor.name[:-7], {})[tensor.name[-1]] = tensor
        elif tensor.name.endswith("_norm.weight"):
            continue  # llama.cpp skips these too
        else:
            raise InvalidAdapterError(
                f"{label} holds the tensor {tensor.name!r}, which is not a LoRA tensor "
                "(names end in .lora_a or .lora_b)."
            )
    if not pairs:
        raise InvalidAdapterError(f"{label} holds no LoRA tensors.")
    absent = sorted(t for t in pairs if t not in base_shapes)
    if absent:
        raise InvalidAdapterError(
            f"{label} adapts {len(absent)} tensor(s) the base model does not have (e.g. "
            f"{absent[0]!r}): it belongs to another base."
        )
    ranks: set[int] = set()
    for target, pair in sorted(pairs.items()):
        if set(pair) != {"a", "b"}:
            half = "lora_b" if "a" in pair else "lora_a"
            raise InvalidAdapterError(f"{label} has no {target}.{half} for its other half.")
        a, b = pair["a"], pair["b"]
        for t in (a, b):
            if t.nbytes is None:
                raise InvalidAdapterError(
                    f"{label}: tensor {t.name!r} has the data type {t.type_name}, which this "
                    "check does not know (F32, F16, BF16 and Q8_0 are accepted)."
                )
            if len(t.shape) != 2:
                raise InvalidAdapterError(f"{label}: tensor {t.name!r} is not a matrix.")
        base_shape = base_shapes[target]
        if len(base_shape) != 2:
            raise InvalidAdapterError(f"{label} adapts {target!r}, which is not a matrix.")
        if target.endswith("token_embd.weight"):
            fits = base_shape[0] == b.shape[1] and base_shape[1] == a.shape[1]
        else:
            fits = base_shape[0] == a.shape[0] and base_shape[1] == b.shape[1]
        if not fits:
            raise InvalidAdapterError(
                f"{label}: the shapes of {target}.lora_a {list(a.shape)} and .lora_b "
                f"{list(b.shape)} do not fit the base's {list(base_shape)}: it belongs to "
                "another base (or another size of the same family)."
            )
        if not target.endswith("token_embd.weight") and a.shape[1] != b.shape[0]:
            raise InvalidAdapterError(f"{label}: {target}.lora_a and .lora_b disagree on the rank.")
        ranks.add(a.shape[1])
    if check_values:
        _check_finite(header, label)
    alpha = header.get("adapter.lora.alpha", 0.0)
    name = header.get("general.name")
    return AdapterInfo(
        path=path,
        architecture=str(base_arch),
        alpha=float(alpha) if isinstance(alpha, (int, float)) else 0.0,
        rank=max(ranks),
        targets=tuple(sorted(pairs)),
        name=name if isinstance(name, str) else None,
    )


def _base_facts(
    base: str | os.PathLike[str] | BaseInfo | GGUFHeader,
) -> tuple[str | None, Mapping[str, tuple[int, ...]]]:
    if isinstance(base, BaseInfo):
        return base.architecture, base.tensor_shapes
    if isinstance(base, GGUFHeader):
        return base.architecture, {n: t.shape for n, t in base.tensors.items()}
    try:
        header = read_header(base)
    except GGUFFormatError as exc:
        raise BaseModelError(f"The base model cannot be read: {exc}") from exc
    if header.get("general.type") == "adapter":
        raise BaseModelError(f"{str(base)!r} is a LoRA adapter, not a base model.")
    return header.architecture, {n: t.shape for n, t in header.tensors.items()}


def _check_finite(header: GGUFHeader, label: str) -> None:
    """Refuse NaN or infinite values: a diverged training run would otherwise load fine and
    answer with garbage."""
    try:
        import numpy as np
    except ImportError:  # numpy comes with every extra that runs models; without it, skip
        return
    dtypes = {"F32": np.float32, "F16": np.float16}
    with open(header.path, "rb") as fh:
        for tensor in header.tensors.values():
            if tensor.type_name not in ("F32", "F16", "BF16"):
                continue
            fh.seek(header.data_offset + tensor.offset)
            raw = fh.read(tensor.nbytes or 0)
            if tensor.type_name == "BF16":
                bits = np.frombuffer(raw, dtype=np.uint16)
                bad = bool(np.any((bits & 0x7F80) == 0x7F80))
            else:
                bad = not bool(
                    np.isfinite(np.frombuffer(raw, dtype=dtypes[tensor.type_name])).all()
                )
            if bad:
                raise InvalidAdapterError(
                    f"{label}: tensor {tensor.name!r} holds NaN or infinite values (training "
                    "diverged?); retrain with a lower learning rate."
                )

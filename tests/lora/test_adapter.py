"""The GGUF adapter writer (names, shapes, rotary row order, atomic write) and the validator
that refuses a wrong, truncated or foreign adapter before llama.cpp can crash on it (the
validate_adapter example of docs/backends/lora.md is test_a_good_adapter_passes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypotez_lora.adapter import (
    ROTARY_PERMUTED_ARCHITECTURES,
    gguf_lora_tensors,
    gguf_tensor_name,
    llama_rotary_permute,
    validate_adapter,
    write_adapter,
)
from hypotez_lora.base import BaseInfo, base_info
from hypotez_lora.errors import BaseModelError, InvalidAdapterError
from lora.helpers import run_llama

# A tiny grouped-query config: 4 query heads, 2 key/value heads of 4 dims, 2 layers.
N_EMBD, N_HEAD, N_HEAD_KV, HEAD_DIM, N_LAYER, RANK = 16, 4, 2, 4, 2, 3
KV = N_HEAD_KV * HEAD_DIM


def tiny_info(architecture: str = "llama") -> BaseInfo:
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (N_EMBD, 50)}
    for i in range(N_LAYER):
        shapes[f"blk.{i}.attn_q.weight"] = (N_EMBD, N_EMBD)
        shapes[f"blk.{i}.attn_k.weight"] = (N_EMBD, KV)
        shapes[f"blk.{i}.attn_v.weight"] = (N_EMBD, KV)
        shapes[f"blk.{i}.attn_output.weight"] = (N_EMBD, N_EMBD)
    return BaseInfo(
        path=Path("tiny.gguf"),
        architecture=architecture,
        name="tiny",
        context_length=128,
        n_layer=N_LAYER,
        n_head=N_HEAD,
        n_head_kv=N_HEAD_KV,
        tensor_shapes=shapes,
        file_size=0,
    )


def tiny_weights(seed: int = 0) -> dict[str, tuple[Any, Any]]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(N_LAYER):
        for proj, n_out in (("q_proj", N_EMBD), ("k_proj", KV), ("v_proj", KV), ("o_proj", N_EMBD)):
            a = rng.standard_normal((RANK, N_EMBD)).astype(np.float32)
            b = rng.standard_normal((n_out, RANK)).astype(np.float32)
            out[f"model.layers.{i}.self_attn.{proj}"] = (a, b)
    return out


def test_hf_module_names_map_to_llama_cpp_tensor_names() -> None:
    assert gguf_tensor_name("model.layers.0.self_attn.q_proj") == "blk.0.attn_q.weight"
    assert gguf_tensor_name("model.layers.12.self_attn.k_proj") == "blk.12.attn_k.weight"
    assert gguf_tensor_name("model.layers.3.self_attn.v_proj") == "blk.3.attn_v.weight"
    assert gguf_tensor_name("model.layers.3.self_attn.o_proj") == "blk.3.attn_output.weight"
    with pytest.raises(ValueError):
        gguf_tensor_name("model.layers.3.mlp.up_proj")


def test_written_names_shapes_and_rotary_row_order(tmp_path: Path) -> None:
    """Read back with the gguf package: llama.cpp's names and shapes, A unchanged, and B of q/k
    in llama.cpp's row order, i.e. what transformers' own GGUF loader turns back into B."""
    import gguf
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weights = tiny_weights()
    path = write_adapter(tmp_path / "a.gguf", weights, tiny_info(), alpha=6, name="t")
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == pytest.approx(6.0)
    tensors = {t.name: t for t in reader.tensors}
    expected_names = {
        f"blk.{i}.{stem}.weight.lora_{ab}"
        for i in range(N_LAYER)
        for stem in ("attn_q", "attn_k", "attn_v", "attn_output")
        for ab in "ab"
    }
    assert set(tensors) == expected_names
    undo = LlamaTensorProcessor()._reverse_permute_weights
    for module, (a, b) in weights.items():
        name = gguf_tensor_name(module)
        lora_a, lora_b = tensors[f"{name}.lora_a"], tensors[f"{name}.lora_b"]
        n_out = b.shape[0]
        # GGUF order (ne): lora_a [in, rank], lora_b [rank, out]; the base is [in, out].
        assert [int(d) for d in lora_a.shape] == [N_EMBD, RANK]
        assert [int(d) for d in lora_b.shape] == [RANK, n_out]
        assert lora_a.tensor_type == gguf.GGMLQuantizationType.F32
        np.testing.assert_array_equal(lora_a.data, a)
        stored_b = np.asarray(lora_b.data)
        if ".attn_q." in name:
            np.testing.assert_array_equal(undo(stored_b, N_HEAD, N_HEAD), b)
            assert not np.array_equal(stored_b, b)
        elif ".attn_k." in name:
            np.testing.assert_array_equal(undo(stored_b, N_HEAD, N_HEAD_KV), b)
            assert not np.array_equal(stored_b, b)
        else:
            np.testing.assert_array_equal(stored_b, b)


def test_rotary_permutation_interleaves_the_two_halves_of_each_head() -> None:
    rows = np.arange(8).reshape(8, 1)  # one head of 8 rotary dims: halves 0-3 and 4-7
    assert llama_rotary_permute(rows, 1)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    two_heads = np.arange(8).reshape(8, 1)
    assert llama_rotary_permute(two_heads, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_qwen2_rows_are_written_as_trained(tmp_path: Path) -> None:
    import gguf

    weights = tiny_weights()
    path = write_adapter(tmp_path / "q.gguf", weights, tiny_info("qwen2"), alpha=6)
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    b = weights["model.layers.1.self_attn.q_proj"][1]
    np.testing.assert_array_equal(tensors["blk.1.attn_q.weight.lora_b"].data, b)


def test_permuted_architectures_are_the_ones_transformers_unpermutes() -> None:
    """If transformers stops (or starts) reordering q/k rows for an architecture on GGUF load,
    the writer must follow: this catches it at the next upgrade."""
    from hypotez_lora.base import SUPPORTED_ARCHITECTURES
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, LlamaTensorProcessor

    unpermuted_by_transformers = {
        arch
        for arch in SUPPORTED_ARCHITECTURES
        if issubclass(TENSOR_PROCESSORS.get(arch, object), LlamaTensorProcessor)
    }
    assert unpermuted_by_transformers == set(ROTARY_PERMUTED_ARCHITECTURES)


def test_a_mismatched_lora_is_refused_at_write_time(tmp_path: Path) -> None:
    weights = tiny_weights()
    a, _ = weights["model.layers.0.self_attn.k_proj"]
    weights["model.layers.0.self_attn.k_proj"] = (a, np.zeros((N_EMBD, RANK), np.float32))
    with pytest.raises(BaseModelError, match="different base"):
        gguf_lora_tensors(weights, tiny_info())
    weights = {"model.layers.7.self_attn.q_proj": tiny_weights()["model.layers.0.self_attn.q_proj"]}
    with pytest.raises(BaseModelError, match="no tensor"):
        gguf_lora_tensors(weights, tiny_info())


def test_write_is_atomic_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "adapter.gguf"
    write_adapter(target, tiny_weights(0), tiny_info(), alpha=6)
    before = target.read_bytes()
    bad = tiny_weights(1)
    bad["model.layers.0.self_attn.q_proj"] = (
        bad["model.layers.0.self_attn.q_proj"][0],
        np.full((N_EMBD, RANK), np.nan, np.float32),
    )
    with pytest.raises(InvalidAdapterError, match="NaN"):
        write_adapter(target, bad, tiny_info(), alpha=6)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.gguf"]  # no temp file left
    write_adapter(target, tiny_weights(2), tiny_info(), alpha=6)
    assert target.read_bytes() != before
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o644)


# --- validation against real base files ------------------------------------------------------


def _tensors_for(base: Path, rank: int = 2, seed: int = 0) -> dict[str, Any]:
    """A random adapter for every attention projection of a real GGUF base."""
    info = base_info(base)
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in info.tensor_shapes.items():
        if name.startswith("blk.") and name.endswith(("attn_q.weight", "attn_v.weight")):
            n_in, n_out = shape
            layer, stem = name.split(".")[1], name.split(".")[2]
            proj = {"attn_q": "q_proj", "attn_v": "v_proj"}[stem]
            weights[f"model.layers.{layer}.self_attn.{proj}"] = (
                (rng.standard_normal((rank, n_in)) * 0.01).astype(np.float32),
                (rng.standard_normal((n_out, rank)) * 0.01).astype(np.float32),
            )
    return weights


def _raw_adapter(path: Path, arch: str, tensors: dict[str, Any], **kv: Any) -> Path:
    """Write an adapter by hand with the gguf package (to make broken ones)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_string("general.type", kv.get("general_type", "adapter"))
    if kv.get("adapter_type", "lora") is not None:
        writer.add_string("adapter.type", kv.get("adapter_type", "lora"))
    writer.add_float32("adapter.lora.alpha", 4.0)
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def good_adapter(tiny_base: Path, tmp_path: Path) -> Path:
    return write_adapter(
        tmp_path / "good.gguf", _tensors_for(tiny_base), base_info(tiny_base), alpha=4
    )


def test_a_good_adapter_passes(good_adapter: Path, tiny_base: Path) -> None:
    info = validate_adapter(good_adapter, tiny_base)
    assert info.architecture == "llama" and info.rank == 2 and info.alpha == 4.0
    assert "blk.1.attn_v.weight" in info.targets and len(info.targets) == 4


def test_a_base_model_is_not_an_adapter(tiny_base: Path) -> None:
    with pytest.raises(InvalidAdapterError, match="not a LoRA adapter"):
        validate_adapter(tiny_base, tiny_base)


def test_a_truncated_adapter_is_refused(
    good_adapter: Path, tiny_base: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good_adapter.read_bytes()[:-100])
    with pytest.raises(InvalidAdapterError, match="truncated"):
        validate_adapter(cut, tiny_base)


def test_a_foreign_file_is_refused(tmp_path: Path, tiny_base: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_text('{"this": "is json"}')
    with pytest.raises(InvalidAdapterError, match="not a GGUF file"):
        validate_adapter(junk, tiny_base)


def test_an_adapter_of_another_base_is_refused(
    good_adapter: Path, tiny_base: Path, smollm2: Path, tmp_path: Path
) -> None:
    # Same architecture, other sizes: shapes do not fit.
    with pytest.raises(InvalidAdapterError, match="do not fit"):
        validate_adapter(good_adapter, smollm2)
    # An adapter for SmolLM2's 30 blocks on a 2-block base: names missing.
    big = write_adapter(tmp_path / "smol.gguf", _tensors_for(smollm2), base_info(smollm2), alpha=4)
    with pytest.raises(InvalidAdapterError, match="does not have"):
        validate_adapter(big, tiny_base)


def test_an_adapter_of_another_architecture_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    weights = _tensors_for(tiny_base)
    tensors = gguf_lora_tensors(weights, base_info(tiny_base))
    path = _raw_adapter(tmp_path / "qwen.gguf", "qwen2", tensors)
    with pytest.raises(InvalidAdapterError, match="'qwen2' model"):
        validate_adapter(path, tiny_base)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("half", "no blk.0.attn_q.weight.lora_b"),
        ("extra", "not a LoRA tensor"),
        ("type", "'control_vector' adapter"),
        ("transposed", "do not fit"),
        ("nan", "NaN"),
    ],
)
def test_broken_adapters_are_refused(
    tiny_base: Path, tmp_path: Path, change: str, message: str
) -> None:
    tensors = gguf_lora_tensors(_tensors_for(tiny_base), base_info(tiny_base))
    kv: dict[str, Any] = {}
    if change == "half":
        del tensors["blk.0.attn_q.weight.lora_b"]
    elif change == "extra":
        tensors["blk.0.attn_q.weight"] = np.zeros((4, 4), np.float32)
    elif change == "type":
        kv["adapter_type"] = "control_vector"
    elif change == "transposed":
        a = tensors["blk.0.attn_q.weight.lora_a"]
        tensors["blk.0.attn_q.weight.lora_a"] = np.ascontiguousarray(a.T)
    elif change == "nan":
        tensors["blk.1.attn_v.weight.lora_b"] = tensors["blk.1.attn_v.weight.lora_b"] * np.nan
    path = _raw_adapter(tmp_path / f"{change}.gguf", "llama", tensors, **kv)
    with pytest.raises(InvalidAdapterError, match=message):
        validate_adapter(path, tiny_base)


@pytest.mark.slow
def test_llama_cpp_is_never_reached_with_a_bad_adapter(
    good_adapter: Path, tiny_base: Path, smollm2: Path, tmp_path: Path
) -> None:
    """The guarded path (validate, then Llama(lora_path=...)) in a child process: a truncated,
    a foreign-base and a non-GGUF adapter are each refused with a clear message, and the child
    exits normally instead of crashing. A good adapter loads and generates."""
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good_adapter.read_bytes()[:-100])
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(4096))
    for bad, reason in ((cut, "truncated"), (good_adapter, "do not fit"), (junk, "not a GGUF")):
        out = run_llama({"model": str(smollm2), "lora": str(bad), "validate": True, "ask": ["Hi"]})
        assert "InvalidAdapterError" in out["refused"] and reason in out["refused"]
    ok = run_llama(
        {"model": str(tiny_base), "lora": str(good_adapter), "validate": True, "ask": ["Hi"]}
    )
    assert len(ok["answers"]) == 1

"""The stdlib GGUF header reader agrees with the gguf package and refuses broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypotez_lora.gguf_header import GGUFFormatError, read_header


def test_header_matches_the_gguf_package(tiny_base: Path) -> None:
    import gguf

    header = read_header(tiny_base)
    reference = gguf.GGUFReader(tiny_base)
    assert header.architecture == "llama"
    assert header.get("llama.context_length") == 2048
    assert header.array_lengths["tokenizer.ggml.tokens"] == len(
        reference.fields["tokenizer.ggml.tokens"].data
    )
    assert {t.name: tuple(int(d) for d in t.shape) for t in reference.tensors} == {
        name: t.shape for name, t in header.tensors.items()
    }
    assert header.data_offset == reference.data_offset
    for tensor in reference.tensors:
        assert header.tensors[tensor.name].nbytes == tensor.n_bytes


def test_reads_the_tiny_smollm2_header_quickly(smollm2: Path) -> None:
    header = read_header(smollm2)
    assert header.architecture == "llama"
    assert header.get("llama.attention.head_count") == 9
    assert header.get("llama.attention.head_count_kv") == 3
    assert header.tensors["blk.0.attn_k.weight"].shape == (576, 192)
    assert header.array_lengths["tokenizer.ggml.tokens"] == 49152


@pytest.mark.parametrize("cut", [3, 20, 500, -10])
def test_a_truncated_file_is_refused(tiny_base: Path, tmp_path: Path, cut: int) -> None:
    data = tiny_base.read_bytes()
    broken = tmp_path / "cut.gguf"
    broken.write_bytes(data[:cut])
    with pytest.raises(GGUFFormatError, match=r"truncated|not a GGUF"):
        read_header(broken)


@pytest.mark.parametrize(
    "content", [b"", b"hello world, not a model at all", b"GGUF\x09\x00\x00\x00" + bytes(40)]
)
def test_a_foreign_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFFormatError):
        read_header(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GGUFFormatError, match="Cannot read"):
        read_header(tmp_path / "nope.gguf")

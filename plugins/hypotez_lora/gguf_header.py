"""A small, dependency-free reader for the header of a GGUF file (metadata and tensor table).

Why our own instead of ``gguf.GGUFReader``: the adapter validator runs on the chat path, right
before ``llama_cpp.Llama(lora_path=...)``, where the ``gguf`` package may not be installed (it
belongs to the ``lora`` extra, not to ``local``). And ``GGUFReader`` materialises every array
(a 49k-entry vocabulary and its merges as numpy memmaps), which took 10-20 s per file on this
machine, while skipping them here takes milliseconds.

It never trusts the file: every length is checked against the file size, so a truncated or
foreign file raises :class:`GGUFFormatError` (a ``ValueError``) instead of reading garbage.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import attrs

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types.
_SCALARS: dict[int, str] = {
    0: "<B",  # uint8
    1: "<b",  # int8
    2: "<H",  # uint16
    3: "<h",  # int16
    4: "<I",  # uint32
    5: "<i",  # int32
    6: "<f",  # float32
    7: "<?",  # bool
    10: "<Q",  # uint64
    11: "<q",  # int64
    12: "<d",  # float64
}
_STRING, _ARRAY = 8, 9

# ggml tensor types: name, elements per block, bytes per block. Only the types whose size we
# need to know (an adapter's) are listed; a base model's quantized tensors only need their shape.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    8: ("Q8_0", 32, 34),
    30: ("BF16", 1, 2),
}

# Sanity bounds: a header field beyond these is a corrupt file, not a real model.
_MAX_COUNT = 1 << 24
_MAX_DIMS = 8


class GGUFFormatError(ValueError):
    """The file is not a (complete) GGUF file."""


@attrs.frozen
class TensorInfo:
    """One entry of the tensor table.

    ``shape`` is in GGUF/ggml order (``ne``: the fastest-varying dimension first), the reverse of
    numpy's order: a ``[out, in]`` torch weight is stored as ``shape == (in, out)``.
    """

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int  # relative to the start of the data section

    @property
    def type_name(self) -> str:
        known = GGML_TYPES.get(self.type_id)
        return known[0] if known else f"type {self.type_id}"

    @property
    def n_elements(self) -> int:
        n = 1
        for dim in self.shape:
            n *= dim
        return n

    @property
    def nbytes(self) -> int | None:
        """Size of the tensor's data, or None for a type this reader does not size."""
        known = GGML_TYPES.get(self.type_id)
        if known is None:
            return None
        _, block, block_bytes = known
        return -(-self.n_elements // block) * block_bytes


@attrs.frozen
class GGUFHeader:
    """Metadata (arrays reduced to their length) and tensor table of one GGUF file."""

    path: Path
    version: int
    metadata: Mapping[str, Any]
    #: For array values: their element count (the arrays themselves are skipped).
    array_lengths: Mapping[str, int]
    tensors: Mapping[str, TensorInfo]
    data_offset: int
    file_size: int

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    @property
    def architecture(self) -> str | None:
        arch = self.metadata.get("general.architecture")
        return arch if isinstance(arch, str) else None


class _Reader:
    def __init__(self, fh: BinaryIO, size: int, path: Path) -> None:
        self.fh, self.size, self.path = fh, size, path

    def read(self, n: int) -> bytes:
        if n < 0 or self.fh.tell() + n > self.size:
            raise GGUFFormatError(
                f"{str(self.path)!r} ends in the middle of its GGUF header (truncated or not a "
                "GGUF file)."
            )
        return self.fh.read(n)

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        raw = self.read(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise GGUFFormatError(f"{str(self.path)!r} holds a string that is not UTF-8.") from exc

    def skip(self, n: int) -> None:
        if n < 0 or self.fh.tell() + n > self.size:
            self.read(n)  # raises the truncation error
        self.fh.seek(n, os.SEEK_CUR)

    def value(self, type_id: int) -> Any:
        if type_id in _SCALARS:
            return self.unpack(_SCALARS[type_id])
        if type_id == _STRING:
            return self.string()
        raise GGUFFormatError(f"{str(self.path)!r} has an unknown GGUF value type {type_id}.")

    def skip_array(self) -> int:
        item_type = self.unpack("<I")
        count = self.unpack("<Q")
        if item_type in _SCALARS:
            self.skip(count * struct.calcsize(_SCALARS[item_type]))
        elif item_type == _STRING:
            for _ in range(count):
                self.skip(self.unpack("<Q"))
        elif item_type == _ARRAY:
            for _ in range(count):
                self.skip_array()
        else:
            raise GGUFFormatError(f"{str(self.path)!r} has an unknown GGUF array type {item_type}.")
        return int(count)


def read_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read the metadata and tensor table of ``path``; arrays are skipped, not loaded.

    Also checks that every tensor of a type it can size ends inside the file, so a truncated
    file is caught here rather than by a reader that maps past its end.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise GGUFFormatError(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from exc
    with fh:
        r = _Reader(fh, size, path)
        if size < 24 or r.read(4) != MAGIC:
            raise GGUFFormatError(f"{str(path)!r} is not a GGUF file (no GGUF magic bytes).")
        version = r.unpack("<I")
        if version not in (2, 3):
            raise GGUFFormatError(
                f"{str(path)!r} is GGUF version {version}; only 2 and 3 are read."
            )
        n_tensors, n_kv = r.unpack("<Q"), r.unpack("<Q")
        if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
            raise GGUFFormatError(f"{str(path)!r} has an implausible GGUF header (corrupt).")
        metadata: dict[str, Any] = {}
        arrays: dict[str, int] = {}
        for _ in range(n_kv):
            key = r.string()
            type_id = r.unpack("<I")
            if type_id == _ARRAY:
                arrays[key] = r.skip_array()
            else:
                metadata[key] = r.value(type_id)
        tensors: dict[str, TensorInfo] = {}
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.unpack("<I")
            if not 1 <= n_dims <= _MAX_DIMS:
                raise GGUFFormatError(f"{str(path)!r}: tensor {name!r} has {n_dims} dimensions.")
            shape = tuple(r.unpack("<Q") for _ in range(n_dims))
            type_id, offset = r.unpack("<I"), r.unpack("<Q")
            tensors[name] = TensorInfo(name, shape, type_id, offset)
        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0:
            raise GGUFFormatError(f"{str(path)!r} has an invalid general.alignment {alignment!r}.")
        data_offset = -(-fh.tell() // alignment) * alignment
    for info in tensors.values():
        nbytes = info.nbytes
        if nbytes is not None and data_offset + info.offset + nbytes > size:
            raise GGUFFormatError(
                f"{str(path)!r} is truncated: tensor {info.name!r} ends at byte "
                f"{data_offset + info.offset + nbytes}, the file has {size}."
            )
    return GGUFHeader(path, version, metadata, arrays, tensors, data_offset, size)

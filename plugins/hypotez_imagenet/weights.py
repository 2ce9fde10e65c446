"""Read a legacy (pre-1.6, non-zip) PyTorch ``state_dict`` file into numpy arrays, without torch.

The legacy format is five things written one after another:

1. a pickled magic number, 2. a pickled protocol version, 3. pickled system info (endianness),
4. the pickled ``state_dict``, whose tensors refer to storages by *persistent id*,
5. a pickled list of storage keys, then each storage's raw bytes in that order, each preceded by
   its element count as a little-endian int64.

``pickle.load`` on such a file would import and call whatever the file names, so a crafted file
could run code. :class:`_RestrictedUnpickler` resolves exactly the four globals a state_dict needs
(``OrderedDict``, ``_rebuild_tensor_v2`` and the storage type markers) to harmless local stand-ins
and refuses every other one.
"""

from __future__ import annotations

import collections
import pickle
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: torch.load's LEGACY magic number: a file that does not start with it is not this format.
_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001


class WeightsFormatError(ValueError):
    """The file is not a legacy torch state_dict this reader understands (or is tampered with)."""


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co.: only remembers the numpy dtype."""

    def __init__(self, dtype: str) -> None:
        self.dtype = dtype


_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _Storage:
    """A storage announced by the pickle; its bytes are filled in after the pickle ends."""

    def __init__(self, dtype: str, numel: int) -> None:
        self.dtype, self.numel = dtype, numel
        self.array: np.ndarray | None = None


class _TensorRef:
    """What ``_rebuild_tensor_v2`` returns here: a view to build once the storage is read."""

    def __init__(
        self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self) -> np.ndarray:
        import numpy as np

        data = self.storage.array
        assert data is not None
        # Bounds check before as_strided: a lying size/stride must not read outside the buffer.
        last = self.offset + sum(
            (n - 1) * s for n, s in zip(self.size, self.stride, strict=True) if n > 0
        )
        outside = self.offset < 0 or any(s < 0 for s in self.stride) or last >= len(data)
        if outside and 0 not in self.size:
            raise WeightsFormatError("a tensor's size and stride point outside its storage")
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_rest: Any
) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise WeightsFormatError("a tensor refers to something that is not a storage")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise WeightsFormatError(
                f"refusing to load {module}.{name}: a weights file may only hold tensors"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        # ("storage", storage type, key, device, element count, view metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise WeightsFormatError(f"unexpected persistent id {pid!r:.80}")
        _, storage_type, key, _location, numel, view = pid
        if view is not None:
            raise WeightsFormatError("storage views (torch < 0.4 files) are not supported")
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise WeightsFormatError("malformed storage reference")
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, numel)
        return self._storages[key]


def _plain_load(f: IO[bytes]) -> Any:
    """The small header pickles hold only ints and dicts: refuse any global at all."""

    class _NoGlobals(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Callable[..., Any]:
            raise WeightsFormatError(f"unexpected {module}.{name} in the file header")

    return _NoGlobals(f).load()


def load_state_dict(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a legacy torch ``state_dict`` file, as read-only-safe numpy arrays."""
    import numpy as np

    with open(path, "rb") as f:
        try:
            if _plain_load(f) != _MAGIC:
                raise WeightsFormatError("not a legacy PyTorch file (wrong magic number)")
            if _plain_load(f) != _PROTOCOL:
                raise WeightsFormatError("unsupported legacy PyTorch protocol version")
            info = _plain_load(f)
            if not isinstance(info, dict) or not info.get("little_endian", False):
                raise WeightsFormatError("only little-endian weights files are supported")
            storages: dict[str, _Storage] = {}
            state = _RestrictedUnpickler(f, storages).load()
            keys = _plain_load(f)
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
            raise WeightsFormatError(f"damaged pickle: {exc}") from exc
        if not isinstance(state, dict) or not isinstance(keys, list) or set(keys) != set(storages):
            raise WeightsFormatError("the storage list does not match the tensors")
        for key in keys:
            storage = storages[key]
            count = np.frombuffer(f.read(8), dtype="<i8")
            if count.size != 1 or int(count[0]) != storage.numel:
                raise WeightsFormatError(f"storage {key} is truncated or has the wrong size")
            nbytes = storage.numel * np.dtype(storage.dtype).itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise WeightsFormatError(f"storage {key} is truncated")
            storage.array = np.frombuffer(raw, dtype=storage.dtype)
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise WeightsFormatError(f"entry {name!r} is not a tensor")
        out[str(name)] = value.materialize()
    return out

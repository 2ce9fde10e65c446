"""The numpy implementation checked against first principles: naive convolutions, batch-norm
folding, TF "SAME" padding, the torch-pickle reader, and a valid, deterministic distribution."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import hypotez
import numpy as np
import pytest
from hypotez_imagenet import model
from hypotez_imagenet.backend import ImagenetVision, default_weights_path
from hypotez_imagenet.weights import WeightsFormatError, load_state_dict

RNG = np.random.default_rng(1234)


def naive_conv(x: np.ndarray, w: np.ndarray, stride: int, groups: int) -> np.ndarray:
    """Direct convolution, (H, W, Cin) x (Cout, Cin/groups, k, k), with TF SAME padding."""
    h, wd, cin = x.shape
    cout, cpg, k, _ = w.shape
    oh, ow = -(-h // stride), -(-wd // stride)
    pad_h = max((oh - 1) * stride + k - h, 0)
    pad_w = max((ow - 1) * stride + k - wd, 0)
    xp = np.zeros((h + pad_h, wd + pad_w, cin))
    xp[pad_h // 2 : pad_h // 2 + h, pad_w // 2 : pad_w // 2 + wd] = x
    out = np.zeros((oh, ow, cout))
    per_group_out = cout // groups
    for o in range(cout):
        g = o // per_group_out
        for i in range(oh):
            for j in range(ow):
                patch = xp[
                    i * stride : i * stride + k,
                    j * stride : j * stride + k,
                    g * cpg : (g + 1) * cpg,
                ]
                out[i, j, o] = np.sum(patch * w[o].transpose(1, 2, 0))
    return out


@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [((7, 9), 3, 1), ((8, 8), 5, 2), ((11, 6), 5, 1), ((9, 10), 3, 2)]
)
def test_depthwise_matches_a_direct_convolution(
    size: tuple[int, int], kernel: int, stride: int
) -> None:
    channels = 4
    x = RNG.normal(size=(*size, channels)).astype(np.float32)
    w = RNG.normal(size=(channels, 1, kernel, kernel)).astype(np.float32)
    bias = RNG.normal(size=channels).astype(np.float32)
    conv = model.Conv(np.ascontiguousarray(w[:, 0].transpose(1, 2, 0)), bias)
    got = model._depthwise(x[None].copy(), conv, kernel, stride)[0]
    want = np.clip(naive_conv(x, w, stride, groups=channels) + bias, 0, 6)
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("size", [(10, 10), (9, 13)])
def test_stem_im2col_matches_a_direct_convolution(size: tuple[int, int]) -> None:
    x = RNG.normal(size=(*size, 3)).astype(np.float32)
    w = RNG.normal(size=(8, 3, 3, 3)).astype(np.float32)
    bias = RNG.normal(size=8).astype(np.float32)
    conv = model.Conv(np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(27, -1)), bias)
    got = model._stem(x[None], conv)[0]
    want = np.clip(naive_conv(x, w, 2, groups=1) + bias, 0, 6)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_same_padding_puts_the_odd_pixel_bottom_right() -> None:
    x = np.ones((1, 224, 224, 1), np.float32)
    padded = model._same_pad(x, 3, 2)  # 224 -> 112 needs 1 extra row and column
    assert padded.shape == (1, 225, 225, 1)
    assert padded[0, 0, 0, 0] == 1 and padded[0, -1, -1, 0] == 0
    assert model._same_pad(x, 5, 1).shape == (1, 228, 228, 1)


def test_batch_norm_folding_equals_conv_then_batch_norm() -> None:
    cout, cin = 6, 5
    weights = {
        "c.weight": RNG.normal(size=(cout, cin, 1, 1)).astype(np.float32),
        "bn.weight": RNG.normal(size=cout).astype(np.float32),
        "bn.bias": RNG.normal(size=cout).astype(np.float32),
        "bn.running_mean": RNG.normal(size=cout).astype(np.float32),
        "bn.running_var": RNG.uniform(0.1, 2, size=cout).astype(np.float32),
    }
    x = RNG.normal(size=(4, cin))
    conv = x @ weights["c.weight"][:, :, 0, 0].T
    bn = (conv - weights["bn.running_mean"]) / np.sqrt(weights["bn.running_var"] + model.BN_EPSILON)
    want = bn * weights["bn.weight"] + weights["bn.bias"]
    folded = model._pointwise(weights, "c", "bn")
    np.testing.assert_allclose(x @ folded.weight + folded.bias, want, rtol=1e-5, atol=1e-5)


def test_probabilities_are_a_distribution_and_deterministic(
    backend: ImagenetVision, photo: dict[str, Path], tmp_path: Path
) -> None:
    first = backend.probabilities(photo["cat"])
    assert first.shape == (1000,)
    assert first.dtype == np.float64
    assert np.all(first >= 0)
    assert abs(first.sum() - 1.0) < 1e-12
    np.testing.assert_array_equal(backend.probabilities(photo["cat"]), first)
    # A second, independently loaded instance gives the very same numbers.
    other = ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path))
    np.testing.assert_array_equal(other.probabilities(photo["cat"]), first)


def test_top_k_is_sorted_and_merges_duplicate_class_names(
    backend: ImagenetVision, photo: dict[str, Path]
) -> None:
    probs = backend.probabilities(photo["rocket"])
    ranked = backend.classify(photo["rocket"], 1000)
    values = [p for _, p in ranked]
    assert values == sorted(values, reverse=True)
    assert len({label for label, _ in ranked}) == len(ranked) == 998  # two names are used twice
    missile = dict(ranked)["missile"]
    assert missile == pytest.approx(probs[657] + probs[744])
    assert sum(values) == pytest.approx(1.0)


def test_weights_file_reads_every_tensor_with_its_strides() -> None:
    weights = load_state_dict(default_weights_path())
    assert len(weights) == 296
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert weights["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(np.isfinite(v).all() for v in weights.values())
    # Variances are never negative (dead channels have exactly 0); a mis-read offset breaks this.
    assert all(v.min() >= 0 for k, v in weights.items() if k.endswith("running_var"))


def _legacy_file(body: bytes, keys: list[str], storages: list[bytes]) -> bytes:
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(body)
    pickle.dump(keys, out, protocol=2)
    for raw in storages:
        out.write(raw)
    return out.getvalue()


def _tensor_pickle(size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> bytes:
    """The pickle torch writes for {"t": tensor} (one FloatStorage, key "0")."""

    def tup(values: tuple[int, ...]) -> bytes:
        return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"

    return (
        b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00t"
        b"ctorch._utils\n_rebuild_tensor_v2\n"
        b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
        + b"J"
        + struct.pack("<i", numel)
        + b"NtQ"
        + b"K\x00"
        + tup(size)
        + tup(stride)
        + b"\x89ccollections\nOrderedDict\n)Rtq\x02Ru.",
    )[0]


def test_reader_honours_non_contiguous_strides(tmp_path: Path) -> None:
    data = np.arange(6, dtype="<f4")
    body = _tensor_pickle((2, 3), (1, 2), 6)  # a transposed (3, 2) layout
    path = tmp_path / "w.pth"
    path.write_bytes(_legacy_file(body, ["0"], [struct.pack("<q", 6) + data.tobytes()]))
    got = load_state_dict(str(path))["t"]
    np.testing.assert_array_equal(got, data.reshape(3, 2).T)


def test_reader_refuses_strides_outside_the_storage(tmp_path: Path) -> None:
    body = _tensor_pickle((2, 3), (3, 2), 6)  # would read element 7 of 6
    path = tmp_path / "w.pth"
    path.write_bytes(_legacy_file(body, ["0"], [struct.pack("<q", 6) + bytes(24)]))
    with pytest.raises(WeightsFormatError, match="outside"):
        load_state_dict(str(path))


def test_reader_never_runs_code_from_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    body = pickle.dumps(_Evil(str(marker)), protocol=2)
    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_file(body, [], []))
    with pytest.raises(WeightsFormatError, match=r"refusing to load (posix|os|nt)\.system"):
        load_state_dict(str(path))
    assert not marker.exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def test_truncated_weights_are_a_clear_backend_error(
    tmp_path: Path, photo: dict[str, Path]
) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(Path(default_weights_path()).read_bytes()[:5_000_000])
    vision = ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path), weights_path=str(broken))
    with pytest.raises(hypotez.BackendError, match=r"broken\.pth.*truncated.*pip install"):
        vision.describe(photo["cat"])


def test_a_non_torch_file_as_weights_is_a_clear_backend_error(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    wrong.write_bytes(b"PK\x03\x04 a zip, as torch>=1.6 writes")
    vision = ImagenetVision(hypotez.Settings.load(env={}, home=tmp_path), weights_path=str(wrong))
    with pytest.raises(hypotez.BackendError, match=r"wrong\.pth"):
        vision.load()

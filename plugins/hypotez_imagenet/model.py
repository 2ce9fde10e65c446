"""EfficientNet-Lite0 inference in plain numpy.

EfficientNet-Lite is EfficientNet-B0 made friendly to integer accelerators: no squeeze-and-
excitation, ReLU6 instead of swish, and a stem and head that are not scaled. The network is:

    stem: 3x3 conv, stride 2, 3 -> 32, BN, ReLU6
    16 MBConv blocks (table ``STAGES``): 1x1 expand + BN + ReLU6 (skipped when the ratio is 1),
        kxk depthwise conv + BN + ReLU6, 1x1 project + BN, identity skip when shape is kept
    head: 1x1 conv 320 -> 1280, BN, ReLU6, global average pool, fully connected 1280 -> 1000

The weights were trained in TensorFlow, so convolutions use TF "SAME" padding (the extra pixel
of an uneven pad goes bottom/right), and batch norm uses TF's epsilon of 1e-3. Batch norm is folded
into the preceding convolution once, at load time, so inference is only convolutions and clamps.

Arrays are channels-last (N, H, W, C) so that every 1x1 convolution (most of the work) is one
matrix product that numpy hands to BLAS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

BN_EPSILON = 1e-3
INPUT_SIZE = 224
NUM_CLASSES = 1000

#: (repeats, kernel, first stride, expand ratio, output channels) per stage, as published.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


class Conv(NamedTuple):
    """A convolution with its batch norm folded in. ``weight`` layout depends on the kind."""

    weight: np.ndarray
    bias: np.ndarray


class Block(NamedTuple):
    expand: Conv | None  # weight (Cin, Cexp)
    depthwise: Conv  # weight (k, k, Cexp)
    project: Conv  # weight (Cexp, Cout)
    kernel: int
    stride: int
    skip: bool


class Network(NamedTuple):
    stem: Conv  # weight (3*3*3, 32), rows ordered (dy, dx, cin)
    blocks: tuple[Block, ...]
    head: Conv  # weight (320, 1280)
    fc: Conv  # weight (1280, 1000)


def _fold(weights: Mapping[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``bn`` into ``conv``: returns the (Cout, ...) weight and the bias, in float32."""
    import numpy as np

    w = weights[f"{conv}.weight"].astype(np.float64)
    gamma, beta = weights[f"{bn}.weight"], weights[f"{bn}.bias"]
    mean, var = weights[f"{bn}.running_mean"], weights[f"{bn}.running_var"]
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPSILON)
    folded = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    bias = beta - mean * scale
    return folded.astype(np.float32), bias.astype(np.float32)


def _pointwise(weights: Mapping[str, np.ndarray], conv: str, bn: str) -> Conv:
    import numpy as np

    w, b = _fold(weights, conv, bn)  # (Cout, Cin, 1, 1)
    return Conv(np.ascontiguousarray(w[:, :, 0, 0].T), b)


def build_network(weights: Mapping[str, np.ndarray]) -> Network:
    """Turn a PyTorch-named EfficientNet-Lite0 state_dict into folded, channels-last weights."""
    import numpy as np

    try:
        w, b = _fold(weights, "_conv_stem", "_bn0")  # (32, 3, 3, 3): out, in, dy, dx
        stem = Conv(np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(27, -1)), b)
        blocks = []
        channels, index = 32, 0
        for repeats, kernel, stride, ratio, out in STAGES:
            for r in range(repeats):
                p = f"_blocks.{index}"
                expand = (
                    _pointwise(weights, f"{p}._expand_conv", f"{p}._bn0") if ratio != 1 else None
                )
                dw, dwb = _fold(weights, f"{p}._depthwise_conv", f"{p}._bn1")  # (C, 1, k, k)
                if dw.shape[2:] != (kernel, kernel):
                    raise ValueError(
                        f"{p} has a {dw.shape[2]}x{dw.shape[3]} kernel, expected {kernel}"
                    )
                depthwise = Conv(np.ascontiguousarray(dw[:, 0].transpose(1, 2, 0)), dwb)
                project = _pointwise(weights, f"{p}._project_conv", f"{p}._bn2")
                block_stride = stride if r == 0 else 1
                skip = block_stride == 1 and channels == out
                blocks.append(Block(expand, depthwise, project, kernel, block_stride, skip))
                channels, index = out, index + 1
        head = _pointwise(weights, "_conv_head", "_bn1")
        fc = Conv(
            np.ascontiguousarray(weights["_fc.weight"].T.astype(np.float32)),
            weights["_fc.bias"].astype(np.float32),
        )
    except KeyError as exc:
        raise ValueError(
            f"the weights have no tensor {exc.args[0]!r}: not EfficientNet-Lite0"
        ) from None
    if f"_blocks.{index}._project_conv.weight" in weights or fc.weight.shape != (1280, NUM_CLASSES):
        raise ValueError("the weights do not have EfficientNet-Lite0's shape")
    return Network(stem, tuple(blocks), head, fc)


def _same_pad(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """TF "SAME" padding on H and W: output = ceil(input / stride), extra pixel bottom/right."""
    import numpy as np

    pads = []
    for size in x.shape[1:3]:
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _relu6(x: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.clip(x, 0.0, 6.0, out=x)


def _stem(x: np.ndarray, conv: Conv) -> np.ndarray:
    """3x3 stride-2 convolution as one matrix product over the 27 shifted views (im2col)."""
    import numpy as np

    _, h, w, _ = x.shape
    oh, ow = math.ceil(h / 2), math.ceil(w / 2)
    xp = _same_pad(x, 3, 2)
    cols = np.concatenate(
        [
            xp[:, dy : dy + 2 * oh : 2, dx : dx + 2 * ow : 2, :]
            for dy in range(3)
            for dx in range(3)
        ],
        axis=-1,
    )
    return _relu6(cols @ conv.weight + conv.bias)


def _depthwise(x: np.ndarray, conv: Conv, kernel: int, stride: int) -> np.ndarray:
    """Depthwise kxk convolution: a sum of k*k shifted, per-channel-scaled views."""
    import numpy as np

    _, h, w, c = x.shape
    oh, ow = math.ceil(h / stride), math.ceil(w / stride)
    xp = _same_pad(x, kernel, stride)
    out = np.empty((x.shape[0], oh, ow, c), dtype=np.float32)
    out[...] = conv.bias
    for dy in range(kernel):
        for dx in range(kernel):
            view = xp[:, dy : dy + stride * oh : stride, dx : dx + stride * ow : stride, :]
            out += view * conv.weight[dy, dx]
    return _relu6(out)


def forward(net: Network, images: np.ndarray) -> np.ndarray:
    """Logits (N, 1000) for preprocessed images (N, 224, 224, 3) in float32."""
    x = _stem(images, net.stem)
    for block in net.blocks:
        inputs = x
        if block.expand is not None:
            x = _relu6(x @ block.expand.weight + block.expand.bias)
        x = _depthwise(x, block.depthwise, block.kernel, block.stride)
        x = x @ block.project.weight + block.project.bias  # linear bottleneck: no activation
        if block.skip:
            x += inputs
    x = _relu6(x @ net.head.weight + net.head.bias)
    pooled = x.mean(axis=(1, 2))
    result: np.ndarray = pooled @ net.fc.weight + net.fc.bias
    return result


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed in float64 so each row sums to 1 to within 1e-12."""
    import numpy as np

    z = logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    result: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return result

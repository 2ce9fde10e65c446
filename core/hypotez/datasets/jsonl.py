"""The chat JSONL that trainers upload, byte for byte the same for the same examples.

One example per line, ``{"messages":[{"role":...,"content":...},...]}`` (plus ``"tools"`` when
the example uses tools, in the tool-call shape of :meth:`TrainingExample.to_dict`): compact separators,
keys in a fixed order, non-ASCII text kept as UTF-8 (not ``\\u`` escapes, which would only
inflate the file), ``\\n`` line ends, a final newline. A trainer that serialises with
:func:`to_jsonl` uploads exactly the bytes that were validated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from hypotez.models import TrainingExample


def example_line(example: TrainingExample) -> str:
    return json.dumps(example.to_dict(), ensure_ascii=False, separators=(",", ":"))


def to_jsonl(examples: Iterable[TrainingExample]) -> bytes:
    """The upload file's bytes."""
    return "".join(example_line(e) + "\n" for e in examples).encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

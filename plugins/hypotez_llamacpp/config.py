"""The ``llamacpp`` backend's options, read once from :class:`hypotez.Settings`.

Every option can be given as an argument (``Settings.load(options={"llamacpp": {...}})``), as an
environment variable ``HYPOTEZ_LLAMACPP_<KEY>``, or in ``[plugins.llamacpp]`` of ``hypotez.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from hypotez import ConfigError, Settings
from hypotez.settings import as_bool

PLUGIN = "llamacpp"

#: Defaults chosen for a small shared machine: one thread does not fight other processes for
#: the CPU (two threads swung between 2 and 82 tok/s on a busy 2-core box), and a 4096-token
#: window keeps the KV cache of the 1.5B model near 115 MB while holding a long dialogue.
DEFAULT_N_THREADS = 1
DEFAULT_N_CTX = 4096
DEFAULT_N_BATCH = 512
#: Every request is bounded: a local model never "runs until the context is full" by accident.
DEFAULT_MAX_TOKENS = 512
#: llama-cpp-python's own default for chat completions.
DEFAULT_TEMPERATURE = 0.2


def _positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a whole number >= 1")
    return number


def _non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must be a whole number >= 0")
    return number


def _non_negative_float(value: Any) -> float:
    number = float(value)
    if not number >= 0:  # also refuses NaN
        raise ValueError("must be a number >= 0")
    return number


def _names(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip() for item in items if str(item).strip())


def _path(value: Any) -> Path:
    return Path(str(value)).expanduser()


@attrs.frozen
class LlamaCppConfig:
    """Resolved options. ``n_ctx == 0`` means "the context length the model was trained with"."""

    cache_dir: Path
    model_path: Path | None = None
    n_threads: int = DEFAULT_N_THREADS
    n_ctx: int = DEFAULT_N_CTX
    n_batch: int = DEFAULT_N_BATCH
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    seed: int | None = None
    #: A folder holding ``part01.bin`` ... ``part22.bin`` to use instead of the part packages.
    parts_dir: Path | None = None
    #: A llama-cpp-python chat format name (e.g. "chatml") for GGUF files without a template.
    chat_format: str | None = None
    #: llama.cpp's "extra buffer types" (repacked weights, AMX tiles). ``None``: on, except in a
    #: build with AMX kernels, where they are off (see :func:`hypotez_llamacpp.chat._load`).
    extra_buffers: bool | None = None
    #: Trainers whose fine-tuned models (``TRAINER:NAME``) the model list shows. Any registered
    #: trainer's model can be named in a request; these are the ones listed.
    trainers: tuple[str, ...] = ("local",)

    @classmethod
    def from_settings(cls, settings: Settings) -> LlamaCppConfig:
        def opt(key: str, default: Any, cast: Any) -> Any:
            # Cast here rather than in Settings.option, so that values given as arguments are
            # checked exactly like those from the environment or the TOML file.
            raw = settings.option(PLUGIN, key)
            if raw is None or raw == "":
                return default
            try:
                return cast(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"Option llamacpp.{key} = {raw!r} is invalid: {exc}. Fix it where it is set: "
                    f"an argument, HYPOTEZ_LLAMACPP_{key.upper()}, or [plugins.llamacpp] {key} "
                    "in hypotez.toml."
                ) from exc

        return cls(
            cache_dir=opt("cache_dir", None, _path) or settings.home / "models",
            model_path=opt("model_path", None, _path),
            n_threads=opt("n_threads", DEFAULT_N_THREADS, _positive_int),
            n_ctx=opt("n_ctx", DEFAULT_N_CTX, _non_negative_int),
            n_batch=opt("n_batch", DEFAULT_N_BATCH, _positive_int),
            max_tokens=opt("max_tokens", DEFAULT_MAX_TOKENS, _positive_int),
            temperature=opt("temperature", DEFAULT_TEMPERATURE, _non_negative_float),
            seed=opt("seed", None, int),
            chat_format=opt("chat_format", None, str),
            parts_dir=opt("parts_dir", None, _path),
            extra_buffers=opt("extra_buffers", None, as_bool),
            trainers=opt("trainers", ("local",), _names),
        )

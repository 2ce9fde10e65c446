"""Which GGUF file to load, and which ones are available locally.

Resolution order for the default model (nothing is ever downloaded):

1. an explicit path: option ``model_path`` (``HYPOTEZ_LLAMACPP_MODEL_PATH``);
2. the bundled Qwen2.5-Coder-1.5B-Instruct: the verified file in the cache folder, else assembled
   once from its part packages (see :mod:`hypotez_llamacpp.bundle`);
3. a :class:`hypotez.ConfigError` that says how to get a model.

A request may also name a model (``ChatOptions.model``): any id that :func:`available_models`
lists, the path of a GGUF file, or a fine-tuned model ``TRAINER:NAME`` (``local:zorbia``).

Fine-tuned models: a name ``TRAINER:NAME`` whose ``TRAINER`` is a registered trainer is asked of
that trainer through the context, by a duck-typed method (plugins never import each other):
``trainer.fine_tuned_model(name)`` returns an object with ``id``, ``base`` (a GGUF path) and
``adapter`` (a GGUF LoRA adapter path), **already validated** by the trainer that made it
(llama-cpp-python 0.3.36 does not notice a failed adapter load, and then crashes), or raises a
:class:`hypotez.HypotezError` saying what is wrong. ``trainer.fine_tuned_models()`` lists them
(without validating) for :func:`available_models`; the trainers asked are those of the option
``trainers`` (default ``local``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from hypotez import ConfigError, InputError, ModelInfo, NotFoundError
from hypotez_llamacpp import bundle
from hypotez_llamacpp.config import LlamaCppConfig

BACKEND = "llamacpp"
_GGUF_MAGIC = b"GGUF"


@attrs.frozen
class LocalModel:
    """A GGUF file ready to load (its integrity already checked where we can)."""

    id: str
    path: Path
    source: str  # "path", "bundled", "cache" or "fine-tuned"
    #: Seconds spent assembling the bundled model for this resolution (0.0 if it was cached).
    assembly_seconds: float = 0.0
    #: A LoRA adapter applied to ``path`` (a fine-tuned model), validated by its trainer.
    adapter: Path | None = None


def check_gguf(path: Path, what: str) -> Path:
    """Refuse a missing file or one that is not GGUF before llama.cpp gets to it."""
    if not path.exists():
        raise ConfigError(
            f"{what} {str(path)!r} does not exist. Point it to a .gguf file, or unset it to use "
            f"the bundled model ({bundle.INSTALL_HINT})."
        )
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} is a folder, not a GGUF file.")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc}.") from exc
    if magic != _GGUF_MAGIC:
        raise ConfigError(
            f"{what} {str(path)!r} is not a GGUF file (it starts with {magic!r}, not b'GGUF'). "
            "llama.cpp needs a .gguf model; convert others with llama.cpp's convert scripts."
        )
    return path


def model_id_for(path: Path) -> str:
    return path.stem


def no_model_error(config: LlamaCppConfig) -> ConfigError:
    return ConfigError(
        "No local chat model is available for the 'llamacpp' backend. Either install the "
        f"bundled Qwen2.5-Coder-1.5B-Instruct model: {bundle.INSTALL_HINT} (about 1.1 GB, "
        "assembled once into "
        f"{config.cache_dir}), or point HYPOTEZ_LLAMACPP_MODEL_PATH (or [plugins.llamacpp] "
        "model_path in hypotez.toml) to a GGUF file."
    )


def bundled_target(config: LlamaCppConfig) -> Path:
    return config.cache_dir / bundle.MODEL_FILENAME


def resolve_default(
    config: LlamaCppConfig, parts: Sequence[bundle.Part] | None = None
) -> LocalModel:
    """The model to use when a request names none. ``parts`` overrides the installed parts."""
    if config.model_path is not None:
        path = check_gguf(config.model_path, "The llamacpp model_path")
        return LocalModel(model_id_for(path), path, "path")
    target = bundled_target(config)
    parts = bundle.installed_parts() if parts is None else list(parts)
    # The verified cache serves even after the part packages were uninstalled.
    if len(bundle.missing_parts(parts)) == len(parts) and not target.is_file():
        raise no_model_error(config)
    path, seconds = bundle.assemble(parts, target)
    return LocalModel(bundle.MODEL_ID, path, "bundled", seconds)


def resolve(
    config: LlamaCppConfig, name: str | None, parts: Sequence[bundle.Part] | None = None
) -> LocalModel:
    """The model a request asked for: None = the default, else an id or a GGUF path."""
    if not name:
        return resolve_default(config, parts)
    if config.model_path is not None and name in (
        model_id_for(config.model_path),
        str(config.model_path),
    ):
        return resolve_default(config, parts)
    if name == bundle.MODEL_ID:
        return resolve_default(attrs.evolve(config, model_path=None), parts)
    cached = config.cache_dir / f"{name}.gguf"
    if cached.is_file():
        return LocalModel(name, check_gguf(cached, "The cached model"), "cache")
    candidate = Path(name).expanduser()
    if candidate.suffix.lower() == ".gguf":
        return LocalModel(model_id_for(candidate), check_gguf(candidate, "The model file"), "path")
    known = ", ".join(m.id for m in available_models(config, parts)) or "none"
    raise NotFoundError(
        f"The llamacpp backend has no local model {name!r}. Available: {known}. Name one of "
        "those, give the path of a .gguf file, or leave the model unset to use the default."
    )


def available_models(
    config: LlamaCppConfig, parts: Sequence[bundle.Part] | None = None
) -> list[ModelInfo]:
    """What can be loaded without any download, the default model first."""
    out: dict[str, ModelInfo] = {}
    if config.model_path is not None and config.model_path.is_file():
        mid = model_id_for(config.model_path)
        out[mid] = ModelInfo(mid, BACKEND, "local", f"GGUF file {config.model_path} (model_path)")
    target = bundled_target(config)
    parts = bundle.installed_parts() if parts is None else list(parts)
    if target.is_file():
        out.setdefault(
            bundle.MODEL_ID,
            ModelInfo(bundle.MODEL_ID, BACKEND, "local", f"{bundle.MODEL_TITLE}, at {target}"),
        )
    elif parts and not bundle.missing_parts(parts):
        out.setdefault(
            bundle.MODEL_ID,
            ModelInfo(
                bundle.MODEL_ID,
                BACKEND,
                "local",
                f"{bundle.MODEL_TITLE}, from its {len(parts)} installed part packages; "
                f"assembled on first use into {target}",
            ),
        )
    if config.cache_dir.is_dir():
        for path in sorted(config.cache_dir.glob("*.gguf")):
            out.setdefault(
                model_id_for(path),
                ModelInfo(model_id_for(path), BACKEND, "local", f"GGUF file {path}"),
            )
    return list(out.values())


# -- fine-tuned models (base + adapter, from the trainer that made them) ---------------------


def fine_tuned_trainer(context: Any, name: str | None) -> Any:
    """The trainer that owns the model name ``TRAINER:NAME``, or None when ``name`` is not
    such a name (no context, no prefix, or no trainer registered under the prefix)."""
    if context is None or not name or ":" not in name:
        return None
    prefix, _, rest = name.partition(":")
    if not prefix or not rest or prefix not in context.registry.registrations("trainer"):
        return None
    return context.get("trainer", prefix)


def resolve_fine_tuned(context: Any, name: str) -> LocalModel | None:
    """The base + adapter of the fine-tuned model ``name`` (validated by its trainer), or None
    when ``name`` is not a fine-tuned model name."""
    trainer = fine_tuned_trainer(context, name)
    if trainer is None:
        return None
    lookup = getattr(trainer, "fine_tuned_model", None)
    if lookup is None:
        raise InputError(
            f"The {trainer.name!r} trainer's models (such as {name!r}) do not run on llama.cpp: "
            "use them with that trainer's own chat backend (--chat)."
        )
    found = lookup(name)
    base = check_gguf(Path(found.base), f"The base model of {name!r}")
    adapter = check_gguf(Path(found.adapter), f"The LoRA adapter of {name!r}")
    return LocalModel(str(found.id), base, "fine-tuned", adapter=adapter)


def fine_tuned_models(context: Any, trainers: Sequence[str]) -> list[ModelInfo]:
    """The fine-tuned models of the ``trainers`` that are installed and can list them."""
    if context is None:
        return []
    registered = context.registry.registrations("trainer")
    out = []
    for name in trainers:
        if name not in registered:
            continue
        lister = getattr(context.get("trainer", name), "fine_tuned_models", None)
        for model in lister() if lister is not None else []:
            about = f": {model.description}" if getattr(model, "description", "") else ""
            out.append(
                ModelInfo(
                    str(model.id),
                    BACKEND,
                    name,
                    f"LoRA adapter {model.adapter} on {model.base}{about}",
                )
            )
    return out


def model_file(
    config: LlamaCppConfig, name: str | None, parts: Sequence[bundle.Part] | None = None
) -> Path:
    """The GGUF file a model name resolves to (assembling the bundled model if needed)."""
    return resolve(config, name, parts).path

"""The ``local`` trainer: hypotez's :class:`~hypotez.Trainer` protocol on the LoRA engine.

Jobs are the engine's job folders (:mod:`hypotez_lora.runner`) under ``jobs_dir``
(``$HYPOTEZ_HOME/lora/jobs`` by default), one per job id, so a job outlives the process that
submitted it and every question about it (status, events, cancel) is answered from its files.
A finished job is a fine-tuned model named ``local:NAME`` (``NAME``: the job's ``suffix``, or
the base's name and a part of the job id).

What the trainer states for core's validation comes from the base model itself: its context
length is the token limit per example, and tokens are counted with its own tokenizer and chat
template, exactly as the job will encode them; there is no price.

Chat backends find fine-tuned models through two documented, duck-typed methods (a plugin may
not import another plugin, so this is the whole contract):

- :meth:`LocalTrainer.fine_tuned_model` ``(name) -> FineTunedModel``: the base GGUF file and the
  adapter file of ``local:NAME``, **validated** (the base is the one the adapter was trained on,
  the adapter is complete and fits it), or a clear error;
- :meth:`LocalTrainer.fine_tuned_models` ``() -> list[FineTunedModel]``: every finished job's
  model, for model lists (not validated: listing stays fast).

Options (``[plugins.lora]`` in hypotez.toml, or ``HYPOTEZ_LORA_<KEY>``): ``jobs_dir``,
``cache_dir`` (converted base models), ``threads`` (default training threads), ``chat`` (the
chat backend that resolves other model names to GGUF files, default ``llamacpp``).

Nothing here imports torch: only :meth:`~LocalTrainer.token_counter` loads a tokenizer
(transformers), and the training runs in the job's own processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from hypotez import (
    ConfigError,
    InputError,
    JobRecord,
    NotFoundError,
    Settings,
    Trainer,
    TrainingExample,
    TrainingLimits,
)
from hypotez_lora import runner
from hypotez_lora.base import TINY_MODEL, BaseInfo, base_info, resolve_base, sha256_file
from hypotez_lora.errors import BaseModelError, InvalidAdapterError

PLUGIN = "lora"
NAME = "local"
#: Fine-tuned models are called ``local:NAME``.
PREFIX = f"{NAME}:"
#: A fine-tuned model's name: what a suffix may be.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Options ``submit`` takes (besides ``suffix``, ``seed``, ``metadata``), LoraSettings fields.
OPTIONS = (
    "rank",
    "alpha",
    "dropout",
    "epochs",
    "learning_rate",
    "batch_size",
    "time_budget",
    "max_steps",
    "threads",
)
DEFAULT_CHAT = "llamacpp"


@attrs.frozen
class LocalConfig:
    """The trainer's options, from :class:`hypotez.Settings`."""

    jobs_dir: Path
    cache_dir: Path
    threads: int | None = None
    chat: str = DEFAULT_CHAT

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalConfig:
        def path(value: Any) -> Path:
            return Path(str(value)).expanduser()

        def threads(value: Any) -> int:
            number = int(value)
            if number < 1:
                raise ValueError("must be a whole number >= 1")
            return number

        return cls(
            jobs_dir=settings.option(PLUGIN, "jobs_dir", None, path)
            or settings.home / "lora" / "jobs",
            cache_dir=settings.option(PLUGIN, "cache_dir", None, path)
            or runner.default_cache_dir(),
            threads=settings.option(PLUGIN, "threads", None, threads),
            chat=settings.option(PLUGIN, "chat", None, str) or DEFAULT_CHAT,
        )


@attrs.frozen
class FineTunedModel:
    """A finished job's model: what a chat backend needs to run it (see the module docs)."""

    #: ``local:NAME``
    id: str
    #: The GGUF base model the adapter was trained on.
    base: Path
    #: The GGUF LoRA adapter.
    adapter: Path
    job_id: str
    description: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _now()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class LocalTrainer(Trainer):
    """LoRA fine-tuning of a local GGUF model on the CPU, in background job processes."""

    name = NAME
    default_model = TINY_MODEL
    #: Seconds between polls that suit a local job (``hypotez train wait`` uses it): its
    #: status is a file read, and a step takes seconds.
    poll_interval = 2.0

    def __init__(self, config: LocalConfig, *, context: Any = None) -> None:
        self.config = config
        self.context = context
        self._encoders: dict[tuple[str, tuple[int, int] | None], Any] = {}
        self._verified: dict[tuple[str, tuple[int, int] | None], str] = {}
        self._lock = threading.Lock()

    # -- base models ---------------------------------------------------------------------
    def resolve_model(self, model: str | os.PathLike[str] | None) -> Path:
        """The GGUF file of a base model name: the tiny tier's name (the default), a GGUF
        path, ``local:NAME`` (the base that model was trained on), or a name the chat backend
        (option ``chat``, default llamacpp) resolves to a GGUF file (the bundled model's)."""
        text = str(model) if model else ""
        if not text or text in (TINY_MODEL, "smollm2"):
            return resolve_base(None)
        if text.startswith(PREFIX):
            return self._job_base(self._job_of_model(text))
        path = Path(text).expanduser()
        if path.is_file() or path.suffix.lower() == ".gguf":
            return resolve_base(path)
        found = self._chat_model_file(text)
        if found is not None:
            return found
        raise BaseModelError(
            f"The local trainer does not know the base model {text!r}. Use {TINY_MODEL!r} (the "
            "default, ~100 MB), the name of a model the llamacpp backend lists "
            "(`hypotez models`), a fine-tuned local:NAME (to train its base again), or the path "
            "of a GGUF file."
        )

    def _chat_model_file(self, name: str) -> Path | None:
        """Ask the chat backend named by the ``chat`` option for the GGUF file of ``name``
        (its duck-typed ``model_file(name)``); None when there is no such backend."""
        context = self.context
        if context is None or self.config.chat not in context.registry.registrations("chat"):
            return None
        backend = context.get("chat", self.config.chat)
        model_file = getattr(backend, "model_file", None)
        if model_file is None:
            return None
        try:
            return Path(model_file(name))
        except NotFoundError:
            return None

    def _info(self, model: str) -> BaseInfo:
        return base_info(self.resolve_model(model))

    def limits(self, model: str) -> TrainingLimits:
        info = self._info(model)
        return TrainingLimits(
            min_examples=_min_examples(),
            max_tokens_per_example=info.context_length,
            tokenizer=f"{info.name} tokenizer",
            notices=(
                f"Trains a LoRA adapter for {info.name} on this machine's CPU: no upload, no "
                "cost. The job runs in the background; follow it with `hypotez train wait JOB`.",
            ),
        )

    def token_counter(
        self, model: str
    ) -> Callable[[Sequence[Mapping[str, Any]]], tuple[int, int]] | None:
        """(all tokens, trained assistant tokens) of an example, with the base's own tokenizer
        and chat template, as the job encodes it (BOS included when llama.cpp adds one)."""
        path = self.resolve_model(model)
        key = (str(path.resolve()), _stat_key(path))
        with self._lock:
            encoder = self._encoders.get(key)
            if encoder is None:
                from hypotez_lora.data import chat_encoder

                encoder = chat_encoder(path, cache_dir=self.config.cache_dir)
                self._encoders[key] = encoder

        def count(messages: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
            example = encoder.encode([dict(m) for m in messages])
            return len(example), example.n_trained

        return count

    # -- jobs ----------------------------------------------------------------------------
    def _job_dir(self, job_id: str) -> Path:
        from hypotez.models import validate_id

        folder = self.config.jobs_dir / validate_id(job_id, "job")
        if not (folder / runner.STATUS).is_file():
            raise NotFoundError(
                f"The local trainer has no job {job_id!r} (in {str(self.config.jobs_dir)!r}). "
                "List the jobs with `hypotez train list`."
            )
        return folder

    def _job_dirs(self) -> list[Path]:
        try:
            folders = [p for p in self.config.jobs_dir.iterdir() if (p / runner.STATUS).is_file()]
        except FileNotFoundError:
            return []
        return folders

    def _taken_names(self) -> dict[str, str]:
        """Fine-tuned names held by jobs that are running or succeeded -> their job ids."""
        taken: dict[str, str] = {}
        for folder in self._job_dirs():
            request = _read_json(folder / runner.REQUEST)
            name = request.get("name")
            if not isinstance(name, str):
                continue
            try:
                state = runner.status(folder).state
            except Exception:
                continue
            if state not in (runner.FAILED, runner.CANCELLED):
                taken[name] = folder.name
        return taken

    def submit(
        self,
        examples: Sequence[TrainingExample],
        *,
        model: str,
        description: str = "",
        validation: Sequence[TrainingExample] | None = None,
        suffix: str | None = None,
        seed: int | None = None,
        metadata: Mapping[str, str] | None = None,
        n_epochs: int | None = None,
        **options: Any,
    ) -> JobRecord:
        """Start a LoRA job on ``examples`` in the background; return its record at once.

        ``suffix`` names the fine-tuned model ``local:SUFFIX`` (default: the base's name and a
        part of the job id). ``options``: rank, alpha, dropout, learning_rate, batch_size,
        time_budget (seconds), max_steps, threads; ``n_epochs`` and ``seed`` as for any trainer.
        """
        from hypotez.datasets import to_jsonl
        from hypotez.validation import validate
        from hypotez_lora.train import LoraSettings

        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise InputError(
                f"The local trainer does not take the option(s) {', '.join(unknown)}. It takes "
                f"{', '.join(OPTIONS)}, suffix, seed and metadata"
                + (
                    " (learning_rate is the rate itself, e.g. 0.001, not a multiplier)."
                    if "learning_rate_multiplier" in unknown
                    else "."
                )
            )
        if validation:
            raise InputError(
                "The local trainer does not evaluate a validation file; leave it out (the job "
                "records the training loss of every step)."
            )
        if suffix is not None and not _NAME_RE.fullmatch(suffix):
            raise InputError(
                f"The suffix {suffix!r} cannot name a model: use 1-64 letters, digits, '.', '_' "
                "or '-', starting with a letter or digit (the model is then local:SUFFIX)."
            )
        values = {k: v for k, v in options.items() if v is not None}
        if n_epochs is not None:
            values["epochs"] = n_epochs
        if seed is not None:
            values["seed"] = seed
        if "threads" not in values and self.config.threads is not None:
            values["threads"] = self.config.threads
        try:
            settings = LoraSettings.from_dict(values)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Invalid local training option: {exc}.") from None
        model = model or self.default_model
        base = self.resolve_model(model)
        info = base_info(base)
        # Core validated everything already; this cheap format check guards direct callers.
        validate(examples, trainer=self, model=model, count_tokens=False).raise_for_errors()

        job_id = f"local-{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        name = (
            suffix or f"{_slug(model if not model.startswith(PREFIX) else info.name)}-{job_id[-6:]}"
        )
        holder = self._taken_names().get(name)
        if holder is not None:
            raise InputError(
                f"The model name local:{name} is taken by job {holder}. Choose another suffix "
                f"(or delete that job's folder, {str(self.config.jobs_dir / holder)!r})."
            )
        self.config.jobs_dir.mkdir(parents=True, exist_ok=True)
        data = self.config.jobs_dir / f".{job_id}.jsonl"
        data.write_bytes(to_jsonl(examples))
        settings_obj = self._settings()
        extra = {
            "job_id": job_id,
            "model": model,
            "description": description,
            "metadata": dict(metadata) if metadata else {},
            "fine_tuned_model": PREFIX + name,
            "base_stat": list(_stat_key(base) or ()),
            "publish": settings_obj is not None,
            "home": str(settings_obj.home) if settings_obj is not None else None,
            "storage": settings_obj.storage if settings_obj is not None else None,
            "config_file": str(settings_obj.config_file)
            if settings_obj is not None and settings_obj.config_file
            else None,
        }
        try:
            runner.start(
                self.config.jobs_dir / job_id,
                data=data,
                base=base,
                settings=settings,
                name=name,
                cache_dir=self.config.cache_dir,
                extra=extra,
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                data.unlink()
        return job_record(self.config.jobs_dir / job_id)

    def _settings(self) -> Settings | None:
        return getattr(self.context, "settings", None)

    def status(self, job_id: str) -> JobRecord:
        return job_record(self._job_dir(job_id))

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        records = []
        for folder in self._job_dirs():
            with contextlib.suppress(Exception):  # a folder being created or half removed
                records.append(job_record(folder))
        records.sort(key=lambda r: r.created, reverse=True)
        return records[:limit]

    def events(self, job_id: str, limit: int = 50) -> list[dict[str, Any]]:
        folder = self._job_dir(job_id)
        out = [_event(job_id, n, e) for n, e in enumerate(runner.read_events(folder))]
        return out[-limit:] if limit else out

    def cancel(self, job_id: str) -> JobRecord:
        folder = self._job_dir(job_id)
        runner.cancel(folder)
        return job_record(folder)

    # -- fine-tuned models (for chat backends) -------------------------------------------
    def _job_of_model(self, name: str) -> Path:
        wanted = name[len(PREFIX) :] if name.startswith(PREFIX) else name
        best: tuple[str, Path] | None = None
        for folder in self._job_dirs():
            request = _read_json(folder / runner.REQUEST)
            if request.get("name") != wanted:
                continue
            current = runner.status(folder)
            if current.state == runner.SUCCEEDED and (best is None or current.created_at > best[0]):
                best = (current.created_at, folder)
        if best is None:
            known = ", ".join(m.id for m in self.fine_tuned_models()) or "none yet"
            raise NotFoundError(
                f"There is no fine-tuned model {PREFIX}{wanted} (a local job that succeeded). "
                f"Known: {known}. See the jobs with `hypotez train list`."
            )
        return best[1]

    def _job_base(self, folder: Path) -> Path:
        request = _read_json(folder / runner.REQUEST)
        base = Path(str(request.get("base", "")))
        if base.is_file():
            return base
        # The tiny tier moves with its package (a new virtual environment, say): find it again.
        with contextlib.suppress(BaseModelError):
            tiny = resolve_base(None)
            recorded = _read_json(folder / runner.METADATA).get("base", {}).get("sha256")
            if recorded and self._sha256(tiny) == recorded:
                return tiny
        raise BaseModelError(
            f"The base model of job {folder.name}, {str(base)!r}, is gone. Put it back (the "
            "adapter only works with the exact file it was trained on), or train again."
        )

    def _sha256(self, path: Path) -> str:
        key = (str(path.resolve()), _stat_key(path))
        with self._lock:
            digest = self._verified.get(key)
        if digest is None:
            digest = sha256_file(path)
            with self._lock:
                self._verified[key] = digest
        return digest

    def fine_tuned_model(self, name: str) -> FineTunedModel:
        """The validated base and adapter of ``local:NAME``, ready for llama.cpp.

        Raises :class:`~hypotez.NotFoundError` for an unknown name,
        :class:`~hypotez_lora.errors.BaseModelError` when the base file is gone or changed,
        :class:`~hypotez_lora.errors.InvalidAdapterError` when the adapter is missing,
        truncated, or does not fit the base (llama-cpp-python would crash on it).
        """
        from hypotez_lora.adapter import validate_adapter

        folder = self._job_of_model(name)
        request = _read_json(folder / runner.REQUEST)
        extra = request.get("hypotez") or {}
        metadata = _read_json(folder / runner.METADATA)
        base = self._job_base(folder)
        recorded_sha = metadata.get("base", {}).get("sha256")
        recorded_stat = extra.get("base_stat")
        unchanged = recorded_stat and list(_stat_key(base) or ()) == list(recorded_stat)
        if recorded_sha and not unchanged and self._sha256(base) != recorded_sha:
            raise BaseModelError(
                f"The base model {str(base)!r} has changed since job {folder.name} trained "
                f"{PREFIX}{request.get('name')} on it (its SHA-256 differs), so the adapter no "
                "longer fits it. Restore the original file or train again."
            )
        adapter = folder / runner.ADAPTER
        if not adapter.is_file():
            raise InvalidAdapterError(
                f"The adapter of {PREFIX}{request.get('name')}, {str(adapter)!r}, is missing. "
                "Train it again (`hypotez train submit ... --trainer local`)."
            )
        try:
            validate_adapter(adapter, base)
        except InvalidAdapterError as exc:
            raise InvalidAdapterError(
                f"The fine-tuned model {PREFIX}{request.get('name')} cannot be loaded: {exc} "
                "Train it again (`hypotez train submit ... --trainer local`)."
            ) from None
        return FineTunedModel(
            id=PREFIX + str(request.get("name")),
            base=base,
            adapter=adapter,
            job_id=folder.name,
            description=str(extra.get("description") or ""),
        )

    def fine_tuned_models(self) -> list[FineTunedModel]:
        """Every succeeded job's model, newest first (not validated: see fine_tuned_model)."""
        found: dict[str, tuple[str, FineTunedModel]] = {}
        for folder in self._job_dirs():
            request = _read_json(folder / runner.REQUEST)
            name = request.get("name")
            try:
                current = runner.status(folder)
            except Exception:
                continue
            if not isinstance(name, str) or current.state != runner.SUCCEEDED:
                continue
            extra = request.get("hypotez") or {}
            model = FineTunedModel(
                id=PREFIX + name,
                base=Path(str(request.get("base", ""))),
                adapter=folder / runner.ADAPTER,
                job_id=folder.name,
                description=str(extra.get("description") or ""),
            )
            if name not in found or current.created_at > found[name][0]:
                found[name] = (current.created_at, model)
        ordered = sorted(found.values(), key=lambda pair: pair[0], reverse=True)
        return [model for _, model in ordered]


def _min_examples() -> int:
    from hypotez_lora.data import MIN_EXAMPLES

    return MIN_EXAMPLES


def _slug(text: str) -> str:
    stem = Path(text).stem if text.lower().endswith(".gguf") else text
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._").lower()
    return (slug or "model")[:40]


# -- job records ----------------------------------------------------------------------------


def job_record(folder: Path) -> JobRecord:
    """The :class:`hypotez.JobRecord` of the job in ``folder``, from its files.

    ``meta`` holds the job folder, the settings, the data's SHA-256 and progress (``step``,
    ``total_steps``, ``loss``); once the job succeeded also ``base`` (path, SHA-256), ``data``,
    ``packages``, ``training`` (per-step loss and seconds, tokens/s, peak memory) and
    ``adapter``; ``error`` when it failed.
    """
    current = runner.status(folder)
    request = _read_json(folder / runner.REQUEST)
    extra = request.get("hypotez") or {}
    meta: dict[str, Any] = {
        "job_dir": str(folder),
        "base_path": request.get("base"),
        "base_name": request.get("base_name"),
        "settings": request.get("settings"),
        "data_sha256": request.get("data_sha256"),
        "examples": request.get("examples"),
        "step": current.step,
        "total_steps": current.total_steps,
        "loss": current.loss,
    }
    if extra.get("metadata"):
        meta["metadata"] = extra["metadata"]
    if current.started_at:
        meta["started"] = current.started_at
    if current.finished_at:
        meta["finished"] = current.finished_at
    if current.stopped:
        meta["stopped"] = current.stopped
    if current.error:
        meta["error"] = current.error
    if current.state == runner.SUCCEEDED:
        metadata = _read_json(folder / runner.METADATA)
        for key in ("base", "data", "packages", "training", "adapter", "load_seconds"):
            if key in metadata:
                meta[key] = metadata[key]
        training = metadata.get("training") or {}
        if "peak_rss_bytes" in training:
            meta["peak_rss_bytes"] = training["peak_rss_bytes"]
        if "tokens" in training:
            meta["trained_tokens"] = training["tokens"]
    name = request.get("name")
    return JobRecord(
        id=str(extra.get("job_id") or folder.name),
        description=str(extra.get("description") or ""),
        created=_parse_time(current.created_at),
        model=str(extra.get("model") or request.get("base_name") or ""),
        status=current.state,
        backend=NAME,
        training_file=str(folder / runner.DATA),
        fine_tuned_model=PREFIX + name
        if current.state == runner.SUCCEEDED and isinstance(name, str)
        else None,
        meta=meta,
    )


def _event(job_id: str, number: int, event: Mapping[str, Any]) -> dict[str, Any]:
    kind = event.get("type")
    if kind == "step":
        message = (
            f"step {event.get('step')}/{event.get('total_steps')}: loss {event.get('loss', 0):.4f}"
            f" ({event.get('seconds', 0):.1f} s, {event.get('tokens')} tokens)"
        )
    elif kind == "status":
        message = f"job {event.get('state')}" + (
            f": {event['error']}" if event.get("error") else ""
        )
    else:
        message = str(event.get("message", ""))
    level = "error" if kind == "status" and event.get("state") == runner.FAILED else "info"
    out = {k: v for k, v in event.items() if k not in ("time", "type")}
    return {
        **out,
        "id": f"{job_id}-{number}",
        "created": event.get("time"),
        "level": level,
        "message": message,
        "type": kind,
    }


def publish_final(folder: Path) -> None:
    """Save the final record of the job in ``folder`` to the storage its submitter used.

    Run by the job's supervisor process when the job ends, so ``hypotez train list`` shows how
    a job ended (and its ``local:NAME``) even when nobody waited for it.
    """
    from hypotez import Context, training

    request = _read_json(folder / runner.REQUEST)
    extra = request.get("hypotez") or {}
    options: dict[str, Any] = {}
    if extra.get("home"):
        options["home"] = extra["home"]
    if extra.get("storage"):
        options["storage"] = extra["storage"]
    if extra.get("config_file") and Path(extra["config_file"]).is_file():
        options["config_file"] = extra["config_file"]
    settings = Settings.load(**options)
    with Context(settings) as context:
        training.remember(context.get("storage"), job_record(folder))


def from_settings(context: Any) -> LocalTrainer:
    """The registered factory: builds without torch (only training needs it)."""
    settings = context.settings
    try:
        config = LocalConfig.from_settings(settings)
    except ValueError as exc:
        raise ConfigError(f"A [plugins.lora] option is invalid: {exc}") from exc
    return LocalTrainer(config, context=context)

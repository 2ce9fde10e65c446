"""The ``openai`` trainer: OpenAI fine-tuning (or any server with the same API) via the SDK.

It states OpenAI's own rules for core's validation: at least 10 examples, the per-model token
limit per example, tokens counted with the model's encoding (offline, bpe-openai), the default
epochs rule and prices for the cost estimate, and what OpenAI has announced about closing its
fine-tuning platform.

``submit`` uploads the examples as chat JSONL (``purpose="fine-tune"``), byte for byte what
:func:`hypotez.datasets.to_jsonl` produces, i.e. exactly what core validated, then creates a
job with the ``supervised`` method (epochs, batch size and learning-rate multiplier go in the
method's hyperparameters). ``status``, ``list_jobs``, ``events`` and ``cancel`` map the API's
jobs to :class:`hypotez.JobRecord`. SDK errors become hypotez errors; the key never appears.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import attrs
from hypotez import (
    CostEstimate,
    InputError,
    JobRecord,
    NotFoundError,
    Trainer,
    TrainingExample,
    TrainingLimits,
)
from hypotez.datasets import sha256, to_jsonl
from hypotez.validation import validate
from hypotez_openai import pricing
from hypotez_openai.client import DEFAULT_MODEL, Config, Connection, import_openai
from hypotez_openai.errors import scrub

HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")
#: OpenAI's minimum number of training examples.
MIN_EXAMPLES = 10
#: Published by OpenAI: the fine-tuning platform takes no new jobs after this day, and
#: fine-tuned gpt-4o / 4o-mini / 4.1 / 4.1-mini models stop working on SHUTDOWN.
LAST_JOB_DAY = date(2027, 1, 6)
SHUTDOWN_DAY = date(2027, 1, 14)


def wind_down_notice(today: date | None = None) -> str:
    """What OpenAI has announced about closing fine-tuning, as of ``today``."""
    today = today or datetime.now(UTC).date()
    if today > LAST_JOB_DAY:
        opening = f"OpenAI stopped taking new fine-tuning jobs after {LAST_JOB_DAY:%Y-%m-%d}"
    else:
        opening = (
            "OpenAI is winding down its fine-tuning platform (closed to new users): no new "
            f"jobs after {LAST_JOB_DAY:%Y-%m-%d}"
        )
    return (
        f"{opening}; fine-tuned gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini models shut down "
        f"on {SHUTDOWN_DAY:%Y-%m-%d}. The 'local' trainer fine-tunes offline "
        "(hypotez train submit --trainer local)."
    )


def _when(seconds: int | None) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if seconds else datetime.now(UTC)


class OpenAITrainer(Trainer):
    """Fine-tuning jobs on OpenAI's ``/v1/files`` and ``/v1/fine_tuning/jobs``."""

    name = "openai"
    default_model = DEFAULT_MODEL

    def __init__(self, config: Config, *, http_client: Any = None) -> None:
        self.config = config
        self.connection = Connection(config, http_client=http_client, backend=self.name)

    # -- what OpenAI accepts ---------------------------------------------------------------
    def limits(self, model: str) -> TrainingLimits:
        from hypotez_openai.tokens import encoding_name_for

        model = model or self.default_model
        return TrainingLimits(
            min_examples=MIN_EXAMPLES,
            max_tokens_per_example=pricing.context_limit(model),
            tokenizer=encoding_name_for(model),
            notices=(wind_down_notice(),),
        )

    def token_counter(
        self, model: str
    ) -> Callable[[Sequence[Mapping[str, Any]]], tuple[int, int]] | None:
        from hypotez_openai.tokens import TokenCounter

        return TokenCounter(model or self.default_model).count_messages

    def estimate_cost(
        self,
        model: str,
        token_counts: Sequence[int],
        *,
        epochs: int | None = None,
        price_per_million: float | None = None,
    ) -> CostEstimate | None:
        model = model or self.default_model
        return pricing.estimate_cost(
            model,
            list(token_counts),
            limit=pricing.context_limit(model),
            epochs=epochs,
            price=price_per_million,
        )

    # -- errors --------------------------------------------------------------------------
    def _error(
        self, exc: Exception, *, job_id: str | None = None, model: str | None = None
    ) -> Exception:
        openai = import_openai(self.name)
        where = self.config.where
        if isinstance(exc, openai.NotFoundError):
            subject = f"fine-tuning job {job_id!r}" if job_id else f"the model {model!r}"
            return NotFoundError(
                f"The server at {where} has no {subject} (HTTP 404). "
                "List the jobs it knows with `hypotez train list --remote`."
            )
        if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            said = scrub(str(getattr(exc, "message", exc)), self.config.api_key)[:300]
            if job_id:
                # status/events/cancel of an existing job: the options are not the problem.
                return InputError(
                    f"The server at {where} refused the request for fine-tuning job {job_id!r} "
                    f"(HTTP {exc.status_code}: {said}). See its state with "
                    f"`hypotez train status {job_id}`."
                )
            return InputError(
                f"The server at {where} refused the fine-tuning request (HTTP {exc.status_code}: "
                f"{said}). Check the base model supports fine-tuning and the options "
                "(suffix, seed, epochs, metadata)."
            )
        return self.connection.error(exc, model=model)

    # -- the Trainer protocol ------------------------------------------------------------
    def _upload(self, data: bytes, kind: str) -> str:
        filename = f"hypotez-{kind}-{sha256(data)[:12]}.jsonl"
        try:
            uploaded = self.connection.sync.files.create(
                file=(filename, data, "application/jsonl"), purpose="fine-tune"
            )
        except Exception as exc:
            raise self._error(exc) from None
        return str(uploaded.id)

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
        **options: Any,
    ) -> JobRecord:
        """Upload ``examples`` (and ``validation``) and create a supervised job.

        ``options``: ``n_epochs``, ``batch_size``, ``learning_rate_multiplier`` (None = auto).
        """
        unknown = set(options) - set(HYPERPARAMETERS)
        if unknown:
            raise InputError(
                f"Unknown fine-tuning option(s) {', '.join(sorted(unknown))}: use "
                f"{', '.join(HYPERPARAMETERS)}, suffix, seed or metadata."
            )
        # Core validated everything already; this cheap format check guards direct callers,
        # so nothing malformed is uploaded whoever calls.
        validate(examples, trainer=self, model=model, count_tokens=False).raise_for_errors()
        if validation:
            validate(
                validation, trainer=self, model=model, count_tokens=False, min_examples=1
            ).raise_for_errors()
        data = to_jsonl(examples)
        training_file = self._upload(data, "train")
        validation_file = self._upload(to_jsonl(validation), "validation") if validation else None
        hyper = {k: options[k] for k in HYPERPARAMETERS if options.get(k) is not None}
        supervised: dict[str, Any] = {"hyperparameters": hyper} if hyper else {}
        method: dict[str, Any] = {
            "type": "supervised",
            **({"supervised": supervised} if supervised else {}),
        }
        body: dict[str, Any] = {"model": model, "training_file": training_file, "method": method}
        for key, value in (
            ("validation_file", validation_file),
            ("suffix", suffix),
            ("seed", seed),
            ("metadata", dict(metadata) if metadata else None),
        ):
            if value is not None:
                body[key] = value
        try:
            job = self.connection.sync.fine_tuning.jobs.create(**body)
        except Exception as exc:
            raise self._error(exc, model=model) from None
        record = self._record(job, description)
        meta = {**record.meta, "training_sha256": sha256(data), "training_bytes": len(data)}
        if suffix:
            meta["suffix"] = suffix
        return attrs.evolve(record, meta=meta)

    def status(self, job_id: str) -> JobRecord:
        try:
            job = self.connection.sync.fine_tuning.jobs.retrieve(job_id)
        except Exception as exc:
            raise self._error(exc, job_id=job_id) from None
        return self._record(job)

    def list_jobs(self, limit: int = 20) -> list[JobRecord]:
        try:
            page = self.connection.sync.fine_tuning.jobs.list(limit=limit)
        except Exception as exc:
            raise self._error(exc) from None
        return [self._record(job) for job in page.data]

    def events(self, job_id: str, limit: int = 50) -> list[dict[str, Any]]:
        try:
            page = self.connection.sync.fine_tuning.jobs.list_events(job_id, limit=limit)
        except Exception as exc:
            raise self._error(exc, job_id=job_id) from None
        out = [
            {
                "id": e.id,
                "created": _when(e.created_at).isoformat(),
                "level": e.level,
                "message": e.message,
                "type": getattr(e, "type", None),
            }
            for e in page.data
        ]
        return out[::-1]  # the API lists newest first

    def cancel(self, job_id: str) -> JobRecord:
        try:
            job = self.connection.sync.fine_tuning.jobs.cancel(job_id)
        except Exception as exc:
            raise self._error(exc, job_id=job_id) from None
        return self._record(job)

    def close(self) -> None:
        self.connection.close()

    # -- mapping ---------------------------------------------------------------------------
    def _record(self, job: Any, description: str = "") -> JobRecord:
        meta: dict[str, Any] = {"seed": job.seed}
        if job.trained_tokens is not None:
            meta["trained_tokens"] = job.trained_tokens
        if job.finished_at:
            meta["finished"] = _when(job.finished_at).isoformat()
        if job.error is not None and (job.error.message or job.error.code):
            meta["error"] = scrub(f"{job.error.code}: {job.error.message}", self.config.api_key)
        if job.metadata:
            meta["metadata"] = dict(job.metadata)
        method = getattr(job, "method", None)
        if method is not None:
            meta["method"] = method.model_dump(exclude_none=True)
        return JobRecord(
            id=job.id,
            description=description,
            created=_when(job.created_at),
            model=job.model,
            status=job.status,
            backend=self.name,
            training_file=job.training_file,
            validation_file=job.validation_file,
            fine_tuned_model=job.fine_tuned_model,
            meta=meta,
        )

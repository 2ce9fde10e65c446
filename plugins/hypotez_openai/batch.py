"""The ``openai-batch`` engine: a batch job through OpenAI's Batch API (half price, 24 hours).

How a job goes:

1. Each pending row becomes one request line ``{"custom_id": ROW_ID, "method": "POST", "url":
   "/v1/chat/completions", "body": ...}``: the same body the ``openai`` chat and vision backends
   send (``ask``: the prompt; ``describe``: the image as a data URL; ``sentiment``: the ``llm``
   analyzer's classification request for one text). Rows are split into parts that fit one
   batch (:data:`MAX_REQUESTS` requests, :data:`MAX_BYTES` bytes).
2. Each part: its row ids are written next to the job's output, the JSONL is uploaded
   (``purpose="batch"``) and recorded in the job's record, the batch is created with metadata
   naming the job and the part, and its id is recorded. A crash between creating the batch and
   recording its id is repaired on the next run by finding the batch by its metadata, so a part
   is never paid for twice.
3. Waiting (unless ``--no-wait``): every ``poll_interval`` seconds the unfinished batches are
   read; a finished one's output and error files are downloaded and mapped back to rows by
   ``custom_id``. A row with no line at all (the batch expired or was cancelled first) becomes an
   error row; run the job again to submit such rows anew.

``hypotez batch status|cancel|collect JOB`` do the same from any process that has the job's
folder: the record in storage holds every batch id.

Cost: estimated before upload from the prompt tokens (counted with the model's encoding) at the
Batch API's prices (:data:`BATCH_PRICES`, USD per 1M tokens, half the standard prices, checked
2025; engine options ``price_input``/``price_output`` override them), and computed from the
reported usage when results are collected.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from hypotez import ChatOptions, InputError, Message, Settings, load_image
from hypotez.batch import BatchEngine, Job, Row, positive_int
from hypotez.files import atomic_write_bytes
from hypotez_openai.client import Config, Connection
from hypotez_openai.payloads import chat_body, description_from, reply_from, vision_body
from hypotez_openai.tokens import base_model

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
#: OpenAI's limits for one batch's input file (the Batch API guide).
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
#: USD per 1M (input, output) tokens at Batch API prices (50% of the standard prices).
#: Longest model-name prefix wins; a model not listed gets no cost figure.
BATCH_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1-nano": (0.05, 0.20),
    "gpt-4.1-mini": (0.20, 0.80),
    "gpt-4.1": (1.00, 4.00),
    "gpt-4o-mini": (0.075, 0.30),
    "gpt-4o": (1.25, 5.00),
    "o4-mini": (0.55, 2.20),
    "o3-mini": (0.55, 2.20),
    "gpt-3.5-turbo": (0.25, 0.75),
}
TERMINAL = ("completed", "failed", "expired", "cancelled")
DEFAULT_POLL = 30.0
FOLDER = "openai-batch"


def batch_prices(model: str) -> tuple[float, float] | None:
    name = base_model(model)
    matches = [prefix for prefix in BATCH_PRICES if name.startswith(prefix)]
    return BATCH_PRICES[max(matches, key=len)] if matches else None


def _positive_float(value: Any) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("expected a number > 0")
    return number


def _price(value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("expected a price >= 0")
    return number


class OpenAIBatchEngine(BatchEngine):
    """See the module docstring."""

    name = "openai-batch"
    remote = True
    options: ClassVar[dict[str, str]] = {
        "poll_interval": f"seconds between looks at unfinished batches (default {DEFAULT_POLL:g})",
        "max_requests": f"requests per batch (default and most {MAX_REQUESTS:,})",
        "max_bytes": f"bytes per batch input file (default and most {MAX_BYTES:,})",
        "price_input": "USD per 1M input tokens (default: the model's Batch API price)",
        "price_output": "USD per 1M output tokens (default: the model's Batch API price)",
    }

    def __init__(self, config: Config, settings: Settings, *, http_client: Any = None) -> None:
        self.config = config
        self.settings = settings
        self.connection = Connection(config, http_client=http_client, backend=self.name)

    # -- requests ---------------------------------------------------------------------------
    def _model(self, job: Job) -> str:
        task = job.task
        if task.name == "sentiment":
            return str(self.settings.option("llm", "model", None, str) or self.config.model)
        model = getattr(task, "model", None)
        if model:
            return str(model)
        return self.config.vision_model if task.name == "describe" else self.config.model

    def _check(self, job: Job) -> None:
        task = job.task
        if task.name == "sentiment" and getattr(task, "analyzer", None) not in (None, "llm"):
            raise InputError(
                f"The openai-batch engine classifies sentiment with a chat model (the 'llm' "
                f"analyzer's request); --analyzer {task.analyzer} runs on the local or ray "
                "engine instead."
            )
        if task.name == "ask" and getattr(task, "store", False):
            raise InputError(
                "The openai-batch engine cannot store exchanges as dialogues (--store): the "
                "replies arrive hours later. Run without --store, or on the local engine."
            )

    def _body(self, job: Job, row: Row) -> dict[str, Any]:
        task, model = job.task, self._model(job)
        field = self.config.max_tokens_field
        if task.name == "sentiment":
            from hypotez_openai.sentiment import SYSTEM, schema_for

            messages = [
                Message("system", SYSTEM),
                Message("user", json.dumps([{"id": 0, "text": row.value}], ensure_ascii=False)),
            ]
            return chat_body(
                messages,
                ChatOptions(model=model, temperature=0, json_schema=schema_for(1)),
                model=model,
                max_tokens_field=field,
            )
        if task.name == "ask":
            opts = task.options()
            messages = [Message("system", opts["system"])] if opts["system"] else []
            messages.append(Message("user", row.value))
            return chat_body(
                messages,
                ChatOptions(
                    model=model,
                    temperature=opts["temperature"],
                    max_tokens=opts["max_tokens"],
                    json_schema=opts["json_schema"],
                ),
                model=model,
                max_tokens_field=field,
            )
        if task.name == "describe":
            opts = task.options()
            return vision_body(
                load_image(row.value),
                opts["prompt"],
                detail=opts["detail"],
                json_schema=opts["json_schema"],
                model=model,
                max_tokens_field=field,
            )
        raise InputError(f"The openai-batch engine cannot run the {task.name!r} task.")

    def _result(self, job: Job, row: Row, body: Mapping[str, Any]) -> dict[str, Any]:
        task = job.task
        reply = reply_from(body, self.name, self._model(job))
        if task.name == "sentiment":
            from hypotez_openai.sentiment import LLMSentimentAnalyzer

            found = LLMSentimentAnalyzer(None)._parse(reply.text, 1, reply.model)[0]
            return task.result(
                row, label=found.label, score=found.score, backend=self.name, model=reply.model
            )
        common = {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
            "backend": self.name,
            "model": reply.model,
        }
        if task.name == "describe":
            described = description_from(reply, task.options()["json_schema"])
            return task.result(row, text=described.text, labels=[], **common)
        return task.result(row, text=reply.text, finish_reason=reply.finish_reason, **common)

    # -- the job's parts ----------------------------------------------------------------------
    def _folder(self, job: Job) -> Path:
        folder = Path(job.state_dir) / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _keys(self, job: Job, part: Mapping[str, Any]) -> list[str]:
        path = self._folder(job) / f"{part['part']}.ids"
        try:
            keys: list[str] = json.loads(path.read_text(encoding="utf-8"))
            return keys
        except FileNotFoundError:
            raise InputError(
                f"The row ids of batch {part.get('batch_id')!r} ({path}) are missing: its "
                "results cannot be mapped to rows. Was the job's folder deleted?"
            ) from None

    @staticmethod
    def _parts(job: Job) -> list[dict[str, Any]]:
        return [dict(p) for p in job.meta.get("parts", [])]

    async def _set_part(self, job: Job, part: str, **changes: Any) -> None:
        def change(meta: dict[str, Any]) -> dict[str, Any]:
            parts = [dict(p) for p in meta.get("parts", [])]
            for p in parts:
                if p["part"] == part:
                    p.update(changes)
                    break
            else:
                parts.append({"part": part, **changes})
            return {**meta, "parts": parts}

        await job.update_meta(change)

    async def outstanding(self, job: Job) -> int:
        return sum(int(p.get("rows", 0)) for p in self._parts(job) if not p.get("collected"))

    # -- the BatchEngine protocol ------------------------------------------------------------
    async def arun(self, job: Job) -> None:
        self._check(job)
        client = await self.connection.aio()
        await self._repair(job, client)
        await self._poll(job, client)  # what finished since the last run
        submitted = {
            key for p in self._parts(job) if not p.get("collected") for key in self._keys(job, p)
        }
        limit_rows = min(MAX_REQUESTS, job.option("max_requests", MAX_REQUESTS, positive_int))
        limit_bytes = min(MAX_BYTES, job.option("max_bytes", MAX_BYTES, positive_int))
        keys: list[str] = []
        lines: list[bytes] = []
        size = 0
        async for row in job.rows():
            if row.key in submitted:
                continue
            try:
                body = self._body(job, row)
            except Exception as exc:  # an unreadable image: this row's error, not the job's
                await job.put([job.task.failed(row, exc)])
                continue
            line = (
                json.dumps(
                    {"custom_id": row.key, "method": "POST", "url": ENDPOINT, "body": body},
                    ensure_ascii=False,
                ).encode()
                + b"\n"
            )
            if len(line) > limit_bytes:
                await job.put(
                    [
                        job.task.failed(
                            row,
                            f"the request is larger than {limit_bytes:,} bytes, a batch's limit",
                        )
                    ]
                )
                continue
            if keys and (len(keys) >= limit_rows or size + len(line) > limit_bytes):
                await self._submit(job, client, keys, lines)
                keys, lines, size = [], [], 0
            keys.append(row.key)
            lines.append(line)
            size += len(line)
            if job.cancelled:
                return
        if keys:
            await self._submit(job, client, keys, lines)
        if job.wait:
            await self._wait(job, client)

    async def acollect(self, job: Job, *, wait: bool = False) -> None:
        client = await self.connection.aio()
        await self._repair(job, client)
        await self._poll(job, client)
        if wait:
            await self._wait(job, client)

    async def astatus(self, job: Job) -> dict[str, Any]:
        client = await self.connection.aio()
        lines, batches = [], []
        for p in self._parts(job):
            if not p.get("batch_id"):
                lines.append(f"part {p['part']}: uploaded, no batch yet ({p.get('rows', 0)} rows)")
                continue
            if p.get("collected"):
                lines.append(
                    f"{p['batch_id']}: {p.get('status')}, collected ({p.get('rows', 0)} rows)"
                )
                batches.append(p)
                continue
            found = await self._retrieve(client, p["batch_id"])
            counts = found.request_counts
            done = (
                f", {counts.completed}/{counts.total} done, {counts.failed} failed"
                if counts
                else ""
            )
            lines.append(f"{found.id}: {found.status}{done}")
            batches.append({**p, "status": found.status})
            await self._set_part(job, p["part"], status=found.status)
        return {"lines": lines, "batches": batches}

    async def acancel(self, job: Job) -> None:
        client = await self.connection.aio()
        for p in self._parts(job):
            if p.get("batch_id") and not p.get("collected") and p.get("status") not in TERMINAL:
                try:
                    found = await client.batches.cancel(p["batch_id"])
                except Exception as exc:
                    openai = _openai()
                    if isinstance(exc, openai.BadRequestError):  # finished meanwhile
                        continue
                    raise self.connection.error(exc, model=None) from None
                await self._set_part(job, p["part"], status=found.status)

    async def aclose(self) -> None:
        await self.connection.aclose()

    # -- steps ----------------------------------------------------------------------------------
    async def _submit(self, job: Job, client: Any, keys: list[str], lines: list[bytes]) -> None:
        part = secrets.token_hex(6)
        folder = self._folder(job)
        atomic_write_bytes(folder / f"{part}.ids", json.dumps(keys).encode())
        estimate = self._estimate(job, lines)
        data = b"".join(lines)
        try:
            uploaded = await client.files.create(
                file=(f"hypotez-batch-{job.id}-{part}.jsonl", data, "application/jsonl"),
                purpose="batch",
            )
        except Exception as exc:
            raise self.connection.error(exc, model=self._model(job)) from None
        await self._set_part(
            job,
            part,
            file_id=uploaded.id,
            rows=len(keys),
            bytes=len(data),
            status="uploaded",
            collected=False,
            estimate_usd=estimate,
        )
        await self._create(job, client, part, uploaded.id)

    async def _create(self, job: Job, client: Any, part: str, file_id: str) -> None:
        try:
            created = await client.batches.create(
                input_file_id=file_id,
                endpoint=ENDPOINT,
                completion_window=COMPLETION_WINDOW,
                metadata={"hypotez_job": job.id, "hypotez_part": part},
            )
        except Exception as exc:
            raise self.connection.error(exc, model=self._model(job)) from None
        await self._set_part(job, part, batch_id=created.id, status=created.status)
        n = len(self._parts(job))
        job.report(note=f"{n} batch{'es' if n > 1 else ''} submitted")

    async def _repair(self, job: Job, client: Any) -> None:
        """A part uploaded but with no batch id recorded: find its batch, or create it."""
        orphans = [p for p in self._parts(job) if p.get("file_id") and not p.get("batch_id")]
        if not orphans:
            return
        known: dict[str, Any] = {}
        try:
            page = await client.batches.list(limit=100)
            async for found in page:
                meta = found.metadata or {}
                if meta.get("hypotez_job") == job.id and meta.get("hypotez_part"):
                    known[meta["hypotez_part"]] = found
        except Exception as exc:
            raise self.connection.error(exc, model=None) from None
        for p in orphans:
            found = known.get(p["part"])
            if found is not None:
                await self._set_part(job, p["part"], batch_id=found.id, status=found.status)
            else:
                await self._create(job, client, p["part"], p["file_id"])

    async def _retrieve(self, client: Any, batch_id: str) -> Any:
        try:
            return await client.batches.retrieve(batch_id)
        except Exception as exc:
            raise self.connection.error(exc, model=None) from None

    async def _poll(self, job: Job, client: Any) -> None:
        """Read every unfinished batch once; collect those that ended."""
        done = total = 0
        for p in self._parts(job):
            if p.get("collected") or not p.get("batch_id"):
                continue
            found = await self._retrieve(client, p["batch_id"])
            counts = found.request_counts
            if counts is not None:
                done += counts.completed + counts.failed
                total += counts.total
            if found.status in TERMINAL:
                await self._collect(job, client, p, found)
            elif found.status != p.get("status"):
                await self._set_part(job, p["part"], status=found.status)
        if total:
            job.report(done=done, total=total)

    async def _wait(self, job: Job, client: Any) -> None:
        interval = job.option("poll_interval", DEFAULT_POLL, _positive_float)
        while await self.outstanding(job):
            if job.cancelled:
                return
            await asyncio.sleep(interval)
            await self._poll(job, client)

    async def _download(self, client: Any, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        try:
            content = await client.files.content(file_id)
        except Exception as exc:
            raise self.connection.error(exc, model=None) from None
        out = []
        for raw in content.content.splitlines():
            if raw.strip():
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    continue  # a damaged line: its row gets "no result" below
        return out

    async def _collect(self, job: Job, client: Any, part: Mapping[str, Any], batch: Any) -> None:
        keys = self._keys(job, part)
        rows = {
            key: Row(0, key, None) for key in keys
        }  # the output keeps ids as the input has them
        results: list[dict[str, Any]] = []
        seen: set[str] = set()
        usage = [0, 0]
        model = self._model(job)
        for line in [
            *await self._download(client, batch.output_file_id),
            *await self._download(client, batch.error_file_id),
        ]:
            key = str(line.get("custom_id"))
            row = rows.get(key)
            if row is None or key in seen:
                continue
            seen.add(key)
            results.append(self._line_result(job, row, line, usage))
            if len(results) >= 1024:
                await job.put(results)
                results = []
        reason = f"no result: the batch {batch.id} ended as {batch.status} before this row was done; run the job again to submit it anew"
        results.extend(job.task.failed(rows[k], reason) for k in keys if k not in seen)
        await job.put(results)
        prices = self._prices(job, model)
        cost = None
        if prices is not None:
            cost = (usage[0] * prices[0] + usage[1] * prices[1]) / 1_000_000
            job.add_cost(cost)
        await self._set_part(
            job,
            part["part"],
            status=batch.status,
            collected=True,
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
            cost_usd=cost,
        )

    def _line_result(
        self, job: Job, row: Row, line: Mapping[str, Any], usage: list[int]
    ) -> dict[str, Any]:
        task = job.task
        response = line.get("response") or {}
        error = line.get("error")
        body = response.get("body") if isinstance(response, Mapping) else None
        status = response.get("status_code") if isinstance(response, Mapping) else None
        if error or status != 200 or not isinstance(body, Mapping):
            message = None
            if isinstance(error, Mapping):
                message = error.get("message") or error.get("code")
            if message is None and isinstance(body, Mapping):
                inner = body.get("error")
                message = inner.get("message") if isinstance(inner, Mapping) else inner
            return task.failed(
                row, f"the Batch API refused this row (HTTP {status}): {message or 'no details'}"
            )
        got = body.get("usage") or {}
        usage[0] += int(got.get("prompt_tokens") or 0)
        usage[1] += int(got.get("completion_tokens") or 0)
        try:
            return self._result(job, row, body)
        except Exception as exc:  # an answer that is not what was asked for
            return task.failed(row, exc, backend=self.name, model=body.get("model"))

    # -- cost -----------------------------------------------------------------------------------
    def _prices(self, job: Job, model: str) -> tuple[float, float] | None:
        known = batch_prices(model)
        price_in = job.option("price_input", known[0] if known else None, _price)
        price_out = job.option("price_output", known[1] if known else None, _price)
        if price_in is None or price_out is None:
            return None
        return float(price_in), float(price_out)

    def _estimate(self, job: Job, lines: Sequence[bytes]) -> float | None:
        """The input side of the cost (output tokens are known only afterwards)."""
        model = self._model(job)
        prices = self._prices(job, model)
        if prices is None:
            return None
        try:
            from hypotez_openai.tokens import TokenCounter

            counter = TokenCounter(model)
        except Exception:
            return None
        tokens = 0
        for line in lines:
            messages = json.loads(line)["body"]["messages"]
            text_only = [m for m in messages if isinstance(m.get("content"), str)]
            tokens += counter.count_messages(text_only)[0]
        estimate = tokens * prices[0] / 1_000_000
        job.report(note=f"~{tokens:,} input tokens, ~${estimate:,.4f} + output")
        return estimate


def _openai() -> Any:
    from hypotez_openai.client import import_openai

    return import_openai("openai-batch")


__all__ = ["BATCH_PRICES", "MAX_BYTES", "MAX_REQUESTS", "OpenAIBatchEngine", "batch_prices"]

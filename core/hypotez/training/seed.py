"""The seed API: ``OpenAIModel``, ``main()`` and ``load_assistant_catalog``, rebuilt on
:class:`hypotez.Session`; imported as ``hypotez.training`` (see that package's docstring).

This module is the one place in core that names the OpenAI plugin: the class it keeps alive is
called OpenAIModel and takes an OpenAI API key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypotez.errors import InputError
from hypotez.images import load_image
from hypotez.models import Assistant, JobRecord, Reply
from hypotez.session import Session
from hypotez.settings import Settings

#: The plugin (and backend name) an API key is for.
OPENAI = "openai"


def load_assistant_catalog(path: str | os.PathLike[str]) -> list[Assistant]:
    """Read a JSON catalog of assistant presets.

    The file holds a list of objects, or ``{"assistants": [...]}``; each object needs an ``id``
    and may have ``name``, ``instructions``, ``model`` and ``description`` (text, or null). An
    error names the file and the entry; nothing of a bad catalog is used.
    """
    from hypotez.datasets.readers import _json_problem, _read_bytes
    from hypotez.datasets.records import data_problem

    source = Path(path)
    where = repr(str(source))
    try:
        raw = _read_bytes(source, "Assistant catalog")
    except InputError as exc:
        raise InputError(str(exc)) from None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"Cannot read assistant catalog {where}: it is not UTF-8 ({exc.reason} at byte "
            f"{exc.start}). Save it as UTF-8."
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InputError(
            f"Cannot read assistant catalog {where}: {_json_problem(exc)}. Fix the JSON."
        ) from None
    items = data.get("assistants") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(
            f"Assistant catalog {where} must be a JSON list of assistants or "
            '{"assistants": [...]}.'
        )
    out: list[Assistant] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise InputError(
                f'Assistant #{index} in {where} needs an "id" string '
                '(e.g. {"id": "coder", "name": "Coder", "instructions": "..."}).'
            )
        label = f"Assistant #{index} ({item['id'][:80]!r}) in {where}"
        problem = data_problem(item)
        if problem is not None:
            raise InputError(f"{label} {problem[1]}.")
        for key in ("name", "instructions", "model", "description"):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise InputError(
                    f"{label}: {key!r} must be text (or null), not {type(item[key]).__name__}."
                )
        try:
            assistant = Assistant.from_dict(item)
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"{label}: {exc}") from None
        if assistant.id in seen:
            raise InputError(f"Assistant id {assistant.id!r} appears twice in {where}.")
        seen.add(assistant.id)
        out.append(assistant)
    return out


class OpenAIModel:
    """The seed's OpenAI model class: ask with sentiment, keep the dialogue, describe images.

    Args:
        api_key: the OpenAI API key; ``None`` reads ``OPENAI_API_KEY``; with neither, the
            offline defaults answer (local chat, vision and fine-tuning).
        system_instruction: the system message of every request (an assistant's
            instructions replace it when it has some).
        model_name: the chat, vision and fine-tuning model; ``None``: each backend's default
            (``gpt-4o-mini`` for OpenAI).
        assistant_id: a preset from the assistants catalog to apply at once.
        catalog: a JSON catalog file of assistant presets, read in addition to the stored
            catalog (``hypotez assistants``); its entries win on an id clash and are not stored.
        settings, storage, sentiment: passed to :class:`hypotez.Session` (defaults: loaded
            settings, the configured storage, the best available sentiment analyzer).
    """

    def __init__(
        self,
        api_key: str | None = None,
        system_instruction: str | None = None,
        model_name: str | None = None,
        assistant_id: str | None = None,
        *,
        catalog: str | os.PathLike[str] | None = None,
        settings: Settings | None = None,
        storage: str | None = None,
        sentiment: str | bool | None = None,
    ) -> None:
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise InputError("api_key must be a non-empty string, or None to read OPENAI_API_KEY.")
        base = settings if settings is not None else Settings.load()
        if api_key:
            base = base.with_options(OPENAI, api_key=api_key)
        has_key = bool(api_key or base.option(OPENAI, "api_key", secret=True))
        has_key = has_key or bool(base.env("OPENAI_API_KEY"))
        self._settings = base
        self._catalog = load_assistant_catalog(catalog) if catalog is not None else []
        remote = OPENAI if has_key else None  # no key: the offline defaults
        self.session = Session(
            settings=self._settings,
            chat=remote,
            vision=remote,
            trainer=remote,
            sentiment=sentiment,
            storage=storage,
            system=system_instruction,
            model=model_name,
        )
        self.current_job_id: str | None = None
        #: Where :meth:`_save_dialogue` writes; ``None``: ``$HYPOTEZ_HOME/exports/<dialogue>.json``.
        self.dialogue_log_path: Path | None = None
        self.assistant: Assistant | None = None
        if assistant_id is not None:
            self.set_assistant(assistant_id)

    # -- plain attributes of the seed ------------------------------------------------------
    @property
    def model(self) -> str | None:
        """The model name used for chat and vision requests (``None``: the backend's default)."""
        return self.session.model

    @model.setter
    def model(self, value: str) -> None:
        self.session.model = value

    @property
    def system_instruction(self) -> str | None:
        return self.session.system

    @system_instruction.setter
    def system_instruction(self, value: str | None) -> None:
        self.session.system = value

    @property
    def assistant_id(self) -> str | None:
        return self.assistant.id if self.assistant else None

    @property
    def dialogue(self) -> list[dict[str, Any]]:
        """This instance's dialogue: ``{"role", "content"}`` dicts, replies with their sentiment."""
        out: list[dict[str, Any]] = []
        if self.session.system:
            out.append({"role": "system", "content": self.session.system})
        for turn in self.session.history:
            item: dict[str, Any] = {"role": turn.role, "content": turn.content}
            if turn.sentiment is not None:
                item["sentiment"] = turn.sentiment.label
            out.append(item)
        return out

    @property
    def dialogue_id(self) -> str | None:
        """The id of the stored dialogue (``hypotez dialogues show ID``), once something was asked."""
        return self.session.dialogue_id

    @property
    def last_reply(self) -> Reply | None:
        """The last :class:`~hypotez.Reply` (model, usage, sentiment...), beyond the text ``ask`` returns."""
        return self.session.last_reply

    # -- models and assistants ----------------------------------------------------------
    @property
    def list_models(self) -> list[str]:
        """The ids of the models the server offers, sorted. Errors are raised, not hidden."""
        return [m.id for m in self.session.list_models()]

    def _assistants(self) -> dict[str, Assistant]:
        known = {a.id: a for a in self.session.list_assistants()}
        known.update((a.id, a) for a in self._catalog)
        return known

    @property
    def list_assistants(self) -> list[str]:
        """The names of the assistant presets (stored catalog plus ``catalog=`` file), by id."""
        return [a.name for _id, a in sorted(self._assistants().items())]

    @property
    def assistants(self) -> list[Assistant]:
        """The assistant presets themselves (id, name, instructions, model)."""
        return [a for _id, a in sorted(self._assistants().items())]

    def set_assistant(self, assistant_id: str) -> Assistant:
        """Apply a preset: its instructions become the system message, its model the model."""
        known = self._assistants()
        if assistant_id not in known:
            raise InputError(
                f"Unknown assistant {assistant_id!r}. Known: {', '.join(sorted(known)) or 'none'}. "
                "Add one with `hypotez assistants add` or pass catalog=FILE."
            )
        self.assistant = self.session.use_assistant(known[assistant_id])
        return self.assistant

    # -- dialogue -------------------------------------------------------------------------
    def _save_dialogue(self) -> Path:
        """Write the whole dialogue as JSON to ``dialogue_log_path`` (atomically); return the path.

        Every ``ask`` already appends its turns to storage; this writes a snapshot on demand.
        """
        from hypotez.export import export_dialogue
        from hypotez.files import atomic_write_text

        if self.session.dialogue_id is None:
            raise InputError("Nothing to save yet: ask something first.")
        path = self.dialogue_log_path or (
            self._settings.home / "exports" / f"{self.session.dialogue_id}.json"
        )
        atomic_write_text(path, export_dialogue(self.session.dialogue, "json"))
        return Path(path)

    def determine_sentiment(self, message: str) -> str:
        """'positive', 'negative' or 'neutral', from the selected sentiment plugin."""
        return self.session.analyze([message])[0].label

    def ask(self, message: str, system_instruction: str | None = None, attempts: int = 3) -> str:
        """Send ``message`` with the dialogue so far; return the reply text.

        The reply's sentiment is recorded with it (see :attr:`last_reply` and :attr:`dialogue`).
        ``attempts`` bounds the retries of this request (with backoff); a request that still
        fails raises a :class:`~hypotez.HypotezError` subclass saying why.
        """
        if not isinstance(attempts, int) or attempts < 0:
            raise InputError(f"attempts must be a whole number >= 0, not {attempts!r}.")
        reply = self.session.ask(
            message, system=system_instruction, temperature=0, extra={"max_retries": attempts}
        )
        return reply.text

    # -- images ---------------------------------------------------------------------------
    def describe_image(
        self,
        image_path: str | os.PathLike[str] | bytes,
        prompt: str | None = None,
        system_instruction: str | None = None,
        *,
        detail: str = "auto",
        json_schema: Mapping[str, Any] | None = None,
    ) -> Any:
        """Describe an image (path, bytes or URL): the text, or the parsed JSON with ``json_schema``."""
        if system_instruction is None:
            result = self.session.describe_image(
                image_path, prompt, detail=detail, json_schema=json_schema, model=self.model
            )
        else:
            # The vision protocol has no system message; the openai backend takes it as an extra.
            describe: Any = self.session.vision_backend.describe
            result = describe(
                load_image(image_path),
                prompt,
                detail=detail,
                json_schema=json_schema,
                model=self.model,
                system=system_instruction,
            )
        return result.data if json_schema is not None else result.text

    def describe_image_by_requests(
        self, image_path: str | os.PathLike[str] | bytes, prompt: str | None = None
    ) -> str:
        """The same as :meth:`describe_image`, sent as one raw httpx request (``openai-http``)."""
        backend = self._http_vision()
        return str(backend.describe(load_image(image_path), prompt, model=self.model).text)

    def _http_vision(self) -> Any:
        return self.session.context.get("vision", "openai-http")

    # -- fine-tuning --------------------------------------------------------------------
    # With an API key the job runs on OpenAI's fine-tuning; without one on the best available
    # offline trainer (the local LoRA trainer, ``pip install 'hypotez[lora]'``), which trains
    # in a background process on this machine. Either way the call returns the job id at once;
    # :meth:`wait_for_job` follows it, and a finished job's ``fine_tuned_model`` is a model
    # name ``ask`` can use (``model.model = record.fine_tuned_model``).
    def dynamic_train(self) -> str | None:
        """Fine-tune ``self.model`` on the stored dialogues; return the job id.

        Every assistant reply of every stored dialogue becomes one example, with the turns
        before it as context and the dialogue's system instruction (or its assistant's).
        The examples are validated first, against the trainer's own limits and tokenizer
        (:class:`~hypotez.TrainingDataError` with the report if they are invalid, e.g. fewer
        than 10 replies; nothing is submitted then). The job is saved as a record, as
        :meth:`save_job_id` does. ``self.model`` unset: the trainer's default model.
        """
        from hypotez.training import jobs

        description = "dynamic_train: stored dialogues"
        dataset = jobs.gather(storage=self.session.storage, dialogues=True)
        record = jobs.train(self.session, dataset, model=self.model or "", description=description)
        self.save_job_id(record.id, description)
        self.current_job_id = record.id
        return record.id

    def train(
        self,
        data: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        data_file: str | os.PathLike[str] | None = None,
        positive: bool = True,
    ) -> str | None:
        """Fine-tune ``self.model`` on training data; return the job id.

        ``data``: examples as text (JSON, JSONL, or CSV with a ``prompt,completion`` header) or
        a list of examples / ``{"prompt", "completion"}`` dicts; ``data_file``: a CSV, JSONL
        or JSON file; ``data_dir``: a folder of them. Everything given is used, in that order.
        With none of them, the stored dialogues are used, and ``positive=True`` keeps only the
        replies whose stored sentiment is positive (``False``: every reply). The data is
        validated first (:class:`~hypotez.TrainingDataError` with the report if invalid; nothing
        is uploaded then); the job is saved as a record, as :meth:`save_job_id` does.
        """
        from hypotez import datasets
        from hypotez.training import jobs

        parts = []
        if data is not None:
            parts.append(
                datasets.parse_text(data) if isinstance(data, str) else datasets.from_items(data)
            )
        paths = [p for p in (data_file, data_dir) if p is not None]
        if paths:
            parts.append(jobs.gather(paths))
        if not parts:
            options = {"sentiment": "positive" if positive else None}
            parts.append(jobs.gather(storage=self.session.storage, dialogues=options))
            what = "stored dialogues" + (", positive replies" if positive else "")
        else:
            what = ", ".join(str(p) for p in paths) or "given data"
        description = f"train: {what}"
        dataset = datasets.concat(parts)
        record = jobs.train(self.session, dataset, model=self.model or "", description=description)
        self.save_job_id(record.id, description)
        self.current_job_id = record.id
        return record.id

    def wait_for_job(self, job_id: str | None = None, timeout: float | None = None) -> JobRecord:
        """Follow a fine-tuning job (default: the last one started here) until it ends.

        Returns its record (``status``, and ``fine_tuned_model`` when it succeeded); the saved
        record is refreshed. After ``timeout`` seconds :class:`~hypotez.BackendTimeoutError`
        is raised and the job keeps running.
        """
        from hypotez.training import jobs

        job_id = job_id or self.current_job_id
        if not job_id:
            raise InputError("No fine-tuning job started yet: call train() or dynamic_train().")
        interval = float(getattr(self.session.trainer, "poll_interval", None) or 5.0)
        return jobs.wait(self.session, job_id, interval=interval, timeout=timeout)

    def save_job_id(self, job_id: str, description: str, filename: str = "job_ids.json") -> None:
        """Record a fine-tuning job id with its description and creation time.

        The job is saved as a record in the storage's ``jobs`` collection (one record per job,
        so two processes saving at once lose nothing; ``hypotez train list`` shows them), and
        every job record is exported atomically to ``filename`` in the data directory
        (``$HYPOTEZ_HOME``), the seed's JSON file.
        """
        from hypotez.training import jobs

        jobs.save_job_id(
            self.session.storage, job_id, description, filename, export_dir=self._settings.home
        )

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the HTTP clients. The dialogue stays in storage."""
        self.session.close()

    def __enter__(self) -> OpenAIModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(image_path: str | os.PathLike[str] | None = None) -> None:
    """Initialise an OpenAIModel and show what it does (the seed's demonstration).

    Lists models and assistants, asks "Hello, how are you?", prints the reply with its sentiment,
    and describes ``image_path`` (default: ``example_image.jpg`` when it exists).
    """
    model = OpenAIModel(
        api_key=os.environ.get("OPENAI_API_KEY"),
        system_instruction="You are a helpful assistant.",
    )
    with model:
        print("Available Models:")
        print(model.list_models)

        print("\nAvailable Assistants:")
        print(model.list_assistants)

        user_input = "Hello, how are you?"
        print("\nUser Input:", user_input)
        response = model.ask(user_input)
        print("Model Response:", response)
        print("Sentiment:", model.determine_sentiment(response))

        image = Path(image_path) if image_path is not None else Path("example_image.jpg")
        print("\nDescribing Image:")
        if image_path is None and not image.exists():
            print(f"(skipped: {image} does not exist; pass an image path)")
        else:
            print(f"Image description: {model.describe_image(image)}")

"""Training: the seed API (``OpenAIModel``) and the steps of a fine-tuning job.

The seed API, ``OpenAIModel`` and ``main()``, is rebuilt on :class:`hypotez.Session`.

Usage, as the seed documented it::

    import os
    from hypotez.training import OpenAIModel

    model = OpenAIModel(
        api_key=os.environ["OPENAI_API_KEY"],
        system_instruction="You are a helpful assistant.",
    )

    print("Available Models:", model.list_models)
    print("Available Assistants:", model.list_assistants)

    response = model.ask("Hello, how are you?")
    print("Model Response:", response)
    print("Sentiment:", model.determine_sentiment(response))

    description = model.describe_image("example_image.jpg")
    print("Image description:", description)

``OPENAI_BASE_URL`` points the model at any OpenAI-compatible server. Without an API key the
class runs on the offline defaults (local chat, vision and fine-tuning). ``main()`` runs the same
steps (``python -m hypotez.training [IMAGE]``). Every difference from the seed is listed, with its
reason, in ``docs/seed-api.md``.

The steps of a job, for any trainer (what ``hypotez train`` and ``OpenAIModel.train`` run):
:func:`gather` examples from files, folders or stored dialogues, :func:`prepare` them (validated
against the trainer's own limits), :func:`submit` them to a session's trainer (the job's record
is kept in the storage), then :func:`status`, :func:`events`, :func:`wait`, :func:`cancel` and
:func:`list_jobs`. They live in :mod:`hypotez.training.jobs`; the seed API in
:mod:`hypotez.training.seed`.
"""

from hypotez.training.jobs import (
    FINAL_STATES,
    JOBS,
    HasTrainer,
    Prepared,
    cancel,
    check_job_file_name,
    events,
    export_jobs,
    gather,
    list_jobs,
    prepare,
    remember,
    save_job_id,
    status,
    stored_job,
    submit,
    train,
    wait,
)
from hypotez.training.seed import OPENAI, OpenAIModel, load_assistant_catalog, main

__all__ = [
    "FINAL_STATES",
    "JOBS",
    "OPENAI",
    "HasTrainer",
    "OpenAIModel",
    "Prepared",
    "cancel",
    "check_job_file_name",
    "events",
    "export_jobs",
    "gather",
    "list_jobs",
    "load_assistant_catalog",
    "main",
    "prepare",
    "remember",
    "save_job_id",
    "status",
    "stored_job",
    "submit",
    "train",
    "wait",
]

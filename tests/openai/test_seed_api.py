"""The seed's ``OpenAIModel`` and ``main()`` on top of the session, against aimock."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import textwrap
from pathlib import Path

import hypotez
import hypotez.training
import pytest
from hypotez.training import OpenAIModel
from hypotez_test_servers.aimock import Aimock

from .conftest import JPEG_BYTES

pytestmark = pytest.mark.aimock


def usage_example() -> str:
    """The code block of the module docstring, exactly as documented."""
    doc = hypotez.training.__doc__ or ""
    block = doc.split("Usage, as the seed documented it::", 1)[1]
    lines = []
    for line in block.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def test_the_documented_usage_example_runs_as_written(aimock_env: Aimock, tmp_path: Path) -> None:
    (tmp_path / "example_image.jpg").write_bytes(JPEG_BYTES)  # the cwd is tmp_path
    code = usage_example()
    assert "OpenAIModel(" in code and "describe_image(" in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "hypotez.training usage example", "exec"), {})

    printed = out.getvalue()
    assert "Available Models: ['gpt-4o', 'gpt-4o-mini']" in printed
    assert "Available Assistants: []" in printed
    assert "Model Response: I am doing great, thank you! How can I help you today?" in printed
    assert "Sentiment: positive" in printed
    assert "Image description: A small red square on a plain background." in printed
    ask, describe = aimock_env.chat_requests()
    assert ask["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert ask["temperature"] == 0
    url = describe["messages"][-1]["content"][1]["image_url"]["url"]
    assert url == "data:image/jpeg;base64," + base64.b64encode(JPEG_BYTES).decode()


def test_the_docs_show_the_same_example_the_suite_runs() -> None:
    """docs/seed-api.md skips its code block in the docs tests (it needs a server): it must be
    the very example run above, so the page cannot drift from what is tested."""
    page = Path(__file__).resolve().parents[2] / "docs" / "seed-api.md"
    block = page.read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]
    assert block.strip() == usage_example().strip()


def test_main_runs_the_demonstration(aimock_env: Aimock, jpeg_file: Path, capsys) -> None:
    hypotez.training.main(jpeg_file)
    printed = capsys.readouterr().out
    assert "['gpt-4o', 'gpt-4o-mini']" in printed
    assert "Model Response: I am doing great" in printed
    assert "Image description: A small red square" in printed


def test_main_without_an_image_skips_describing(aimock_env: Aimock, capsys) -> None:
    hypotez.training.main()
    printed = capsys.readouterr().out
    assert "skipped: example_image.jpg does not exist" in printed
    assert len(aimock_env.chat_requests()) == 1


def test_instances_have_separate_dialogues(aimock_env: Aimock) -> None:
    with (
        OpenAIModel(aimock_env.api_key) as a,
        OpenAIModel(aimock_env.api_key, system_instruction="B") as b,
    ):
        a.ask("Hello, how are you?")
        a.ask("My name is Ada.")
        b.ask("Who am I?")
        assert a.dialogue_id != b.dialogue_id
        assert [d["content"] for d in a.dialogue] == [
            "Hello, how are you?",
            "I am doing great, thank you! How can I help you today?",
            "My name is Ada.",
            "Noted.",
        ]
        assert [d["content"] for d in b.dialogue] == ["B", "Who am I?", "Noted."]
    *_, last = aimock_env.chat_requests()
    assert last["messages"] == [
        {"role": "system", "content": "B"},
        {"role": "user", "content": "Who am I?"},
    ]


def test_ask_is_multi_turn_and_records_sentiment(aimock_env: Aimock, home: Path) -> None:
    with OpenAIModel(aimock_env.api_key, system_instruction="Be kind.") as model:
        reply = model.ask("Hello, how are you?")
        model.ask("Thanks, that is great!", system_instruction="Per-call system.")
        assert model.dialogue[2] == {"role": "assistant", "content": reply, "sentiment": "positive"}
        assert model.last_reply is not None and model.last_reply.sentiment is not None
        stored = hypotez.Session(settings=hypotez.Settings.load()).storage.load_dialogue(
            model.dialogue_id
        )
    assert [t.content for t in stored.turns][-1] == "Noted."
    assert stored.turns[1].sentiment is not None and stored.turns[1].sentiment.label == "positive"
    second = aimock_env.last_chat_request()["messages"]
    assert second[0] == {"role": "system", "content": "Per-call system."}
    assert second[1:3] == [
        {"role": "user", "content": "Hello, how are you?"},
        {"role": "assistant", "content": reply},
    ]


def test_ask_retries_a_bounded_number_of_attempts_then_raises(aimock_env: Aimock) -> None:
    aimock_env.set_chaos(drop=1.0)
    with (
        OpenAIModel(aimock_env.api_key) as model,
        pytest.raises(hypotez.ServerError, match="after 1 retries"),
    ):
        model.ask("Hello, how are you?", attempts=1)
    assert len(aimock_env.chat_requests()) == 2


def test_save_dialogue_writes_the_whole_dialogue(aimock_env: Aimock, tmp_path: Path) -> None:
    with OpenAIModel(aimock_env.api_key, system_instruction="Sys.") as model:
        with pytest.raises(hypotez.InputError, match="ask something first"):
            model._save_dialogue()
        model.ask("Hello, how are you?")
        model.dialogue_log_path = tmp_path / "log" / "dialogue.json"
        path = model._save_dialogue()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["system"] == "Sys."
    assert [t["role"] for t in data["turns"]] == ["user", "assistant"]
    assert data["turns"][1]["sentiment"]["label"] == "positive"
    assert aimock_env.api_key not in path.read_text(encoding="utf-8")


def test_assistants_from_storage_and_from_a_catalog_file(
    aimock_env: Aimock, tmp_path: Path
) -> None:
    with hypotez.Session() as s:
        s.storage.save_assistant(
            hypotez.Assistant(id="stored", name="Stored one", instructions="Stored.")
        )
    catalog = tmp_path / "assistants.json"
    catalog.write_text(
        json.dumps(
            [
                {
                    "id": "coder",
                    "name": "Code Assistant",
                    "instructions": "You write Python.",
                    "model": "gpt-4o",
                },
                {"id": "stored", "name": "Overridden", "instructions": "From the file."},
            ]
        )
    )
    with OpenAIModel(aimock_env.api_key, catalog=catalog, assistant_id="coder") as model:
        assert model.list_assistants == ["Code Assistant", "Overridden"]
        assert model.assistant_id == "coder"
        assert model.model == "gpt-4o"
        assert model.system_instruction == "You write Python."
        model.ask("Hello, how are you?")
        model.set_assistant("stored")
        with pytest.raises(hypotez.InputError, match="Unknown assistant 'nobody'"):
            model.set_assistant("nobody")
    body = aimock_env.last_chat_request()
    assert body["model"] == "gpt-4o"
    assert body["messages"][0] == {"role": "system", "content": "You write Python."}


def test_bad_catalog_files_are_refused_with_the_entry_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "no id"}]')
    with pytest.raises(hypotez.InputError, match=r"Assistant #0 .* needs an \"id\""):
        hypotez.training.load_assistant_catalog(bad)
    bad.write_text("{not json")
    with pytest.raises(hypotez.InputError, match="Fix the JSON"):
        hypotez.training.load_assistant_catalog(bad)
    bad.write_text('{"assistants": [{"id": "a"}, {"id": "a"}]}')
    with pytest.raises(hypotez.InputError, match="appears twice"):
        hypotez.training.load_assistant_catalog(bad)


def test_describe_image_variants(aimock_env: Aimock, jpeg_file: Path) -> None:
    schema = {"type": "object", "properties": {"shape": {"type": "string"}}}
    with OpenAIModel(aimock_env.api_key) as model:
        assert model.describe_image(jpeg_file) == "A small red square on a plain background."
        assert (
            model.describe_image(jpeg_file, "Count the pixels", "You are terse.")
            == "There is exactly one pixel."
        )
        assert model.describe_image(jpeg_file, "Describe it as JSON", json_schema=schema) == {
            "shape": "square",
            "colour": "red",
        }
        assert (
            model.describe_image_by_requests(jpeg_file)
            == "A small red square on a plain background."
        )
    entries = aimock_env.journal("/v1/chat/completions")
    assert entries[1]["body"]["messages"][0] == {"role": "system", "content": "You are terse."}
    assert entries[-1]["headers"]["user-agent"].startswith("python-httpx/")  # the raw request
    assert entries[-1]["body"]["messages"] == entries[0]["body"]["messages"]


def test_list_models_and_determine_sentiment(aimock_env: Aimock) -> None:
    with OpenAIModel(aimock_env.api_key) as model:
        assert model.list_models == ["gpt-4o", "gpt-4o-mini"]
        assert model.determine_sentiment("This is terrible and awful") == "negative"
        assert model.determine_sentiment("I love it, wonderful") == "positive"
        assert model.determine_sentiment("The table is brown") == "neutral"


def test_no_api_key_means_the_offline_defaults_or_says_to_set_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without a key the class runs on whatever offline backends are installed; with none of
    # them, asking says how to get a backend (the OpenAI plugin's own hint).
    monkeypatch.setenv("HYPOTEZ_PLUGINS", "files,openai,textblob")
    hypotez.reset_plugin_manager()
    with OpenAIModel(None) as model, pytest.raises(hypotez.ConfigError, match="OPENAI_API_KEY"):
        model.ask("hello")

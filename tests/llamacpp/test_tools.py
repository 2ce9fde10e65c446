"""Tool calling with the llamacpp backend: real models, real grammar, the session's loop.

Runs the llamacpp example of docs/tools.md (the docs tests skip it: it needs a model).

SmolLM2-135M's template knows nothing of tools, so it is told about them in the system message
(the ``prompt`` style); the bundled Qwen2.5-Coder's template renders tools itself (the
``template`` style). Either way the grammar makes every call name an offered tool with
arguments that follow its schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import ChatOptions, InputError, ToolCall, ToolSpec
from hypotez_llamacpp import tools as llama_tools
from hypotez_test_servers.llamacpp_server import model_path

WEATHER = ToolSpec(
    "get_weather",
    "The current weather in a city.",
    {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city's name."}},
        "required": ["city"],
        "additionalProperties": False,
    },
)


def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return f"sunny, 21 degrees in {city}"


@pytest.fixture(scope="module")
def smollm2_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield {"model_path": str(model_path()), "n_ctx": 2048, "seed": 1}


def smollm2_session(home: Path, options: dict[str, Any]) -> hypotez.Session:
    settings = hypotez.Settings.load(env={}, home=home, options={"llamacpp": options})
    return hypotez.Session(settings=settings, chat="llamacpp", sentiment=False)


def test_a_forced_call_runs_then_the_model_answers_in_words(
    home: Path, smollm2_settings: dict[str, Any]
) -> None:
    with smollm2_session(home, smollm2_settings) as s:
        reply = s.ask(
            "What is the weather in Paris?",
            tools=[get_weather],
            tool_choice="get_weather",
            max_tool_rounds=1,
            max_tokens=40,
            temperature=0,
        )
        turns = s.dialogue.turns
    [result] = reply.tool_results
    assert result.call.name == "get_weather" and not result.is_error
    city = json.loads(result.call.arguments)["city"]
    assert isinstance(city, str) and city
    assert result.content == f"sunny, 21 degrees in {city}"
    assert reply.text.strip() and "<tool_call>" not in reply.text
    assert [t.role for t in turns] == ["user", "assistant", "tool", "assistant"]
    assert turns[1].content == "" and turns[1].tool_calls == (result.call,)
    assert turns[1].finish_reason == "tool_calls"


def test_a_streamed_call_is_not_shown_as_text(home: Path, smollm2_settings: dict[str, Any]) -> None:
    with smollm2_session(home, smollm2_settings) as s:
        chunks = list(
            s.stream(
                "What is the weather in Rome?",
                tools=[get_weather],
                tool_choice="required",
                max_tool_rounds=1,
                max_tokens=40,
                temperature=0,
            )
        )
    text = "".join(c.delta for c in chunks)
    kinds = [c.tool_call is not None for c in chunks[:1]] + [
        c.tool_result is not None for c in chunks[1:2]
    ]
    assert kinds == [True, True]  # the call, then its result, before any text
    assert "<tool_call>" not in text and text.strip()
    final = chunks[-1].reply
    assert final is not None and final.text == text


def test_the_backend_returns_calls_of_offered_tools_only(
    home: Path, smollm2_settings: dict[str, Any]
) -> None:
    from hypotez_llamacpp.chat import LlamaCppChat
    from hypotez_llamacpp.config import LlamaCppConfig

    config = LlamaCppConfig.from_settings(
        hypotez.Settings.load(env={}, home=home, options={"llamacpp": smollm2_settings})
    )
    backend = LlamaCppChat(config)
    try:
        reply = backend.chat(
            [hypotez.Message("user", "Look up the weather for Oslo, please.")],
            ChatOptions(tools=[WEATHER], tool_choice="required", max_tokens=60, temperature=0),
        )
    finally:
        backend.close()
    assert reply.tool_calls
    for call in reply.tool_calls:
        assert call.name == "get_weather"
        assert set(json.loads(call.arguments)) == {"city"}  # the grammar follows the schema
        assert call.id.startswith("call_")
    assert len({c.id for c in reply.tool_calls}) == len(reply.tool_calls)


# -- the plan for one request (no model needed) ----------------------------------------------------


HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Oslo and Rome?"},
    hypotez.Message(
        "assistant",
        "",
        tool_calls=[
            ToolCall("c1", "get_weather", '{"city": "Oslo"}'),
            ToolCall("c2", "get_weather", '{"city": "Rome"}'),
        ],
    ).to_dict(),
    {"role": "tool", "content": "sunny", "tool_call_id": "c1", "name": "get_weather"},
    {"role": "tool", "content": "rainy", "tool_call_id": "c2", "name": "get_weather"},
]


def test_without_template_support_calls_and_results_are_written_as_blocks() -> None:
    plan = llama_tools.plan(HISTORY, ChatOptions(tools=[WEATHER]), template_tools=False)
    system, _user, asked, results = plan.messages
    assert system["content"].startswith("Be brief.\n\nYou can call these tools")
    assert '"name": "get_weather"' in system["content"]
    assert asked == {
        "role": "assistant",
        "content": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
        '</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n'
        "</tool_call>",
    }
    assert results["role"] == "user"  # one message for the round: any template accepts it
    assert results["content"].count("<tool_response>") == 2
    assert plan.template_tools is None and plan.calls_possible


def test_with_template_support_the_template_gets_tools_and_call_objects() -> None:
    plan = llama_tools.plan(HISTORY, ChatOptions(tools=[WEATHER]), template_tools=True)
    assert plan.template_tools == [WEATHER.to_dict()]
    assert plan.messages[0] == {"role": "system", "content": "Be brief."}
    assert plan.messages[2]["tool_calls"][0]["function"]["arguments"] == {"city": "Oslo"}
    assert plan.messages[3]["role"] == "tool"


def test_after_tools_the_last_answer_is_text_only() -> None:
    plan = llama_tools.plan(
        HISTORY, ChatOptions(tools=[WEATHER], tool_choice="none"), template_tools=False
    )
    assert plan.grammar == llama_tools.TEXT_ONLY and not plan.calls_possible


@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        ("Plain answer.", "Plain answer.", []),
        (
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
            "",
            [("get_weather", {"city": "Oslo"})],
        ),
        (  # a second block cut by the token limit is dropped
            '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
            '<tool_call>\n{"name": "get_wea',
            "",
            [("get_weather", {"city": "Oslo"})],
        ),
        (  # Llama-3 style "parameters" is read too
            'Let me check.\n<tool_call>{"name": "f", "parameters": {"x": 1}}</tool_call>',
            "Let me check.",
            [("f", {"x": 1})],
        ),
    ],
)
def test_calls_are_parsed_out_of_the_reply(text: str, content: str, calls: list[Any]) -> None:
    got_content, got_calls = llama_tools.parse(text, [WEATHER])
    assert got_content == content
    assert [(c.name, json.loads(c.arguments)) for c in got_calls] == calls


def test_a_block_that_is_not_json_still_becomes_a_call_the_loop_answers() -> None:
    _content, [call] = llama_tools.parse('<tool_call>{"name": "get_weather", oops}</tool_call>', [])
    assert call.name == "get_weather"
    with pytest.raises(InputError, match="not valid JSON"):
        call.parsed_arguments()


def test_tools_and_json_schema_together_are_refused() -> None:
    with pytest.raises(InputError, match="cannot combine tools with json_schema"):
        llama_tools.plan(
            HISTORY[:2],
            ChatOptions(tools=[WEATHER], json_schema={"type": "object"}),
            template_tools=False,
        )


def test_the_grammar_only_allows_the_named_tool() -> None:
    other = ToolSpec("get_time", "The time.", {"type": "object", "properties": {}})
    named = llama_tools.plan(
        HISTORY[:2],
        ChatOptions(tools=[WEATHER, other], tool_choice="get_time"),
        template_tools=False,
    )
    assert named.grammar is not None
    assert '"\\"get_time\\""' in named.grammar and "get_weather" not in named.grammar
    assert "| text" not in named.grammar.splitlines()[0]  # a call is required


# -- the bundled model: its own template renders the tools -----------------------------------------


@pytest.fixture(scope="module")
def bundled_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundled-model-cache")


@pytest.mark.slow
def test_the_bundled_model_calls_a_tool_through_its_own_template(
    home: Path, bundled_cache: Path
) -> None:
    settings = hypotez.Settings.load(
        env={}, home=home, options={"llamacpp": {"cache_dir": str(bundled_cache), "seed": 1}}
    )
    with hypotez.Session(settings=settings, chat="llamacpp", sentiment=False) as s:
        backend = s.chat_backend
        reply = s.ask(
            "What is the weather in Paris right now?",
            tools=[get_weather],
            max_tool_rounds=2,
            max_tokens=80,
            temperature=0,
        )
        turns = s.dialogue.turns
        assert llama_tools.template_renders_tools(backend._loaded.formatter)
    # Qwen2.5 decides by itself (tool_choice auto) to call the tool, with Paris.
    assert [r.call.name for r in reply.tool_results][:1] == ["get_weather"]
    assert json.loads(reply.tool_results[0].call.arguments) == {"city": "Paris"}
    assert "21" in reply.text or "sunny" in reply.text.lower()
    assert turns[0].role == "user" and turns[-1].role == "assistant"


def test_the_cli_runs_a_tool_with_the_local_model(home: Path, tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    (tmp_path / "mytools.py").write_text(
        "def get_weather(city: str) -> str:\n"
        '    """The current weather in a city."""\n'
        '    return f"sunny, 21 degrees in {city}"\n',
        encoding="utf-8",
    )
    exe = shutil.which("hypotez") or str(Path(sys.executable).with_name("hypotez"))
    env = {
        **os.environ,
        "HYPOTEZ_HOME": str(home),
        "HYPOTEZ_CHAT": "llamacpp",
        "HYPOTEZ_SENTIMENT": "keywords",
        "HYPOTEZ_LLAMACPP_MODEL_PATH": str(model_path()),
        "HYPOTEZ_LLAMACPP_N_CTX": "2048",
    }
    result = subprocess.run(
        [
            exe,
            "ask",
            "--tool",
            "mytools:get_weather",
            "--tool-choice",
            "get_weather",
            "--max-tool-rounds",
            "1",
            "--max-tokens",
            "40",
            "--temperature",
            "0",
            "What is the weather in Paris?",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "[tool] get_weather(city=" in result.stderr
    assert "[tool] get_weather -> sunny, 21 degrees in " in result.stderr
    assert result.stdout.strip() and "<tool_call>" not in result.stdout
    dialogue_id = result.stderr.rsplit("dialogue: ", 1)[1].split("]")[0]
    shown = subprocess.run(
        [exe, "dialogues", "show", dialogue_id], capture_output=True, text=True, env=env, timeout=60
    )
    assert [line.split(" ", 1)[0] for line in shown.stdout.splitlines()] == [
        "user:",
        "assistant",
        "tool",
        "assistant:",
    ]

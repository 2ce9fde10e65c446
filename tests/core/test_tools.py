"""Tools: schemas from functions, one round of calls, and the session's tool loop.

The loop is tested here against a scripted chat backend (the openai and llamacpp suites test
it against real servers and a real model): each test says what the "model" answers, in order,
and checks what the user sees: the reply, the stored turns, what the model was sent.
"""

from __future__ import annotations

import asyncio
import enum
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import hypotez
import pytest
from hypotez import (
    BackendError,
    ChatBackend,
    ChatOptions,
    InputError,
    Message,
    Reply,
    Session,
    Tool,
    ToolCall,
    ToolSpec,
    Turn,
)
from hypotez.tools import describe_call, run_calls
from pydantic import Field

# -- tools from functions ----------------------------------------------------------------------


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


def get_weather(city: str, unit: Unit = Unit.CELSIUS, days: int = 1) -> str:
    """The weather forecast for a city.

    Uses the national weather service.

    Args:
        city: The city's name, e.g. Paris.
        days: How many days ahead.
    """
    return f"sunny in {city}, 21 {unit.value}, {days} day(s)"


def test_a_function_becomes_a_spec_from_its_hints_and_docstring() -> None:
    spec = Tool(get_weather).spec
    assert spec.name == "get_weather"
    assert (
        spec.description == "The weather forecast for a city.\n\nUses the national weather service."
    )
    params = spec.parameters
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {
        "type": "string",
        "description": "The city's name, e.g. Paris.",
    }
    assert params["properties"]["days"] == {
        "type": "integer",
        "default": 1,
        "description": "How many days ahead.",
    }
    unit = params["properties"]["unit"]
    assert unit["default"] == "C"
    assert params["$defs"]["Unit"]["enum"] == ["C", "F"]
    assert params["additionalProperties"] is False


def test_rest_and_numpy_docstrings_and_annotated_fields() -> None:
    def rest(query: str, limit: Annotated[int, Field(ge=1, le=50)] = 10) -> list[str]:
        """Search the notes.

        :param query: Words to look for.
        """
        return []

    def numpy_style(path: str) -> str:
        """Read a file.

        Parameters
        ----------
        path : str
            Where the file is.
        """
        return ""

    rest_spec = Tool(rest).spec
    assert rest_spec.parameters["properties"]["query"]["description"] == "Words to look for."
    assert rest_spec.parameters["properties"]["limit"]["maximum"] == 50
    assert (
        Tool(numpy_style).spec.parameters["properties"]["path"]["description"]
        == "Where the file is."
    )


def test_name_and_description_can_be_given() -> None:
    tool = Tool(lambda a: a, name="identity", description="Returns its argument.")
    assert (tool.name, tool.spec.description) == ("identity", "Returns its argument.")


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: Tool(lambda x: x), "pass name="),
        (lambda: Tool(get_weather, name="get weather"), "Invalid tool name 'get weather'"),
        (lambda: Tool(print_all), "*args: a tool takes named parameters"),
        (lambda: Tool("get_weather"), "not str"),  # type: ignore[arg-type]
        (lambda: Tool(get_weather, parameters={"type": "array"}), "must describe an object"),
        (
            lambda: Tool(get_weather, parameters={"type": "object", "required": "city"}),
            "not a valid JSON schema",
        ),
    ],
)
def test_unusable_tools_are_refused_with_the_fix(make: Any, says: str) -> None:
    with pytest.raises(InputError, match=says.replace("*", r"\*").replace("(", r"\(")):
        make()


def print_all(*args: str) -> None:
    print(*args)


def test_an_explicit_spec_is_kept_and_its_arguments_checked() -> None:
    calls: list[dict[str, Any]] = []

    def lookup(**kwargs: Any) -> str:
        calls.append(kwargs)
        return "found"

    spec = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up.",
            "parameters": {
                "type": "object",
                "properties": {"word": {"type": "string", "maxLength": 10}},
                "required": ["word"],
            },
        },
    }
    tool = Tool.from_spec(spec, lookup)
    assert tool.spec.to_dict() == spec
    ok, bad = asyncio.run(
        run_calls(
            {"lookup": tool},
            [ToolCall("1", "lookup", '{"word": "tea"}'), ToolCall("2", "lookup", '{"word": 3}')],
            max_parallel=4,
        )
    )
    assert (ok.content, ok.is_error) == ("found", False)
    assert bad.is_error and "word: 3 is not of type 'string'" in bad.content
    assert calls == [{"word": "tea"}]


def test_a_spec_without_a_function_is_refused_by_the_session() -> None:
    with Session(chat=Scripted([]), sentiment=False, store=False) as s:
        with pytest.raises(InputError, match=r"Tool\.from_spec"):
            s.ask("hi", tools=[{"type": "function", "function": {"name": "f"}}])  # type: ignore[list-item]
        with pytest.raises(InputError, match="Two tools are named 'get_weather'"):
            s.ask("hi", tools=[get_weather, get_weather])
        with pytest.raises(InputError, match="tool_choice must be one of"):
            s.ask("hi", tools=[get_weather], tool_choice="get_wether")
        with pytest.raises(InputError, match="max_tool_rounds"):
            s.ask("hi", tools=[get_weather], max_tool_rounds=0)


# -- one round of calls ------------------------------------------------------------------------


def run(calls: Sequence[ToolCall], *tools: Any, max_parallel: int = 8) -> list[hypotez.ToolResult]:
    return asyncio.run(
        run_calls({t.name: t for t in map(Tool, tools)}, calls, max_parallel=max_parallel)
    )


def test_results_come_back_in_call_order_and_text_or_json() -> None:
    def stats(numbers: list[float]) -> dict[str, float]:
        return {"sum": sum(numbers), "count": len(numbers)}

    weather, numbers = run(
        [
            ToolCall("a", "get_weather", '{"city": "Oslo", "unit": "F", "days": "2"}'),
            ToolCall("b", "stats", '{"numbers": [1, 2.5]}'),
        ],
        get_weather,
        stats,
    )
    assert weather.content == "sunny in Oslo, 21 F, 2 day(s)"  # "2" coerced to the int hint
    assert json.loads(numbers.content) == {"sum": 3.5, "count": 2}
    assert (weather.call.id, numbers.call.id) == ("a", "b")


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (
            ToolCall("1", "get_wether", "{}"),
            "no tool named 'get_wether'. The tools are: get_weather",
        ),
        (ToolCall("1", "get_weather", '{"city": '), "not valid JSON"),
        (ToolCall("1", "get_weather", '["Paris"]'), "must be a JSON object"),
        (ToolCall("1", "get_weather", '{"town": "Paris"}'), "city: missing (it is required)"),
        (ToolCall("1", "get_weather", '{"city": "Paris", "unit": "K"}'), "unit: Input should be"),
    ],
)
def test_bad_calls_become_error_results_for_the_model(call: ToolCall, says: str) -> None:
    [result] = run([call], get_weather)
    assert result.is_error
    assert result.content.startswith("Error: ")
    assert says in result.content


def test_a_tool_that_raises_is_an_error_result_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def divide(a: float, b: float) -> float:
        return a / b

    [result] = run([ToolCall("1", "divide", '{"a": 1, "b": 0}')], divide)
    assert result.is_error
    assert (
        result.content == "Error: the tool divide failed: ZeroDivisionError: float division by zero"
    )
    assert "ZeroDivisionError" in caplog.text


def test_calls_beyond_the_parallel_bound_are_not_run() -> None:
    ran: list[str] = []

    def note(text: str) -> str:
        ran.append(text)
        return "ok"

    results = run(
        [ToolCall(str(i), "note", json.dumps({"text": str(i)})) for i in range(4)],
        note,
        max_parallel=2,
    )
    assert sorted(ran) == ["0", "1"]
    assert [r.is_error for r in results] == [False, False, True, True]
    assert "at most 2 tool call(s) run in one turn" in results[2].content


def test_calls_of_one_round_run_concurrently_blocking_and_async() -> None:
    # Each tool waits until the other has started: run one after the other, they would hang.
    both = threading.Barrier(2, timeout=10)
    started = asyncio.Event()

    def blocking() -> str:
        both.wait()
        return "blocking done"

    async def waiting() -> str:
        await asyncio.to_thread(both.wait)
        started.set()
        return "async done"

    results = run(
        [ToolCall("1", "blocking", "{}"), ToolCall("2", "waiting", "{}")], blocking, waiting
    )
    assert [r.content for r in results] == ["blocking done", "async done"]


def test_describe_call_reads_like_python() -> None:
    assert describe_call(ToolCall("1", "f", '{"city": "Paris", "n": 2}')) == 'f(city="Paris", n=2)'
    assert describe_call(ToolCall("1", "f", "not json")) == "f(not json)"


# -- the session's loop ------------------------------------------------------------------------


class Scripted(ChatBackend):
    """Answers from a script: each entry is a Reply, or a function of (messages, options)."""

    name = "scripted"
    supports_tools = True

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.requests: list[tuple[list[Message], ChatOptions]] = []

    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        self.requests.append((list(messages), options))
        step = self.script.pop(0) if self.script else Reply("done", "m")
        return step(messages, options) if callable(step) else step


def calls(*pairs: tuple[str, dict[str, Any]], text: str = "") -> Reply:
    return Reply(
        text,
        "m",
        tool_calls=[
            ToolCall(f"call_{i}", name, json.dumps(args)) for i, (name, args) in enumerate(pairs)
        ],
    )


def test_ask_runs_the_calls_and_stores_every_turn_in_order(home: Path) -> None:
    chat = Scripted(
        [
            calls(
                ("get_weather", {"city": "Paris"}),
                ("get_weather", {"city": "Rome"}),
                text="Checking.",
            ),
            Reply("Paris and Rome are sunny.", "m"),
        ]
    )
    with Session(chat=chat, sentiment="keywords") as s:
        reply = s.ask("Weather in Paris and Rome?", tools=[get_weather])
        stored = s.storage.load_dialogue(s.dialogue_id)

    assert reply.text == "Paris and Rome are sunny."
    assert reply.tool_calls == ()
    assert [(r.call.name, r.content) for r in reply.tool_results] == [
        ("get_weather", "sunny in Paris, 21 C, 1 day(s)"),
        ("get_weather", "sunny in Rome, 21 C, 1 day(s)"),
    ]
    assert [(t.role, t.content) for t in stored.turns] == [
        ("user", "Weather in Paris and Rome?"),
        ("assistant", "Checking."),
        ("tool", "sunny in Paris, 21 C, 1 day(s)"),
        ("tool", "sunny in Rome, 21 C, 1 day(s)"),
        ("assistant", "Paris and Rome are sunny."),
    ]
    user, asked, paris, rome, final = stored.turns
    assert [t.name for t in user.tools] == ["get_weather"]
    assert [c.id for c in asked.tool_calls] == ["call_0", "call_1"]
    assert (paris.tool_call_id, paris.name, rome.tool_call_id) == (
        "call_0",
        "get_weather",
        "call_1",
    )
    assert user.sentiment is not None and final.sentiment == reply.sentiment
    assert asked.sentiment is None and paris.sentiment is None
    # The second request carried the calls and their results; the spec went with both.
    second_messages, second_options = chat.requests[1]
    assert [m.role for m in second_messages] == ["user", "assistant", "tool", "tool"]
    assert second_messages[1].tool_calls == asked.tool_calls
    assert [t.name for t in second_options.tools] == ["get_weather"]


def test_the_next_ask_resends_the_tool_turns_and_a_resumed_dialogue_too(home: Path) -> None:
    chat = Scripted(
        [calls(("get_weather", {"city": "Oslo"})), Reply("Sunny.", "m"), Reply("Yes.", "m")]
    )
    with Session(chat=chat, sentiment=False) as s:
        s.ask("Weather in Oslo?", tools=[get_weather])
        dialogue_id = s.dialogue_id
    with Session(chat=chat, sentiment=False, dialogue_id=dialogue_id) as s:
        s.ask("Really?")
    messages, options = chat.requests[-1]
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[1].tool_calls[0].arguments == '{"city": "Oslo"}'
    assert messages[2].tool_call_id == "call_0"
    assert options.tools == ()


def test_stream_shows_each_call_and_result_as_it_happens(home: Path) -> None:
    chat = Scripted([calls(("get_weather", {"city": "Oslo"})), Reply("Sunny in Oslo.", "m")])
    with Session(chat=chat, sentiment=False) as s:
        chunks = list(s.stream("Weather in Oslo?", tools=[get_weather]))
        turns = s.dialogue.turns
    kinds = [
        "call" if c.tool_call else "result" if c.tool_result else "reply" if c.reply else "text"
        for c in chunks
    ]
    assert kinds == ["call", "result", "text", "reply"]
    assert chunks[0].tool_call is not None and chunks[0].tool_call.name == "get_weather"
    assert chunks[1].tool_result is not None and chunks[1].tool_result.content.startswith(
        "sunny in Oslo"
    )
    assert chunks[-1].reply is not None and chunks[-1].reply.text == "Sunny in Oslo."
    assert [t.role for t in turns] == ["user", "assistant", "tool", "assistant"]


def test_rounds_are_bounded_then_the_model_must_answer(home: Path) -> None:
    def answer_unless_forced(messages: Sequence[Message], options: ChatOptions) -> Reply:
        if options.tool_choice == "none":
            return Reply("I give up asking.", "m")
        return calls(("get_weather", {"city": "Oslo"}))

    chat = Scripted([answer_unless_forced] * 10)
    with Session(chat=chat, sentiment=False) as s:
        reply = s.ask("Weather?", tools=[get_weather], max_tool_rounds=2)
        turns = s.dialogue.turns
    assert reply.text == "I give up asking."
    assert len(reply.tool_results) == 2
    assert [o.tool_choice for _m, o in chat.requests] == [None, None, "none"]
    assert [t.role for t in turns] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
    ]


def test_a_model_that_never_stops_calling_fails_and_nothing_is_stored(home: Path) -> None:
    chat = Scripted([calls(("get_weather", {"city": "Oslo"}))] * 5)
    with Session(chat=chat, sentiment=False) as s:
        with pytest.raises(BackendError, match=r"still called tools after 1 round\(s\)"):
            s.ask("Weather?", tools=[get_weather], max_tool_rounds=1)
        assert s.dialogue_id is None
        assert s.history == []


def test_a_forced_tool_choice_applies_until_a_tool_was_called(home: Path) -> None:
    chat = Scripted([calls(("get_weather", {"city": "Oslo"})), Reply("Sunny.", "m")])
    with Session(chat=chat, sentiment=False, store=False) as s:
        s.ask("Weather?", tools=[get_weather], tool_choice="get_weather")
    assert [o.tool_choice for _m, o in chat.requests] == ["get_weather", "auto"]


def test_calls_of_tools_not_offered_are_dropped_not_stored(home: Path) -> None:
    chat = Scripted([calls(("get_weather", {"city": "Oslo"}), text="Hmm.")])
    with Session(chat=chat, sentiment=False) as s:
        reply = s.ask("Weather?")
        turns = s.dialogue.turns
    assert reply.text == "Hmm." and reply.tool_calls == ()
    assert [t.role for t in turns] == ["user", "assistant"] and turns[1].tool_calls == ()


def test_a_backend_without_tool_support_is_refused_and_gets_words_only(home: Path) -> None:
    class Plain(ChatBackend):
        name = "plain"

        def __init__(self) -> None:
            self.seen: list[list[Message]] = []

        def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
            self.seen.append(list(messages))
            return Reply("plain answer", "m")

    scripted = Scripted([calls(("get_weather", {"city": "Oslo"})), Reply("Sunny.", "m")])
    with Session(chat=scripted, sentiment=False) as s:
        s.ask("Weather?", tools=[get_weather])
        dialogue_id = s.dialogue_id
    plain = Plain()
    with Session(chat=plain, sentiment=False, dialogue_id=dialogue_id) as s:
        with pytest.raises(InputError, match="cannot call tools"):
            s.ask("again", tools=[get_weather])
        s.ask("Thanks!")
    assert [(m.role, m.content) for m in plain.seen[0]] == [
        ("user", "Weather?"),
        ("assistant", "Sunny."),
        ("user", "Thanks!"),
    ]


async def test_a_cancelled_ask_while_a_tool_runs_stores_nothing(home: Path) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_lookup(word: str) -> str:
        entered.set()
        await release.wait()
        return "found"

    chat = Scripted([calls(("slow_lookup", {"word": "tea"})), Reply("Found it.", "m")])
    async with hypotez.AsyncSession(chat=chat, sentiment=False) as s:
        task = asyncio.ensure_future(s.ask("Look up tea", tools=[slow_lookup]))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert s.dialogue_id is None
        # The next ask runs as if the cancelled one never happened.
        chat.script = [Reply("Hello.", "m")]
        reply = await s.ask("Hello")
        turns = (await s.load_dialogue()).turns
    assert reply.text == "Hello."
    assert [t.content for t in turns] == ["Hello", "Hello."]


# -- the data model ----------------------------------------------------------------------------


def test_tool_turns_round_trip_through_dicts() -> None:
    spec = ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {}})
    turns = [
        Turn("user", "Weather?", tools=[spec]),
        Turn("assistant", "", tool_calls=[ToolCall("c1", "get_weather", '{"city": "Oslo"}')]),
        Turn("tool", "sunny", tool_call_id="c1", name="get_weather", meta={"error": False}),
    ]
    assert [Turn.from_dict(json.loads(json.dumps(t.to_dict()))) for t in turns] == turns
    message = turns[1].to_message()
    assert Message.from_dict({**message.to_dict(), "content": None}) == message


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: Message("tool", "sunny"), "tool_call_id"),
        (lambda: Message("user", "hi", tool_calls=[ToolCall("1", "f")]), "Only assistant"),
        (lambda: ToolCall("", "f"), "non-empty"),
        (lambda: ToolCall("1", "f", {"a": 1}), "json.dumps"),  # type: ignore[arg-type]
        (lambda: ToolSpec("bad name"), "Invalid tool name"),
    ],
)
def test_malformed_tool_messages_are_refused(make: Any, says: str) -> None:
    with pytest.raises(InputError, match=says):
        make()


def test_plain_messages_keep_their_two_keys() -> None:
    assert Message("user", "hi").to_dict() == {"role": "user", "content": "hi"}
    assert "tools" not in Turn("user", "hi").to_dict()


def test_import_hypotez_does_not_load_the_tool_libraries() -> None:
    import subprocess
    import sys

    code = "import sys, hypotez; hypotez.Tool; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'docstring_parser', 'jsonschema')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

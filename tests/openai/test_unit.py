"""Unit tests of the plugin's own logic, in process (httpx2/httpx MockTransport, no server)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import httpx2
import hypotez
import pytest
from hypotez import portal
from hypotez_openai.chat import OpenAIChat
from hypotez_openai.client import Config
from hypotez_openai.errors import for_status, scrub
from hypotez_openai.payloads import chat_body, response_format, vision_body
from hypotez_openai.vision import OpenAIHttpVision

from .conftest import make_png

KEY = "sk-proj-unit0123456789abcdef"


def config(**changes: Any) -> Config:
    values: dict[str, Any] = {
        "api_key": KEY,
        "base_url": "http://mock.local/v1",
        "timeout": 5.0,
        "max_retries": 0,
        "model": "gpt-4o-mini",
        "vision_model": "gpt-4o-mini",
    }
    values.update(changes)
    return Config(**values)


def completion(content: str | None = "hi", **message: Any) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content, **message},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def chat_with(handler: Any) -> OpenAIChat:
    # The chat backend is async-native: it gets an async HTTP client.
    transport = httpx2.MockTransport(handler)
    return OpenAIChat(config(), http_client=httpx2.AsyncClient(transport=transport))


def test_config_needs_a_key_and_never_shows_it(tmp_path) -> None:
    with pytest.raises(hypotez.ConfigError, match="OPENAI_API_KEY"):
        Config.from_settings(hypotez.Settings.load(env={}, home=tmp_path))
    cfg = Config.from_settings(hypotez.Settings.load(env={"OPENAI_API_KEY": KEY}, home=tmp_path))
    assert KEY not in repr(cfg)
    assert cfg.model == "gpt-4o-mini" and cfg.where == "https://api.openai.com/v1"


def test_config_rejects_a_bad_max_tokens_field(tmp_path) -> None:
    settings = hypotez.Settings.load(
        env={},
        home=tmp_path,
        options={"openai": {"max_tokens_field": "tokens", "api_key": KEY}},
    )
    with pytest.raises(hypotez.ConfigError, match="max_tokens_field"):
        Config.from_settings(settings)


def test_scrub_removes_the_key_and_masked_keys() -> None:
    text = f"Incorrect API key provided: {KEY}. Also sk-abc1***********wxyz here."
    cleaned = scrub(text, KEY)
    assert KEY not in cleaned and "wxyz" not in cleaned
    assert cleaned.startswith("Incorrect API key provided: ***")


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, None, hypotez.AuthenticationError),
        (403, None, hypotez.AuthenticationError),
        (404, "model_not_found", hypotez.NotFoundError),
        (429, None, hypotez.RateLimitError),
        (500, None, hypotez.ServerError),
        (503, None, hypotez.ServerError),
        (400, "context_length_exceeded", hypotez.ContextLengthError),
        (400, "invalid_value", hypotez.InvalidRequestError),
    ],
)
def test_status_table(status: int, code: str | None, cls: type) -> None:
    error = for_status(
        status, f"bad {KEY}", code=code, where="http://x/v1", model="m", retries=2, api_key=KEY
    )
    assert type(error) is cls
    assert KEY not in str(error)


def test_response_format_wrapping() -> None:
    loose = {"type": "object"}
    assert response_format(loose) == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": loose},
    }
    wrapped = {"name": "mine", "schema": loose, "strict": False}
    assert response_format(wrapped) == {"type": "json_schema", "json_schema": wrapped}
    with pytest.raises(hypotez.InputError):
        response_format(["not", "a", "schema"])  # type: ignore[arg-type]


def test_chat_body_options_and_extras() -> None:
    messages = [hypotez.Message("user", "hi")]
    options = hypotez.ChatOptions(
        temperature=0.5, max_tokens=9, extra={"seed": 7, "max_retries": 4}
    )
    body = chat_body(messages, options, model="m", max_tokens_field="max_tokens")
    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
        "max_tokens": 9,
        "seed": 7,  # passed through; max_retries steers the client instead
    }
    with pytest.raises(hypotez.InputError):
        chat_body([], options, model="m", max_tokens_field="max_tokens")


def test_vision_body_checks_the_image_and_detail() -> None:
    body = vision_body(make_png(), None, detail="high", json_schema=None, model="m", system="S")
    assert body["messages"][0] == {"role": "system", "content": "S"}
    assert body["messages"][1]["content"][1]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    with pytest.raises(hypotez.InputError, match="detail"):
        vision_body(make_png(), None, detail="ultra", json_schema=None, model="m")
    with pytest.raises(hypotez.InputError, match="not a PNG"):
        vision_body(b"plain text", None, detail="auto", json_schema=None, model="m")


def test_chat_parses_reply_and_refusal() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        if len(seen) == 1:
            return httpx2.Response(200, json=completion("hello"))
        return httpx2.Response(200, json=completion(None, refusal="I can't help with that."))

    backend = chat_with(handler)
    reply = backend.chat([hypotez.Message("user", "hi")], hypotez.ChatOptions())
    assert (reply.text, reply.model, reply.usage.total_tokens, reply.backend) == (
        "hello",
        "gpt-4o-mini-2024",
        4,
        "openai",
    )
    refused = backend.chat([hypotez.Message("user", "bad")], hypotez.ChatOptions())
    assert (refused.text, refused.finish_reason) == ("I can't help with that.", "refusal")
    assert seen[0]["model"] == "gpt-4o-mini"


def test_chat_with_a_non_openai_answer_is_a_backend_error() -> None:
    backend = chat_with(lambda request: httpx2.Response(200, json={"choices": []}))
    with pytest.raises(hypotez.BackendError, match="without any choice"):
        backend.chat([hypotez.Message("user", "hi")], hypotez.ChatOptions())


def test_chat_403_is_authentication_without_the_key() -> None:
    body = {
        "error": {"message": f"Project key {KEY} may not use gpt-5", "type": "permission_error"}
    }
    backend = chat_with(lambda request: httpx2.Response(403, json=body))
    with pytest.raises(hypotez.AuthenticationError) as info:
        backend.chat([hypotez.Message("user", "hi")], hypotez.ChatOptions())
    assert KEY not in str(info.value)


def test_raw_http_backend_retries_in_a_bounded_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hypotez_openai.vision.time.sleep", lambda _s: None)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        return httpx.Response(500, json={"error": {"message": "boom"}})

    backend = OpenAIHttpVision(config(max_retries=3), transport=httpx.MockTransport(handler))
    with pytest.raises(hypotez.ServerError, match="after 3 retries"):
        backend.describe(make_png())
    assert calls == [f"Bearer {KEY}"] * 4


def test_raw_http_backend_non_json_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = OpenAIHttpVision(
        config(), transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>"))
    )
    with pytest.raises(hypotez.BackendError, match="not JSON"):
        backend.describe(make_png())
    # JSON, but not an object: still the server's fault, said as such (not a TypeError).
    for answer in ([1, 2], "text", 3):
        backend = OpenAIHttpVision(
            config(), transport=httpx.MockTransport(lambda r, a=answer: httpx.Response(200, json=a))
        )
        with pytest.raises(hypotez.BackendError, match="not a JSON object"):
            backend.describe(make_png())


def test_llm_analyzer_rejects_bad_labels_and_scores() -> None:
    from hypotez_openai.sentiment import LLMSentimentAnalyzer

    answers = iter(
        [
            '{"results": {"0": {"label": "happy", "score": 0.5}}}',
            '{"results": {"0": {"label": "positive", "score": "high"}}}',
            '{"results": {"0": {"label": "positive", "score": 0.5}, "1": {"label": "neutral", "score": 0}}}',
            # two verdicts for text 0 and one for text 1: which one is right?
            '{"results": {"0": {"label": "positive", "score": 0.5}, '
            '"0": {"label": "negative", "score": -0.5}, "1": {"label": "neutral", "score": 0}}}',
        ]
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/models"):  # asked once, for a stated context window
            return httpx2.Response(200, json={"object": "list", "data": []})
        return httpx2.Response(200, json=completion(next(answers)))

    analyzer = LLMSentimentAnalyzer(chat_with(handler))
    with pytest.raises(hypotez.BackendError, match="unknown label 'happy'"):
        analyzer.analyze(["x"])
    with pytest.raises(hypotez.BackendError, match="not a number"):
        analyzer.analyze(["x"])
    with pytest.raises(hypotez.BackendError, match=r"expected ids 0\.\.0"):
        analyzer.analyze(["x"])
    with pytest.raises(hypotez.BackendError, match="id 0 answered twice"):
        analyzer.analyze(["x", "y"])
    with pytest.raises(hypotez.InputError, match="list of texts"):
        analyzer.analyze("a bare string")  # type: ignore[arg-type]


def test_importing_the_plugin_does_not_import_openai() -> None:
    import subprocess
    import sys

    code = "import hypotez_openai, sys; print('openai' in sys.modules, 'httpx' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_a_per_call_retry_budget_reuses_one_client_copy() -> None:
    """The seed's ask(attempts=N) sets a retry budget per call: copying the SDK client on every
    call cost ~50 µs each; one copy per budget is kept, and each budget is really applied."""
    tries: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        tries.append(1)
        return httpx2.Response(500, json={"error": {"message": "boom"}})

    chat = chat_with(handler)
    conn = chat.connection
    base = portal.run(conn.aio())  # the async client of the loop blocking calls run on
    two = conn.with_retries(base, 2)
    assert conn.with_retries(base, 2) is two
    assert conn.with_retries(base, 1) is not two and conn.with_retries(base, 0) is base
    assert two.max_retries == 2
    with pytest.raises(hypotez.ServerError, match="after 1 retries"):
        chat.chat([hypotez.Message("user", "x")], hypotez.ChatOptions(extra={"max_retries": 1}))
    assert len(tries) == 2
    chat.close()
    fresh = portal.run(conn.aio())
    assert fresh is not base
    assert conn.with_retries(fresh, 2) is not two  # a new base client gets its own copy


def _sse(*events: str) -> httpx2.Response:
    body = "".join(f"data: {e}\n\n" for e in events)
    return httpx2.Response(200, text=body, headers={"content-type": "text/event-stream"})


@pytest.mark.parametrize(
    ("events", "said"),
    [
        (['{"id": "x", "object": "weird"}', "[DONE]"], "without any chat reply"),  # no choices
        (['{"choices": "not a list"}', "[DONE]"], "without any chat reply"),
        (["[DONE]"], "without sending anything"),  # nothing at all
    ],
)
def test_a_stream_without_any_chat_reply_is_an_error_and_stores_nothing(
    events: list[str], said: str, home: Any
) -> None:
    chat = chat_with(lambda request: _sse(*events))
    with hypotez.Session(chat=chat, sentiment=False) as s:
        with pytest.raises(hypotez.BackendError, match=f"(?i){said}.*nothing was stored"):
            list(s.stream("hello"))
        assert s.dialogue_id is None and s.storage.list_dialogues() == []


def test_a_stream_with_an_empty_reply_that_finished_is_a_reply() -> None:
    chunk = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "model": "m"}
    chat = chat_with(lambda request: _sse(json.dumps(chunk), "[DONE]"))
    chunks = list(chat.stream([hypotez.Message("user", "x")], hypotez.ChatOptions()))
    assert chunks[-1].reply is not None and chunks[-1].reply.text == ""
    assert chunks[-1].reply.finish_reason == "stop"


# -- requests a server refuses, structured output that degrades ---------------------------------

LLAMA_500 = (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema'}\n\n"
    '  File "/srv/llama_cpp/server/app.py", line 376, in create_chat_completion'
)


@pytest.mark.parametrize(
    ("status", "body", "param"),
    [
        (400, {"error": {"message": "bad", "param": "tools[0].function"}}, "tools"),
        (422, {"detail": [{"loc": ["body", "tool_choice"], "msg": "bad"}]}, "tool_choice"),
        (
            500,
            {"error": {"message": LLAMA_500, "type": "internal_server_error"}},
            "response_format",
        ),
        (400, {"error": {"message": "bad request"}}, None),
    ],
)
def test_a_refused_request_names_its_parameter(status: int, body: Any, param: str | None) -> None:
    from hypotez_openai.errors import message_of

    message, code, given = message_of(body)
    error = for_status(
        status,
        message,
        code=code,
        where="http://x/v1",
        model="m",
        retries=2,
        api_key=KEY,
        param=given,
        body=body,
    )
    assert type(error) is hypotez.InvalidRequestError
    assert error.param == param
    assert "not retried" in str(error)
    assert "File " not in str(error)  # the server's traceback is left out


def test_a_plain_500_is_still_a_server_error() -> None:
    error = for_status(
        500, "out of memory", code=None, where="http://x/v1", model="m", retries=2, api_key=KEY
    )
    assert type(error) is hypotez.ServerError


SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}


def refusing(accepts: str, answer: str, seen: list[dict[str, Any]]) -> Any:
    """A server that accepts only one way of asking for JSON."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        kind = body.get("response_format", {}).get("type", "prompt")
        if kind != accepts:
            error = {
                "message": f"response_format {kind} is not supported",
                "param": "response_format",
            }
            return httpx2.Response(400, json={"error": error})
        return httpx2.Response(200, json=completion(answer))

    return handler


def test_structured_output_falls_back_and_remembers_per_base_url() -> None:
    from hypotez_openai import structured

    structured.forget()
    seen: list[dict[str, Any]] = []
    backend = chat_with(refusing("prompt", '```json\n{"n": 3}\n```', seen))
    options = hypotez.ChatOptions(json_schema=SCHEMA)
    messages = [hypotez.Message("system", "Be brief."), hypotez.Message("user", "How many?")]
    try:
        reply = backend.chat(messages, options)
        assert reply.text == '{"n": 3}'  # the code fence is taken off
        assert [b.get("response_format", {}).get("type") for b in seen] == [
            "json_schema",
            "json_object",
            None,
        ]
        assert seen[1]["response_format"]["schema"] == SCHEMA
        # JSON mode and the prompt carry the schema in the system message, not a second one.
        assert [m["role"] for m in seen[2]["messages"]] == ["system", "user"]
        assert seen[2]["messages"][0]["content"].startswith("Be brief.\n\nAnswer with one JSON")
        assert json.dumps(SCHEMA) in seen[2]["messages"][0]["content"]
        assert structured.remembered() == {"http://mock.local/v1": "prompt"}
        seen.clear()
        backend.chat(messages, options)
        assert len(seen) == 1 and "response_format" not in seen[0]  # straight to what works
    finally:
        structured.forget()


def test_a_structured_answer_that_breaks_the_schema_is_refused() -> None:
    from hypotez_openai.errors import StructuredOutputError

    backend = chat_with(lambda r: httpx2.Response(200, json=completion('{"n": "three"}')))
    with pytest.raises(StructuredOutputError, match=r"at n: 'three' is not of type 'integer'"):
        backend.chat(
            [hypotez.Message("user", "How many?")], hypotez.ChatOptions(json_schema=SCHEMA)
        )
    backend = chat_with(lambda r: httpx2.Response(200, json=completion("three")))
    with pytest.raises(StructuredOutputError, match="is not JSON"):
        backend.chat(
            [hypotez.Message("user", "How many?")], hypotez.ChatOptions(json_schema=SCHEMA)
        )


def test_a_malformed_schema_fails_before_any_request() -> None:
    seen: list[Any] = []
    backend = chat_with(lambda r: seen.append(r) or httpx2.Response(200, json=completion("{}")))
    for bad, says in (
        ({"name": "x", "schema": 3}, r"json_schema\['schema'\] must be a JSON schema object"),
        ({"type": "objekt"}, "not a valid JSON schema"),
    ):
        with pytest.raises(hypotez.InputError, match=says):
            backend.chat([hypotez.Message("user", "x")], hypotez.ChatOptions(json_schema=bad))
    assert seen == []


def test_tools_and_tool_messages_go_out_in_the_chat_completions_shape() -> None:
    spec = hypotez.ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {}})
    call = hypotez.ToolCall("c1", "get_weather", '{"city": "Oslo"}')
    messages = [
        hypotez.Message("user", "Weather?"),
        hypotez.Message("assistant", "", tool_calls=[call]),
        hypotez.Message("tool", "sunny", tool_call_id="c1", name="get_weather"),
    ]
    body = chat_body(
        messages,
        hypotez.ChatOptions(tools=[spec], tool_choice="get_weather"),
        model="m",
        max_tokens_field="max_tokens",
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [call.to_dict()],
    }
    assert body["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": "c1"}
    assert body["tools"] == [spec.to_dict()]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_tool_calls_without_ids_or_with_one_id_twice_get_unique_ids() -> None:
    calls = [
        {"type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "x", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    backend = chat_with(lambda r: httpx2.Response(200, json=completion(None, tool_calls=calls)))
    reply = backend.chat([hypotez.Message("user", "x")], hypotez.ChatOptions())
    assert [c.id for c in reply.tool_calls] == ["call_0_f", "x", "call_2_g"]


def test_the_raw_http_vision_backend_falls_back_and_validates_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hypotez_openai import structured

    structured.forget()
    seen: list[str] = []
    schema = {"type": "object", "properties": {"shape": {"type": "string"}}, "required": ["shape"]}

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        kind = body.get("response_format", {}).get("type")
        seen.append(kind)
        if kind == "json_schema":  # as llama.cpp's server words it, as an internal error
            return httpx.Response(500, json={"error": {"message": LLAMA_500}})
        return httpx.Response(200, json=completion('{"shape": "square"}'))

    monkeypatch.setattr("hypotez_openai.vision.time.sleep", lambda _s: None)
    backend = OpenAIHttpVision(config(max_retries=3), transport=httpx.MockTransport(handler))
    try:
        result = backend.describe(make_png(), json_schema=schema)
        assert result.data == {"shape": "square"}
        assert seen == ["json_schema", "json_object"]  # the 500 was not retried
    finally:
        structured.forget()


def test_the_context_window_is_read_from_the_model_list() -> None:
    listed = {
        "object": "list",
        "data": [
            {
                "id": "gpt-4o-mini",
                "object": "model",
                "created": 0,
                "owned_by": "vllm",
                "max_model_len": 8192,
            },
            {
                "id": "other",
                "object": "model",
                "created": 0,
                "owned_by": "openrouter",
                "context_length": 32768,
            },
            {"id": "plain", "object": "model", "created": 0, "owned_by": "openai"},
        ],
    }
    asked: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        asked.append(request.url.path)
        return httpx2.Response(200, json=listed)

    chat = chat_with(handler)
    assert chat.context_window() == 8192  # the configured model's
    assert chat.context_window("other") == 32768
    assert chat.context_window("plain") is None
    assert chat.context_window("unlisted") is None
    assert asked == ["/v1/models", "/v1/models"]  # once, and once more for an unlisted name


def test_a_server_without_a_model_list_states_no_window() -> None:
    chat = chat_with(lambda request: httpx2.Response(404, json={"error": {"message": "no"}}))
    assert chat.context_window() is None
    assert chat.count_tokens([hypotez.Message("user", "hi")]) is None  # cannot count exactly


def test_a_schema_is_checked_once_and_again_when_it_changes() -> None:
    """Checking a schema against its meta-schema costs ~30 ms of CPU on the event loop: it is
    kept per distinct schema, yet a schema changed in place is checked anew."""
    from hypotez_openai import structured

    schema: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}}}
    first = structured.validator_of(schema)
    assert structured.validator_of(dict(schema)) is first  # an equal schema: the same check
    assert list(first.iter_errors({"n": 1})) == []
    assert [e.message for e in first.iter_errors({"n": "x"})] == ["'x' is not of type 'integer'"]
    schema["properties"]["n"]["type"] = "no-such-type"
    with pytest.raises(hypotez.InputError, match="not a valid JSON schema"):
        structured.validator_of(schema)
    with pytest.raises(hypotez.InputError, match="must be JSON data"):
        structured.validator_of({"type": "object", "default": object()})

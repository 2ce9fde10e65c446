"""Every failure becomes a specific hypotez error after bounded retries, without the key."""

from __future__ import annotations

import logging

import hypotez
import pytest
from hypotez_openai.keys import api_key_of
from hypotez_test_servers.aimock import Aimock

pytestmark = pytest.mark.aimock


def ask(
    settings: hypotez.Settings, message: str = "Hello, how are you?", **kwargs
) -> hypotez.Reply:
    with hypotez.Session(settings=settings, sentiment=False, store=False) as s:
        return s.ask(message, **kwargs)


def test_wrong_key_is_an_authentication_error(aimock: Aimock, settings_for) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    with pytest.raises(hypotez.AuthenticationError, match="OPENAI_API_KEY") as info:
        ask(settings_for(api_key=wrong))
    assert wrong not in str(info.value)


def test_server_quoting_the_key_is_scrubbed_from_the_error(
    aimock: Aimock, settings: hypotez.Settings
) -> None:
    key = api_key_of(settings)
    assert key
    masked = key[:6] + "*" * 10 + key[-4:]
    aimock.add_fixtures(
        [
            {
                "match": {"userMessage": "leak please"},
                "response": {
                    "error": {
                        "message": f"Incorrect API key provided: {key} ({masked}).",
                        "type": "invalid_request_error",
                    },
                    "status": 401,
                },
            }
        ],
        first=True,
    )
    with pytest.raises(hypotez.AuthenticationError) as info:
        ask(settings, "leak please")
    text = str(info.value) + repr(info.value)
    assert key not in text
    assert masked not in text
    assert key[-4:] not in text


def test_unknown_model_is_not_found_and_names_the_model(
    aimock: Aimock, settings: hypotez.Settings
) -> None:
    aimock.add_fixtures(
        [
            {
                "match": {"model": "gpt-9-imaginary"},
                "response": {
                    "error": {
                        "message": "The model `gpt-9-imaginary` does not exist",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    },
                    "status": 404,
                },
            }
        ],
        first=True,
    )
    with pytest.raises(hypotez.NotFoundError, match="gpt-9-imaginary") as info:
        ask(settings, model="gpt-9-imaginary")
    assert "hypotez models" in str(info.value)
    assert len(aimock.journal("/v1/chat/completions")) == 1


def test_rate_limit_after_bounded_retries(aimock: Aimock, settings_for) -> None:
    aimock.set_chaos(rate_limit=1.0)
    with pytest.raises(hypotez.RateLimitError, match="429") as info:
        ask(settings_for(max_retries=1))
    assert "after 1 retries" in str(info.value)
    entries = aimock.journal("/v1/chat/completions")
    assert [e["response"]["status"] for e in entries] == [429, 429]  # 1 try + 1 retry, no more


def test_server_error_after_bounded_retries(aimock: Aimock, settings_for) -> None:
    aimock.set_chaos(drop=1.0)
    with pytest.raises(hypotez.ServerError, match="HTTP 500"):
        ask(settings_for(max_retries=2))
    assert [e["response"]["status"] for e in aimock.journal("/v1/chat/completions")] == [
        500,
        500,
        500,
    ]


def test_retry_recovers_from_one_transient_error(aimock: Aimock, settings_for) -> None:
    aimock.queue_error(503, "overloaded")
    reply = ask(settings_for(max_retries=2))
    assert reply.text.startswith("I am doing great")
    assert [e["response"]["status"] for e in aimock.journal("/v1/chat/completions")] == [503, 200]


def test_timeout_after_bounded_retries(aimock: Aimock, settings_for) -> None:
    aimock.set_chaos(latency_ms=2000)
    with pytest.raises(hypotez.BackendTimeoutError, match="HYPOTEZ_TIMEOUT") as info:
        ask(settings_for(timeout=0.3, max_retries=1))
    assert isinstance(info.value, TimeoutError)  # catchable as the builtin too


def test_dropped_connection_after_bounded_retries(aimock: Aimock, settings_for) -> None:
    aimock.set_chaos(disconnect=1.0)
    with pytest.raises(hypotez.BackendConnectionError, match="OPENAI_BASE_URL") as info:
        ask(settings_for(max_retries=1))
    assert isinstance(info.value, ConnectionError)
    assert len(aimock.journal("/v1/chat/completions")) == 2


def test_unreachable_server_is_a_connection_error(settings_for) -> None:
    from hypotez_test_servers.aimock import free_port

    settings = settings_for(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0)
    with pytest.raises(hypotez.BackendConnectionError, match=r"127\.0\.0\.1"):
        ask(settings)


def test_stream_dropped_midway_is_a_connection_error(
    aimock: Aimock, settings: hypotez.Settings
) -> None:
    with (
        hypotez.Session(settings=settings, sentiment=False) as s,
        pytest.raises(hypotez.BackendConnectionError),
    ):
        for _chunk in s.stream("Tell me a long story"):
            pass
    assert s.history == []  # nothing half-answered was stored as a turn


def test_context_length_error(aimock: Aimock, settings: hypotez.Settings) -> None:
    aimock.add_fixtures(
        [
            {
                "match": {"userMessage": "very long text"},
                "response": {
                    "error": {
                        "message": "This model's maximum context length is 128000 tokens.",
                        "type": "invalid_request_error",
                        "code": "context_length_exceeded",
                    },
                    "status": 400,
                },
            }
        ],
        first=True,
    )
    with pytest.raises(hypotez.ContextLengthError, match="new dialogue"):
        ask(settings, "very long text")


async def test_async_errors_are_mapped_too(aimock: Aimock, settings_for) -> None:
    aimock.set_chaos(drop=1.0)
    async with hypotez.AsyncSession(
        settings=settings_for(max_retries=1), sentiment=False, store=False
    ) as s:
        with pytest.raises(hypotez.ServerError):
            await s.ask("Hello, how are you?")
        with pytest.raises(hypotez.ServerError):
            async for _chunk in s.stream("Hello, how are you?"):
                pass
    assert len(aimock.journal("/v1/chat/completions")) == 4


def test_list_models_with_wrong_key(aimock: Aimock, settings_for) -> None:
    with (
        hypotez.Session(settings=settings_for(api_key="sk-nope-1234567890"), store=False) as s,
        pytest.raises(hypotez.AuthenticationError),
    ):
        s.list_models()


def test_key_never_in_logs_files_or_errors(
    aimock: Aimock, settings: hypotez.Settings, caplog: pytest.LogCaptureFixture
) -> None:
    key = api_key_of(settings)
    assert key
    caplog.set_level(logging.DEBUG)
    with hypotez.Session(settings=settings, sentiment="keywords") as s:
        s.ask("Hello, how are you?")
        for _ in s.stream("and a stream"):
            pass
        s.storage.save_assistant(
            hypotez.Assistant(id="helper", name="Helper", instructions="Help.")
        )
    aimock.set_chaos(drop=1.0)
    with pytest.raises(hypotez.ServerError) as info:
        ask(settings)

    assert caplog.records  # the SDK did log at debug level
    assert key not in caplog.text
    assert key not in str(info.value) and key not in repr(info.value)
    assert key not in repr(settings)
    files = [p for p in settings.home.rglob("*") if p.is_file()]
    assert files  # the dialogue and the assistant record were written
    for path in files:
        assert key not in path.read_text(encoding="utf-8", errors="replace"), path

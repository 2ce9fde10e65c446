"""The llamacpp backend on real llama.cpp, with a tiny random-weight model written by the tests.

Replies are gibberish (random weights), so these tests check what the engine path guarantees:
the chat template and history reach the model, limits hold, streams add up, JSON output is
valid, errors are the documented ones.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import hypotez
import pytest
from hypotez import ChatOptions, Message

GREEDY = ChatOptions(max_tokens=12, temperature=0.0)
HISTORY = [
    Message("system", "You answer in one word."),
    Message("user", "Name a colour."),
    Message("assistant", "Turquoise"),
    Message("user", "And another one?"),
]


def test_reply_is_bounded_by_max_tokens_and_names_the_model(backend: Any) -> None:
    reply = backend.chat([Message("user", "Hello")], ChatOptions(max_tokens=7, temperature=0))
    assert reply.text
    assert reply.backend == "llamacpp"
    assert reply.model == "tiny-chat"  # the GGUF file's name
    assert reply.finish_reason == "length"
    assert reply.usage.completion_tokens == 7
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 7


def test_default_max_tokens_comes_from_the_settings(make_backend: Any) -> None:
    backend = make_backend(max_tokens=5)
    reply = backend.chat([Message("user", "Hello")], ChatOptions(temperature=0))
    assert reply.usage.completion_tokens == 5


def test_multi_turn_history_goes_through_the_models_chat_template(backend: Any) -> None:
    prompt = backend.render_prompt(HISTORY)
    # The tiny model's template is ChatML: every turn, in order, then the assistant's cue.
    assert prompt == (
        "<|im_start|>system\nYou answer in one word.<|im_end|>\n"
        "<|im_start|>user\nName a colour.<|im_end|>\n"
        "<|im_start|>assistant\nTurquoise<|im_end|>\n"
        "<|im_start|>user\nAnd another one?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    reply = backend.chat(HISTORY, GREEDY)
    single = backend.chat(HISTORY[-1:], GREEDY)
    # What the model received is exactly that prompt, history included.
    assert reply.usage.prompt_tokens == backend.count_tokens(HISTORY)
    assert single.usage.prompt_tokens == backend.count_tokens(HISTORY[-1:])
    assert reply.usage.prompt_tokens > single.usage.prompt_tokens + 10


def test_greedy_decoding_is_repeatable_and_history_changes_the_reply(backend: Any) -> None:
    first = backend.chat(HISTORY, GREEDY)
    assert backend.chat(HISTORY, GREEDY).text == first.text
    assert backend.chat(HISTORY[-1:], GREEDY).text != first.text


def test_temperature_is_applied(backend: Any) -> None:
    def replies(temperature: float) -> set[str]:
        return {
            backend.chat(
                HISTORY, ChatOptions(max_tokens=16, temperature=temperature, extra={"seed": s})
            ).text
            for s in range(4)
        }

    assert len(replies(0.0)) == 1  # greedy: the seed does not matter
    assert len(replies(5.0)) > 1  # hot sampling: it does


def test_stream_pieces_add_up_to_the_final_reply(backend: Any) -> None:
    chunks = list(backend.stream(HISTORY, GREEDY))
    final = chunks[-1].reply
    assert final is not None and all(c.reply is None for c in chunks[:-1])
    assert len(chunks) > 3  # really streamed, not one piece
    assert "".join(c.delta for c in chunks) == final.text
    assert final.text == backend.chat(HISTORY, GREEDY).text
    assert final.usage.prompt_tokens == backend.count_tokens(HISTORY)
    assert final.usage.completion_tokens == 12
    assert final.finish_reason == "length"


async def test_async_chat_and_stream_leave_the_event_loop_free(backend: Any) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    options = ChatOptions(max_tokens=60, temperature=0)
    reply = await backend.achat(HISTORY, options)
    pieces = [c async for c in backend.astream(HISTORY, options)]
    stop.set()
    await task
    assert reply.text == pieces[-1].reply.text == "".join(c.delta for c in pieces)
    assert ticks > 5  # the loop kept running while the model computed


def test_concurrent_requests_are_serialised_on_the_one_model(backend: Any) -> None:
    expected = backend.chat(HISTORY, GREEDY).text
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(backend.chat(HISTORY, GREEDY).text)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results == [expected] * 4  # no request saw another's state


def test_a_request_inside_a_running_stream_is_an_error_not_a_deadlock(backend: Any) -> None:
    stream = backend.stream(HISTORY, GREEDY)
    next(stream)
    with pytest.raises(hypotez.InputError, match="finish \\(or close\\) the stream"):
        backend.chat(HISTORY, GREEDY)
    stream.close()  # releases the model
    assert backend.chat(HISTORY, GREEDY).text


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 12},
        "sunny": {"type": "boolean"},
        "mood": {"enum": ["happy", "sad"]},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
    },
    "required": ["city", "sunny", "mood", "tags"],
    "additionalProperties": False,
}


def _matches_schema(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and set(data) == {"city", "sunny", "mood", "tags"}
        and isinstance(data["city"], str)
        and len(data["city"]) <= 12
        and isinstance(data["sunny"], bool)
        and data["mood"] in ("happy", "sad")
        and isinstance(data["tags"], list)
        and len(data["tags"]) <= 3
        and all(t in ("a", "b") for t in data["tags"])
    )


@pytest.mark.parametrize("temperature", [0.0, 1.0, 3.0])
def test_json_schema_output_is_valid_json_that_matches_even_with_random_weights(
    backend: Any, temperature: float
) -> None:
    for seed in range(3):
        options = ChatOptions(
            max_tokens=200, temperature=temperature, json_schema=SCHEMA, extra={"seed": seed}
        )
        reply = backend.chat(HISTORY, options)
        assert reply.finish_reason == "stop"
        assert _matches_schema(json.loads(reply.text)), reply.text


def test_streamed_json_schema_output_is_valid_too(backend: Any) -> None:
    options = ChatOptions(max_tokens=200, temperature=1.0, json_schema=SCHEMA)
    chunks = list(backend.stream(HISTORY, options))
    assert _matches_schema(json.loads("".join(c.delta for c in chunks)))


def test_json_cut_short_by_max_tokens_is_an_error(backend: Any) -> None:
    options = ChatOptions(max_tokens=4, temperature=0, json_schema=SCHEMA)
    with pytest.raises(hypotez.BackendError, match=r"max_tokens=4 before its JSON was complete"):
        backend.chat(HISTORY, options)


def test_unsupported_schema_is_refused_not_silently_loosened(backend: Any) -> None:
    options = ChatOptions(max_tokens=20, json_schema={"type": "no-such-type"})
    with pytest.raises(hypotez.InputError, match="cannot turn this JSON schema into a grammar"):
        backend.chat(HISTORY, options)


def test_context_overflow_says_what_to_do(backend: Any) -> None:
    history = [Message("user", "word " * 200), Message("assistant", "ok"), Message("user", "more")]
    with pytest.raises(hypotez.ContextLengthError) as info:
        backend.chat(history, GREEDY)
    message = str(info.value)
    assert f"{backend.count_tokens(history)} tokens" in message
    assert "holds 256 tokens" in message
    assert "Shorten the history" in message and "HYPOTEZ_LLAMACPP_N_CTX" in message
    with pytest.raises(hypotez.ContextLengthError):
        list(backend.stream(history, GREEDY))
    # A larger window takes the same dialogue.
    assert backend.chat(history[-1:], GREEDY).text


@pytest.mark.parametrize("n_ctx", [64, 300])
def test_a_window_that_is_not_a_multiple_of_256_works_up_to_its_padded_size(
    make_backend: Any, n_ctx: int
) -> None:
    # llama.cpp pads the window to a multiple of 256; the backend asks for that size, so the
    # prompt check and llama-cpp-python's token buffer agree (n_ctx=64 used to fail every reply).
    backend = make_backend(n_ctx=n_ctx)
    assert backend.chat(HISTORY, GREEDY).usage.completion_tokens >= 1
    padded = 256 if n_ctx == 64 else 512
    assert backend.llama.n_ctx() == len(backend.llama.input_ids) == padded
    # A prompt longer than the number asked for, but inside the padded window, is answered
    # (it used to overflow llama-cpp-python's buffer: "could not broadcast input array").
    long = [Message("user", "word " * (30 if n_ctx == 64 else 70))]
    assert n_ctx < backend.count_tokens(long) < padded - 64
    reply = backend.chat(long, ChatOptions(max_tokens=64, temperature=0))
    assert reply.usage.prompt_tokens + reply.usage.completion_tokens <= padded
    with pytest.raises(hypotez.ContextLengthError, match=f"holds {padded} tokens"):
        backend.chat([Message("user", "word " * padded)], GREEDY)


def test_context_window_is_configurable(make_backend: Any) -> None:
    history = [Message("user", "word " * 200)]
    reply = make_backend(n_ctx=1024).chat(history, GREEDY)
    assert reply.usage.prompt_tokens > 256


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (ChatOptions(max_tokens=0), "max_tokens must be"),
        (ChatOptions(max_tokens=5, temperature=-1), "temperature must be"),
        (ChatOptions(max_tokens=5, extra={"top_q": 1}), "does not know the option"),
        (ChatOptions(max_tokens=True), "max_tokens must be"),
        (ChatOptions(max_tokens=5, extra={"stop": 5}), "stop must be a string or a list"),
        (ChatOptions(max_tokens=5, extra={"stop": ["a", 1]}), "stop must be"),
        (ChatOptions(max_tokens=5, extra={"top_k": "40"}), "top_k must be a whole number"),
        (ChatOptions(max_tokens=5, extra={"top_p": float("nan")}), "top_p must be a number"),
        (ChatOptions(max_tokens=5, extra={"seed": 1.5}), "seed must be a whole number"),
    ],
)
def test_bad_request_options_are_input_errors(
    backend: Any, options: ChatOptions, match: str
) -> None:
    with pytest.raises(hypotez.InputError, match=match):
        backend.chat(HISTORY, options)


def test_an_unknown_chat_format_is_a_config_error_naming_it(make_backend: Any) -> None:
    backend = make_backend(chat_format="no-such-format")
    with pytest.raises(hypotez.ConfigError, match=r"chat_format 'no-such-format'.*chatml"):
        backend.chat(HISTORY, GREEDY)


def test_a_known_chat_format_replaces_the_gguf_template(make_backend: Any) -> None:
    reply = make_backend(chat_format="chatml").chat(HISTORY, GREEDY)
    assert reply.usage.completion_tokens >= 1


def test_sampling_extras_are_passed_through(backend: Any) -> None:
    plain = backend.chat(HISTORY, ChatOptions(max_tokens=30, temperature=0)).text
    stop = plain[10:12]  # a piece from the middle of the greedy reply
    cut = backend.chat(HISTORY, ChatOptions(max_tokens=30, temperature=0, extra={"stop": [stop]}))
    assert cut.text == plain[: plain.index(stop)]
    assert cut.finish_reason == "stop"


def test_thread_count_and_window_come_from_settings_and_env(make_settings: Any) -> None:
    from hypotez_llamacpp.config import LlamaCppConfig

    default = LlamaCppConfig.from_settings(make_settings())
    assert (default.n_threads, default.n_ctx, default.max_tokens) == (1, 4096, 512)
    env = {"HYPOTEZ_LLAMACPP_N_THREADS": "2", "HYPOTEZ_LLAMACPP_N_CTX": "1024"}
    settings = hypotez.Settings.load(env=env, home=str(default.cache_dir.parent))
    config = LlamaCppConfig.from_settings(settings)
    assert (config.n_threads, config.n_ctx) == (2, 1024)
    for bad in ({"n_threads": 0}, {"n_threads": "two"}, {"max_tokens": -3}):
        with pytest.raises(hypotez.ConfigError, match="HYPOTEZ_LLAMACPP_"):
            LlamaCppConfig.from_settings(make_settings(options={"llamacpp": bad}))


def test_threads_setting_reaches_llama_cpp(make_backend: Any) -> None:
    backend = make_backend(n_threads=2)
    backend.load()
    # llama-cpp-python keeps the values it passed to llama.cpp on the Llama object.
    assert backend.llama.n_threads == 2
    assert backend.llama.n_threads_batch == 2


def test_close_frees_the_model_and_the_next_request_reloads_it(backend: Any) -> None:
    first = backend.chat(HISTORY, GREEDY).text
    backend.close()
    assert backend.loaded_model is None and backend.llama is None
    assert backend.chat(HISTORY, GREEDY).text == first
    assert backend.loaded_model is not None

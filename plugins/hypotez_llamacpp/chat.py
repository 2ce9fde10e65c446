"""The ``llamacpp`` chat backend: a local GGUF model through llama-cpp-python.

One :class:`llama_cpp.Llama` instance per backend, loaded on the first request, used by one
request at a time (llama.cpp contexts are not thread-safe): a lock serialises chat, streaming and
closing. The async methods inherited from :class:`hypotez.ChatBackend` run these in a worker
thread, so the event loop never blocks while the model computes.

Prompts go through the model's own chat template (``tokenizer.chat_template`` in the GGUF file),
rendered by llama-cpp-python's Jinja formatter. We install that formatter as the model's chat
handler ourselves so that :meth:`LlamaCppChat.render_prompt` shows exactly the text the model
receives, and so that the prompt can be measured against the context window *before* any
computation starts.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from hypotez import (
    BackendError,
    ChatBackend,
    ChatOptions,
    ConfigError,
    ContextLengthError,
    InputError,
    Message,
    MissingDependencyError,
    ModelInfo,
    Reply,
    ReplyChunk,
    Usage,
)
from hypotez_llamacpp import model as models
from hypotez_llamacpp.bundle import Part, parts_from_folder
from hypotez_llamacpp.config import LlamaCppConfig
from hypotez_llamacpp.tools import Plan, template_renders_tools
from hypotez_llamacpp.tools import parse as parse_tool_calls
from hypotez_llamacpp.tools import plan as plan_tools

#: Sampling options a request may pass in ``ChatOptions.extra`` (llama-cpp-python's names),
#: with the kind of value each takes. They are checked here because llama-cpp-python hands them
#: to C through ctypes, and a wrong type comes back as a bare TypeError or ctypes.ArgumentError.
_NUMBER = "a number"
_WHOLE = "a whole number"
_STOP = "a string or a list of strings"
EXTRA_OPTIONS: Mapping[str, str] = {
    "top_p": _NUMBER,
    "top_k": _WHOLE,
    "min_p": _NUMBER,
    "typical_p": _NUMBER,
    "repeat_penalty": _NUMBER,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "seed": _WHOLE,
    "stop": _STOP,
}


def _valid_extra(kind: str, value: Any) -> bool:
    if kind == _STOP:
        return isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
    if isinstance(value, bool):  # True is an int to Python, never a sampling value
        return False
    if kind == _WHOLE:
        return isinstance(value, int)
    return isinstance(value, int | float) and value == value  # refuses NaN


class _ModelLock:
    """A mutex that turns re-entry from the thread holding it into an error, not a deadlock.

    Re-entry happens when a caller asks for a reply while still iterating a stream.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._owner == threading.get_ident():
            raise InputError(
                "The llamacpp model is busy with a stream in this thread: finish (or close) "
                "the stream before sending another request."
            )
        with self._lock:
            self._owner = threading.get_ident()
            try:
                yield
            finally:
                self._owner = None


@attrs.define
class _Loaded:
    model: models.LocalModel
    llm: Any  # llama_cpp.Llama
    formatter: Any  # llama_cpp.llama_chat_format.Jinja2ChatFormatter, None without a template
    n_ctx: int
    n_ctx_train: int
    load_seconds: float


class LlamaCppChat(ChatBackend):
    """Chat with a local GGUF model. Build it with :func:`from_settings` or directly.

    Tools: the model's own chat template where it renders tools, else a description in the
    system message; the reply is grammar-constrained either way (see
    :mod:`hypotez_llamacpp.tools`).
    """

    name = "llamacpp"
    supports_tools = True

    def __init__(
        self, config: LlamaCppConfig, *, parts: Sequence[Part] | None = None, context: Any = None
    ) -> None:
        """``parts`` replaces the installed part packages of the bundled model (for tests);
        ``context`` (a :class:`hypotez.Context`) lets requests name fine-tuned models
        ``TRAINER:NAME`` of its trainers (see :mod:`hypotez_llamacpp.model`)."""
        self.config = config
        self._parts = parts
        self._context = context
        self._lock = _ModelLock()
        self._loaded: _Loaded | None = None
        self._resolved: dict[str | None, models.LocalModel] = {}
        # model file -> whether its chat template renders tools (read once per model)
        self._template_tools: dict[Any, bool] = {}

    # -- model ---------------------------------------------------------------------------
    def _resolve(self, name: str | None) -> models.LocalModel:
        if name not in self._resolved:
            # A fine-tuned model is validated by its trainer each time it is (re)loaded, so it
            # is not remembered here: its files could change between two loads.
            tuned = models.resolve_fine_tuned(self._context, name) if name else None
            if tuned is not None:
                return tuned
            self._resolved[name] = models.resolve(self.config, name, self._parts)
        return self._resolved[name]

    def _ensure(self, name: str | None) -> _Loaded:
        """The loaded model for ``name``; swaps models if another one was loaded. Lock held."""
        loaded = self._loaded
        if (
            loaded is not None
            and name
            and loaded.model.adapter is not None
            and loaded.model.id == name
        ):
            return loaded  # the fine-tuned model in memory (validated when it was loaded)
        local = self._resolve(name)
        if (
            self._loaded is not None
            and self._loaded.model.path == local.path
            and self._loaded.model.adapter == local.adapter
        ):
            return self._loaded
        if self._loaded is not None:
            self._loaded.llm.close()
            self._loaded = None
        self._loaded = _load(local, self.config)
        return self._loaded

    @property
    def loaded_model(self) -> models.LocalModel | None:
        """The model in memory, if any (its ``assembly_seconds`` say what the first load cost)."""
        return self._loaded.model if self._loaded else None

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (None before the first request): for direct use,
        e.g. embeddings. Do not use it while another thread sends requests to this backend."""
        return self._loaded.llm if self._loaded else None

    @property
    def load_seconds(self) -> float | None:
        return self._loaded.load_seconds if self._loaded else None

    def load(self, model: str | None = None) -> models.LocalModel:
        """Load (assembling the bundled model if needed) now instead of on the first request."""
        with self._lock.hold():
            return self._ensure(model).model

    def list_models(self) -> list[ModelInfo]:
        """The local GGUF models, then the fine-tuned ones (``local:NAME``) of the trainers
        named by the ``trainers`` option."""
        found = models.available_models(self.config, self._parts)
        return found + models.fine_tuned_models(self._context, self.config.trainers)

    def model_file(self, name: str | None = None) -> Path:
        """The GGUF file ``name`` resolves to (None: the default model), for tools that need
        the file itself, such as a trainer fine-tuning it. Assembles the bundled model if
        needed; a fine-tuned name gives its base model's file."""
        return self._resolve(name).path

    def close(self) -> None:
        with self._lock.hold():
            if self._loaded is not None:
                self._loaded.llm.close()
                self._loaded = None

    # -- prompts ---------------------------------------------------------------------------
    def render_prompt(self, messages: Sequence[Message], *, model: str | None = None) -> str:
        """The exact text the model receives for ``messages`` (its chat template applied)."""
        with self._lock.hold():
            loaded = self._ensure(model)
            if loaded.formatter is None:
                raise ConfigError(
                    f"The model {loaded.model.id!r} has no chat template in its GGUF file; "
                    "llama-cpp-python formats its prompts with the chat_format option instead."
                )
            return str(_render(loaded, _dicts(messages)).prompt)

    def context_window(self, model: str | None = None) -> int:
        """The loaded context window (n_ctx, as llama.cpp padded it), loading the model."""
        with self._lock.hold():
            return self._ensure(model).n_ctx

    def count_tokens(self, messages: Sequence[Message], *, model: str | None = None) -> int | None:
        """How many tokens ``messages`` take in the context window, template included;
        ``None`` for a model without a chat template (llama-cpp-python's ``chat_format``
        formats its prompts then, out of our sight)."""
        with self._lock.hold():
            return _prompt_tokens(self._ensure(model), _dicts(messages))

    # -- chat ------------------------------------------------------------------------------
    def _plan(self, loaded: _Loaded, msgs: list[dict[str, Any]], options: ChatOptions) -> Plan:
        """How tools (and tool turns in the history) go into this request. Lock held."""
        key = loaded.model.path
        if key not in self._template_tools:
            self._template_tools[key] = template_renders_tools(loaded.formatter)
        return plan_tools(msgs, options, template_tools=self._template_tools[key])

    def chat(self, messages: Sequence[Message], options: ChatOptions) -> Reply:
        msgs = _dicts(messages)
        with self._lock.hold():
            loaded = self._ensure(options.model)
            plan = self._plan(loaded, msgs, options)
            kwargs, _prompt = _request(loaded, self.config, msgs, options, plan)
            try:
                response = loaded.llm.create_chat_completion(**kwargs)
            except ValueError as exc:
                raise _translate(exc, loaded) from exc
        choice = response["choices"][0]
        text = choice["message"].get("content") or ""
        finish = choice.get("finish_reason")
        calls: tuple[Any, ...] = ()
        if plan.calls_possible:
            text, calls = parse_tool_calls(text, options.tools)
            finish = "tool_calls" if calls and finish == "stop" else finish
        _check_json(text, finish, options, kwargs["max_tokens"])
        return Reply(
            text=text,
            model=loaded.model.id,
            usage=Usage.from_dict(response.get("usage")),
            finish_reason=finish,
            backend=self.name,
            raw=response,
            tool_calls=calls,
        )

    def stream(self, messages: Sequence[Message], options: ChatOptions) -> Iterator[ReplyChunk]:
        msgs = _dicts(messages)
        with self._lock.hold():
            loaded = self._ensure(options.model)
            plan = self._plan(loaded, msgs, options)
            kwargs, prompt_tokens = _request(loaded, self.config, msgs, options, plan)
            pieces: list[str] = []
            finish: str | None = None
            last: Any = None
            # With tools the first character tells a call ("<") from text: call blocks are
            # not shown as text, text is streamed once it is known to be text.
            held = plan.calls_possible
            try:
                for chunk in loaded.llm.create_chat_completion(**kwargs, stream=True):
                    last = chunk
                    choice = chunk["choices"][0]
                    delta = choice.get("delta", {}).get("content")
                    if delta:
                        pieces.append(delta)
                        if held and not "".join(pieces).lstrip().startswith("<"):
                            held = False
                            delta = "".join(pieces)
                        if not held:
                            yield ReplyChunk(delta)
                    finish = choice.get("finish_reason") or finish
            except ValueError as exc:
                raise _translate(exc, loaded) from exc
            text = "".join(pieces)
            completion = _completion_tokens(
                loaded, text, finish, kwargs["max_tokens"], prompt_tokens
            )
        calls: tuple[Any, ...] = ()
        if plan.calls_possible:
            text, calls = parse_tool_calls(text, options.tools)
            finish = "tool_calls" if calls and finish == "stop" else finish
        _check_json(text, finish, options, kwargs["max_tokens"])
        usage = Usage(prompt_tokens or 0, completion, (prompt_tokens or 0) + completion)
        reply = Reply(
            text, loaded.model.id, usage, finish, backend=self.name, raw=last, tool_calls=calls
        )
        yield ReplyChunk("", reply)


def from_settings(settings: Any, *, context: Any = None) -> LlamaCppChat:
    """The registered factory: options from settings; the model loads on the first request."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        raise MissingDependencyError("llamacpp", "llama_cpp", "pip install 'hypotez[local]'")
    config = LlamaCppConfig.from_settings(settings)
    parts = None
    if config.parts_dir is not None:
        if not config.parts_dir.is_dir():
            raise ConfigError(
                f"The llamacpp parts_dir {str(config.parts_dir)!r} is not a folder: point it to "
                "the folder holding part01.bin ... part22.bin, or unset it to use the packages."
            )
        parts = parts_from_folder(config.parts_dir)
    return LlamaCppChat(config, parts=parts, context=context)


# -- helpers (the lock is held by the caller) -------------------------------------------------


def _dicts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    if not messages:
        raise InputError("No messages to answer: send at least one user message.")
    return [
        m.to_dict() if isinstance(m, Message) else Message.from_dict(m).to_dict() for m in messages
    ]


def _load(local: models.LocalModel, config: LlamaCppConfig) -> _Loaded:
    import time

    try:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except ImportError as exc:
        raise MissingDependencyError(
            "llamacpp", "llama_cpp", "pip install 'hypotez[local]'"
        ) from exc
    kwargs: dict[str, Any] = {
        "model_path": str(local.path),
        "n_ctx": padded_n_ctx(config.n_ctx),
        "n_batch": config.n_batch,
        "n_threads": config.n_threads,
        "n_threads_batch": config.n_threads,
        "verbose": False,
    }
    if config.seed is not None:
        kwargs["seed"] = config.seed
    if local.adapter is not None:
        # Validated by the trainer that made it (models.resolve_fine_tuned): llama-cpp-python
        # does not notice a failed adapter load and its first generation then crashes.
        kwargs["lora_path"] = str(local.adapter)
    if config.chat_format:
        _check_chat_format(config.chat_format)
        kwargs["chat_format"] = config.chat_format
    started = time.perf_counter()
    try:
        with _extra_buffers(config.extra_buffers):
            llm = llama_cpp.Llama(**kwargs)
    except (ValueError, RuntimeError) as exc:
        if "llama_context" in str(exc):  # the weights loaded; the window's buffers did not
            window = f"n_ctx={config.n_ctx}" if config.n_ctx else "the model's full n_ctx (0)"
            raise ConfigError(
                f"llama.cpp loaded {str(local.path)!r} but could not create a context window "
                f"of {window} tokens ({exc}); that is usually not enough memory for it. Lower "
                "n_ctx with HYPOTEZ_LLAMACPP_N_CTX or [plugins.llamacpp] n_ctx (default 4096)."
            ) from exc
        if local.adapter is not None:
            raise ConfigError(
                f"llama.cpp could not load {local.id!r} (base {str(local.path)!r}, adapter "
                f"{str(local.adapter)!r}): {exc}. Check both files, or train the model again."
            ) from exc
        raise ConfigError(
            f"llama.cpp could not load the model {str(local.path)!r} ({local.source}): {exc}. "
            "Check that it is a complete GGUF file of an architecture this llama-cpp-python "
            "supports, or point HYPOTEZ_LLAMACPP_MODEL_PATH to another one."
        ) from exc
    seconds = time.perf_counter() - started
    metadata = llm.metadata
    arch = metadata.get("general.architecture", "")
    n_ctx_train = int(metadata.get(f"{arch}.context_length") or llm.n_ctx())
    template = metadata.get("tokenizer.chat_template")
    formatter = None
    if template and not config.chat_format:
        eos, bos = llm.token_eos(), llm.token_bos()
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llm, eos),
            bos_token=_token_text(llm, bos),
            stop_token_ids=[eos],
        )
        # The same formatter llama-cpp-python would build from the template, but ours, so that
        # render_prompt() and the context check see exactly what generation uses.
        llm.chat_handler = formatter.to_chat_handler()
    return _Loaded(local, llm, formatter, llm.n_ctx(), n_ctx_train, seconds)


_params_lock = threading.Lock()


@contextlib.contextmanager
def _extra_buffers(wanted: bool | None) -> Iterator[None]:
    """Load with llama.cpp's extra buffer types on or off (llama-cpp-python has no argument).

    A build compiled for a CPU with AMX (pip's default, ``-march=native``) uses AMX tile
    kernels through them; in virtual machines that report AMX without enabling it, the first
    decode then dies with SIGSEGV, taking the process along. So with AMX kernels in the build
    they are off unless ``extra_buffers = true`` says the machine really runs them; other
    builds keep them (their repacked weights are faster).
    """
    import llama_cpp.llama_cpp as low

    if wanted is None:
        wanted = b"AMX" not in low.llama_print_system_info()
    if wanted:
        yield
        return
    with _params_lock:  # the default-params function is module-wide: patch it for this load
        original = low.llama_model_default_params

        def params() -> Any:
            made = original()
            made.use_extra_bufts = False
            return made

        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = original


def _check_chat_format(name: str) -> None:
    """Refuse an unknown chat_format before loading, not as a raw llama-cpp-python exception
    on the first request."""
    from llama_cpp import llama_chat_format

    try:
        llama_chat_format.get_chat_completion_handler(name)
    except Exception as exc:  # LlamaChatCompletionHandlerNotFoundException (not a ValueError)
        # Its message lists the valid names.
        raise ConfigError(
            f"The llamacpp chat_format {name!r} is not one llama-cpp-python knows ({exc}). Fix "
            "it, or unset it (HYPOTEZ_LLAMACPP_CHAT_FORMAT, [plugins.llamacpp] chat_format) to "
            "use the chat template inside the GGUF file."
        ) from exc


#: llama.cpp rounds the context window up to a multiple of this.
CTX_PAD = 256


def padded_n_ctx(n_ctx: int) -> int:
    """``n_ctx`` rounded up to llama.cpp's padding (0, "the model's own", stays 0).

    llama.cpp pads the window it creates, but llama-cpp-python sizes its token buffer by the
    number it was given: with n_ctx=64 the context holds 256 tokens and the buffer 64, and every
    reply failed with "could not broadcast input array". Asking for the padded size keeps both
    equal.
    """
    return n_ctx if n_ctx <= 0 else -(-n_ctx // CTX_PAD) * CTX_PAD


def _token_text(llm: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llm.detokenize([token], special=True)).decode("utf-8", errors="ignore")


def _render(
    loaded: _Loaded, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> Any:
    try:
        return loaded.formatter(messages=messages, tools=tools)
    except Exception as exc:  # the template's own raise_exception(), or a Jinja error
        raise InputError(
            f"The chat template of {loaded.model.id!r} refused these messages: {exc}. "
            "Check the order of roles (some templates need user/assistant turns to alternate)."
        ) from exc


def _prompt_tokens(
    loaded: _Loaded, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> int | None:
    if loaded.formatter is None:
        return None
    result = _render(loaded, messages, tools)
    tokens = loaded.llm.tokenize(
        result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True
    )
    return len(tokens)


def _context_error(loaded: _Loaded, prompt_tokens: int | None) -> ContextLengthError:
    size = f"{prompt_tokens} tokens" if prompt_tokens is not None else "too long"
    return ContextLengthError(
        f"The prompt is {size} (system instruction and dialogue history included), but the "
        f"llamacpp context window (n_ctx) holds {loaded.n_ctx} tokens, with room needed for the "
        "reply. Shorten the history (start a new dialogue or drop old turns), or raise n_ctx with "
        "HYPOTEZ_LLAMACPP_N_CTX or [plugins.llamacpp] n_ctx (model "
        f"{loaded.model.id!r} was trained for up to {loaded.n_ctx_train}; a larger window uses "
        "more memory)."
    )


def _translate(exc: ValueError, loaded: _Loaded) -> Exception:
    if "exceed context window" in str(exc):
        return _context_error(loaded, None)
    return BackendError(f"llama.cpp failed on model {loaded.model.id!r}: {exc}")


def _request(
    loaded: _Loaded,
    config: LlamaCppConfig,
    messages: list[dict[str, Any]],
    options: ChatOptions,
    plan: Plan | None = None,
) -> tuple[dict[str, Any], int | None]:
    """Keyword arguments for create_chat_completion, and the prompt's length in tokens.

    ``plan`` says how tools (and tool turns in the history) are sent (see
    :mod:`hypotez_llamacpp.tools`)."""
    if plan is not None:
        messages = plan.messages
    max_tokens = options.max_tokens if options.max_tokens is not None else config.max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InputError(f"max_tokens must be a whole number >= 1, not {max_tokens!r}.")
    temperature = options.temperature if options.temperature is not None else config.temperature
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not temperature >= 0
    ):
        raise InputError(f"temperature must be a number >= 0, not {temperature!r}.")
    unknown = set(options.extra) - set(EXTRA_OPTIONS)
    if unknown:
        raise InputError(
            f"The llamacpp backend does not know the option(s) {', '.join(sorted(unknown))}; "
            f"it accepts {', '.join(sorted(EXTRA_OPTIONS))}."
        )
    for key, value in options.extra.items():
        if not _valid_extra(EXTRA_OPTIONS[key], value):
            raise InputError(
                f"The llamacpp option {key} must be {EXTRA_OPTIONS[key]}, not {value!r}."
            )
    template_tools = plan.template_tools if plan is not None else None
    prompt_tokens = _prompt_tokens(loaded, messages, template_tools)
    if prompt_tokens is not None and prompt_tokens >= loaded.n_ctx:
        raise _context_error(loaded, prompt_tokens)
    kwargs: dict[str, Any] = {
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": float(temperature),
        "model": loaded.model.id,
        **options.extra,
    }
    if template_tools:
        kwargs["tools"] = template_tools  # rendered by the template; calls come as text
    if plan is not None and plan.grammar is not None:
        kwargs["grammar"] = _compiled(plan.grammar)
    elif options.json_schema is not None:
        kwargs["grammar"] = _grammar(options.json_schema)
    return kwargs, prompt_tokens


def _compiled(gbnf: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except Exception as exc:
        raise InputError(
            f"llama.cpp refused the tool-call grammar ({exc!r}); simplify the tools' schemas."
        ) from exc


# llama-cpp-python's JSON-schema grammar lets raw control characters into strings, which JSON
# forbids (a literal newline in a string makes json.loads fail); llama.cpp's own converter
# excludes them. We tighten that one rule.
_LOOSE_CHAR = r'char ::= [^"\\] |'
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F] |'


def strict_json_chars(gbnf: str) -> str:
    """``gbnf`` (from llama-cpp-python's converter) without raw control characters in strings."""
    return gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)


def _grammar(schema: Mapping[str, Any]) -> Any:
    """A grammar that only lets the model write JSON matching ``schema``.

    Built here rather than through ``response_format``, because llama-cpp-python silently falls
    back to "any JSON" when it cannot convert a schema; we refuse such a schema instead.
    """
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    try:
        text = json.dumps(schema)
    except (TypeError, ValueError) as exc:
        raise InputError(f"The JSON schema is not JSON-serialisable: {exc}.") from exc
    try:
        gbnf = strict_json_chars(json_schema_to_gbnf(text))
        return LlamaGrammar.from_string(gbnf, verbose=False)
    except Exception as exc:
        raise InputError(
            f"llama.cpp cannot turn this JSON schema into a grammar ({exc!r}); simplify it "
            "(plain types, properties, required, enum, arrays, maxLength are supported)."
        ) from exc


def _check_json(text: str, finish: str | None, options: ChatOptions, max_tokens: int) -> None:
    if options.json_schema is None:
        return
    if finish == "length":
        raise BackendError(
            f"The reply reached max_tokens={max_tokens} before its JSON was complete. Raise "
            "max_tokens, or make the schema smaller (e.g. maxLength on strings)."
        )
    try:
        json.loads(text)
    except ValueError as exc:  # the grammar should make this impossible
        raise BackendError(
            f"The model's reply is not valid JSON despite the grammar: {exc}."
        ) from exc


def _completion_tokens(
    loaded: _Loaded, text: str, finish: str | None, max_tokens: int, prompt_tokens: int | None
) -> int:
    """Streamed chunks carry no usage: a reply cut at the limit used every allowed token; any
    other is measured by tokenizing its text (exact for all but rare tokenizations)."""
    if finish == "length" and prompt_tokens is not None:
        return min(max_tokens, loaded.n_ctx - prompt_tokens)
    if not text:
        return 0
    return len(loaded.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

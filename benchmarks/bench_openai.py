"""Framework overhead per ask against a raw ``openai`` SDK call, both talking to the same aimock.

Run: ``python benchmarks/bench_openai.py`` (needs ``npm ci --prefix tests``). Prints a Markdown
section for docs/benchmarks.md. Every variant sends the same request (system + one user message)
to the same local server, interleaved round by round so machine noise hits all alike; the ratio
of medians is the overhead. A local mock answers in about a millisecond, so this is the worst
case: against a real API (hundreds of ms per call) the same microseconds vanish.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from _common import header, median  # noqa: E402

ROUNDS = 400
WARMUP = 30
SYSTEM = "You are a helpful assistant."
MESSAGE = "Hello, how are you?"


def shuffled_rounds(funcs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Time each function once per round, in a fresh random order each round.

    A fixed order would hand the first variant any per-round penalty (a cold connection,
    the scheduler); shuffling spreads it evenly.
    """
    rng = random.Random(1234)
    times: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            start = time.perf_counter()
            funcs[name]()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:

    import hypotez
    import openai
    from hypotez import portal
    from hypotez_test_servers.aimock import DEFAULT_FIXTURES_DIR, start_aimock

    with tempfile.TemporaryDirectory() as tmp:
        server = start_aimock(DEFAULT_FIXTURES_DIR, Path(tmp))
        try:
            server.reset(DEFAULT_FIXTURES_DIR)
            key = {"api_key": server.api_key, "base_url": server.base_url}
            settings = hypotez.Settings.load(
                env={}, home=Path(tmp) / "home", max_retries=0, options={"openai": key}
            )
            raw = openai.OpenAI(**key, max_retries=0)
            raw_async = portal.run(_make_async_client(key))
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": MESSAGE}]

            def raw_call() -> object:
                return raw.chat.completions.create(model="gpt-4o-mini", messages=messages)

            def raw_async_call() -> object:
                # The same portal hop as a Session's: the pair compares the async SDK client
                # with AsyncSession.ask, both awaited on one event loop.
                return portal.run(
                    raw_async.chat.completions.create(model="gpt-4o-mini", messages=messages)
                )

            bare = hypotez.Session(
                settings=settings, chat="openai", sentiment=False, store=False, system=SYSTEM
            )
            # The default analyzer and the default (file) storage.
            full = hypotez.Session(settings=settings, chat="openai", system=SYSTEM)
            stored = hypotez.Session(
                settings=settings, chat="openai", sentiment=False, system=SYSTEM
            )
            mood = hypotez.Session(settings=settings, chat="openai", store=False, system=SYSTEM)
            # The same file storage without the per-append flush ([plugins.files] fsync = false).
            no_fsync = settings.with_options("files", fsync=False)
            quick = hypotez.Session(
                settings=no_fsync, chat="openai", sentiment=False, system=SYSTEM
            )
            # The seed API on the unflushed file storage, to compare with `quick` (its ask also
            # sends temperature=0 and sets its own retry budget, attempts=3).
            from hypotez.training import OpenAIModel

            seed = OpenAIModel(
                api_key=server.api_key,
                system_instruction=SYSTEM,
                settings=no_fsync,
                sentiment=False,
            )
            backend = bare.chat_backend
            hm = [hypotez.Message("system", SYSTEM), hypotez.Message("user", MESSAGE)]
            options = hypotez.ChatOptions(model="gpt-4o-mini", timeout=settings.timeout)

            def backend_call() -> object:
                return portal.run(backend.achat(hm, options))

            def fresh(session: hypotez.Session) -> object:
                # Every round asks the same one message: a new dialogue each time (stored
                # sessions create it, then append the exchange).
                session.new_dialogue()
                return session.ask(MESSAGE)

            def seed_ask() -> object:
                seed.session.new_dialogue()
                return seed.ask(MESSAGE)

            async_session = hypotez.AsyncSession(
                context=bare.context, sentiment=False, store=False, system=SYSTEM
            )

            def async_bare() -> object:
                async_session.new_dialogue()
                return portal.run(async_session.ask(MESSAGE))

            funcs = {
                "raw": raw_call,
                "raw_async": raw_async_call,
                "backend": backend_call,
                "async_bare": async_bare,
                "bare": lambda: fresh(bare),
                "stored": lambda: fresh(stored),
                "quick": lambda: fresh(quick),
                "mood": lambda: fresh(mood),
                "full": lambda: fresh(full),
                "seed": seed_ask,
            }
            shuffled_rounds(funcs, WARMUP)
            times = shuffled_rounds(funcs, ROUNDS)
            analyzer = full.analyzer.name
            for session in (bare, stored, quick, mood, full):
                session.close()
            seed.close()
            raw.close()
            portal.run(raw_async.close())
        finally:
            server.stop()

    base, base_async = median(times["raw"]), median(times["raw_async"])
    rows = [
        ("raw `openai` SDK `chat.completions.create` (blocking client)", "raw", base),
        ("raw `openai` SDK, async client, awaited on hypotez's loop", "raw_async", base),
        ("`OpenAIChat.achat` (the backend alone), awaited the same way", "backend", base_async),
        ("`AsyncSession.ask`, sentiment off, storage off", "async_bare", base_async),
        ("`Session.ask`, sentiment off, storage off", "bare", base),
        ("`Session.ask`, sentiment off, file storage on", "stored", base),
        ("`Session.ask`, sentiment off, file storage on with `fsync = false`", "quick", base),
        (f"`Session.ask`, sentiment `{analyzer}` on, storage off", "mood", base),
        (f"`Session.ask`, sentiment `{analyzer}` + file storage on", "full", base),
        (
            "seed API `OpenAIModel.ask`, sentiment off, file storage on with `fsync = false`",
            "seed",
            base,
        ),
    ]
    print(header("OpenAI: overhead per ask"))
    print(
        f"Same request (system + user message) to one local aimock 1.43.0 server, {ROUNDS} rounds "
        f"in a random order per round after {WARMUP} warm-up rounds; medians. Each stored ask "
        "starts a new dialogue (one create and one append).\n"
    )
    print("| variant | median ms | compared with | ratio | overhead µs |")
    print("|---|---|---|---|---|")
    for label, key, reference in rows:
        value = median(times[key])
        against = "blocking SDK" if reference is base else "async SDK"
        print(
            f"| {label} | {value * 1e3:.3f} | {against} | {value / reference:.3f} | "
            f"{(value - reference) * 1e6:+.0f} |"
        )
    print(
        "\nTarget: framework overhead under 5 % of the raw SDK call. The backend and the bare "
        "sessions are the framework's own cost; the storage and sentiment rows add the work "
        "asked of them (a sentiment analysis of both texts, one fsync'd append per ask)."
    )


async def _make_async_client(key: dict[str, str]) -> object:
    import openai

    return openai.AsyncOpenAI(**key, max_retries=0)


if __name__ == "__main__":
    main()

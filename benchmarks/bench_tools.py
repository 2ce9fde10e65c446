"""The tool loop's overhead per round against a raw ``openai`` SDK loop, both on one aimock.

Run: ``python benchmarks/bench_tools.py`` (needs ``npm ci --prefix tests``). Prints a Markdown
section for docs/benchmarks.md.

Both sides do the same work: ask with one tool offered; the server answers with a call of it
(one round) or three calls in a row (three rounds, matched by aimock's ``turnIndex``), the tool
runs, its result goes back, and the server answers in words. Both sides use the SDK's async
client on one event loop. The raw side is the loop an
application writes by hand on the SDK (parse the arguments, call the function, append the
messages, ask again); the hypotez side is ``AsyncSession.ask(..., tools=[get_weather])``, which also
builds the schema (once), validates the arguments with pydantic, runs the function in a worker
thread and keeps the turns. Variants run interleaved in a random order per round, so machine
noise hits all alike; the overhead per round is the slope between the 1- and 3-round asks.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(Path(__file__).resolve().parent)]

from _common import header, median  # noqa: E402

ROUNDS = 300
WARMUP = 30
ONE = "Weather in Paris, please."
THREE = "Weather in Paris, Rome and Oslo, one by one."


def get_weather(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return f"sunny, 21 degrees in {city}"


async def get_weather_async(city: str) -> str:
    """The current weather in a city.

    Args:
        city: The city's name.
    """
    return f"sunny, 21 degrees in {city}"


get_weather_async.__name__ = "get_weather"  # the same tool name as the blocking one


def fixtures() -> list[dict[str, object]]:
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    out: list[dict[str, object]] = [
        {"match": {"userMessage": ONE, "turnIndex": 0}, "response": {"toolCalls": [call]}},
        {"match": {"userMessage": ONE, "turnIndex": 1}, "response": {"content": "Sunny."}},
    ]
    for turn in range(3):
        out.append(
            {"match": {"userMessage": THREE, "turnIndex": turn}, "response": {"toolCalls": [call]}}
        )
    out.append({"match": {"userMessage": THREE, "turnIndex": 3}, "response": {"content": "Sunny."}})
    return out


async def shuffled_rounds(
    funcs: dict[str, Callable[[], Any]], rounds: int
) -> dict[str, list[float]]:
    """Await each variant once per round, in a fresh random order each round."""
    rng = random.Random(1234)
    times: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            start = time.perf_counter()
            await funcs[name]()
            times[name].append(time.perf_counter() - start)
    return times


async def measure(server: Any, home: Path) -> tuple[dict[str, list[float]], int]:
    """Every variant on one event loop: the SDK's async client on both sides."""
    import hypotez
    import openai

    tool_spec = hypotez.Tool(get_weather).spec.to_dict()
    settings = hypotez.Settings.load(
        env={},
        home=home,
        max_retries=0,
        options={
            "openai": {"api_key": server.api_key, "base_url": server.base_url},
            "files": {"fsync": False},
        },
    )
    raw = openai.AsyncOpenAI(api_key=server.api_key, base_url=server.base_url, max_retries=0)

    async def raw_loop(message: str) -> str:
        """The loop written by hand on the SDK."""
        messages: list[dict[str, Any]] = [{"role": "user", "content": message}]
        tools = {"get_weather": get_weather}
        while True:
            completion = await raw.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=[tool_spec]
            )
            answer = completion.choices[0].message
            if not answer.tool_calls:
                return answer.content or ""
            messages.append(answer.model_dump(exclude_none=True))
            for call in answer.tool_calls:
                result = tools[call.function.name](**json.loads(call.function.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})

    bare = hypotez.AsyncSession(settings=settings, chat="openai", sentiment=False, store=False)
    stored = hypotez.AsyncSession(settings=settings, chat="openai", sentiment=False)

    def ask(
        session: hypotez.AsyncSession, message: str, tool: Callable[..., Any] = get_weather
    ) -> Callable[[], Any]:
        async def run() -> object:
            # The same requests every round: a new dialogue (a stored one would be read back
            # and sent whole, growing every round).
            session.new_dialogue()
            reply = await session.ask(message, tools=[tool])
            assert reply.text == "Sunny.", reply
            return reply

        return run

    funcs: dict[str, Callable[[], Any]] = {
        "raw1": lambda: raw_loop(ONE),
        "raw3": lambda: raw_loop(THREE),
        "bare1": ask(bare, ONE),
        "bare3": ask(bare, THREE),
        "async1": ask(bare, ONE, get_weather_async),
        "async3": ask(bare, THREE, get_weather_async),
        "stored1": ask(stored, ONE),
        "stored3": ask(stored, THREE),
    }
    assert await raw_loop(THREE) == "Sunny."
    await shuffled_rounds(funcs, WARMUP)
    times = await shuffled_rounds(funcs, ROUNDS)
    dialogues = len(await (await stored.get("storage")).alist_dialogues())
    await bare.aclose()
    await stored.aclose()
    await raw.close()
    return times, dialogues


def main() -> None:
    import asyncio

    from hypotez_test_servers.aimock import start_aimock

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fixtures"
        folder.mkdir()
        (folder / "tools.json").write_text(json.dumps({"fixtures": fixtures()}))
        server = start_aimock(folder, Path(tmp))
        try:
            server.reset(folder)
            times, dialogues = asyncio.run(measure(server, Path(tmp) / "home"))
        finally:
            server.stop()

    m = {name: median(values) for name, values in times.items()}
    print(header("Tools: the tool loop's overhead per round"))
    print(
        f"One tool offered, asks of 1 and 3 tool rounds (2 and 4 requests) to one local aimock "
        f"1.43.0 server, {ROUNDS} rounds in a random order per round after {WARMUP} warm-up "
        f"rounds; medians. The stored variant wrote {dialogues} dialogues (a new one per ask).\n"
    )
    print(
        "| variant | 1 round, ms | 3 rounds, ms | per extra round, ms | overhead per round vs raw, µs |"
    )
    print("|---|---|---|---|---|")
    raw_slope = (m["raw3"] - m["raw1"]) / 2
    for label, key in (
        ("raw SDK loop (by hand)", "raw"),
        ("`AsyncSession.ask(tools=...)`, sentiment and storage off", "bare"),
        ("the same with an `async def` tool (no worker thread)", "async"),
        ("`AsyncSession.ask(tools=...)`, file storage on (`fsync = false`)", "stored"),
    ):
        slope = (m[f"{key}3"] - m[f"{key}1"]) / 2
        print(
            f"| {label} | {m[f'{key}1'] * 1e3:.3f} | {m[f'{key}3'] * 1e3:.3f} | "
            f"{slope * 1e3:.3f} | {(slope - raw_slope) * 1e6:+.0f} |"
        )
    print(
        f"\nPer round the raw loop makes one request and calls the function inline; hypotez "
        f"also validates the arguments (pydantic), runs a blocking tool in a worker thread, "
        f"keeps the two turns and yields the events. A whole 1-round ask against the raw loop: "
        f"{(m['bare1'] - m['raw1']) * 1e6:+.0f} µs (storage off), "
        f"{(m['stored1'] - m['raw1']) * 1e6:+.0f} µs (a new dialogue file and one append of 4 "
        "turns)."
    )


if __name__ == "__main__":
    main()

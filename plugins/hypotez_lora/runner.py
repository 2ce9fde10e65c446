"""Training jobs in a child process, recorded in a job folder of plain files.

``start()`` checks the request, copies the data into the folder and returns at once with the
pid of a *supervisor* process (its own session, so it outlives the caller and a Ctrl-C in its
terminal). The supervisor runs the *worker* (the training, in a second process) and waits for
it: if the worker dies without writing a final state (killed, out of memory, a segfault in a
native library), the supervisor marks the job failed and says how it died. If the supervisor
dies too (the machine rebooted, someone killed the whole group), :func:`status` notices that
neither process is alive and marks the job failed.

The job folder::

    request.json    what was asked: base model path, settings, name (written once by start)
    data.jsonl      the training data, copied (a later edit of the source changes nothing)
    status.json     state and progress; replaced atomically, so never torn
    events.jsonl    one JSON object per line: messages and per-step loss/time/tokens
    worker.log      the worker's stdout/stderr (tracebacks, library warnings)
    adapter.gguf    the LoRA adapter, once trained (written atomically)
    metadata.json   how it was made: base and data SHA-256, settings, package versions,
                    per-step loss and time, peak memory
    cancel.request  present once cancel() was asked

States: ``queued`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``. A final state is
never overwritten, whoever tries (worker, supervisor, cancel, status).

Nothing here imports torch: the worker does, in its own process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from hypotez_lora.errors import JobError, TrainingCancelled

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED})

REQUEST, DATA, STATUS, EVENTS = "request.json", "data.jsonl", "status.json", "events.jsonl"
LOG, ADAPTER, METADATA, CANCEL = "worker.log", "adapter.gguf", "metadata.json", "cancel.request"
_LOCK = ".status.lock"

#: Seconds cancel() gives the worker to stop by itself before it is killed.
CANCEL_GRACE = 10.0

#: Packages whose versions the job's metadata records.
RECORDED_PACKAGES = (
    "hypotez",
    "torch",
    "transformers",
    "peft",
    "gguf",
    "safetensors",
    "tokenizers",
    "numpy",
    "llama-cpp-python",
)


@attrs.frozen
class JobStatus:
    """A job's state as :func:`status` reports it (the content of ``status.json``)."""

    state: str
    job_dir: str
    created_at: str
    name: str | None = None
    base: str | None = None
    pid: int | None = None  # the supervisor
    pid_start: int | None = None
    worker_pid: int | None = None
    worker_start: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    step: int = 0
    total_steps: int | None = None
    loss: float | None = None
    #: Why training ended early ("time_budget", "max_steps") or None.
    stopped: str | None = None
    error: str | None = None
    adapter: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobStatus:
        known = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --- small file helpers ------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _write_json_atomic(path: Path, data: Any) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the job from a server run as another user
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(job_dir: Path) -> Iterator[None]:
    import fcntl

    fd = os.open(job_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _read_status(job_dir: Path) -> JobStatus:
    path = job_dir / STATUS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JobError(f"{str(job_dir)!r} holds no training job (no {STATUS}).") from exc
    except (OSError, ValueError) as exc:
        raise JobError(f"The job status {str(path)!r} cannot be read: {exc}") from exc
    return JobStatus.from_dict(data)


def _update(job_dir: Path, **changes: Any) -> JobStatus:
    """Change the status under the lock; a final state is never changed again."""
    with _locked(job_dir):
        current = _read_status(job_dir)
        if current.final:
            return current
        updated = attrs.evolve(current, **changes)
        _write_json_atomic(job_dir / STATUS, updated.to_dict())
    if updated.final and updated.state != current.state:
        append_event(job_dir, "status", state=updated.state, error=updated.error)
    return updated


def append_event(job_dir: str | os.PathLike[str], kind: str, **fields: Any) -> None:
    """Append one event line (``{"time", "type", ...}``) to the job's events.jsonl."""
    line = json.dumps({"time": _now(), "type": kind, **fields}, sort_keys=True) + "\n"
    fd = os.open(Path(job_dir) / EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_events(job_dir: str | os.PathLike[str], after: int = 0) -> list[dict[str, Any]]:
    """The job's events from number ``after`` on (0 = all), oldest first.

    A line still being written (no newline yet) is left for the next call.
    """
    try:
        raw = (Path(job_dir) / EVENTS).read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")[:-1]  # the part after the last newline is incomplete
    events = []
    for line in lines[after:]:
        with contextlib.suppress(ValueError):
            events.append(json.loads(line))
    return events


# --- processes -----------------------------------------------------------------------------------


def _start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot): with the pid it identifies a
    process even after the pid is reused. None where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _alive(pid: int | None, start: int | None) -> bool:
    """Whether the process ``pid`` started at ``start`` still runs (zombies count as dead)."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own finished child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return False
    return start is None or int(fields[19]) == start


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # With more OpenMP threads than free cores, the default (active) waiting made 2-thread
    # steps 3-8x slower on a busy 2-core machine; passive waiting keeps them near 1-thread speed.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.setdefault("TQDM_DISABLE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env[name] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def _spawn(role: str, job_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hypotez_lora.runner", role, str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            close_fds=True,
            start_new_session=(role == "supervise"),
        )


# --- public API ----------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where converted base models are cached unless the caller says otherwise."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("hypotez")) / "lora-bases"


def start(
    job_dir: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str],
    base: str | os.PathLike[str] | None = None,
    settings: Any = None,
    name: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Start a training job in ``job_dir`` (created; must be new or empty); return its pid.

    Checks what can be checked at once, so a bad request fails here and not in the job: the
    base is a supported GGUF model, the data is valid chat JSONL with at least
    :data:`~hypotez_lora.data.MIN_EXAMPLES` examples, the settings are valid. Token counts need
    the tokenizer (seconds to load), so they are checked by the job.

    ``settings`` is a :class:`~hypotez_lora.train.LoraSettings` or a mapping of its fields.
    ``cache_dir`` keeps converted base models between jobs (see :func:`default_cache_dir`);
    None converts the GGUF base again in every job. ``extra`` is kept in ``request.json`` under
    ``"hypotez"`` for the caller (the ``local`` trainer keeps its job id, description and where
    to publish the job's final record there).
    """
    from hypotez import TrainingDataError
    from hypotez_lora.base import base_info, resolve_base, sha256_file
    from hypotez_lora.data import MIN_EXAMPLES, read_chat_jsonl
    from hypotez_lora.train import LoraSettings

    job_dir = Path(job_dir)
    if job_dir.exists() and any(job_dir.iterdir()):
        raise JobError(f"The job folder {str(job_dir)!r} is not empty; use a new folder per job.")
    base_path = resolve_base(base).resolve()
    info = base_info(base_path)
    conversations = read_chat_jsonl(data)
    if len(conversations) < MIN_EXAMPLES:
        raise TrainingDataError(
            f"{str(data)!r} has {len(conversations)} example(s); the local trainer needs at "
            f"least {MIN_EXAMPLES}."
        )
    if settings is None:
        settings = LoraSettings()
    elif not isinstance(settings, LoraSettings):
        settings = LoraSettings.from_dict(dict(settings))
    job_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data, job_dir / DATA)
    request = {
        "base": str(base_path),
        "base_name": info.name,
        "architecture": info.architecture,
        "data_source": str(Path(data).resolve()),
        "data_sha256": sha256_file(job_dir / DATA),
        "examples": len(conversations),
        "settings": settings.to_dict(),
        "name": name,
        "cache_dir": str(Path(cache_dir).resolve()) if cache_dir is not None else None,
        "hypotez": dict(extra) if extra else {},
    }
    _write_json_atomic(job_dir / REQUEST, request)
    created = JobStatus(
        state=QUEUED,
        job_dir=str(job_dir.resolve()),
        created_at=_now(),
        name=name,
        base=str(base_path),
    )
    _write_json_atomic(job_dir / STATUS, created.to_dict())
    append_event(
        job_dir, "message", message=f"job created: {len(conversations)} examples, base {info.name}"
    )
    proc = _spawn("supervise", job_dir, job_dir / LOG)
    _update(job_dir, pid=proc.pid, pid_start=_start_time(proc.pid))
    return proc.pid


def status(job_dir: str | os.PathLike[str]) -> JobStatus:
    """The job's status; a job whose processes are gone without a final state is marked failed."""
    job_dir = Path(job_dir)
    current = _read_status(job_dir)
    if current.final or current.pid is None:
        return current
    if _alive(current.pid, current.pid_start) or _alive(current.worker_pid, current.worker_start):
        return current
    # Re-read under the lock: the supervisor may have written the final state just now.
    return _update(
        job_dir,
        state=FAILED,
        finished_at=_now(),
        error=(
            "the job's processes ended without recording a result (killed together, or the "
            "machine restarted)" + _log_tail(job_dir)
        ),
    )


def cancel(job_dir: str | os.PathLike[str], *, grace: float = CANCEL_GRACE) -> JobStatus:
    """Stop a job and return its final status once its worker process is gone.

    Asks the worker to stop (SIGTERM: it stops at once, or before its next step), kills it if
    it is still there after ``grace`` seconds, then marks the job cancelled. A job already
    final is returned unchanged (a job that finished in the meantime stays succeeded).
    """
    job_dir = Path(job_dir)
    current = status(job_dir)
    if current.final:
        return current
    with contextlib.suppress(FileExistsError):
        (job_dir / CANCEL).touch(exist_ok=False)
    append_event(job_dir, "message", message="cancel requested")
    deadline = time.monotonic() + max(grace, 0.0)
    signalled: int | None = None
    while True:
        current = _read_status(job_dir)
        worker_alive = _alive(current.worker_pid, current.worker_start)
        if worker_alive and signalled != current.worker_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(current.worker_pid, signal.SIGTERM)  # type: ignore[arg-type]
            signalled = current.worker_pid
        started = current.worker_pid is not None or current.final
        if started and not worker_alive:
            break  # the worker is gone (the supervisor or the worker records the outcome)
        if not _alive(current.pid, current.pid_start) and not worker_alive:
            break  # nothing left that could start a worker
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for pid, start_ in (
        (current.worker_pid, current.worker_start),
        (current.pid, current.pid_start),
    ):
        if _alive(pid, start_):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
    return _update(job_dir, state=CANCELLED, finished_at=_now(), error=None)


def wait(
    job_dir: str | os.PathLike[str], *, timeout: float | None = None, poll: float = 0.5
) -> JobStatus:
    """Poll until the job is final (or ``timeout`` seconds passed); return its status."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = status(job_dir)
        if current.final or (deadline is not None and time.monotonic() >= deadline):
            return current
        time.sleep(poll)


def _log_tail(job_dir: Path, lines: int = 3) -> str:
    try:
        text = (job_dir / LOG).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return (": " + " | ".join(tail)) if tail else ""


# --- the child processes -------------------------------------------------------------------------


def _supervise(job_dir: Path) -> int:
    """Run the worker, wait for it, and record how it ended if it could not say so itself."""
    _update(job_dir, pid=os.getpid(), pid_start=_start_time(os.getpid()))
    proc = _spawn("work", job_dir, job_dir / LOG)
    _update(job_dir, worker_pid=proc.pid, worker_start=_start_time(proc.pid))
    # A SIGTERM to the supervisor (cancel of an old-style job, a shutdown) goes to the worker.
    signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    code = proc.wait()
    current = _read_status(job_dir)
    if current.final:
        return 0
    if (job_dir / CANCEL).exists():
        _update(job_dir, state=CANCELLED, finished_at=_now())
        return 0
    if code < 0:
        try:
            how = f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
        if code == -signal.SIGKILL:
            how += " (by a user, or by the kernel when memory ran out)"
    else:
        how = f"exited with code {code} without recording a result"
    _update(
        job_dir,
        state=FAILED,
        finished_at=_now(),
        error=f"the training process {how}{_log_tail(job_dir)}",
    )
    return 0


def _publish(job_dir: Path) -> None:
    """Save the job's final record where its submitter keeps job records (the ``local``
    trainer's storage), so that a job nobody waits for is still recorded as it ended."""
    try:
        request = json.loads((job_dir / REQUEST).read_text(encoding="utf-8"))
        if not request.get("hypotez", {}).get("publish"):
            return
        from hypotez_lora.trainer import publish_final

        publish_final(job_dir)
    except Exception:  # the job's own files already say how it ended; only the copy is lost
        print("could not save the job's final record in storage:", file=sys.stderr)
        traceback.print_exc()


class _CancelFlag:
    """Cooperative cancel for the worker: SIGTERM or the cancel.request file."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.requested = False
        #: While True (loading, tokenizing), a SIGTERM interrupts at once instead of waiting for
        #: the next training step. Off while the adapter is being written.
        self.interruptible = True

    def handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self.interruptible:
            raise TrainingCancelled("cancelled (SIGTERM)")

    def __call__(self) -> bool:
        return self.requested or (self.job_dir / CANCEL).exists()


def _package_versions() -> dict[str, str | None]:
    import importlib.metadata
    import platform

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _work(job_dir: Path) -> int:
    """The training itself (imports torch): load, tokenize, train, write adapter and metadata."""
    flag = _CancelFlag(job_dir)
    signal.signal(signal.SIGTERM, flag.handle)
    try:
        return _train_job(job_dir, flag)
    except TrainingCancelled as exc:
        append_event(job_dir, "message", message=str(exc))
        _update(job_dir, state=CANCELLED, finished_at=_now())
        return 0
    except Exception as exc:
        traceback.print_exc()
        _update(job_dir, state=FAILED, finished_at=_now(), error=f"{type(exc).__name__}: {exc}")
        return 1


def _train_job(job_dir: Path, flag: _CancelFlag) -> int:
    request = json.loads((job_dir / REQUEST).read_text(encoding="utf-8"))
    settings_dict = request["settings"]
    from hypotez_lora.base import load_base, sha256_file
    from hypotez_lora.data import ChatEncoder, add_bos_for, read_chat_jsonl
    from hypotez_lora.gguf_header import read_header
    from hypotez_lora.train import LoraSettings, StepEvent, lora_weights, set_threads, train_lora

    settings = LoraSettings.from_dict(settings_dict)
    started = time.perf_counter()
    _update(job_dir, state=RUNNING, started_at=_now())
    if flag():
        raise TrainingCancelled("cancelled before training started")
    set_threads(settings.threads)
    base_path = Path(request["base"])
    append_event(job_dir, "message", message=f"hashing and loading the base model {base_path.name}")
    base_sha = sha256_file(base_path)
    cache = Path(request["cache_dir"]) if request.get("cache_dir") else None
    base = load_base(base_path, sha256=base_sha, cache_dir=cache)
    load_seconds = time.perf_counter() - started
    encoder = ChatEncoder(
        base.tokenizer,
        base.info.context_length,
        add_bos=add_bos_for(read_header(base_path).metadata),
    )
    examples = encoder.encode_all(read_chat_jsonl(job_dir / DATA))
    tokens = sum(len(e) for e in examples)
    append_event(
        job_dir,
        "message",
        message=f"loaded in {load_seconds:.1f} s; {len(examples)} examples, {tokens} tokens",
    )

    def on_step(event: StepEvent) -> None:
        append_event(job_dir, "step", **event.to_dict())
        _update(job_dir, step=event.step, total_steps=event.total_steps, loss=event.loss)

    result = train_lora(base, examples, settings, on_step=on_step, should_stop=flag)
    flag.interruptible = False  # writing the adapter takes a moment; let it finish
    if flag():
        raise TrainingCancelled("cancelled after the last step")
    adapter = job_dir / ADAPTER
    from hypotez_lora.adapter import write_adapter

    write_adapter(
        adapter,
        lora_weights(result.model),
        base.info,
        alpha=settings.alpha,
        name=request.get("name") or f"{base.info.name} LoRA",
    )
    metrics = result.metrics()
    metadata = {
        "name": request.get("name"),
        "base": {
            "path": str(base_path),
            "sha256": base_sha,
            "name": base.info.name,
            "architecture": base.info.architecture,
            "context_length": base.info.context_length,
        },
        "data": {
            "source": request.get("data_source"),
            "sha256": request["data_sha256"],
            "examples": len(examples),
            "tokens": tokens,
            "trained_tokens": sum(e.n_trained for e in examples),
        },
        "settings": settings.to_dict(),
        "packages": _package_versions(),
        "training": metrics,
        "load_seconds": round(load_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "adapter": {
            "path": str(adapter),
            "sha256": sha256_file(adapter),
            "bytes": adapter.stat().st_size,
        },
        "finished_at": _now(),
    }
    _write_json_atomic(job_dir / METADATA, metadata)
    append_event(
        job_dir,
        "message",
        message=f"adapter written: {metrics['steps']} steps in {metrics['seconds']} s, "
        f"final loss {metrics['final_loss']:.4f}",
    )
    _update(
        job_dir,
        state=SUCCEEDED,
        finished_at=_now(),
        adapter=str(adapter),
        stopped=None if result.stopped == "completed" else result.stopped,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("supervise", "work"):
        print("usage: python -m hypotez_lora.runner {supervise|work} JOB_DIR", file=sys.stderr)
        return 2
    job_dir = Path(args[1])
    if args[0] == "work":
        return _work(job_dir)
    code = _supervise(job_dir)
    _publish(job_dir)
    return code


if __name__ == "__main__":
    sys.exit(main())

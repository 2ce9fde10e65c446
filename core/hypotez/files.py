"""Crash-safe, link-safe file helpers that plugins may use too (this module is public API).

``atomic_write_*`` write to a temporary file in the same folder, fsync it, and rename it over
the target, so a reader or a crash sees the old content or the new, never a mix. They never
write through or replace what is not a regular file: a symbolic link, a FIFO, a device or a
folder at the target raises :class:`NotARegularFileError` and is left as it was.

:func:`write_output` is the one way hypotez writes a file a user named (``-o PATH``).

The ``*_at`` functions work on names inside a folder opened with :func:`open_folder`, which
follows no symbolic link below its root: a storage that uses them cannot be led out of its
folder by a link planted inside it.

:func:`locked` waits for a lock for a bounded time and then names the process holding it.
:func:`json_bytes` is the JSON a storage writes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hypotez.errors import HypotezError, InputError, StorageError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
#: Longest part of a target's name kept in its temporary file's name (names are <= 255 bytes).
_TEMP_STEM = 64


class NotARegularFileError(InputError):
    """A path hypotez was asked to write (or read as data) is a link, FIFO, device or folder.

    hypotez never writes through such a path and never replaces it.
    """

    def __init__(self, path: str | os.PathLike[str], kind: str, advice: str = "") -> None:
        self.path, self.kind = os.fspath(path), kind
        super().__init__(
            f"{self.path!r} is {kind}, not a regular file; hypotez does not write through it or "
            f"replace it. {advice or 'Choose another file name, or remove it first.'}".rstrip()
        )


class OutputError(HypotezError):
    """A file the user named could not be written (a full or read-only disk, permissions...).

    Nothing was written: an existing file at that path is unchanged.
    """


class LockTimeoutError(StorageError, TimeoutError):
    """Another process held a file's lock for longer than the caller was willing to wait."""


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, for messages ("a symbolic link", "a FIFO"...)."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def explain_os_error(exc: OSError) -> str:
    """The cause of a failed file operation in words, with what to do about it."""
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "the disk is full (or the quota is used up): free some space and try again"
    if code == errno.EROFS:
        return (
            "the file system is read-only: use a writable folder (HYPOTEZ_HOME, --home, --storage)"
        )
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied: check the folder's owner and permissions, or use another folder"
    if code == errno.ENAMETOOLONG:
        return (
            "a name in the path is longer than the file system allows (usually 255 bytes per "
            "name): use a shorter path"
        )
    if code == errno.ELOOP:
        return "it is a symbolic link (or a loop of them), which hypotez does not follow"
    if code == errno.ENOTDIR:
        return "a part of the path is a file, not a folder"
    if code == errno.EISDIR:
        return "it is a folder, not a file"
    if code == errno.EIO:
        return "the device reported an I/O error: check the disk"
    return exc.strerror or str(exc)


# -- writing whole files ------------------------------------------------------------------------
def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - a regular file never returns 0 for a non-empty write
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _temp_name(name: str) -> str:
    return f".{name[:_TEMP_STEM]}.{secrets.token_hex(4)}.tmp"


def _durable_temp_at(
    dir_fd: int, name: str, data: bytes, mode: int = 0o600, *, durable: bool = True
) -> str:
    """Write ``data`` to a new (fsync'd, when ``durable``) temporary file in the folder; return
    its name."""
    while True:
        tmp = _temp_name(name)
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                mode,
                dir_fd=dir_fd,
            )
            break
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
    try:
        try:
            if mode != 0o600:
                os.fchmod(fd, mode)  # an existing file's mode, not narrowed by the umask
            _write_all(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    return tmp


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _check_replaceable(dir_fd: int, name: str, shown: str, advice: str = "") -> int | None:
    """The mode of the regular file at ``name`` (None if there is none); refuse anything else."""
    st = _lstat_at(dir_fd, name)
    if st is None:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFileError(shown, kind_of(st.st_mode), advice)
    return stat.S_IMODE(st.st_mode)


def atomic_write_at(dir_fd: int, name: str, data: bytes, *, shown: str | None = None) -> None:
    """Replace the regular file ``name`` in an open folder with ``data``, atomically."""
    shown = shown or name
    _check_replaceable(dir_fd, name, shown)
    tmp = _durable_temp_at(dir_fd, name, data)
    try:
        # A link or FIFO planted in the meantime is refused too (renaming only replaces the
        # name, never writes through it, but hypotez leaves such things alone).
        _check_replaceable(dir_fd, name, shown)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    _fsync_fd(dir_fd)


def atomic_create_at(dir_fd: int, name: str, data: bytes, *, durable: bool = True) -> bool:
    """Create ``name`` in an open folder with ``data`` only if nothing has that name yet.

    False if the name exists (whatever it is). The content is complete before the name appears
    (a temporary file, then a hard link). ``durable=False`` skips the two fsyncs: a crashed
    process still leaves the old or the new state, only a power loss may lose the file.
    """
    tmp = _durable_temp_at(dir_fd, name, data, durable=durable)
    try:
        try:
            os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        except FileExistsError:
            return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
    if durable:
        _fsync_fd(dir_fd)
    return True


@contextlib.contextmanager
def _parent_fd(target: Path, *, create: bool) -> Iterator[int]:
    if create:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace the file at ``path`` with ``data`` atomically (creating its folders).

    :class:`NotARegularFileError` if ``path`` is a symbolic link, FIFO, device or folder.
    """
    target = Path(path)
    with _parent_fd(target, create=True) as fd:
        atomic_write_at(fd, target.name, data, shown=str(target))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_create_bytes(path: str | os.PathLike[str], data: bytes) -> bool:
    """Create ``path`` with ``data`` only if it does not exist yet; False if it already does.

    The content is complete before the name appears (write a temp file, then hard-link it).
    """
    target = Path(path)
    with _parent_fd(target, create=True) as fd:
        return atomic_create_at(fd, target.name, data)


def _output_advice(option: str) -> str:
    return (
        f"Choose another file name, or remove it first; to print to standard output, leave out "
        f"{option}."
    )


def _output_target(path: str | os.PathLike[str], option: str) -> Path:
    _no_nul(path)
    target = Path(path).expanduser()
    if target.name in ("", ".", "..") or os.fspath(path).endswith(("/", os.sep)):
        raise NotARegularFileError(path, "a folder", _output_advice(option))
    return target


def _output_error(target: Path, exc: OSError, option: str, *, opening: bool) -> HypotezError:
    if isinstance(exc, FileNotFoundError) and opening:
        return InputError(
            f"Cannot write {str(target)!r}: its folder {str(target.parent)!r} does not exist; "
            "create it first."
        )
    if exc.errno == errno.EISDIR:
        return NotARegularFileError(target, "a folder", _output_advice(option))
    if exc.errno == errno.ENAMETOOLONG:
        return InputError(f"Cannot write {str(target)!r}: {explain_os_error(exc)}.")
    why = (
        "the folder does not accept new files"
        if isinstance(exc, FileNotFoundError)
        else explain_os_error(exc)
    )
    return OutputError(f"Cannot write {str(target)!r}: {why}. Nothing was written.")


def check_output(path: str | os.PathLike[str], *, option: str = "-o") -> Path:
    """Check, before any work, that :func:`write_output` may write ``path``; return it.

    The same errors as :func:`write_output`: a missing folder, or a link, FIFO, device or folder
    at ``path``.
    """
    target = _output_target(path, option)
    try:
        with _parent_fd(target, create=False) as fd:
            _check_replaceable(fd, target.name, str(target), _output_advice(option))
    except OSError as exc:
        raise _output_error(target, exc, option, opening=True) from None
    return target


def _no_nul(path: str | os.PathLike[str]) -> None:
    if "\0" in os.fsdecode(os.fspath(path)):
        raise InputError(f"File name {os.fspath(path)!r} holds a NUL character; no file can.")


def write_output(path: str | os.PathLike[str], data: bytes | str, *, option: str = "-o") -> Path:
    """Write a file the user named (``-o PATH``): atomically, never through anything else.

    The folder must exist (a typo does not grow a tree of folders). An existing regular file is
    replaced and keeps its permissions; a symbolic link (``/dev/stdout`` too), FIFO, device or
    folder at ``path`` is refused with :class:`NotARegularFileError` and left untouched; a
    missing folder is an :class:`InputError`. Other failures (a full or read-only disk, a name
    too long) raise :class:`OutputError` saying what to do; nothing is half-written.
    """
    target = _output_target(path, option)
    body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    advice = _output_advice(option)
    try:
        fd = os.open(target.parent, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except OSError as exc:
        raise _output_error(target, exc, option, opening=True) from None
    try:
        mode = _check_replaceable(fd, target.name, str(target), advice)
        tmp = _durable_temp_at(fd, target.name, body, 0o600 if mode is None else mode)
        try:
            _check_replaceable(fd, target.name, str(target), advice)
            os.replace(tmp, target.name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise
        _fsync_fd(fd)
    except OSError as exc:
        raise _output_error(target, exc, option, opening=False) from None
    finally:
        os.close(fd)
    return target


def _fsync_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.fsync(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``path`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        _fsync_fd(fd)
    finally:
        os.close(fd)


# -- folders that follow no link ----------------------------------------------------------------
def open_folder(root: str | os.PathLike[str], parts: Sequence[str], *, create: bool) -> int | None:
    """Open ``root/part/part...`` as a folder fd, following no symbolic link below ``root``.

    Missing folders are created when ``create`` (else None is returned). A part that is a
    symbolic link or not a folder raises :class:`NotARegularFileError`; the caller closes the fd.
    """
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    where = Path(root)
    try:
        for part in parts:
            where = where / part
            try:
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = _lstat_at(fd, part)
                raise NotARegularFileError(
                    where,
                    kind_of(st.st_mode) if st else "not a folder",
                    "hypotez follows no link inside its storage folder: move it away.",
                ) from None
            os.close(fd)
            fd = child
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    return fd


def _advice(kind: str) -> str:
    if kind == "a symbolic link":
        return "hypotez follows no link inside its storage folder: move it away."
    return "It is not hypotez's data: move it away."


def open_file_at(
    dir_fd: int, name: str, flags: int, *, shown: str | os.PathLike[str], mode: int = 0o600
) -> int:
    """Open the regular file ``name`` in an open folder without following a link.

    A symbolic link, FIFO, device or folder raises :class:`NotARegularFileError` (a FIFO is
    never waited on); a missing file raises ``FileNotFoundError``.
    """
    try:
        fd = os.open(name, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EWOULDBLOCK):
            raise
        st = _lstat_at(dir_fd, name)
        kind = kind_of(st.st_mode) if st else "not a regular file"
        raise NotARegularFileError(shown, kind, _advice(kind)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = kind_of(st.st_mode)
            raise NotARegularFileError(shown, kind, _advice(kind))
        if _NONBLOCK:
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file_at(dir_fd: int, name: str, *, shown: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file ``name`` in an open folder (no link followed)."""
    fd = open_file_at(dir_fd, name, os.O_RDONLY, shown=shown)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# -- locks ----------------------------------------------------------------------------------------
def lock_holders(fd: int) -> list[int]:
    """Process ids holding a ``flock`` on the file open at ``fd`` (Linux ``/proc/locks``).

    Empty where that is unknown (other systems, another pid namespace).
    """
    try:
        st = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 10839 fe:00:2170951 0 EOF"; waiters have "->" after "1:".
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            pid = int(fields[4])
            inode = int(fields[5].rsplit(":", 1)[1])
        except (ValueError, IndexError):
            continue
        if inode == st.st_ino and pid > 0:
            pids.append(pid)
    return sorted(set(pids))


def describe_process(pid: int) -> str:
    """``process 1234 (python3)``: the pid and its short command name, never its arguments."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            name = fh.read().strip()
    except OSError:
        name = ""
    return f"process {pid} ({name})" if name else f"process {pid}"


def _lock_timeout_error(fd: int, what: str, timeout: float) -> LockTimeoutError:
    holders = lock_holders(fd)
    who = ", ".join(describe_process(p) for p in holders) if holders else "another process"
    return LockTimeoutError(
        f"{what} is locked by {who}; gave up after waiting {timeout:g} s. If that process is "
        "stuck, end it and try again; if it is busy with a long job, wait for it to finish."
    )


def _wait_for_lock(fd: int, op: int, timeout: float, what: str) -> None:
    """Block in ``flock`` on a duplicate of ``fd`` in a helper thread, for at most ``timeout``.

    Blocking (rather than polling) keeps the kernel's wake-up order, so a waiter is not starved
    by busy writers. If the time runs out, the helper releases the lock as soon as it gets it.
    """
    import fcntl

    dup = os.dup(fd)  # the same open file: a lock taken through it is ours
    state: dict[str, Any] = {"abandoned": False, "error": None}
    got = threading.Event()
    guard = threading.Lock()

    def wait() -> None:
        try:
            fcntl.flock(dup, op)
        except OSError as exc:  # pragma: no cover - flock on a valid fd
            state["error"] = exc
        with guard:
            if state["abandoned"]:
                if state["error"] is None:
                    fcntl.flock(dup, fcntl.LOCK_UN)
                os.close(dup)
                return
            got.set()

    threading.Thread(target=wait, name="hypotez-lock-wait", daemon=True).start()
    finished = got.wait(timeout)
    with guard:
        if not finished and not got.is_set():
            state["abandoned"] = True
            raise _lock_timeout_error(fd, what, timeout)
    os.close(dup)
    error = state["error"]
    if isinstance(error, OSError):  # pragma: no cover
        raise error


@contextlib.contextmanager
def locked(
    fd: int, *, shared: bool = False, timeout: float | None = None, what: str = "The file"
) -> Iterator[None]:
    """Hold an advisory lock on an open file (released by the kernel if the process dies).

    With ``timeout`` (seconds), waiting longer raises :class:`LockTimeoutError`, whose message
    names ``what`` and the processes holding the lock; ``None`` waits as long as it takes.
    """
    import fcntl

    op = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
    except BlockingIOError:
        if timeout is None:
            fcntl.flock(fd, op)
        else:
            _wait_for_lock(fd, op, max(0.0, timeout), what)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def json_bytes(data: Any) -> bytes:
    """``data`` as compact UTF-8 JSON, for a record or a line that a storage writes. Text that
    is not valid Unicode (a lone surrogate, which JSON can carry as a ``\\ud800`` escape) is
    kept, escaped, instead of failing to encode."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")


__all__ = [
    "LockTimeoutError",
    "NotARegularFileError",
    "OutputError",
    "atomic_create_at",
    "atomic_create_bytes",
    "atomic_write_at",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
    "explain_os_error",
    "fsync_dir",
    "json_bytes",
    "kind_of",
    "lock_holders",
    "locked",
    "open_file_at",
    "open_folder",
    "read_file_at",
    "write_output",
]

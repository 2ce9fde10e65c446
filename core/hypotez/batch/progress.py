"""A one-line progress bar for batch jobs: rows done, rate, ETA, failures.

Drawn on standard error when it is a terminal (``progress=None``), redrawn at most ten times a
second; nothing is printed otherwise, and the summary says the rest.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

WIDTH = 24


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts rows as they finish; draws a bar when enabled."""

    def __init__(
        self,
        total: int,
        *,
        skipped: int = 0,
        label: str = "",
        enabled: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = enabled
        self.total, self.skipped, self.label = total, skipped, label
        self.done = 0  # finished in this run, with or without error
        self.failed = 0
        self.remote: tuple[int, int] | None = None  # (done, total) as a service reports them
        self.note = ""
        self.started = time.monotonic()
        self._drawn = 0.0

    def advance(self, ok: int, failed: int) -> None:
        self.done += ok + failed
        self.failed += failed
        self.draw()

    def report(
        self, *, done: int | None = None, total: int | None = None, note: str | None = None
    ) -> None:
        if done is not None:
            self.remote = (done, total if total is not None else self.total)
        if note is not None:
            self.note = note
        self.draw(force=note is not None)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.remote is not None and self.done == 0:
            done, total = self.remote
            rate = ""
        else:
            done, total = self.skipped + self.done, self.total
            rate = f"{self.done / elapsed:,.1f} rows/s" if elapsed > 0 and self.done else ""
        fraction = done / total if total else 1.0
        filled = int(WIDTH * fraction)
        bar = "#" * filled + "-" * (WIDTH - filled)
        parts = [f"{self.label} [{bar}] {done:,}/{total:,} {fraction:4.0%}"]
        if rate:
            parts.append(rate)
            left = total - done
            if self.done and left > 0:
                parts.append(f"ETA {duration(left * elapsed / self.done)}")
        if self.failed:
            parts.append(f"{self.failed:,} failed")
        if self.note:
            parts.append(self.note)
        return "  ".join(p for p in parts if p).strip()

    def draw(self, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        self._write("\r\x1b[2K" + self.line())

    def close(self) -> None:
        if self.enabled:
            self._write("\r\x1b[2K" + self.line() + "\n")
            self.enabled = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed terminal must not fail the job
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Progress", "duration"]

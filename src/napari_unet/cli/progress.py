"""What a command tells the user while it works: a text progress bar and status lines.

Both go to stderr, so stdout holds only results.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from typing import TextIO


class ProgressBar:
    """A small text progress bar on stderr (no dependency).

    On a terminal it redraws one line (at most 10 times a second); otherwise (logs, batch
    jobs) it prints one line when the work is done. Call it as ``bar(done, total)``; it is
    thread-safe, so dask threads can report to it.
    """

    def __init__(
        self, label: str, *, stream: TextIO | None = None, enabled: bool = True, width: int = 28
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.done = 0
        self.total = 0
        self.suffix = ""
        self._last = 0.0
        self._lock = threading.Lock()
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None, suffix: str | None = None) -> None:
        with self._lock:
            self.done = done
            if total is not None:
                self.total = total
            if suffix is not None:
                self.suffix = suffix
            now = time.perf_counter()
            if self.enabled and self.tty and (now - self._last > 0.1 or done >= self.total):
                self._last = now
                self._draw()

    def _draw(self) -> None:
        frac = self.done / self.total if self.total else 0.0
        fill = int(round(self.width * min(max(frac, 0.0), 1.0)))
        bar = "#" * fill + "." * (self.width - fill)
        text = f"\r{self.label} [{bar}] {self.done}/{self.total} {self.suffix}".rstrip()
        self.stream.write(f"{text}  ")
        self.stream.flush()
        self._drawn = True

    def close(self, message: str = "") -> None:
        """Finish the bar; ``message`` (e.g. what was written) ends the line."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        with self._lock:
            if self.tty and self._drawn:
                self._draw()
                self.stream.write("\n")
            tail = f" ({self.suffix})" if self.suffix and not (self.tty and self._drawn) else ""
            end = f"; {message}" if message else ""
            self.stream.write(f"{self.label}: done in {format_seconds(elapsed)}{tail}{end}\n")
            self.stream.flush()


def format_seconds(seconds: float) -> str:
    """A duration for people: ``4.2 s``, ``3 min 07 s``, ``1 h 05 min`` (``?`` if unknown)."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def status(message: str, args: argparse.Namespace | None = None) -> None:
    """A status line on stderr (suppressed by --quiet); results go to stdout."""
    if args is None or not getattr(args, "quiet", False):
        print(message, file=sys.stderr)

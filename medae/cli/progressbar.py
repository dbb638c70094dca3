"""A dependency-free terminal progress bar matching the ``progress(fraction, message)`` contract."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Callable progress bar with elapsed time and ETA; quiet when stderr is not a terminal.

    Args:
        label: Shown before the bar.
        stream: Where to draw (stderr by default).
        every: Minimum seconds between redraws when not a terminal (log lines).
    """

    def __init__(self, label: str, stream=None, every: float = 10.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.every = every
        self.start = time.monotonic()
        self.last = 0.0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def __call__(self, fraction: float, message: str = "") -> None:
        """Draws the bar at ``fraction`` with ``message``."""
        now = time.monotonic()
        elapsed = now - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        eta_s = f"{eta:5.0f}s" if eta == eta else "   ?s"
        if self.tty:
            width = 28
            filled = int(width * fraction)
            bar = "#" * filled + "." * (width - filled)
            line = f"\r{self.label} [{bar}] {fraction:4.0%} {elapsed:5.0f}s eta {eta_s} {message}"
            self.stream.write(line[:150].ljust(100))
            self.stream.flush()
        elif now - self.last >= self.every or fraction >= 1.0:
            self.last = now
            self.stream.write(f"{self.label}: {fraction:4.0%} {elapsed:.0f}s eta {eta_s} {message}\n")
            self.stream.flush()

"""A dependency-free terminal progress bar matching the ``progress(fraction, message)`` contract."""

from __future__ import annotations

import os
import shutil
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
        self.drawn = False  # whether the terminal's current line holds the bar

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.tty and self.drawn:  # a bar never drawn (a step with no progress to show) leaves no blank line
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

    def clear(self) -> None:
        """Blanks the bar's line, so that a line printed next (a series' result) starts at its beginning."""
        if self.tty and self.drawn:
            self.stream.write("\r" + " " * self._columns() + "\r")
            self.stream.flush()
            self.drawn = False

    def __call__(self, fraction: float, message: str = "") -> None:
        """Draws the bar at ``fraction`` with ``message``."""
        if self.stream is None:  # no stderr at all (started with it closed, a windowed program): nothing to draw
            return
        now = time.monotonic()
        elapsed = now - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else float("nan")
        eta_s = f"{eta:5.0f}s" if eta == eta else "   ?s"
        if self.tty:
            width = 28
            filled = int(width * fraction)
            bar = "#" * filled + "." * (width - filled)
            line = f"{self.label} [{bar}] {fraction:4.0%} {elapsed:5.0f}s eta {eta_s} {message}"
            # A line wider than the terminal wraps, and the carriage return then goes back to its last row
            # only: every redraw would leave a row behind. So it is cut to the width (and padded to it, to
            # cover a longer message drawn before).
            columns = self._columns()
            self.stream.write("\r" + line[:columns].ljust(columns))
            self.stream.flush()
            self.drawn = True
        elif now - self.last >= self.every or fraction >= 1.0:
            self.last = now
            self.stream.write(f"{self.label}: {fraction:4.0%} {elapsed:.0f}s eta {eta_s} {message}\n")
            self.stream.flush()

    def _columns(self) -> int:
        """Characters a line may hold: the terminal's width less one (a full row puts some terminals at the next)."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):  # not a real terminal's stream: COLUMNS, else 80
            columns = shutil.get_terminal_size().columns
        return max(columns or 80, 20) - 1

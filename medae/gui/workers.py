"""Long operations off the GUI thread: each runs in its own QThread with progress and cancel.

A job calls a core function with the ``progress``/``cancel`` contract; progress arrives in the GUI
thread as a Qt signal, with an estimate of the time left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal


class _Task(QObject):
    """Runs one function in a worker thread; results travel back as signals."""

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, fn: Callable[..., Any], cancel: threading.Event) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = cancel

    def run(self) -> None:
        try:
            result = self._fn(progress=self._report, cancel=self._cancel)
        except BaseException as exc:  # every failure must reach the GUI thread, not kill the worker
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)
        finally:
            self.finished.emit()

    def _report(self, fraction: float, message: str = "") -> None:
        self.progress.emit(float(fraction), str(message))


class Job(QObject):
    """One running operation, seen from the GUI thread.

    Signals:
        progress(fraction, message, seconds_left): seconds_left is -1 until it can be estimated.
        succeeded(result), failed(exception), finished(): finished always comes last.
    """

    progress = Signal(float, str, float)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, name: str, fn: Callable[..., Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.doing = name  # what the progress bar calls it ("analysing the scan"); set by the window
        self.cancel_event = threading.Event()
        self.started_at = time.monotonic()
        self.fraction = 0.0
        self.message = ""
        self.running = True
        self._thread = QThread()
        self._thread.setObjectName(f"medae-{name}")
        self._task = _Task(fn, self.cancel_event)
        self._task.moveToThread(self._thread)
        self._thread.started.connect(self._task.run)
        self._task.progress.connect(self._on_progress)
        self._task.succeeded.connect(self.succeeded)
        self._task.failed.connect(self.failed)
        # Direct: the worker thread ends its own event loop. Queued through the GUI thread, the quit would
        # wait for that thread, which blocks in ``wait`` while the window closes.
        self._task.finished.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_finished)

    def start(self) -> Job:
        """Starts the worker thread."""
        self.started_at = time.monotonic()
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Asks the operation to stop at its next check."""
        self.cancel_event.set()

    def wait(self, ms: int = 30_000) -> bool:
        """Blocks until the thread ends (for shutdown and tests)."""
        return self._thread.wait(ms)

    def seconds_left(self) -> float:
        """Estimate from the progress rate so far; -1 when too early to tell."""
        elapsed = time.monotonic() - self.started_at
        # Early stages (a model load, an alignment) do not advance at the pace of the rest: an estimate
        # from them is off several times over, so none is given before a fifth of the work and 3 s.
        if self.fraction < 0.2 or elapsed < 3.0:
            return -1.0
        return max(0.0, elapsed * (1.0 - self.fraction) / self.fraction)

    def _on_progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = fraction, message
        self.progress.emit(fraction, message, self.seconds_left())

    def _on_finished(self) -> None:
        self.running = False
        self.finished.emit()


def format_eta(seconds: float) -> str:
    """'about 12 s left', 'about 3 min left', or '' when unknown."""
    if seconds < 0:
        return ""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    return f"about {round(seconds / 60)} min left"

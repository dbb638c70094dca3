"""The progress/cancel contract shared by every long operation.

Long operations take ``progress: Callable[[float, str], None] | None`` (fraction in [0, 1] and a short
message) and ``cancel: threading.Event | None``. Nobody reads a global.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from medae.errors import CancelledError

ProgressFn = Callable[[float, str], None]


def report(progress: ProgressFn | None, fraction: float, message: str = "") -> None:
    """Calls ``progress`` if given, clamping the fraction to [0, 1]."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def check_cancel(cancel: threading.Event | None) -> None:
    """Raises ``CancelledError`` when the user asked to stop."""
    if cancel is not None and cancel.is_set():
        raise CancelledError()


def sub_progress(progress: ProgressFn | None, start: float, stop: float) -> ProgressFn | None:
    """Maps a sub-task's [0, 1] progress onto ``[start, stop]`` of the parent's."""
    if progress is None:
        return None

    def _sub(fraction: float, message: str = "") -> None:
        report(progress, start + (stop - start) * fraction, message)

    return _sub

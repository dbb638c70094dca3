"""What nibabel says while it reads a header, collected for medae's warnings instead of the console.

nibabel repairs odd headers as it reads them (a zero voxel size becomes 1, an invalid qform or sform
code becomes 0) and logs each repair to its global logger, which prints to the console. A repair
changes what the file means, so the user must see it with the scan, once, not on a terminal they may
not have. nibabel's own suppressor removes its handlers, which leaves Python's last-resort handler
printing the messages; and its logger is global while scans load in several threads at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

_local = threading.local()
_lock = threading.Lock()
_depth = 0
_saved: tuple[list[logging.Handler], bool] | None = None


class _Collect(logging.Handler):
    """Hands each record to the list of the thread that is reading a header (others are dropped)."""

    def emit(self, record: logging.LogRecord) -> None:
        notes = getattr(_local, "notes", None)
        if notes is not None and record.levelno >= logging.WARNING:
            notes.append(record.getMessage())


_COLLECT = _Collect()


@contextlib.contextmanager
def nibabel_notes() -> Iterator[list[str]]:
    """Collects nibabel's messages during the block into the yielded list; nothing reaches the console.

    Safe to nest and to use from several threads: the logger is switched over by the first block to
    start and back by the last to end.
    """
    global _depth, _saved
    from nibabel.imageglobals import logger

    notes: list[str] = []
    _local.notes = notes
    with _lock:
        if _depth == 0:
            _saved = (list(logger.handlers), logger.propagate)
            for handler in _saved[0]:
                logger.removeHandler(handler)
            logger.addHandler(_COLLECT)
            logger.propagate = False
        _depth += 1
    try:
        yield notes
    finally:
        _local.notes = None
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                logger.removeHandler(_COLLECT)
                for handler in _saved[0]:
                    logger.addHandler(handler)
                logger.propagate = _saved[1]

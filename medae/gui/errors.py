"""Every error reaches the user as a dialog that says what to do; the application keeps running.

Expected problems are ``MedaeError``s whose message already says what to do. Anything else is a bug:
the traceback goes to the log file, and the dialog says so without showing it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from medae.errors import CancelledError, MedaeError

log = logging.getLogger("medae.gui")

# Uncaught errors already reported: a paint error comes back on every repaint, and one dialog says it.
_reported: set[tuple[str, str]] = set()


def log_file() -> Path:
    """Where the viewer writes its log (a per-user folder)."""
    import platformdirs

    folder = Path(platformdirs.user_log_dir("medae", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "viewer.log"


def setup_logging() -> None:
    """Sends warnings and errors of the viewer to the log file."""
    if any(isinstance(h, logging.FileHandler) for h in log.handlers):
        return
    try:
        handler = logging.FileHandler(log_file(), encoding="utf-8")
    except OSError:
        return  # a read-only home must not stop the viewer
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def user_message(exc: BaseException, doing: str = "") -> tuple[str, str]:
    """The (title, text) a dialog shows for an exception, never a traceback."""
    prefix = f"While {doing}: " if doing else ""
    if isinstance(exc, MedaeError):
        text = str(exc)
        named = text.split(": ", 1)[0]
        if doing and os.path.basename(named.rstrip("/")) and os.path.basename(named.rstrip("/")) in doing:
            prefix = ""  # the message starts with the very file: "While reading a.nii: /x/a.nii: ..." says it twice
        return "medae", prefix + text
    if isinstance(exc, MemoryError):
        return "Out of memory", prefix + "the computer ran out of memory. Close other programs or use a smaller scan."
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return "File problem", prefix + f"{exc.strerror or exc}{where}. Check the path and that you may read/write it."
    return (
        "Unexpected error",
        prefix
        + f"something went wrong inside medae ({type(exc).__name__}: {exc}). Your work is still open; try again, "
        f"and if it happens again report it with the log file {log_file()}.",
    )


def viewer_wording(text: str) -> str:
    """A refusal as the viewer offers its way out: its menus, not the command line's ``--force``/``--model``."""
    text = re.sub(r",? or pass --force to analyse anyway\.| \(or pass --force\)\.", ".", text)
    return text.replace(" (--model)", " (File > Preferences)")


def show_error(parent: QWidget | None, exc: BaseException, doing: str = "") -> QMessageBox | None:
    """Shows an error without blocking (a window-modal box); cancellations only go to the log.

    Returns:
        The message box (tests read its text), or None for a cancellation.
    """
    if isinstance(exc, CancelledError):
        return None
    if not isinstance(exc, MedaeError):
        log.error(
            "unexpected error%s", f" while {doing}" if doing else "", exc_info=(type(exc), exc, exc.__traceback__)
        )
    title, text = user_message(exc, doing)
    return _open_box(parent, not isinstance(exc, MedaeError), title, text)


def _open_box(parent: QWidget | None, critical: bool, title: str, text: str) -> QMessageBox:
    box = QMessageBox(
        QMessageBox.Icon.Critical if critical else QMessageBox.Icon.Warning,
        title,
        text,
        QMessageBox.StandardButton.Ok,
        parent,
    )
    box.setObjectName("errorBox")
    box.open()
    return box


def report_later(exc: BaseException, doing: str = "") -> None:
    """Logs an error no caller caught at once; shows it once, after the event it happened in has finished.

    A dialog opened inside a paint, resize, mouse or key event would have the window repaint in the middle
    of that event. The same error again (a paint error comes back on every repaint) only counts once, and
    while an error box is open, a further error goes to the log only: boxes never pile up.
    """
    if isinstance(exc, CancelledError):
        return
    key = (type(exc).__name__, str(exc))
    if key in _reported:
        return
    _reported.add(key)
    where = f" while {doing}" if doing else ""
    log.error(
        "uncaught exception%s:\n%s", where, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    )
    title, text = user_message(exc, doing)
    critical = not isinstance(exc, MedaeError)  # only strings travel: the traceback keeps the event's objects
    QTimer.singleShot(0, lambda: _show_unless_showing(critical, title, text))


def _show_unless_showing(critical: bool, title: str, text: str) -> None:
    app = QApplication.instance()
    if app is None:
        return
    if any(w.objectName() == "errorBox" and w.isVisible() for w in app.topLevelWidgets()):
        return  # already in the log; a second box over the first hides what the user reads
    # Without a window manager (or with none of ours in front) no window is active; a box without a
    # parent would be garbage the moment this returns, so it belongs to any window of the viewer.
    parent = app.activeWindow() or next((w for w in app.topLevelWidgets() if w.isVisible()), None)
    _open_box(parent, critical, title, text)


def guarded_paint(paint_event):
    """Wraps a widget's ``paintEvent``: a failure paints a plain notice instead of taking the viewer down.

    Qt crashes the process when a paint event returns with its painter still active, which a ``QPainter``
    left in the failed handler's frames is. The notice is drawn again on each repaint until painting works.
    """

    @functools.wraps(paint_event)
    def paint_or_notice(widget: QWidget, event) -> None:
        try:
            paint_event(widget, event)
        except Exception as exc:  # any bug in painting: reported, never raised into Qt
            report_later(exc, "drawing the view")
            # Frees the failed handler's painter, which ends its painting, while the paint event still runs.
            traceback.clear_frames(exc.__traceback__)
            paint_failure_notice(widget)

    return paint_or_notice


def paint_failure_notice(widget: QWidget) -> None:
    """A neutral background with a short message, where a view could not be drawn."""
    p = QPainter(widget)
    p.fillRect(widget.rect(), QColor(48, 48, 52))
    p.setPen(QColor(225, 225, 225))
    flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
    p.drawText(widget.rect().adjusted(6, 6, -6, -6), flags, "This view could not be drawn (see the error message).")
    p.end()


def install_excepthook() -> None:
    """Routes uncaught exceptions (e.g. in a slot or an event handler) to the log and, once, to a dialog."""

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        if QApplication.instance() is None:
            sys.__excepthook__(exc_type, exc, tb)
            return
        report_later(exc)

    sys.excepthook = hook

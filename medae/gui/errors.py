"""Every error reaches the user as a dialog that says what to do; the application keeps running.

Expected problems are ``MedaeError``s whose message already says what to do. Anything else is a bug:
the traceback goes to the log file, and the dialog says so without showing it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from pathlib import Path

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from medae.errors import CancelledError, MedaeError

log = logging.getLogger("medae.gui")


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
    box = QMessageBox(
        QMessageBox.Icon.Critical if not isinstance(exc, MedaeError) else QMessageBox.Icon.Warning,
        title,
        text,
        QMessageBox.StandardButton.Ok,
        parent,
    )
    box.setObjectName("errorBox")
    box.open()
    return box


def install_excepthook() -> None:
    """Routes uncaught exceptions (e.g. in a slot) to a dialog instead of a traceback on stderr."""

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            QApplication.quit()
            return
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        app = QApplication.instance()
        parent = app.activeWindow() if app is not None else None
        if app is None:
            sys.__excepthook__(exc_type, exc, tb)
            return
        show_error(parent, exc)

    sys.excepthook = hook

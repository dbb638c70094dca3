"""The viewer's single-key bindings (N, H, 1-7, ...) kept working while a list in a side panel has focus.

A table or tree that has the focus takes a typed letter or digit as a search of its rows, so after a click
on a finding N (next finding), H (heatmap) or 2 (window preset 2) did nothing or moved elsewhere. The
lists' own navigation (arrows, Page Up/Down, Home/End, Tab) stays theirs.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QWidget

_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.MetaModifier


class ViewerKeys(QObject):
    """An event filter that hands a printable key to the viewer's bindings before the widget sees it.

    Args:
        handler: Carries out a key's binding by name (``MainWindow.handle_key``); False when it has none,
            and the widget then gets the key as usual.
        parent: Owner of the filter.
    """

    def __init__(self, handler: Callable[[str], bool], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._handler = handler

    def watch(self, *widgets: QWidget) -> None:
        """Filters the keys typed into ``widgets``."""
        for w in widgets:
            w.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: D102, N802
        if event.type() == QEvent.Type.KeyPress and not (event.modifiers() & _MODIFIERS):
            text = event.text().upper()
            if len(text) == 1 and text.isprintable() and not text.isspace() and self._handler(text):
                return True
        return super().eventFilter(obj, event)

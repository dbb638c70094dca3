"""View > Set window/level: the display window typed as numbers, as on a reading workstation."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDoubleSpinBox, QFormLayout, QLabel, QWidget

from medae.gui.dialogs import form_with_ok_cancel
from medae.viewer.session import ViewerSession
from medae.viewer.windowing import Window


def _decimals(span: float) -> int:
    # Enough digits to step a hundredth of the data's range: 0 for HU or raw MR counts, more for scaled floats.
    return int(min(6, max(0, math.ceil(-math.log10(max(span, 1e-12) / 100.0)))))


class WindowDialog(QDialog):
    """Level and width of the scan's window, applied while typed; Cancel puts back the window it started from."""

    def __init__(self, session: ViewerSession, parent: QWidget | None = None) -> None:
        """Builds the fields from the scan on screen.

        Args:
            session: The viewer's session; it must show a scan.
            parent: The window.
        """
        super().__init__(parent)
        self.setObjectName("windowDialog")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # a new one opens with each W
        self.setWindowTitle("Set window/level")
        self.session = session
        self.start = session.window
        values = session.image.values
        lo, hi = (float(np.nanmin(values)), float(np.nanmax(values))) if values.size else (0.0, 1.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            lo, hi = 0.0, 1.0
        span = max(hi - lo, abs(self.start.width), 1e-6)
        digits = _decimals(span)
        units = f" {session.units}" if session.units else ""

        self.level_box = self._box(lo - span, hi + span, self.start.center, digits, units)
        self.width_box = self._box(10.0**-digits, 4 * span, self.start.width, digits, units)
        self.level_box.setObjectName("windowLevel")
        self.width_box.setObjectName("windowWidth")
        self.range_label = QLabel()
        self.range_label.setObjectName("windowRange")
        form = QFormLayout()
        form.addRow("Level (centre)", self.level_box)
        form.addRow("Width", self.width_box)
        form.addRow("Shown black to white", self.range_label)
        form.addRow("Scan's values", QLabel(f"{lo:.{digits}f} to {hi:.{digits}f}{units}"))
        form_with_ok_cancel(self, form)
        self._units, self._digits = units, digits
        self.level_box.valueChanged.connect(self._apply)
        self.width_box.valueChanged.connect(self._apply)
        # The range line follows the digits as they are typed, before Enter applies them.
        self.level_box.lineEdit().textEdited.connect(self._show_range)
        self.width_box.lineEdit().textEdited.connect(self._show_range)
        self._show_range()
        self.level_box.selectAll()

    @staticmethod
    def _box(low: float, high: float, value: float, digits: int, units: str) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setDecimals(digits)
        box.setRange(low, high)
        box.setSingleStep(10.0**-digits * 10 if digits else 1.0)
        box.setSuffix(units)
        box.setKeyboardTracking(False)  # apply on Enter or arrow steps, not on every digit typed
        box.setValue(value)
        return box

    def window(self) -> Window:
        """The window as the fields hold it."""
        return Window(float(self.level_box.value()), float(self.width_box.value()))

    def _apply(self) -> None:
        self.session.set_window(self.window())
        self._show_range()

    def _typed(self) -> Window:
        level, width = (box.valueFromText(box.cleanText()) for box in (self.level_box, self.width_box))
        return Window(float(level), float(width))

    def _show_range(self, *_args) -> None:
        w = self._typed()
        self.range_label.setText(f"{w.low:.{self._digits}f} to {w.high:.{self._digits}f}{self._units}")

    def accept(self) -> None:
        """Takes what is typed even when Enter was not pressed in the last field."""
        self.level_box.interpretText()
        self.width_box.interpretText()
        self._apply()
        super().accept()

    def reject(self) -> None:
        """Puts back the window the dialog started from."""
        self.session.set_window(self.start)
        super().reject()

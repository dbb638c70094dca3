"""Side panels of the analysis: overlay controls and the ranked findings."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medae.viewer.colormaps import OVERLAY_COLORMAPS
from medae.viewer.session import ViewerSession

_STEPS = 1000


class OverlayPanel(QWidget):
    """Colormap, opacity, threshold (calibrated units, soft fade) and visibility of the heatmap.

    Every control writes through the session's setters and follows its signals, so keys and menus
    that change the same settings stay in step.
    """

    def __init__(self, session: ViewerSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self._syncing = False
        self.analysing = False
        self.summary = QLabel("Run Analyze (Ctrl+R) to see where the scan is unlike healthy ones.")
        self.summary.setWordWrap(True)
        self.summary.setObjectName("analysisSummary")
        self.visible = QCheckBox("Show heatmap (H)")
        self.colormap = QComboBox()
        self.colormap.addItems(OVERLAY_COLORMAPS)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.threshold = QDoubleSpinBox()
        self.threshold.setDecimals(2)
        self.threshold.setSingleStep(0.1)
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, _STEPS)
        self.fade = QDoubleSpinBox()
        self.fade.setDecimals(2)
        self.fade.setSingleStep(0.1)
        self.fade.setToolTip("Heat this far below the threshold fades in gradually instead of being cut off.")
        form = QFormLayout()
        form.addRow(self.visible)
        form.addRow("Colormap", self.colormap)
        form.addRow("Opacity", self.opacity)
        self.threshold_label = QLabel("Threshold")
        form.addRow(self.threshold_label, self.threshold)
        form.addRow("", self.threshold_slider)
        # Controls a screen reader names by what they set, not by their value ("hot", "8.8").
        self.threshold_label.setBuddy(self.threshold)
        for widget, name in (
            (self.threshold, "Threshold"),
            (self.threshold_slider, "Threshold slider"),
            (self.colormap, "Colormap"),
            (self.opacity, "Heat opacity"),
            (self.fade, "Soft fade below the threshold"),
        ):
            widget.setAccessibleName(name)
        form.addRow("Soft fade", self.fade)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addLayout(form)
        lay.addStretch(1)
        self.visible.toggled.connect(lambda v: self._write(lambda: session.set_heat_visible(v)))
        self.colormap.currentTextChanged.connect(lambda t: self._write(lambda: session.set_style(colormap=t)))
        self.opacity.valueChanged.connect(lambda v: self._write(lambda: session.set_style(opacity=v / 100)))
        self.threshold.valueChanged.connect(lambda v: self._write(lambda: session.set_style(threshold=v)))
        self.threshold_slider.valueChanged.connect(self._slider_moved)
        self.fade.valueChanged.connect(lambda v: self._write(lambda: session.set_style(fade=v)))
        session.overlay_changed.connect(self.sync)
        session.result_changed.connect(self.sync)
        session.findings_changed.connect(self.sync)
        self.sync()

    def _write(self, fn) -> None:
        if not self._syncing:
            fn()

    def _slider_moved(self, step: int) -> None:
        st = self.session.style
        self._write(lambda: self.session.set_style(threshold=st.vmin + (st.vmax - st.vmin) * step / _STEPS))

    def sync(self) -> None:
        """Shows the session's overlay settings in the controls."""
        s = self.session
        st = s.style
        self._syncing = True
        try:
            enabled = s.result is not None
            for w in (self.visible, self.colormap, self.opacity, self.threshold, self.threshold_slider, self.fade):
                w.setEnabled(enabled)
            self.visible.setChecked(s.heat_visible)
            self.colormap.setCurrentText(st.colormap)
            self.opacity.setValue(round(st.opacity * 100))
            self.threshold.setRange(st.vmin, st.vmax)
            self.threshold.setValue(st.threshold)
            span = max(st.vmax - st.vmin, 1e-12)
            self.threshold_slider.setValue(round((st.threshold - st.vmin) / span * _STEPS))
            self.fade.setRange(0.0, span)
            self.fade.setValue(st.fade)
            r = s.result
            if r is not None:
                units = getattr(r, "units", "")
                self.threshold_label.setText(f"Threshold ({units})" if units else "Threshold")
                self.summary.setText(f"{score_text(r)} {len(r.findings)} finding(s). Model {r.model_id} on {r.device}.")
            else:
                self.threshold_label.setText("Threshold")
                self.summary.setText(
                    "Analysing the scan; the heatmap appears here when it is done (Cancel in the status bar stops it)."
                    if self.analysing
                    else "Run Analyze (Ctrl+R) to see where the scan is unlike healthy ones."
                )
        finally:
            self._syncing = False

    def set_analysing(self, analysing: bool) -> None:
        """Says whether an analysis of the scan on screen is running (the summary tells the user)."""
        self.analysing = analysing
        self.sync()


def score_text(result) -> str:
    """The scan's score and where it lies among healthy scans, in words a reader takes in at a glance."""
    pct = getattr(result, "percentile", None)
    if getattr(result, "forced", False):
        return f"Score {result.score:.3g} (analysis forced past a mismatch: not comparable with healthy scans)."
    if pct is None or not math.isfinite(pct):
        return f"Score {result.score:.3g}."
    if pct >= 99.5:
        where = "above every healthy scan of the calibration" if pct >= 100 else "above 99% of healthy scans"
    else:
        where = f"higher than {pct:.0f}% of healthy scans"
    return f"Score {result.score:.3g}, {where}."


class FindingsPanel(QWidget):
    """The findings in the analysis's rank order; clicking one moves every view to it.

    Signals:
        chosen(int): rank of the finding the user picked.
    """

    chosen = Signal(int)
    # The mean score is in each row's tooltip: the dock is narrow, and the location matters more.
    COLUMNS = ("#", "side", "mL", "peak", "RAS (mm)")
    HEADER_TIPS = (
        "Rank: the most suspicious first",
        "Side of the patient, from the file's orientation",
        "Extent above the threshold in mL: it grows and shrinks with the threshold; not a lesion's size",
        "Highest heat in the region (z against healthy scans)",
        "Centre in the scanner's coordinates (RAS, mm); the tooltip of a row gives the reference template's too",
    )

    def __init__(self, session: ViewerSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("findings")
        self.table.setAccessibleName("Findings, ranked")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        for col, tip in enumerate(self.HEADER_TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the next control; arrows move in it
        self.empty = QLabel("No findings yet.")
        self.empty.setWordWrap(True)  # a long line would hold the panel, and the scan, at its width
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.empty)
        lay.addWidget(self.table)
        self._quiet = False  # selecting a row from code must not move the views
        self._just_moved = False  # a current-row change moved the views within the event being handled
        # Arrow keys and clicks change the current row: the views follow it. A press on the row already
        # current (after scrolling away from it) goes there again.
        self.table.currentCellChanged.connect(lambda row, _c, old, _oc: self._keyed(row, old))
        self.table.cellPressed.connect(lambda row, _col: self._pressed(row))
        session.result_changed.connect(self.refresh)
        session.findings_changed.connect(self.refresh)
        self.refresh()

    def _keyed(self, row: int, old: int) -> None:
        if not self._quiet and row >= 0 and row != old:
            # A mouse press changes the current row before it reports the press: that press is then done.
            self._just_moved = True
            QTimer.singleShot(0, self._settled)
            self.session.go_to_finding(row)
            self.chosen.emit(row)

    def _settled(self) -> None:
        self._just_moved = False

    def _pressed(self, row: int) -> None:
        if not self._just_moved:
            self.choose(row)

    def choose(self, rank: int) -> None:
        """Selects a finding and moves the views to it."""
        self._select(rank)
        self.session.go_to_finding(rank)
        self.chosen.emit(rank)

    def _select(self, rank: int | None) -> None:
        self._quiet = True
        try:
            if rank is None:
                self.table.clearSelection()
                self.table.setCurrentCell(-1, -1)
            else:
                self.table.selectRow(rank)
        finally:
            self._quiet = False

    def select_at_cursor(self) -> None:
        """Selects the finding whose region holds the crosshair, without moving anything.

        Used when findings are redrawn at another threshold: the reader stays where they are reading.
        """
        s = self.session
        if s.result is None or s.image is None:
            return
        label = int(s.result.labels.array[s.image.grid.to_source(s.cursor)])
        ranks = [n for n, f in enumerate(s.findings) if int(f.label) == label and label > 0]
        self._select(ranks[0] if ranks else None)

    def refresh(self) -> None:
        """Fills the table from the session's findings."""
        found = self.session.findings
        self._quiet = True  # rows removed move Qt's current cell: not the reader's choice
        try:
            self._fill(found)
        finally:
            self._quiet = False

    def _fill(self, found: list) -> None:
        self.table.setRowCount(len(found))
        for row, f in enumerate(found):
            cells = (
                str(row + 1),
                f.side,
                f"{f.volume_ml:.2f}",
                f"{f.peak:.2f}",
                "{:.0f}, {:.0f}, {:.0f}".format(*f.centroid_world),
            )
            tip = (
                f"Finding {row + 1}: {f.side}, {f.volume_ml:.2f} mL, peak {f.peak:.2f}, mean {f.mean:.2f}; "
                "RAS ({:.1f}, {:.1f}, {:.1f}) mm".format(*f.centroid_world)
            )
            if getattr(f, "centroid_reference", None) is not None:
                tip += "; in the reference template (MNI) ({:.0f}, {:.0f}, {:.0f}) mm".format(*f.centroid_reference)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if col != 1:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        if self.session.result is None:
            self.empty.setText("No findings yet: run Analyze.")
        else:
            r = self.session.result
            level = f"{r.threshold:.3g} {getattr(r, 'units', '')}".strip()
            smallest = (getattr(r, "region_rule", None) or {}).get("min_region_ml")
            small = f"; regions under {smallest:g} mL are left out" if smallest else ""
            listed = f"{len(found)} finding(s) above {level}{small}:" if found else f"No region above {level}{small}."
            self.empty.setText(f"{score_text(r)}\n{listed}")

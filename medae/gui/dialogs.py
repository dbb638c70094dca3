"""Dialogs: the series picker, preferences, the key/mouse reference and the about box. None of them blocks the app."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from medae.gui.errors import viewer_wording
from medae.gui.settings import Preferences
from medae.viewer.bindings import MOUSE_SCHEMES, describe
from medae.viewer.colormaps import OVERLAY_COLORMAPS
from medae.viewer.planes import CONVENTIONS
from medae.viewer.session import LAYOUTS
from medae.viewer.tags import dicom_date, dicom_time


def gray_pixmap(img: np.ndarray) -> QPixmap:
    """A QPixmap of a 2D uint8 image."""
    img = np.ascontiguousarray(img)
    h, w = img.shape
    return QPixmap.fromImage(QImage(img.data, w, h, w, QImage.Format.Format_Grayscale8).copy())


#: The most characters of a file's name a dialog or menu shows; a longer one loses its middle.
NAME_CHARS = 48


def short_name(name: str, chars: int = NAME_CHARS) -> str:
    """A file's name as a dialog or menu shows it: whole, or its start and end around "...".

    A long name is one word to a label, which cannot wrap it: the dialog or menu would be wider than a small or
    scaled screen, its buttons beyond the edge. Start and end tell scans apart (subject, series, extension).
    """
    if len(name) <= chars:
        return name
    half = (chars - 3) // 2
    return f"{name[:half]}...{name[-half:]}"


def fit_to_screen(dialog: QDialog, width: int, height: int) -> None:
    """Gives a dialog the size it is laid out for, or less on a screen without room for it.

    A scaled laptop display has room for about 512 x 384 logical pixels (1024 x 768 at 200 %): a dialog made
    wider or taller than that has its buttons beyond the screen's edge.

    Args:
        dialog: The dialog, its layout set.
        width: The width it is laid out for.
        height: The height it is laid out for.
    """
    parent = dialog.parentWidget()
    screen = (parent.screen() if parent is not None else None) or QApplication.primaryScreen()
    if screen is not None:
        room = screen.availableGeometry()
        width, height = min(width, int(room.width() * 0.9)), min(height, int(room.height() * 0.85))
    dialog.resize(width, height)


def form_with_ok_cancel(dialog: QDialog, form: QFormLayout) -> None:
    """Lays out a dialog as its form above OK and Cancel, which accept and reject it."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    lay = QVBoxLayout(dialog)
    lay.addLayout(form)
    lay.addWidget(buttons)


class SeriesPicker(QDialog):
    """Choose one series of a folder: modality, description, size, slice count and a thumbnail."""

    COLUMNS = ("", "#", "modality", "description", "acquired", "voxels", "spacing (mm)", "slices", "files")

    def __init__(self, infos: list, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a series")
        self.setObjectName("seriesPicker")
        self.infos = infos
        self.table = QTableWidget(len(infos), len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setIconSize(QSize(72, 72))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, s in enumerate(infos):
            when = s.extra.get("series_date") or s.extra.get("study_date") or ""
            when = f"{dicom_date(when)} {dicom_time(s.extra.get('series_time') or '')}".strip()
            number = s.extra.get("series_number")
            cells = (
                "",
                "-" if number in (None, "") else str(number),
                s.modality or "-",
                s.description or "-",
                when or "-",
                " x ".join(map(str, s.shape)),
                " x ".join(f"{v:.3g}" for v in s.spacing),
                str(s.shape[2]),
                str(s.n_files),
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if s.warnings:
                    item.setToolTip("\n".join(s.warnings))
                self.table.setItem(row, col, item)
            self.table.setRowHeight(row, 78)
        self.table.setColumnWidth(0, 80)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(0, 80)
        self.table.selectRow(0)
        self.table.doubleClicked.connect(self.accept)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        # Series are picked by number and time; whose they are must be plain before one is opened.
        patients = {(i.extra.get("patient_name") or "", i.extra.get("patient_id") or "") for i in infos}
        who = ""
        if len(patients) == 1 and any(next(iter(patients))):
            name, pid = next(iter(patients))
            who = f" Patient: {name}{f' ({pid})' if pid and name else pid}."
        elif len(patients) > 1:
            who = f" It holds {len(patients)} different patients: check the description before opening."
        heading = QLabel(f"This folder holds {len(infos)} series.{who} Choose the one to open:")
        heading.setWordWrap(True)  # a patient's long name must not hold the dialog wider than the screen
        lay.addWidget(heading)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        fit_to_screen(self, 760, min(560, 140 + 80 * len(infos)))

    def set_thumbnail(self, row: int, img: np.ndarray | None) -> None:
        """Shows a preview in a row (called as previews arrive from a worker)."""
        if img is not None and 0 <= row < self.table.rowCount():
            self.table.item(row, 0).setIcon(QIcon(gray_pixmap(img)))

    def has_thumbnail(self, row: int) -> bool:
        """True once a row shows a preview."""
        return not self.table.item(row, 0).icon().isNull()

    def selected(self):
        """The chosen ``SeriesInfo``."""
        rows = self.table.selectionModel().selectedRows()
        return self.infos[rows[0].row() if rows else 0]


#: The characters of a mouse scheme's name the Preferences show at the least.
_SHORT_NAME = 12


class PreferencesDialog(QDialog):
    """Edit > Preferences: mouse scheme, display convention, overlay defaults, model and device."""

    def __init__(self, prefs: Preferences, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.setObjectName("preferences")
        self.mouse = QComboBox()
        # The schemes' long names would hold the dialog wider than a small scaled screen: the list may be
        # narrower, and then shows the start of the name when closed (and the whole name when open).
        self.mouse.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mouse.setMinimumContentsLength(_SHORT_NAME)
        self.mouse.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        for scheme in MOUSE_SCHEMES.values():
            self.mouse.addItem(scheme.title, scheme.name)
        self.mouse.setCurrentIndex(max(0, self.mouse.findData(prefs.mouse_scheme)))
        self.convention = QComboBox()
        self.convention.addItems(CONVENTIONS)
        self.convention.setCurrentText(prefs.convention)
        self.layout_box = QComboBox()
        self.layout_box.addItems(LAYOUTS)
        self.layout_box.setCurrentText(prefs.layout)
        self.colormap = QComboBox()
        self.colormap.addItems(OVERLAY_COLORMAPS)
        self.colormap.setCurrentText(prefs.colormap)
        self.opacity = QDoubleSpinBox()
        self.opacity.setRange(0, 1)
        self.opacity.setSingleStep(0.05)
        self.opacity.setValue(prefs.opacity)
        self.smooth = QCheckBox("Smooth pixels when zoomed in")
        self.smooth.setChecked(prefs.smooth)
        self.link_zoom = QCheckBox("Link zoom across views")
        self.link_zoom.setChecked(prefs.link_zoom)
        self.model = QLineEdit(prefs.model)
        self.model.setPlaceholderText("shipped default model")
        self.browse = QPushButton("Browse...")
        self.browse.clicked.connect(self._browse_model)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.browse)
        self.device = QComboBox()
        self.device.addItems(("auto", "cpu", "cuda", "mps"))
        self.device.setCurrentText(prefs.device)
        form = QFormLayout()
        form.addRow("Mouse", self.mouse)
        form.addRow("Display convention", self.convention)
        form.addRow("Layout", self.layout_box)
        form.addRow("Heatmap colormap", self.colormap)
        form.addRow("Heatmap opacity", self.opacity)
        form.addRow(self.smooth)
        form.addRow(self.link_zoom)
        form.addRow("Model folder", model_row)
        form.addRow("Device", self.device)
        form_with_ok_cancel(self, form)
        # As wide as the schemes' names, where the screen has the room.
        fm = self.mouse.fontMetrics()
        names = max(fm.horizontalAdvance(self.mouse.itemText(i)) for i in range(self.mouse.count()))
        hint = self.sizeHint()
        fit_to_screen(self, hint.width() + max(0, names - fm.horizontalAdvance("x" * _SHORT_NAME)), hint.height())

    def _browse_model(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Model folder (with card.json and weights.safetensors)")
        if folder:
            self.model.setText(folder)

    def preferences(self) -> Preferences:
        """The preferences as edited."""
        return Preferences(
            mouse_scheme=self.mouse.currentData(),
            convention=self.convention.currentText(),
            colormap=self.colormap.currentText(),
            opacity=float(self.opacity.value()),
            smooth=self.smooth.isChecked(),
            link_zoom=self.link_zoom.isChecked(),
            model=self.model.text().strip(),
            device=self.device.currentText(),
            layout=self.layout_box.currentText(),
        )


class KeysDialog(QDialog):
    """Help > Keys and mouse: the binding tables, as the viewer uses them."""

    def __init__(
        self,
        scheme: str,
        parent: QWidget | None = None,
        presets: Sequence[str] | None = None,
        shortcuts: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Builds the tables.

        Args:
            scheme: The mouse scheme in use.
            parent: The window.
            presets: Names of the window presets for the scan on screen (keys 1, 2, ...).
            shortcuts: (key, command) of the menu commands that have a shortcut.
        """
        super().__init__(parent)
        self.setWindowTitle("Keys and mouse")
        rows = describe(presets) + list(shortcuts)
        mouse = MOUSE_SCHEMES[scheme]
        for (button, mod), action in mouse.drags.items():
            rows.append((f"{mod + '+' if mod else ''}{button} drag", action.value))
        rows += [
            ("left click", mouse.click.value),
            ("wheel", mouse.wheel.value),
            ("ctrl+wheel", "zoom about the pointer"),
        ]
        table = QTableWidget(len(rows), 2)
        table.setHorizontalHeaderLabels(("input", "action"))
        table.verticalHeader().hide()
        for r, (k, v) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(k))
            table.setItem(r, 1, QTableWidgetItem(v))
        # The action column takes the rest of the width and wraps, so no row needs a sideways scroll.
        table.setWordWrap(True)
        table.resizeColumnToContents(0)
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"Mouse scheme: {mouse.title}"))
        lay.addWidget(table)
        lay.addLayout(bottom)
        fit_to_screen(self, 520, 560)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)


class AboutDialog(QDialog):
    """Help > About: the version, the model in use and its notice; it scrolls where the screen is short of room."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About medae")
        self.setObjectName("about")
        self.text = QTextBrowser()
        self.text.setPlainText(text)
        self.text.setFrameShape(QFrame.Shape.NoFrame)
        self.text.viewport().setAutoFillBackground(False)  # the dialog's own background, as a message box's
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        # Enter closes it, as a message box; Tab reaches the text to scroll it.
        close.button(QDialogButtonBox.StandardButton.Close).setDefault(True)
        close.button(QDialogButtonBox.StandardButton.Close).setFocus()
        lay = QVBoxLayout(self)
        lay.addWidget(self.text)
        lay.addWidget(close)
        # As tall as the text at this width, less where the screen is shorter.
        width, margins = 520, lay.contentsMargins()
        laid_out = self.text.document().clone(self)  # the browser lays its own out at its width once shown
        laid_out.setTextWidth(width - margins.left() - margins.right())
        height = laid_out.size().height() + close.sizeHint().height() + lay.spacing()
        fit_to_screen(self, width, int(height) + margins.top() + margins.bottom())
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)


class BatchDoneBox(QMessageBox):
    """What a folder run did: counts, the most abnormal series, the errors, and a button to open the report."""

    def __init__(self, rows: Sequence | None, report: Path, parent: QWidget | None = None) -> None:
        """Builds the box.

        Args:
            rows: The run's rows; None when it was cancelled (its tables hold what was done until then).
            report: The run's report.html.
            parent: Parent widget.
        """
        super().__init__(parent)
        self.setObjectName("batchDone")
        self.report = Path(report)
        self.open_button = None
        if rows is None:
            self.setWindowTitle("Folder run stopped")
            self.setIcon(QMessageBox.Icon.Information)
            self.setText(
                "Stopped before every series was analysed. The series done until then are in the report; run the "
                "same folders again to go on (finished series are kept)."
            )
            self._report_buttons()
            return
        if not rows:
            self.setWindowTitle("No scans found")
            self.setIcon(QMessageBox.Icon.Warning)
            self.setText(
                "No scans were found in that folder (NIfTI, MGH, NRRD, MetaImage or DICOM): choose the folder "
                "that holds the studies."
            )
            self.addButton(QMessageBox.StandardButton.Close)
            return
        self.setWindowTitle("Folder analysed")
        failed = [r for r in rows if r.status == "error"]
        refused = [r for r in rows if r.status == "refused"]
        scored = sorted((r for r in rows if r.score is not None), key=lambda r: -r.score)
        text = f"{len(rows) - len(failed) - len(refused)} of {len(rows)} series analysed"
        if refused:
            text += f"; {len(refused)} of another kind than the model's, refused"
        text += f"; {len(failed)} could not be (their reasons are in the report)." if failed else "."
        if scored:
            top = scored[0]
            text += f"\nMost abnormal: {top.folder}, score {top.score:.2f} ({top.findings} finding(s))."
        self.setIcon(QMessageBox.Icon.Warning if failed else QMessageBox.Icon.Information)
        self.setText(text)
        if failed:
            self.setDetailedText("\n".join(f"{r.folder}: {viewer_wording(r.error)}" for r in failed))
        self._report_buttons()

    def _report_buttons(self) -> None:
        self.setInformativeText(f"Results, results.csv and report.html are in {self.report.parent}.")
        self.open_button = self.addButton("Open report", QMessageBox.ButtonRole.AcceptRole)
        self.addButton(QMessageBox.StandardButton.Close)
        self.open_button.clicked.connect(self.open_report)

    def open_report(self) -> bool:
        """Opens report.html in the system's browser; says where it is when no browser starts."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        if QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report))):
            return True
        self.no_browser = QMessageBox(
            QMessageBox.Icon.Information,
            "Report",
            f"No web browser could be started. Open the report yourself: {self.report}",
            QMessageBox.StandardButton.Ok,
            self.parentWidget(),
        )
        self.no_browser.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.no_browser.open()
        return False

"""The main window: reading area, side panels, status bar, and the open / analyze flows."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from medae.gui import dialogs, menus
from medae.gui.errors import show_error, viewer_wording
from medae.gui.jobs import JobsMixin
from medae.gui.opening import OpeningMixin
from medae.gui.panels import FindingsPanel, OverlayPanel
from medae.gui.settings import Preferences, load_preferences, save_preferences, settings
from medae.gui.study_panel import StudyPanel, TagBrowser
from medae.gui.view_area import ViewArea
from medae.gui.viewer_keys import ViewerKeys
from medae.gui.welcome import Welcome
from medae.gui.window_state import WindowStateMixin
from medae.gui.workers import Job
from medae.viewer.bindings import KeyAction, key_action, slice_step, view_step
from medae.viewer.session import ViewerSession

log = logging.getLogger(__name__)

#: How long closing waits for workers to reach their cancel check before it ends the process itself.
CLOSE_WAIT_S = 30.0
#: The exit status when closing had to end the process with a worker still running (not a clean exit).
EXIT_WORKER_STUCK = 3

_KEY_NAMES = {
    Qt.Key.Key_Up: "Up",
    Qt.Key.Key_Down: "Down",
    Qt.Key.Key_Left: "Left",
    Qt.Key.Key_Right: "Right",
    Qt.Key.Key_PageUp: "PageUp",
    Qt.Key.Key_PageDown: "PageDown",
    Qt.Key.Key_Space: "Space",
    Qt.Key.Key_Home: "Home",
    Qt.Key.Key_End: "End",
}
_LIST_NAVIGATION = {"Up", "Down", "Left", "Right", "PageUp", "PageDown", "Home", "End"}
_ARROWS = {"Up", "Down", "Left", "Right"}


class MainWindow(OpeningMixin, JobsMixin, WindowStateMixin, QMainWindow):
    """The viewer window. ``open_path`` and ``start_analysis`` are what menus, drops and tests call."""

    def __init__(self, prefs: Preferences | None = None) -> None:
        super().__init__()
        self.prefs = prefs or load_preferences()
        self.session = ViewerSession()
        self.jobs: list[Job] = []
        self.model: Any = None
        self._model_key: tuple | None = None
        self.last_error = None
        self.batch_summary: QWidget | None = None
        self._analysis_queued: tuple[Any, bool] | None = None  # (scan, force) to analyse once the running one stops
        self._init_opening()
        self._hidden_docks: list = []  # panels F11 hid, to bring back
        self._init_window_state()
        self._closing = False  # set once the window is closed: jobs that end later show nothing
        self._drop_note: str | None = None  # said once a dropped scan is on screen
        self._model_lock = threading.Lock()
        self.setWindowTitle("medae")
        self.setObjectName("mainWindow")
        self.setAcceptDrops(True)
        self._build()
        self.apply_preferences(self.prefs)
        menus.build(self)
        self._restore_geometry()
        self.session.image_changed.connect(self._on_image)
        self.session.result_changed.connect(self._on_result)
        self.session.findings_changed.connect(self._on_findings)
        # Findings follow the threshold the user sets, once the control has rested for a moment, in a worker
        # (a CT-sized heatmap at a low threshold takes a while to label).
        self._findings_timer = QTimer(self)
        self._findings_timer.setSingleShot(True)
        self._findings_timer.setInterval(400)
        self._findings_timer.timeout.connect(self.update_findings)
        self.session.overlay_changed.connect(self._on_overlay)

    # ----- construction ---------------------------------------------------------------------
    def _build(self) -> None:
        s = self.session
        self.view_area = ViewArea(s)
        self.view_area.notice.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.welcome = Welcome(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.view_area)
        self.setCentralWidget(self.stack)
        self.overlay_panel = OverlayPanel(s)
        self.findings_panel = FindingsPanel(s)
        self.study_panel = StudyPanel(s)
        self.tag_browser = TagBrowser(s)
        right = QTabWidget()
        right.addTab(self.overlay_panel, "Overlay")
        right.addTab(self.findings_panel, "Findings")
        left = QTabWidget()
        left.addTab(self.study_panel, "Study")
        left.addTab(self.tag_browser, "DICOM tags")
        self.right_tabs, self.left_tabs = right, left
        self.docks: list[QDockWidget] = []
        for title, widget, area in (
            ("Analysis", right, Qt.DockWidgetArea.RightDockWidgetArea),
            ("Study", left, Qt.DockWidgetArea.LeftDockWidgetArea),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock-{title}")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks.append(dock)
            if title == "Analysis":
                # A start width, not a minimum: small screens can still shrink it.
                self.resizeDocks([dock], [330], Qt.Orientation.Horizontal)
        self.readout = QLabel("")
        self.readout.setObjectName("readout")
        # Clipped when the bar is crowded, never drawn under the progress text.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.device_label = QLabel("Device: not loaded")
        self.progress_label = QLabel("")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Progress")
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_jobs)
        bar = self.statusBar()
        bar.addWidget(self.readout, 1)
        for w in (self.progress_label, self.progress, self.cancel_button, self.device_label):
            bar.addPermanentWidget(w)
        self._show_progress(False)
        self.view_area.hovered.connect(self._on_hover)
        self.findings_panel.chosen.connect(lambda _r: self.stack.setCurrentWidget(self.view_area))
        ViewerKeys(self.handle_key, self).watch(self.findings_panel.table, self.study_panel.tree, self.tag_browser.tree)

    def closeEvent(self, event) -> None:  # noqa: D102 (Qt override)
        self._closing = True
        if self._hidden_docks:
            self.toggle_views_only()  # panels hidden by F11 are not a layout to come back to
        # What was chosen on screen (a layout from the View menu, the heat's opacity) is what the next
        # start shows, as if it had been set in the Preferences.
        save_preferences(self.shown_preferences())
        store = settings()
        store.setValue("window/geometry", self.saveGeometry())
        store.setValue("window/state", self.saveState())
        self._save_dock_widths(store)
        store.sync()
        self.cancel_all_jobs()
        if self.jobs:
            self.hide()  # gone from the screen at once; a worker may need a moment to reach its next check
        deadline = time.monotonic() + CLOSE_WAIT_S
        for job in list(self.jobs):
            if not job.wait(max(1, int(1000 * (deadline - time.monotonic())))):
                # A worker inside one long library call has not reached its cancel check: Qt would abort the
                # whole process when the window took its thread down. Every file is written atomically and
                # the temporary files of writes in progress are removed, so no half-written file is left.
                from medae.atomic import remove_in_flight

                log.warning("closing while %s is still running; ending the process", job.name)
                remove_in_flight()
                logging.shutdown()
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(EXIT_WORKER_STUCK)
        super().closeEvent(event)

    def report_error(self, exc: BaseException, doing: str = "") -> None:
        """Shows an error dialog (cancellations only a status message)."""
        from medae.errors import CancelledError, ModelMismatchError

        if isinstance(exc, CancelledError):
            self.statusBar().showMessage(f"Cancelled {doing}.", 5000)
            return
        if isinstance(exc, ModelMismatchError) and exc.forceable:
            text = viewer_wording(str(exc))
            exc = ModelMismatchError(f"{text} To look at the heatmap all the same, use Analyze anyway.")
            self.last_error = show_error(self, exc, doing)
            # The way out the message names is a button of the box, not only a menu item.
            anyway = self.last_error.addButton("Analyze anyway", QMessageBox.ButtonRole.AcceptRole)
            anyway.clicked.connect(lambda: self.start_analysis(force=True))
            return
        self.last_error = show_error(self, exc, doing)

    def _on_image(self) -> None:
        v = self.session.volume
        if v is None:
            return
        self.stack.setCurrentWidget(self.view_area)
        name = Path(v.source).name if v.source else "scan"
        if v.meta.get("format") == "dicom" and v.meta.get("series_description"):
            # A DICOM folder's name says little; which series of it (and which part) is on screen matters.
            part = f" ({v.meta['part_label']})" if v.meta.get("part_label") else ""
            name = f"{name}: {v.meta['series_description']}{part}"
        if "volume_index" in v.meta:  # one volume of a 4D file: which one is on screen
            name = f"{name}, volume {v.meta['volume_index'] + 1} of {v.meta['volumes']}"
        self.setWindowTitle(f"medae - {name} ({v.describe()})")
        menus.refresh_presets(self)
        self.view_area.refresh_warnings()
        self._show_analysing()

    # ----- analysis -------------------------------------------------------------------------
    def start_analysis(self, force: bool = False) -> Job | None:
        """Runs the anomaly analysis of the scan on screen in a worker thread.

        Args:
            force: Analyse even a scan the model was not made for (the refusal becomes a warning).
        """
        opening = any(j.name in ("scan", "load") and j.running and not j.cancel_event.is_set() for j in self.jobs)
        if opening and self._shown_seq != self._open_seq:
            # A scan is being opened: it is the one the user means, and it replaces the one on screen.
            self._analyze_after_open = (self._open_seq, force)
            self.statusBar().showMessage("The scan being opened will be analysed as soon as it is on screen.", 5000)
            return None
        return self._analyze_on_screen(force)

    def _analyze_on_screen(self, force: bool) -> Job | None:
        volume = self.session.volume
        if volume is None:
            self.statusBar().showMessage("Open a scan first (File > Open).", 5000)
            return None
        running = [j for j in self.jobs if j.name == "analyze"]
        if running:
            stopping = running[0].cancel_event.is_set()
            if getattr(running[0], "volume", None) is volume and not stopping:
                self.statusBar().showMessage("This scan is being analysed already.", 5000)
                return None
            # The previous analysis is stopping (cancelled, or of the previous scan); this one starts as soon
            # as it has, if this scan is still the one on screen then. A later request replaces an earlier one.
            if self._analysis_queued is None:
                running[0].finished.connect(self._start_queued)
            self._analysis_queued = (volume, force)
            self.statusBar().showMessage("Analysis will start once the previous one has stopped.", 5000)
            return None
        key = (self.prefs.model, self.prefs.device)
        cached = self.model if key == self._model_key else None
        loaded: dict = {}

        def work(progress, cancel):
            from medae.progress import check_cancel, report, sub_progress

            model = self._model_for(progress, key)
            loaded["model"] = model
            check_cancel(cancel)
            report(progress, 0.05, f"Analysing on {model.device_name}")
            from medae.analysis import analyze

            result = analyze(volume, model, force=force, progress=sub_progress(progress, 0.05, 1.0), cancel=cancel)
            check_cancel(cancel)
            from medae.viewer.session import prepare_result

            report(progress, 1.0, "Preparing the display")
            return model, result, prepare_result(result)  # coded here, not on the window's thread

        def done(out) -> None:
            from medae.progress import check_cancel

            self.model, self._model_key = out[0], key
            self.device_label.setText(f"Device: {out[0].device_name}")
            # Cancel pressed once the worker was past its last check: the reader asked for no heatmap.
            check_cancel(job.cancel_event)
            if self.session.volume is volume:
                self.session.set_result(out[1], out[2])
                self.right_tabs.setCurrentWidget(self.findings_panel)

        def failed(_exc) -> None:
            # A refused scan must not cost the next analysis a second model load, nor leave the status
            # bar saying that a model is still loading.
            model = loaded.get("model")
            if model is not None:
                self.model, self._model_key = model, key
            self.device_label.setText(f"Device: {model.device_name}" if model is not None else "Device: not loaded")

        def show_device(*_args) -> None:
            model = loaded.get("model")
            if model is not None:
                self.device_label.setText(f"Device: {model.device_name}")

        self.device_label.setText("Device: loading model..." if cached is None else f"Device: {cached.device_name}")
        self.statusBar().clearMessage()  # e.g. "will be analysed as soon as it is on screen": now it is
        job = self.run_job("analyze", work, done, "analysing the scan", on_failed=failed)
        job.volume = volume
        job.progress.connect(show_device)
        self.overlay_panel.set_analysing(True)
        job.finished.connect(self._show_analysing)
        return job

    def _show_analysing(self) -> None:
        # The panel speaks of the scan on screen: an analysis of the one before, still stopping after another
        # was opened, is not one of it.
        v = self.session.volume
        self.overlay_panel.set_analysing(
            any(j.name == "analyze" and getattr(j, "volume", None) is v for j in self.jobs)
        )

    def _start_queued(self) -> None:
        queued, self._analysis_queued = self._analysis_queued, None
        # Only for the scan it was asked for: another one opened meanwhile was not asked to be analysed.
        if queued is None:
            return
        volume, force = queued
        if self.session.volume is volume and self.session.result is None:
            self.start_analysis(force=force)
        else:
            self.statusBar().showMessage("The scan the waiting analysis was for is no longer on screen.", 5000)

    def _model_for(self, progress, key: tuple) -> Any:
        """The model of ``key`` (folder, device), loaded once and kept; called in workers.

        The lock makes a folder run and an analysis started together share one load.
        """
        with self._model_lock:
            if self.model is not None and key == self._model_key:
                return self.model
            from medae.model import load_model
            from medae.progress import report

            report(progress, 0.0, "Loading the model")
            model = load_model(key[0] or None, device=key[1])
            self.model, self._model_key = model, key
            return model

    def run_batch(self, in_dir: str | Path, out_dir: str | Path) -> Job | None:
        """Analyses every series under ``in_dir`` into ``out_dir`` (as ``medae batch``), in a worker.

        Returns:
            The job, or None when a folder run is going on already (two would share and overwrite folders).
        """
        if any(j.name == "batch" for j in self.jobs):
            self.statusBar().showMessage("A folder is being analysed already; wait for it or cancel it.", 5000)
            return None
        key = (self.prefs.model, self.prefs.device)
        in_dir, out_dir = Path(in_dir), Path(out_dir)
        started = time.time() - 1.0  # a report older than this run is an earlier run's (file times are coarse)

        def work(progress, cancel):
            from medae.batch import find_items, run_batch
            from medae.progress import sub_progress
            from medae.viewer.figure import write_result_summary

            items = find_items(in_dir, exclude=out_dir, progress=sub_progress(progress, 0.0, 0.05), cancel=cancel)
            if not items:  # nothing to analyse: no model to load, no output folder to make
                return None, []
            model = self._model_for(progress, key)
            rows = run_batch(
                items,
                model,
                out_dir,
                write_extras=lambda result, folder: write_result_summary(result, folder),
                progress=sub_progress(progress, 0.05, 1.0),
                cancel=cancel,
                root=in_dir,
            )
            return model, rows

        def done(out) -> None:
            if out[0] is not None:
                self.model, self._model_key = out[0], key
                self.device_label.setText(f"Device: {out[0].device_name}")
            self.batch_summary = dialogs.BatchDoneBox(out[1], out_dir / "report.html", self)
            self.batch_summary.open()

        def failed(exc: BaseException) -> None:
            from medae.errors import CancelledError

            # Cancelled after some series: say where they are and how to go on, not only in the status bar.
            report = out_dir / "report.html"
            if isinstance(exc, CancelledError) and report.is_file() and report.stat().st_mtime >= started:
                self.batch_summary = dialogs.BatchDoneBox(None, out_dir / "report.html", self)
                self.batch_summary.open()

        job = self.run_job("batch", work, done, f"analysing the folder {in_dir.name}", on_failed=failed)
        job.progress.connect(self._show_device)
        return job

    def _show_device(self, *_args) -> None:
        if self.model is not None:
            self.device_label.setText(f"Device: {self.model.device_name}")

    def _threshold_differs(self) -> bool:
        r = self.session.result
        return r is not None and abs(self.session.style.threshold - r.threshold) > 1e-9

    def _on_overlay(self) -> None:
        if self._threshold_differs():
            self._findings_timer.start()

    def update_findings(self) -> Job | None:
        """Draws the findings again at the overlay's threshold, in a worker; None when nothing to do."""
        if not self._threshold_differs() or any(j.name == "findings" for j in self.jobs):
            return None
        result, threshold = self.session.result, self.session.style.threshold

        def work(progress, cancel):
            return result.at_threshold(threshold, cancel)

        def done(new) -> None:
            if self.session.result is result:
                self.session.set_findings(new)
            self._on_overlay()  # the threshold may have moved again meanwhile

        return self.run_job("findings", work, done, f"finding regions above {threshold:.3g}")

    def _on_result(self) -> None:
        menus.refresh_enabled(self)
        self.view_area.refresh_warnings()
        # A new analysis: the views go to the first-ranked finding, and its row is the highlighted one.
        if self.session.findings:
            self.findings_panel.choose(0)

    def _on_findings(self) -> None:
        # Findings redrawn at another threshold: the reader stays where they are; the highlighted row is
        # the region under the crosshair, if any.
        self.findings_panel.select_at_cursor()

    # ----- input ----------------------------------------------------------------------------
    def _on_hover(self, readout) -> None:
        self.readout.setText(readout.text() if readout is not None else "")

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: D102
        name = _KEY_NAMES.get(event.key()) or event.text().upper()
        shifted = name in _ARROWS and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        if name in _LIST_NAVIGATION and isinstance(QApplication.focusWidget(), QAbstractItemView):
            # A list at its end passes its arrow on: as a slice step it would move the crosshair off the
            # finding just chosen in the list.
            event.accept()
            return
        if not self.handle_key(f"Shift+{name}" if shifted else name):
            super().keyPressEvent(event)

    def handle_key(self, name: str) -> bool:
        """Carries out the binding of a key name; False when the key is not bound."""
        binding = key_action(name)
        s = self.session
        if binding is None or s.image is None:
            return False
        step = slice_step(binding)
        zoom, pan = view_step(binding)
        if step:
            s.move_slice(self.view_area.active_plane, step)
        elif zoom != 1.0 or pan != (0.0, 0.0):
            s.step_view(self.view_area.active_plane, zoom, pan)
        elif binding.action == KeyAction.RESET:
            s.reset_view()
        elif binding.action == KeyAction.INVERT:
            s.set_invert(not s.invert)
        elif binding.action == KeyAction.TOGGLE_HEATMAP:
            s.set_heat_visible(not s.heat_visible)
        elif binding.action == KeyAction.PRESET:
            if s.apply_preset(binding.arg or 0):
                self.statusBar().showMessage(f"Window: {s.presets()[binding.arg - 1].name}", 3000)
            else:
                n = len(s.presets())
                self.statusBar().showMessage(f"No window preset {binding.arg}: this scan has presets 1 to {n}.", 3000)
        elif binding.action == KeyAction.DEFAULT_WINDOW:
            s.reset_window()
            self.statusBar().showMessage("Window: the scan's own", 3000)
        elif binding.action in (KeyAction.NEXT_VOLUME, KeyAction.PREVIOUS_VOLUME):
            self.step_volume(1 if binding.action == KeyAction.NEXT_VOLUME else -1)
        elif binding.action == KeyAction.TOGGLE_CROSSHAIR:
            s.crosshair = not s.crosshair
        elif binding.action == KeyAction.MEASURE:
            s.measure.set_active(not s.measure.active)
            self.statusBar().showMessage(
                "Measuring: drag with the left button to draw a ruler; M again to stop."
                if s.measure.active
                else "Measuring off; the rulers stay (View > Clear measurements removes them).",
                4000,
            )
        elif binding.action in (KeyAction.NEXT_FINDING, KeyAction.PREVIOUS_FINDING) and s.findings:
            rows = self.findings_panel.table.selectionModel().selectedRows()
            current = rows[0].row() if rows else -1
            delta = 1 if binding.action == KeyAction.NEXT_FINDING else -1
            self.findings_panel.choose((current + delta) % len(s.findings))
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: D102
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: D102
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if not paths:
            return
        event.acceptProposedAction()
        from medae.io.loader import is_volume_file

        folders = {str(Path(p).parent) for p in paths}
        if len(paths) > 1 and len(folders) == 1 and not any(is_volume_file(p) or Path(p).is_dir() for p in paths):
            # The files of one folder, none a volume file: the slices of a DICOM series, dragged from a file
            # browser. One of them alone is one slice; their folder is the series (or asks which).
            folder = folders.pop()
            self._drop_note = f"{len(paths)} files dropped from one folder: its series are opened."
            self.open_path(folder)
            return
        self.open_path(paths[0])
        if len(paths) > 1:  # one scan is on screen at a time: say which, rather than drop the rest unsaid
            self._drop_note = (
                f"{len(paths)} files dropped; {Path(paths[0]).name} is opened. Open the others one at a time."
            )

    def active_widget(self) -> QWidget:
        """The widget a screenshot shows: the reading area with its colour bar and warnings."""
        return self.view_area

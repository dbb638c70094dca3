"""The menu bar: every command of the window, with its shortcut."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QFileDialog

from medae.gui import exports
from medae.gui.dialogs import AboutDialog, KeysDialog, PreferencesDialog, short_name
from medae.gui.settings import last_folder, recent_files, remember_folder
from medae.gui.window_dialog import WindowDialog
from medae.viewer.planes import CONVENTIONS, PLANES
from medae.viewer.session import LAYOUTS

_CONVENTION_TEXT = {"radiological": "&Radiological convention", "neurological": "N&eurological convention"}
_SCAN_FILTER = (
    "Scans (*.nii *.nii.gz *.mgz *.mgh *.nrrd *.nhdr *.mha *.mhd *.dcm *.dcm.gz DICOMDIR *.mae);;"
    "Compressed studies (*.mae);;All files (*)"
)


def _action(w, menu, text: str, slot, shortcut=None, checkable=False, name=None) -> QAction:
    a = QAction(text, w)
    if shortcut:
        a.setShortcut(QKeySequence(shortcut))
    a.setCheckable(checkable)
    a.triggered.connect(slot)
    if name:
        a.setObjectName(name)
        w.actions_by_name[name] = a
    menu.addAction(a)
    return a


def build(w) -> None:
    """Creates the menus of a ``MainWindow``."""
    w.actions_by_name = {}
    s = w.session
    bar = w.menuBar()
    f = bar.addMenu("&File")
    _action(w, f, "&Open file...", lambda: _open_file(w), QKeySequence.StandardKey.Open, name="open_file")
    _action(w, f, "Open &folder...", lambda: _open_folder(w), "Ctrl+Shift+O", name="open_folder")
    w.recent_menu = f.addMenu("Open &recent")
    # Rebuilt as it opens: a file deleted or moved since is not offered (the list keeps existing paths).
    w.recent_menu.aboutToShow.connect(lambda: refresh_recent(w))
    f.addSeparator()
    # The platform's binding (Ctrl+, on most desktops) is empty on some Linux ones.
    prefs_keys = QKeySequence.keyBindings(QKeySequence.StandardKey.Preferences)
    _action(w, f, "&Preferences...", lambda: _preferences(w), prefs_keys[0] if prefs_keys else "Ctrl+,", name="prefs")
    f.addSeparator()
    _action(w, f, "&Quit", w.close, "Ctrl+Q", name="quit")  # the platform binding is empty on some Linux desktops
    w.welcome.open_file.clicked.connect(lambda: _open_file(w))
    w.welcome.open_folder.clicked.connect(lambda: _open_folder(w))

    v = bar.addMenu("&View")
    group = QActionGroup(w)
    for layout in LAYOUTS:
        a = _action(w, v, f"Layout &{layout}", partial(_layout, w, layout), checkable=True, name=f"layout_{layout}")
        a.setChecked(s.layout == layout)
        group.addAction(a)
    planes = v.addMenu("Pla&ne (single view and compare)")
    for plane in PLANES:
        _action(w, planes, f"&{plane.title()}", partial(_single, w, plane), name=f"plane_{plane}")
    v.addSeparator()
    conv = QActionGroup(w)
    for c in CONVENTIONS:
        a = _action(
            w,
            v,
            _CONVENTION_TEXT.get(c, f"{c.title()} convention"),
            partial(setattr, s, "convention", c),
            checkable=True,
            name=f"conv_{c}",
        )
        a.setChecked(s.convention == c)
        conv.addAction(a)
    v.addSeparator()
    _action(
        w,
        v,
        "&Compare input | reconstruction | residual",
        lambda on: _compare(w, on),
        "C",
        checkable=True,
        name="compare",
    )
    _action(w, v, "&Invert grey scale (I)", lambda: w.handle_key("I"))
    _action(w, v, "Show cross&hair (X)", lambda: w.handle_key("X"), checkable=True, name="crosshair")
    _action(w, v, "&Link zoom across views", lambda on: setattr(s, "link_zoom", on), checkable=True, name="link_zoom")
    _action(
        w, v, "&Measure (M): rulers; with Shift, regions", lambda: w.handle_key("M"), checkable=True, name="measure"
    )
    _action(w, v, "Clear meas&urements", s.measure.clear, name="clear_measurements")
    _action(w, v, "Ne&xt volume (4D file or split series) (])", lambda: w.handle_key("]"), name="next_volume")
    _action(w, v, "Pre&vious volume (4D file or split series) ([)", lambda: w.handle_key("["), name="previous_volume")
    _action(w, v, "&Fit views (Space)", lambda: w.handle_key("Space"))
    # Ctrl++ and Ctrl+- as other programs zoom; + and - alone do the same (the view keys take no Ctrl).
    _action(w, v, "&Zoom in (+)", lambda: w.handle_key("+"), QKeySequence.StandardKey.ZoomIn, name="zoom_in")
    _action(w, v, "Zoom ou&t (-)", lambda: w.handle_key("-"), QKeySequence.StandardKey.ZoomOut, name="zoom_out")
    w.presets_menu = v.addMenu("Window &presets")
    _action(w, v, "Set &window/level...", lambda: _window_dialog(w), "W", name="window_dialog")
    v.addSeparator()
    # Closed panels stay closed across restarts (the window state is saved), so they must be reopenable here.
    _action(w, v, "Views &only (hide the panels)", lambda: _views_only(w), "F11", checkable=True, name="views_only")
    panels = v.addMenu("P&anels")
    for dock in w.docks:
        panels.addAction(dock.toggleViewAction())

    a = bar.addMenu("&Analysis")
    _action(w, a, "&Analyze", lambda: w.start_analysis(), "Ctrl+R", name="analyze")
    _action(w, a, "Analyze an&yway (scan unlike the model's)", lambda: w.start_analysis(force=True), name="force")
    _action(w, a, "Analyze a &folder of studies...", lambda: _batch(w), "Ctrl+Shift+R", name="batch")
    _action(w, a, "&Cancel", w.cancel_jobs, "Esc", name="cancel")
    _action(w, a, "Show/hide &heatmap (H)", lambda: w.handle_key("H"), name="toggle_heat")
    _action(w, a, "C&lear analysis", s.clear_result, name="clear")

    e = bar.addMenu("&Export")
    for text, kind, suffix in exports.KINDS:
        _action(w, e, text, partial(_export, w, kind, suffix), name=f"export_{kind}")

    h = bar.addMenu("&Help")
    _action(w, h, "&Keys and mouse", lambda: _keys_help(w), "F1", name="keys_help")
    _action(w, h, "&About medae", lambda: _about(w), name="about")
    s.display_changed.connect(lambda: _sync_checks(w))
    s.measure.changed.connect(lambda: w.actions_by_name["measure"].setChecked(s.measure.active))
    refresh_recent(w)
    refresh_presets(w)
    refresh_enabled(w)
    _sync_checks(w)


def _open_file(w) -> None:
    path, _ = QFileDialog.getOpenFileName(w, "Open a scan", last_folder("open"), _SCAN_FILTER)
    if path:
        remember_folder("open", Path(path).parent)
        w.open_path(path)


def _open_folder(w) -> None:
    path = QFileDialog.getExistingDirectory(w, "Open a DICOM folder", last_folder("open"))
    if path:
        remember_folder("open", Path(path).parent)  # next time, the folder's siblings (other studies)
        w.open_path(path)


def _batch(w) -> None:
    source = QFileDialog.getExistingDirectory(w, "Folder of studies to analyse", last_folder("batch_in"))
    if not source:
        return
    remember_folder("batch_in", source)
    target = QFileDialog.getExistingDirectory(
        w, "Folder for the results (a sub-folder per series, and the report)", last_folder("batch_out")
    )
    if target:
        remember_folder("batch_out", target)
        w.run_batch(source, target)


def _preferences(w) -> None:
    # The dialog starts from what is on screen, so OK changes only what the user changed in it.
    shown = w.shown_preferences()
    dlg = PreferencesDialog(shown, w)
    dlg.accepted.connect(lambda: w.apply_preferences(dlg.preferences(), changed_from=shown))
    dlg.open()


def _views_only(w) -> None:
    hidden = w.toggle_views_only()
    w.actions_by_name["views_only"].setChecked(hidden)
    if hidden:
        w.statusBar().showMessage("Panels hidden: F11 brings them back.", 4000)
    else:
        w.statusBar().clearMessage()


def _window_dialog(w) -> None:
    if w.session.image is not None:  # the action is disabled without a scan; a queued shortcut may still come
        WindowDialog(w.session, w).open()


def _single(w, plane: str) -> None:
    w.session.single_plane = plane
    if not w.session.compare:  # compare mode shows its three layers in the chosen plane and stays
        _layout(w, "single")


def _compare(w, on: bool) -> None:
    # Compare in the plane the user was working in, not in whichever plane was chosen last.
    if on and not w.session.compare:
        w.session.single_plane = w.view_area.active_plane
    w.session.compare = on


def _layout(w, layout: str) -> None:
    # Compare mode has its own layout; choosing another one means leaving it, or nothing would change.
    w.session.compare = False
    w.session.layout = layout
    _sync_checks(w)


def _about(w) -> None:
    """The version, the model folder in use and what its data derive from (its notice)."""
    from medae._version import __version__
    from medae.model.store import default_model_dir

    folder = Path(w.prefs.model) if w.prefs.model else default_model_dir()
    text = (
        f"medae {__version__}\n\nAnomaly detection for MRI and CT: an autoencoder trained only on healthy scans "
        "shows where a scan is unlike them. Its findings are suggestions for a reader, not a diagnosis.\n\n"
        f"Model: {folder}"
    )
    try:
        notice = (folder / "NOTICE.txt").read_text(encoding="utf-8").strip()
        text += "\n\n" + re.sub(r"(?<!\n)\n(?!\n)", " ", notice)  # the file's paragraphs, rewrapped by the box
    except OSError:
        pass  # a model without a notice: nothing to cite
    AboutDialog(text, w).open()


def _keys_help(w) -> None:
    shortcuts = [
        (a.shortcut().toString(), a.text().replace("&", ""))
        for a in w.actions_by_name.values()
        if not a.shortcut().isEmpty()
    ]
    presets = [p.name for p in w.session.presets()]
    KeysDialog(w.session.mouse_scheme, w, presets=presets, shortcuts=shortcuts).open()


def _export(w, kind: str, suffix: str) -> None:
    start = last_folder("export")
    if kind == "report":
        target = QFileDialog.getExistingDirectory(w, "Folder for heatmap, findings and report", start)
    else:
        names = {
            ".nii.gz": "NIfTI (*.nii.gz *.nii)",
            ".dcm": "DICOM (*.dcm)",
            ".png": "PNG image (*.png)",
            ".mae": "Compressed study (*.mae)",
        }
        name = str(Path(start) / exports.default_name(w.session.volume, kind, suffix))
        target, _ = QFileDialog.getSaveFileName(w, "Export", name, names[suffix])
    if target:
        remember_folder("export", target if kind == "report" else Path(target).parent)
        exports.export(w, kind, target)


def _sync_checks(w) -> None:
    s = w.session
    for layout in LAYOUTS:
        w.actions_by_name[f"layout_{layout}"].setChecked(s.layout == layout and not s.compare)
    for c in CONVENTIONS:
        w.actions_by_name[f"conv_{c}"].setChecked(s.convention == c)
    w.actions_by_name["compare"].setChecked(s.compare)
    w.actions_by_name["crosshair"].setChecked(s.crosshair)
    w.actions_by_name["link_zoom"].setChecked(s.link_zoom)


def refresh_recent(w) -> None:
    """Rebuilds File > Open recent."""
    w.recent_menu.clear()
    items = recent_files()
    names = [Path(p).name for p in items]
    for p, name in zip(items, names, strict=True):
        # Two scans of one name (t1.nii.gz of two patients) are told apart by their folder.
        text = short_name(name) + (f"  ({short_name(Path(p).parent.name)})" if names.count(name) > 1 else "")
        # An ampersand of a name is shown, not taken as the mark of an access key.
        w.recent_menu.addAction(text.replace("&", "&&"), partial(w.open_path, p)).setToolTip(p)
    w.recent_menu.setToolTipsVisible(True)
    w.recent_menu.setEnabled(bool(items))
    w.welcome.refresh()


def refresh_presets(w) -> None:
    """Rebuilds View > Window presets for the modality on screen."""
    w.presets_menu.clear()
    w.presets_menu.addAction("&0 Scan's own window", partial(w.handle_key, "0"))
    for n, preset in enumerate(w.session.presets(), 1):
        w.presets_menu.addAction(f"&{n} {preset.name}", partial(w.handle_key, str(n)))


def refresh_enabled(w) -> None:
    """Enables what needs an analysis only when there is one."""
    has = w.session.result is not None
    for name in ("window_dialog", "measure", "clear_measurements", "zoom_in", "zoom_out"):
        if name in w.actions_by_name:
            w.actions_by_name[name].setEnabled(w.session.image is not None)
    four_d = w.can_step_volumes()
    for name in ("next_volume", "previous_volume"):
        if name in w.actions_by_name:
            w.actions_by_name[name].setEnabled(four_d)
    for name in ("compare", "toggle_heat", "clear", *(f"export_{k}" for _t, k, _s in exports.KINDS)):
        if name in w.actions_by_name:
            needs_result = name.removeprefix("export_") not in exports.SCAN_KINDS
            w.actions_by_name[name].setEnabled(has or not needs_result)

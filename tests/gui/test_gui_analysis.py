"""The analysis path through the real widgets and the real core (model loading, analysis, exports).

open -> pick series -> analyze -> overlay -> threshold -> findings click -> compare -> export.
"""

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QPoint, Qt

from medae.io.nifti import save_nifti
from medae.viewer.compositing import to_rgb
from medae.viewer.png import read_png
from medae.volume import Volume
from tests.gui.conftest import wait_idle
from tests.gui.tiny_model import mr_with_lesion


@pytest.fixture
def study(tmp_path):
    """A folder with two scans: the one to analyse and another one."""
    folder = tmp_path / "study"
    folder.mkdir()
    save_nifti(mr_with_lesion(), folder / "t1.nii.gz")
    other = mr_with_lesion()
    save_nifti(Volume(other.array[:, :, :10].copy(), other.affine, "MR"), folder / "other.nii.gz")
    return folder


def analysed(window, qtbot, tiny_model, path):
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(path)
    wait_idle(qtbot, window)
    assert window.session.volume is not None, window.last_error and window.last_error.text()
    window.start_analysis()
    assert window.cancel_button.isVisible()
    wait_idle(qtbot, window, timeout=120_000)
    assert window.last_error is None, window.last_error.text()
    assert window.session.result is not None
    return window.session.result


def test_open_pick_analyze_overlay_threshold_findings_compare_export(window, qtbot, tiny_model, study, tmp_path):
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(study)
    qtbot.waitUntil(lambda: window.series_picker is not None, timeout=30_000)
    picker = window.series_picker
    wait_idle(qtbot, window)
    slices = picker.COLUMNS.index("slices")
    row = next(r for r in range(picker.table.rowCount()) if picker.table.item(r, slices).text() == "24")
    picker.table.selectRow(row)
    picker.accept()
    wait_idle(qtbot, window)
    assert window.session.volume.shape == (32, 32, 24)

    # Analyze from the menu: a worker with progress; the device appears in the status bar.
    window.actions_by_name["analyze"].trigger()
    assert window.busy and window.progress.isVisible()
    wait_idle(qtbot, window, timeout=120_000)
    assert window.last_error is None, window.last_error.text()
    s = window.session
    result = s.result
    assert result is not None and result.model_id == "tiny-test"
    assert "CPU" in window.device_label.text()
    assert "tiny-test" in window.overlay_panel.summary.text()
    assert window.view_area.colorbar.isVisible()

    # Overlay on screen: the heat changes the pixels of the view through the finding.
    axial = window.view_area.view("axial")
    with_heat = to_rgb(s.render("axial"))
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert not s.heat_visible
    assert (to_rgb(s.render("axial")) != with_heat).any()
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert s.heat_visible

    # Threshold in calibrated units through the panel's control; the fade keeps heat just below it.
    panel = window.overlay_panel
    assert "z (healthy)" in panel.threshold_label.text()
    panel.threshold.setValue(result.threshold + 0.1)
    assert s.style.threshold == pytest.approx(result.threshold + 0.1, abs=0.01)
    assert (to_rgb(s.render("axial")) != with_heat).any()
    panel.threshold.setValue(result.threshold)

    # Findings: ranked list; clicking one moves every view to it.
    table = window.findings_panel.table
    assert table.rowCount() == len(result.findings) >= 1
    assert "not a lesion's size" in table.horizontalHeaderItem(2).toolTip()  # the mL column is no measurement
    s.set_cursor((0, 0, 0))
    rect = table.visualItemRect(table.item(0, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    f = s.findings[0]
    assert f.side == "left" and table.item(0, 1).text() == "left"  # the bright block is on the patient's left
    assert np.allclose(s.image.grid.to_source(s.cursor), f.centroid_voxel, atol=0.51)
    assert axial.isVisible()
    # The panel's summary line wraps instead of holding the panel (and so the scan) at its width, and
    # Tab moves on from the table to the next control.
    assert window.findings_panel.minimumSizeHint().width() < 200
    window.activateWindow()
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    qtbot.keyClick(table, Qt.Key.Key_Tab)
    assert not table.hasFocus()
    # An arrow at the table's last row (which the table leaves alone) does not move the slice away from
    # the finding chosen.
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    table.setCurrentCell(table.rowCount() - 1, 0)
    before = s.cursor
    for key in (Qt.Key.Key_Down, Qt.Key.Key_PageDown, Qt.Key.Key_End):
        qtbot.keyClick(table, key)
    assert s.cursor == before

    # Compare mode: input | reconstruction | residual side by side, on one linked plane.
    window.actions_by_name["compare"].trigger()
    assert [v.layer for v in window.view_area.views] == ["input", "reconstruction", "residual"]
    assert len({v.plane for v in window.view_area.views}) == 1
    # Window/level dragged in the residual view changes the residual's window, not the scan's.
    from tests.gui.test_gui_bindings import drag

    inp, resid = s.layer_window("input"), s.layer_window("residual")
    view_in, _view_rec, view_res = window.view_area.views
    drag(qtbot, view_res, Qt.MouseButton.LeftButton, QPoint(40, 40), QPoint(90, 70))
    assert s.layer_window("residual") != resid and s.layer_window("input") == inp
    resid = s.layer_window("residual")
    drag(qtbot, view_in, Qt.MouseButton.LeftButton, QPoint(40, 40), QPoint(90, 70))
    assert s.layer_window("input") != inp and s.layer_window("residual") == resid
    window.actions_by_name["compare"].trigger()
    assert len(window.view_area.views) == 3

    # Exports run in workers and land as files a radiology system reads.
    out = tmp_path / "exports"
    from medae.gui import exports

    for kind, name in [
        ("heatmap_nifti", "heat.nii.gz"),
        ("findings_nifti", "labels.nii.gz"),
        ("heatmap_dicom", "heat_pm.dcm"),
        ("findings_dicom", "seg.dcm"),
        ("screenshot", "shot.png"),
        ("report", "report"),
    ]:
        exports.export(window, kind, out / name)
        wait_idle(qtbot, window, timeout=120_000)
        assert window.last_error is None, f"{kind}: {window.last_error.text()}"
    # A name typed without an ending (or with another format's) gets the kind's own ending.
    for name, kind in (("patient42_heatmap", "heatmap_nifti"), ("heat.png", "heatmap_nifti")):
        exports.export(window, kind, out / name)
        wait_idle(qtbot, window, timeout=120_000)
        assert window.last_error is None, window.last_error and window.last_error.text()
        assert nib.load(out / f"{name}.nii.gz").shape == (32, 32, 24)
    heat = nib.load(out / "heat.nii.gz")
    assert heat.shape == (32, 32, 24) and np.allclose(heat.affine, s.volume.affine)
    np.testing.assert_allclose(np.asarray(heat.dataobj), result.heatmap.array, atol=1e-6)
    assert int(np.asarray(nib.load(out / "labels.nii.gz").dataobj).max()) == len(result.findings)
    assert pydicom.dcmread(out / "heat_pm.dcm").SOPClassUID == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map
    assert pydicom.dcmread(out / "seg.dcm").Modality == "SEG"
    shot = read_png(out / "shot.png")
    assert shot.shape[1] == window.view_area.width()  # views plus the colour bar
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["score"] == pytest.approx(result.score, abs=1e-3)
    assert report["files"]["summary"] == "summary.png"  # the part of the report a person reads
    assert read_png(out / "report" / "summary.png").shape[2] == 3
    # A folder that holds a map of the user's by an output's name: the export is refused, nothing written.
    theirs = out / "theirs"
    theirs.mkdir()
    (theirs / "findings.nii.gz").write_bytes(b"a map of mine")
    exports.export(window, "report", theirs)
    wait_idle(qtbot, window)
    assert window.last_error is not None and "findings.nii.gz" in window.last_error.text()
    assert sorted(p.name for p in theirs.iterdir()) == ["findings.nii.gz"]
    window.last_error = None


def test_warnings_are_on_screen_and_in_screenshots(window, qtbot, tiny_model, tmp_path):
    vol = mr_with_lesion()
    vol.array[0, 0, 0] = np.nan  # loading reports it as a warning
    save_nifti(vol, tmp_path / "nan.nii.gz")
    analysed(window, qtbot, tiny_model, tmp_path / "nan.nii.gz")
    banner = window.view_area.banner
    assert banner.isVisible() and "NaN" in banner.text()
    from medae.gui import exports

    exports.export(window, "screenshot", tmp_path / "shot.png")
    wait_idle(qtbot, window)
    shot = read_png(tmp_path / "shot.png")
    # The banner's amber band is the top of the screenshot.
    top = np.median(shot[2 : banner.height() - 2, 5:50].reshape(-1, 3), axis=0)  # the band, not its text
    assert top[0] > 90 and top[2] < 40


def test_analysis_can_be_cancelled(window, qtbot, tiny_model, tmp_path):
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(tmp_path / "t1.nii.gz")
    wait_idle(qtbot, window)
    window.start_analysis()
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window, timeout=120_000)
    assert window.session.result is None and window.last_error is None
    assert "Cancelled" in window.statusBar().currentMessage()


def test_missing_model_is_a_dialog_that_says_what_to_do(window, qtbot, tmp_path):
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    window.prefs.model = str(tmp_path / "no-such-model")
    window.open_path(tmp_path / "t1.nii.gz")
    wait_idle(qtbot, window)
    window.start_analysis()
    wait_idle(qtbot, window, timeout=120_000)
    box = window.last_error
    assert box is not None and "no-such-model" in box.text() and "Traceback" not in box.text()
    assert "Preferences" in box.text()  # where a viewer user changes the model folder
    assert window.session.result is None and window.isVisible()
    assert window.device_label.text() == "Device: not loaded"


def test_scan_unlike_the_model_is_refused_with_a_way_out(window, qtbot, tiny_model, ct_file):
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(ct_file)
    wait_idle(qtbot, window)
    window.start_analysis()
    wait_idle(qtbot, window, timeout=120_000)
    box = window.last_error
    assert box is not None and "Analyze anyway" in box.text() and "--force" not in box.text()
    # The model loaded for the refused scan is kept, and the status bar says where it runs.
    assert window.model is not None and "CPU" in window.device_label.text()
    # The box offers the way out as a button.
    anyway = next(b for b in box.buttons() if b.text() == "Analyze anyway")
    window.last_error = None
    anyway.click()
    wait_idle(qtbot, window, timeout=120_000)
    assert window.last_error is None and window.session.result is not None
    assert window.view_area.banner.isVisible()  # the refusal is now a warning on screen
    # A forced result says so beside its score: it is not a comparison with scans the model knows.
    assert "forced" in window.findings_panel.empty.text()


def test_command_line_opens_and_analyses(qtbot, tiny_model, tmp_path):
    from importlib.metadata import entry_points

    from medae.gui.app import create_window, main

    (ep,) = [e for e in entry_points(group="gui_scripts") if e.name == "medae-gui"]
    assert ep.load() is main  # what `medae view` and the medae-gui launcher start
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    _app, w = create_window(str(tmp_path / "t1.nii.gz"), analyze=True, model=str(tiny_model), device="cpu")
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.session.result is not None or w.last_error is not None, timeout=120_000)
    wait_idle(qtbot, w)
    assert w.last_error is None and w.session.result.findings


def test_dicom_source_exports_refer_to_its_study(window, qtbot, tiny_model, tmp_path):
    from tests.dicom_factory import axial_affine, write_series

    vol = mr_with_lesion()
    write_series(
        tmp_path / "dicom",
        np.clip(vol.array, 0, 1000).astype(np.int16),
        axial_affine((1.0, 1.0, 1.25)),
        modality="MR",
        description="T1 axial",
    )
    result = analysed(window, qtbot, tiny_model, tmp_path / "dicom")
    assert window.tag_browser.rows  # the header of the source is browsable
    from medae.gui import exports

    for kind, name in [("heatmap_dicom", "pm.dcm"), ("findings_dicom", "seg.dcm"), ("screenshot_dicom", "sc.dcm")]:
        exports.export(window, kind, tmp_path / name)
        wait_idle(qtbot, window, timeout=120_000)
        assert window.last_error is None, f"{kind}: {window.last_error.text()}"
    pm, seg, sc = (pydicom.dcmread(tmp_path / n) for n in ("pm.dcm", "seg.dcm", "sc.dcm"))
    assert pm.NumberOfFrames == 24 and seg.Modality == "SEG" and len(seg.SegmentSequence) == len(result.findings)
    assert pm.StudyInstanceUID == seg.StudyInstanceUID == sc.StudyInstanceUID  # one (pseudonymous) study
    assert sc.Rows == window.view_area.height() and sc.Columns == window.view_area.width()


def test_findings_follow_the_threshold_set_in_the_viewer(window, qtbot, tiny_model, tmp_path):
    path = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), path)
    result = analysed(window, qtbot, tiny_model, path)
    s = window.session
    assert len(result.findings) >= 1
    top = max(f.peak for f in result.findings)

    # Above every peak: the list empties once the control rests, and exports follow what is on screen.
    window.overlay_panel.threshold.setValue(top + 1.0)
    qtbot.waitUntil(lambda: not s.findings and not window.busy, timeout=30_000)
    assert s.result.heatmap is result.heatmap and s.result.score == result.score
    assert window.findings_panel.table.rowCount() == 0
    assert "No region above" in window.findings_panel.empty.text()
    assert "0 finding(s)" in window.overlay_panel.summary.text()
    from medae.gui import exports

    exports.export(window, "findings_nifti", tmp_path / "none.nii.gz")
    wait_idle(qtbot, window)
    assert int(np.asarray(nib.load(tmp_path / "none.nii.gz").dataobj).max()) == 0

    # Lower than the analysis's own threshold: at least the same regions, each at least as large.
    low = result.threshold - 0.5 * (result.threshold - float(np.median(result.heatmap.array)))
    window.overlay_panel.threshold.setValue(low)
    qtbot.waitUntil(lambda: s.result.threshold == pytest.approx(low, abs=0.01) and not window.busy, timeout=30_000)
    assert len(s.findings) >= 1
    assert s.findings[0].volume_ml >= result.findings[0].volume_ml
    assert window.findings_panel.table.rowCount() == len(s.findings)
    assert (s.result.labels.array > 0).sum() >= (result.labels.array > 0).sum()

    # Exported at once after a move, before the findings are redrawn: the file has the threshold on screen.
    window.overlay_panel.threshold.setValue(top + 1.0)
    exports.export(window, "findings_nifti", tmp_path / "at_once.nii.gz")
    wait_idle(qtbot, window)
    assert int(np.asarray(nib.load(tmp_path / "at_once.nii.gz").dataobj).max()) == 0


def test_compare_mode_and_the_view_menu_stay_in_step(window, qtbot, tiny_model, tmp_path):
    path = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), path)
    analysed(window, qtbot, tiny_model, path)
    acts, s = window.actions_by_name, window.session
    acts["compare"].trigger()
    assert s.compare and acts["compare"].isChecked()
    # Choosing a plane keeps compare mode and shows its three layers in that plane.
    acts["plane_sagittal"].trigger()
    assert s.compare and acts["compare"].isChecked()
    assert [v.plane for v in window.view_area.views] == ["sagittal"] * 3
    # Choosing a layout leaves compare mode, so the choice shows at once and its item is checked.
    acts["layout_2x2"].trigger()
    assert not s.compare and s.layout == "2x2" and len(window.view_area.views) == 4
    assert acts["layout_2x2"].isChecked() and not acts["compare"].isChecked()
    acts["compare"].trigger()
    # Opening a scan ends compare mode; the menu must say so, so that one press of C turns it on again.
    window.open_path(path)
    wait_idle(qtbot, window)
    assert not s.compare and not acts["compare"].isChecked()
    window.start_analysis()
    wait_idle(qtbot, window, timeout=120_000)
    acts["compare"].trigger()
    assert s.compare


def test_the_reader_stays_put_when_the_threshold_moves_and_the_row_under_the_crosshair_is_selected(
    window, qtbot, tiny_model, tmp_path
):
    path = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), path)
    result = analysed(window, qtbot, tiny_model, path)
    s, table = window.session, window.findings_panel.table
    low = result.threshold - 0.3 * (result.threshold - float(np.median(result.heatmap.array)))

    def move_threshold(value: float) -> None:
        window.overlay_panel.threshold.setValue(value)
        qtbot.waitUntil(
            lambda: s.result.threshold == pytest.approx(value, abs=0.01) and not window.busy, timeout=30_000
        )

    # Away from every finding: the crosshair stays, and no row claims to be what is shown.
    s.set_cursor((0, 0, 0))
    move_threshold(low)
    assert s.cursor == (0, 0, 0) and not table.selectionModel().selectedRows()
    # On a finding: the crosshair stays on its voxel and that finding's row is the highlighted one.
    window.findings_panel.choose(0)
    here = s.cursor
    move_threshold(low - 0.05 * (result.threshold - low))
    assert s.cursor == here
    label = s.result.labels.array[s.image.grid.to_source(here)]
    rank = next(n for n, f in enumerate(s.findings) if f.label == label)
    assert table.selectionModel().selectedRows()[0].row() == rank


def test_no_export_writes_over_the_scan_it_was_made_from(window, qtbot, tiny_model, tmp_path):
    from medae.gui import exports
    from medae.io.nifti import save_nifti
    from tests.gui.tiny_model import mr_with_lesion

    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    source = save_nifti(mr_with_lesion(), tmp_path / "heatmap.nii.gz")  # a scan named like a result
    before = source.read_bytes()
    window.open_path(source)
    wait_idle(qtbot, window)
    window.start_analysis()
    wait_idle(qtbot, window, timeout=120_000)
    assert window.session.result is not None
    for kind, target in (("heatmap_nifti", source), ("findings_nifti", source), ("report", tmp_path)):
        window.last_error = None
        assert exports.export(window, kind, target) is None
        wait_idle(qtbot, window)
        assert "never overwrites a source" in window.last_error.text(), kind
    assert source.read_bytes() == before
    assert exports.export(window, "report", tmp_path / "results") is not None  # another folder is fine
    wait_idle(qtbot, window)
    assert (tmp_path / "results" / "heatmap.nii.gz").is_file() and source.read_bytes() == before


def test_a_report_that_cannot_be_finished_leaves_no_part_of_it(window, qtbot, tiny_model, tmp_path, monkeypatch):
    import errno
    import os

    import medae.atomic
    from medae.gui import exports
    from medae.io.nifti import save_nifti
    from tests.gui.tiny_model import mr_with_lesion

    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz"))
    wait_idle(qtbot, window)
    window.start_analysis()
    wait_idle(qtbot, window, timeout=120_000)
    real = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == "report.json":  # the disk fills up before the last file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(medae.atomic.os, "replace", replace)
    exports.export(window, "report", tmp_path / "report")
    wait_idle(qtbot, window)
    text = window.last_error.text()
    assert "disk is full" in text and "Traceback" not in text
    assert not (tmp_path / "report").exists()


def test_a_threshold_set_while_the_scan_is_analysed_again_stands(window, qtbot, tiny_model, tmp_path):
    path = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), path)
    result = analysed(window, qtbot, tiny_model, path)
    s = window.session
    top = max(f.peak for f in result.findings)
    window.start_analysis()  # again (as after choosing another device), and the reader moves the threshold meanwhile
    window.overlay_panel.threshold.setValue(top + 1.0)  # above every peak (held at the top of the scale)
    chosen = s.style.threshold
    assert chosen > result.threshold
    wait_idle(qtbot, window, timeout=120_000)
    qtbot.waitUntil(lambda: s.result is not result and not s.findings and not window.busy, timeout=30_000)
    assert s.style.threshold == pytest.approx(chosen)
    assert window.overlay_panel.threshold.value() == pytest.approx(chosen, abs=0.01)
    assert window.findings_panel.table.rowCount() == 0


def test_a_refusal_that_forcing_cannot_overcome_offers_no_analyze_anyway(window, qtbot, tmp_path):
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "models" / "brain-t1-dae"
    arr = np.random.default_rng(0).normal(100, 10, (60, 70, 2)).astype(np.float32)  # two slices: nothing to align
    path = tmp_path / "slab.nii.gz"
    save_nifti(Volume(arr, np.diag([2.0, 2.0, 2.0, 1.0]), "MR"), path)
    window.prefs.model, window.prefs.device = str(shipped), "cpu"
    window.open_path(path)
    wait_idle(qtbot, window)
    window.start_analysis(force=True)
    wait_idle(qtbot, window, timeout=120_000)
    box = window.last_error
    assert box is not None and "cannot be aligned" in box.text()
    assert "Analyze anyway" not in box.text() and all(b.text() != "Analyze anyway" for b in box.buttons())


def test_exports_started_together_run_one_after_another_and_all_land(
    window, qtbot, tiny_model, study, tmp_path, monkeypatch
):
    # Several DICOM writers at once contend with the window's thread for the interpreter, which stutters.
    import threading
    import time

    from medae.gui import exports

    analysed(window, qtbot, tiny_model, study / "t1.nii.gz")
    busy, overlaps = [0], []
    lock = threading.Lock()
    real = exports._heatmap_nifti

    def watched(*args):
        with lock:
            busy[0] += 1
            overlaps.append(busy[0])
        time.sleep(0.2)
        try:
            return real(*args)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(exports, "_heatmap_nifti", watched)
    for n in range(3):
        exports.export(window, "heatmap_nifti", tmp_path / f"heat{n}.nii.gz")
    wait_idle(qtbot, window, timeout=60_000)
    assert max(overlaps) == 1 and window.last_error is None
    assert all((tmp_path / f"heat{n}.nii.gz").is_file() for n in range(3))

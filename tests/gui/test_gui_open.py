"""Opening scans in the viewer: files, folders with several series, DICOMDIR, drops, errors, cancel."""

import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from medae.viewer.tags import read_tags
from tests.dicom_factory import axial_affine, phantom, write_series
from tests.gui.conftest import wait_idle


def test_empty_window_offers_to_open(window):
    assert window.stack.currentWidget() is window.welcome
    assert window.session.volume is None
    assert {"open_file", "open_folder", "analyze", "export_screenshot"} <= set(window.actions_by_name)


def test_open_file_shows_three_linked_views(window, qtbot, ct_file):
    window.open_path(ct_file)
    wait_idle(qtbot, window)
    assert window.last_error is None
    assert window.stack.currentWidget() is window.view_area
    assert [v.plane for v in window.view_area.views] == ["axial", "coronal", "sagittal"]
    assert "ct.nii.gz" in window.windowTitle()
    assert window.session.window.width == 400  # CT opens with a soft-tissue window
    assert str(ct_file.resolve()) in window.recent_menu.actions()[0].toolTip()


def test_folder_with_two_series_asks_which(window, qtbot, tmp_path):
    ct = phantom((12, 10, 6), seed=1)
    mr = np.abs(phantom((10, 10, 5), seed=2)).astype(np.int16)
    write_series(tmp_path / "study" / "a", ct, axial_affine(), modality="CT", description="chest CT", series_number=1)
    write_series(tmp_path / "study" / "b", mr, axial_affine(), modality="MR", description="brain T1", series_number=2)
    window.open_path(tmp_path / "study")
    qtbot.waitUntil(lambda: window.series_picker is not None, timeout=30_000)
    picker = window.series_picker
    wait_idle(qtbot, window)  # thumbnails arrive from a worker
    assert picker.table.rowCount() == 2
    col = {picker.table.horizontalHeaderItem(c).text(): c for c in range(picker.table.columnCount())}
    rows = {picker.table.item(r, col["modality"]).text(): r for r in range(2)}
    assert set(rows) == {"CT", "MR"}
    assert picker.table.item(rows["MR"], col["slices"]).text() == "5"
    assert picker.table.item(rows["MR"], col["#"]).text() == "2"  # radiologists pick series by number
    assert picker.table.item(rows["MR"], col["acquired"]).text()[4] == "-"  # a date, as a date
    from PySide6.QtWidgets import QLabel

    assert "Patient: Synthetic^Patient" in " ".join(label.text() for label in picker.findChildren(QLabel))
    assert picker.has_thumbnail(0) and picker.has_thumbnail(1)
    picker.table.selectRow(rows["MR"])
    picker.accept()
    wait_idle(qtbot, window)
    v = window.session.volume
    assert v.modality == "MR" and v.shape == (10, 10, 5)
    np.testing.assert_array_equal(v.array, mr)
    # The study panel and the tag browser describe the series on screen.
    texts = [window.study_panel.tree.topLevelItem(2).child(i).text(1) for i in range(5)]
    assert "brain T1" in texts
    assert "brain T1" in window.windowTitle()  # which series of the folder is on screen
    study = window.study_panel.tree.topLevelItem(1)
    dates = [study.child(i).text(1) for i in range(study.childCount()) if study.child(i).text(0) == "Date"]
    assert dates and dates[0][4] == "-" and dates[0][7] == "-"  # DICOM's YYYYMMDD shown as a date
    window.tag_browser.search.setText("modality")
    assert window.tag_browser.visible_keywords() == ["Modality"]
    window.tag_browser.search.setText("")
    assert len(window.tag_browser.visible_keywords()) > 20
    # The header listed is that of the slice at the crosshair, and follows it while the panel shows.
    tags = window.tag_browser
    tags.parentWidget().parentWidget().setCurrentWidget(tags)  # the "DICOM tags" tab
    tags.search.setText("InstanceNumber")

    def instance() -> str:
        return next(r.value for r in tags.rows if r.keyword == "InstanceNumber")

    for k in (0, 3):
        i, j, _ = window.session.image.grid.to_source(window.session.cursor)
        window.session.set_cursor(window.session.image.grid.to_canonical((i, j, k)))
        assert f"slice {k + 1} of 5, at the crosshair" in tags.note.text()
        assert Path(tags.note.toolTip()) == Path(v.meta["source_files"][k])
    assert instance() != next(r.value for r in read_tags(v.meta["source_files"][0]) if r.keyword == "InstanceNumber")
    assert tags.visible_keywords() == ["InstanceNumber"]  # the search stays


def test_dicomdir_opens(window, qtbot, tmp_path):
    from pydicom.fileset import FileSet

    vol = phantom((8, 7, 4), seed=3)
    fs = FileSet()
    for p in write_series(tmp_path / "src", vol, axial_affine()):
        fs.add(pydicom.dcmread(p))
    fs.write(tmp_path / "media")
    window.open_path(tmp_path / "media" / "DICOMDIR")
    wait_idle(qtbot, window)
    assert window.last_error is None
    np.testing.assert_array_equal(window.session.volume.array, vol)


def test_drop_opens_the_file(window, qtbot, ct_file):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ct_file))])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(event)
    wait_idle(qtbot, window)
    assert window.session.volume is not None and window.session.volume.shape == (48, 40, 24)


def test_two_files_dropped_open_the_first_and_say_so(window, qtbot, ct_file, tmp_path):
    other = tmp_path / "other.nii.gz"
    other.write_bytes(ct_file.read_bytes())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(ct_file)), QUrl.fromLocalFile(str(other))])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(event)
    wait_idle(qtbot, window)
    assert window.session.volume is not None
    # Said once the scan is on screen, where the jobs before it no longer clear it.
    assert "2 files dropped; ct.nii.gz is opened" in window.statusBar().currentMessage()


def test_the_slices_of_a_dicom_series_dropped_together_open_the_series(window, qtbot, tmp_path):
    """Dragged from a file browser, a series is its files: the first alone was one slice, said nowhere."""
    from tests.dicom_factory import axial_affine, phantom, write_series

    vol = phantom((20, 18, 12))
    paths = write_series(tmp_path / "series", vol, axial_affine((1.0, 1.0, 2.0)), modality="MR")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(event)
    wait_idle(qtbot, window)
    assert window.last_error is None
    assert window.session.volume.shape == (20, 18, 12)
    assert "12 files dropped from one folder" in window.statusBar().currentMessage()


def test_bad_file_gives_a_dialog_that_says_what_to_do(window, qtbot, tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"this is not a nifti file")
    window.open_path(bad)
    wait_idle(qtbot, window)
    box = window.last_error
    assert box is not None and box.isVisible()
    assert "broken.nii.gz" in box.text() and "Traceback" not in box.text()
    assert window.session.volume is None
    box.accept()


@pytest.mark.qt_no_exception_capture
def test_unexpected_exception_in_a_slot_is_a_dialog_not_a_crash(window, qtbot):
    from PySide6.QtCore import QTimer

    def boom():
        raise RuntimeError("simulated bug")

    QTimer.singleShot(0, boom)
    from PySide6.QtWidgets import QApplication, QMessageBox

    qtbot.waitUntil(
        lambda: any(isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets()), timeout=5000
    )
    box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
    assert "simulated bug" in box.text() and "log file" in box.text() and "Traceback" not in box.text()
    box.accept()
    assert window.isVisible()


def test_long_job_shows_progress_and_cancels(window, qtbot):
    started = threading.Event()

    def slow(progress, cancel):
        started.set()
        for n in range(1000):
            progress(n / 1000, "working")
            if cancel.wait(0.01):
                from medae.errors import CancelledError

                raise CancelledError()
        return "finished"

    got = []
    window.run_job("slow", slow, got.append, "testing")
    assert started.wait(5)
    qtbot.waitUntil(lambda: window.progress.value() > 0, timeout=5000)
    assert window.cancel_button.isVisible()
    qtbot.waitUntil(lambda: "left" in window.progress_label.text(), timeout=8000)  # time estimate
    assert window.progress_label.text().startswith("working")
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert got == [] and window.last_error is None
    assert not window.cancel_button.isVisible()
    assert "Cancelled" in window.statusBar().currentMessage()


def test_4d_file_asks_which_volume(window, qtbot, tmp_path):
    import nibabel as nib

    data = np.stack([np.full((8, 9, 10), 100 * (t + 1), np.int16) for t in range(3)], axis=-1)
    data[2, 3, 4, :] = 7  # a landmark: the volumes differ only in their level
    path = tmp_path / "series4d.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), path)
    window.open_path(path)
    qtbot.waitUntil(lambda: window.volume_picker is not None, timeout=30_000)
    dlg = window.volume_picker
    assert "3 volumes" in dlg.labelText() and (dlg.intMinimum(), dlg.intMaximum()) == (1, 3)  # counted from 1
    dlg.setIntValue(3)
    dlg.accept()
    wait_idle(qtbot, window)
    assert window.last_error is None, window.last_error and window.last_error.text()
    v = window.session.volume
    assert v.shape == (8, 9, 10) and v.meta["volume_index"] == 2
    assert v.array[0, 0, 0] == 300 and v.array[2, 3, 4] == 7
    rows = {
        window.study_panel.tree.topLevelItem(2).child(i).text(0): window.study_panel.tree.topLevelItem(2)
        .child(i)
        .text(1)
        for i in range(window.study_panel.tree.topLevelItem(2).childCount())
    }
    assert rows["Volume"] == "3 of 3"
    assert "volume 3 of 3" in window.windowTitle()
    # Stepping through the volumes keeps the place looked at, the window and the zoom.
    from medae.viewer.windowing import Window

    window.session.set_cursor((1, 2, 3))
    window.session.set_window(Window(150.0, 40.0))
    window.session.set_view_state("axial", zoom=3.0)
    assert window.actions_by_name["previous_volume"].isEnabled()
    window.handle_key("[")
    wait_idle(qtbot, window)
    v = window.session.volume
    assert v.meta["volume_index"] == 1 and v.array[0, 0, 0] == 200
    assert window.session.cursor == (1, 2, 3) and window.session.window == Window(150.0, 40.0)
    assert window.session.view_state("axial").zoom == 3.0
    assert "volume 2 of 3" in window.windowTitle()
    window.actions_by_name["previous_volume"].trigger()
    wait_idle(qtbot, window)
    assert window.session.volume.meta["volume_index"] == 0
    window.handle_key("[")  # no volume before the first: it stays, and says so
    wait_idle(qtbot, window)
    assert window.session.volume.meta["volume_index"] == 0 and "first" in window.statusBar().currentMessage()


def test_volume_keys_do_nothing_on_a_3d_scan(window, qtbot, ct_file):
    window.open_path(ct_file)
    wait_idle(qtbot, window)
    assert not window.actions_by_name["next_volume"].isEnabled()
    before = window.session.volume
    window.handle_key("]")
    wait_idle(qtbot, window)
    assert window.session.volume is before and "not one of several volumes" in window.statusBar().currentMessage()


def test_file_dialogs_start_where_the_user_was_not_in_the_working_folder(window, tmp_path, ct_file):
    from medae.gui.exports import default_name
    from medae.gui.settings import add_recent, last_folder, remember_folder

    assert last_folder("open") == str(Path.home()) and last_folder("export") == str(Path.home())
    add_recent(str(ct_file))
    assert last_folder("open") == str(ct_file.resolve().parent)  # the newest recent file's folder
    studies = tmp_path / "studies"
    studies.mkdir()
    remember_folder("export", studies)
    assert last_folder("export") == str(studies) and last_folder("open") == str(ct_file.resolve().parent)
    studies.rmdir()
    assert last_folder("export") == str(Path.home())  # a folder since removed is not offered

    from medae.volume import Volume

    vol = Volume(np.zeros((2, 2, 2), np.int16), np.eye(4), "MR", source="/data/sub-01_T1w.nii.gz")
    assert default_name(vol, "heatmap_nifti", ".nii.gz") == "sub-01_T1w-heatmap-nifti.nii.gz"
    assert default_name(None, "screenshot", ".png") == "medae-screenshot.png"


def test_brackets_step_through_the_parts_of_a_split_dicom_series(window, qtbot, tmp_path):
    from pydicom.uid import generate_uid

    uid = generate_uid()
    vol = np.abs(phantom((12, 10, 8), seed=3)).astype(np.int16)
    for t in (1, 2, 3):  # a dynamic series: three time points under one SeriesInstanceUID
        write_series(
            tmp_path / "dyn", vol + 100 * t, axial_affine(), modality="MR", series_uid=uid, prefix=f"t{t}_",
            edit=lambda ds, k, t=t: setattr(ds, "TemporalPositionIdentifier", t), description="dynamic",
        )  # fmt: skip
    window.open_path(tmp_path / "dyn")
    qtbot.waitUntil(lambda: window.series_picker is not None, timeout=30_000)
    wait_idle(qtbot, window)
    picker = window.series_picker
    first = next(r for r, info in enumerate(picker.infos) if "time point 1" in info.description)
    picker.table.selectRow(first)
    window.series_picker.accept()
    wait_idle(qtbot, window)
    s = window.session
    assert "time point 1" in window.windowTitle() and window.actions_by_name["next_volume"].isEnabled()
    s.set_cursor((2, 3, 4))
    window.handle_key("]")
    wait_idle(qtbot, window)
    assert "time point 2" in window.windowTitle() and s.cursor == (2, 3, 4)
    assert int(s.volume.array.min()) == int(vol.min()) + 200
    window.handle_key("]")
    wait_idle(qtbot, window)
    window.handle_key("]")  # past the last part: it stays, and says so
    wait_idle(qtbot, window)
    assert "time point 3" in window.windowTitle() and "last" in window.statusBar().currentMessage()


def test_brackets_pressed_fast_add_up(window, qtbot, tmp_path):
    import nibabel as nib

    data = np.stack([np.full((8, 9, 10), 100 * (t + 1), np.int16) for t in range(5)], axis=-1)
    path = tmp_path / "five.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    window.open_path(path)
    qtbot.waitUntil(lambda: window.volume_picker is not None, timeout=30_000)
    window.volume_picker.accept()
    wait_idle(qtbot, window)
    for _ in range(3):  # without waiting for each volume to appear, as a held key does
        window.handle_key("]")
    wait_idle(qtbot, window)
    assert window.session.volume.meta["volume_index"] == 3


def test_analyze_asked_for_while_reading_a_folder_is_dropped_when_its_picker_is_closed(window, qtbot, tmp_path):
    ct = phantom((12, 10, 6), seed=1)
    mr = np.abs(phantom((10, 10, 5), seed=2)).astype(np.int16)
    write_series(tmp_path / "study" / "a", ct, axial_affine(), modality="CT", series_number=1)
    write_series(tmp_path / "study" / "b", mr, axial_affine(), modality="MR", series_number=2)
    window.open_path(tmp_path / "study")
    window.start_analysis()  # while the folder is read: meant for the series about to be chosen
    assert window._analyze_after_open is not None
    qtbot.waitUntil(lambda: window.series_picker is not None, timeout=30_000)
    window.series_picker.reject()  # no series chosen after all
    assert window._analyze_after_open is None
    assert "not analysed" in window.statusBar().currentMessage()


def test_cancelling_a_slow_load_keeps_the_scan_on_screen(window, qtbot, ct_file, tmp_path, monkeypatch):
    # A single file is read in one library call that cannot stop midway; its result must not replace the scan.
    import shutil

    import medae.io.loader

    window.open_path(ct_file)
    wait_idle(qtbot, window)
    shown = window.session.volume
    other = tmp_path / "other.nii.gz"
    shutil.copy(ct_file, other)
    reading, release = threading.Event(), threading.Event()
    real = medae.io.loader._load_file

    def slow(path, index):
        reading.set()
        release.wait(10)
        return real(path, index)

    monkeypatch.setattr(medae.io.loader, "_load_file", slow)
    window.open_path(other)
    qtbot.waitUntil(reading.is_set, timeout=10_000)
    window.cancel_jobs()
    release.set()
    wait_idle(qtbot, window)
    assert window.session.volume is shown and window.last_error is None
    assert window.statusBar().currentMessage().startswith("Cancelled loading")

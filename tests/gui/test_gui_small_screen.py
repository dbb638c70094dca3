"""A small or scaled screen: every panel and button of the window and its dialogs lies on it."""

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QScreen

from tests.gui.conftest import wait_idle

#: A 1024 x 768 screen at 200 % (QT_SCALE_FACTOR=2), in the logical pixels the widgets are laid out in.
SCALED_SMALL = QRect(0, 0, 512, 384)


def test_on_a_screen_too_narrow_for_the_panels_side_by_side_they_share_one_column(qtbot, monkeypatch, ct_file):
    from medae.gui.main_window import MainWindow
    from medae.gui.settings import Preferences

    monkeypatch.setattr(QScreen, "availableGeometry", lambda _screen: SCALED_SMALL)
    w = MainWindow(Preferences())
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    analysis, study = (next(d for d in w.docks if d.objectName() == f"dock-{n}") for n in ("Analysis", "Study"))
    # Side by side, the least widths of the two panels and the views made the window wider than the screen:
    # the Analysis panel and the status bar's Cancel lay beyond its right edge.
    qtbot.waitUntil(lambda: w.frameGeometry().width() <= SCALED_SMALL.width())
    assert study in w.tabifiedDockWidgets(analysis)
    assert not analysis.visibleRegion().isEmpty()  # the panel of the analysis is the tab on top
    w.open_path(ct_file)
    wait_idle(qtbot, w)
    assert w.minimumSizeHint().width() <= SCALED_SMALL.width()


def _on_screen(dialog, room: QRect) -> bool:
    return dialog.frameGeometry().width() <= room.width() and dialog.frameGeometry().height() <= room.height()


def test_the_series_picker_and_the_preferences_fit_a_small_scaled_screen(window, qtbot, monkeypatch):
    from types import SimpleNamespace

    from medae.gui.dialogs import PreferencesDialog, SeriesPicker

    room = SCALED_SMALL
    monkeypatch.setattr(QScreen, "availableGeometry", lambda _screen: room)
    info = SimpleNamespace(
        extra={
            "series_number": 3,
            "patient_name": "Synthetic-Longfamilyname^Testpatient Withmiddlename",
            "patient_id": "ID0001",
        },
        modality="CT",
        description="chest CT with contrast, arterial phase, 1.25 mm soft tissue kernel",
        shape=(512, 512, 300),
        spacing=(0.7, 0.7, 1.25),
        n_files=300,
        warnings=[],
    )
    # Before, both opened wider than the screen: the picker's Cancel and the preferences' OK lay beyond its edge.
    for dialog in (SeriesPicker([info, info], window), PreferencesDialog(window.shown_preferences(), window)):
        qtbot.addWidget(dialog)
        dialog.show()
        qtbot.waitExposed(dialog)
        assert _on_screen(dialog, room), (type(dialog).__name__, dialog.frameGeometry())


def test_the_about_box_fits_a_small_scaled_screen(window, qtbot, monkeypatch):
    from medae.gui.dialogs import AboutDialog

    room = SCALED_SMALL
    monkeypatch.setattr(QScreen, "availableGeometry", lambda _screen: room)
    window.actions_by_name["about"].trigger()
    # Before, a message box 492 pixels tall, its OK below the screen's edge; now the text scrolls above Close.
    (box,) = window.findChildren(AboutDialog)
    qtbot.waitExposed(box)
    assert _on_screen(box, room), box.frameGeometry()
    assert "McConnell Brain Imaging Centre" in box.text.toPlainText()
    qtbot.keyClick(box.focusWidget() or box, Qt.Key.Key_Return)  # closed from the keyboard, as a message box
    qtbot.waitUntil(lambda: not window.findChildren(AboutDialog))


def test_the_volume_picker_of_a_4d_file_with_a_long_name_fits_a_small_scaled_screen(
    window, qtbot, tmp_path, monkeypatch
):
    import nibabel as nib
    import numpy as np

    monkeypatch.setattr(QScreen, "availableGeometry", lambda _screen: SCALED_SMALL)
    name = "sub-0001_ses-baseline_task-rest_acq-multiband_dir-AP_run-01_bold_desc-preproc_space-native.nii.gz"
    data = np.stack([np.full((8, 9, 10), 100 * (t + 1), np.int16) for t in range(40)], axis=-1)
    nib.save(nib.Nifti1Image(data, np.diag([3.0, 3.0, 5.0, 1.0])), tmp_path / name)
    window.open_path(tmp_path / name)
    qtbot.waitUntil(lambda: window.volume_picker is not None, timeout=30_000)
    dialog = window.volume_picker
    qtbot.waitExposed(dialog)
    # Before, the file's name on one line made it 958 pixels wide, its OK and Cancel far beyond the screen's edge.
    assert _on_screen(dialog, SCALED_SMALL), dialog.frameGeometry()
    assert "40 volumes" in dialog.labelText() and "sub-0001" in dialog.labelText()
    dialog.setIntValue(40)
    dialog.accept()
    wait_idle(qtbot, window)
    assert window.session.volume.meta["volume_index"] == 39 and name in window.windowTitle()


def test_a_recent_file_with_a_long_name_leaves_the_menu_narrower_than_a_small_scaled_screen(
    window, tmp_path, monkeypatch
):
    import shutil

    from medae.gui import menus
    from medae.gui.settings import add_recent

    monkeypatch.setattr(QScreen, "availableGeometry", lambda _screen: SCALED_SMALL)
    long = (
        tmp_path / "sub-0001_ses-baseline_acq-mprage_run-01_desc-preprocessed_space-native_T1w_exported&renamed.nii.gz"
    )
    shutil.copy(__file__, long)  # any file: the menu lists paths that exist
    add_recent(long)
    menus.refresh_recent(window)
    (action,) = window.recent_menu.actions()
    # Before, the menu was 900 pixels wide, the name on one line; its middle now gives way (the tooltip has it all),
    # and an ampersand in it is shown, not taken for the mark of an access key.
    assert window.recent_menu.sizeHint().width() <= SCALED_SMALL.width()
    assert action.toolTip() == str(long.resolve()) and "&&" in action.text() and "..." in action.text()

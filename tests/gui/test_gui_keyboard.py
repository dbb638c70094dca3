"""Keyboard-only reading: what Tab reaches is what the keys then act on."""

from PySide6.QtCore import Qt


def test_the_slice_keys_move_the_view_tab_put_the_focus_on(opened, qtbot):
    s = opened.session
    axial, coronal = opened.view_area.view("axial"), opened.view_area.view("coronal")
    opened.activateWindow()
    axial.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.keyClick(axial, Qt.Key.Key_Tab)
    assert coronal.hasFocus()  # the coronal view has the focus frame: the keys are meant for it
    j, k = s.cursor[1], s.cursor[2]
    qtbot.keyClick(coronal, Qt.Key.Key_Up)
    assert (s.cursor[1], s.cursor[2]) == (j + 1, k)

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


def test_keys_zoom_and_pan_the_view_with_the_focus_frame(opened, qtbot):
    s = opened.session
    s.link_zoom = False
    axial, coronal = opened.view_area.view("axial"), opened.view_area.view("coronal")
    opened.activateWindow()
    coronal.setFocus(Qt.FocusReason.TabFocusReason)
    cursor = s.cursor
    at = coronal.voxel_to_widget(cursor)
    qtbot.keyClick(coronal, Qt.Key.Key_Plus)
    qtbot.keyClick(coronal, Qt.Key.Key_Equal)  # + unshifted, on layouts where + needs Shift
    assert abs(s.view_state("coronal").zoom - 1.25**2) < 1e-9
    assert s.view_state("axial").zoom == 1.0  # only the view with the focus frame
    # About the crosshair: the point being read stays where it was on screen.
    after = coronal.voxel_to_widget(cursor)
    assert abs(after.x() - at.x()) < 0.5 and abs(after.y() - at.y()) < 0.5
    qtbot.keyClick(coronal, Qt.Key.Key_Minus)
    assert abs(s.view_state("coronal").zoom - 1.25) < 1e-9
    # Shift+arrows pan (the plain arrows step slices): Shift+Right shows more of the right, so the slice moves left.
    qtbot.keyClick(coronal, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert s.cursor == cursor
    moved = coronal.voxel_to_widget(cursor)
    assert moved.x() < at.x() - 5 and abs(moved.y() - at.y()) < 0.5
    qtbot.keyClick(coronal, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert coronal.voxel_to_widget(cursor).y() < at.y() - 5
    assert s.view_state("axial").pan == (0.0, 0.0)
    qtbot.keyClick(coronal, Qt.Key.Key_Space)  # fits the views again
    assert s.view_state("coronal").zoom == 1.0 and s.view_state("coronal").pan == (0.0, 0.0)
    axial.setFocus(Qt.FocusReason.TabFocusReason)
    opened.actions_by_name["zoom_in"].trigger()  # View > Zoom in, Ctrl++
    assert abs(s.view_state("axial").zoom - 1.25) < 1e-9 and s.view_state("coronal").zoom == 1.0


def test_the_zoom_and_pan_keys_are_listed_in_help_keys_and_mouse(opened):
    from PySide6.QtWidgets import QTableWidget

    from medae.gui import menus
    from medae.gui.dialogs import KeysDialog

    menus._keys_help(opened)
    dialog = opened.findChild(KeysDialog)
    table = dialog.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    dialog.close()
    assert "zoom in" in rows["+"] and "zoom in" in rows["="] and "zoom out" in rows["-"]
    assert all("pan" in rows[f"Shift+{arrow}"] for arrow in ("Left", "Right", "Up", "Down"))
    assert any(text.startswith("Zoom in") for text in rows.values())  # the menu command, with its Ctrl shortcut

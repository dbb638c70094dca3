"""Mouse and keys through the real widgets: window/level, pan, zoom, scroll, crosshair, presets, layouts."""

import dataclasses
import re

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QAction, QWheelEvent
from PySide6.QtWidgets import QApplication

from medae.viewer.windowing import Window
from tests.gui.conftest import wait_idle


def drag(qtbot, view, button, start, end, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mousePress(view, button, modifier, start)
    steps = 6
    for n in range(1, steps + 1):
        pos = start + (end - start) * n / steps
        qtbot.mouseMove(view, pos)
        # QTest.mouseMove does not carry buttons; deliver a real move event with the button held.
        from PySide6.QtGui import QMouseEvent

        ev = QMouseEvent(
            QMouseEvent.Type.MouseMove,
            QPointF(pos),
            QPointF(view.mapToGlobal(pos)),
            Qt.MouseButton.NoButton,
            button,
            modifier,
        )
        QApplication.sendEvent(view, ev)
    qtbot.mouseRelease(view, button, modifier, end)


def centre(view):
    return QPoint(view.width() // 2, view.height() // 2)


def wheel(view, at: QPoint, notches: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """Turns the mouse wheel over ``view`` at ``at`` by whole notches (120 units each)."""
    event = QWheelEvent(
        QPointF(at),
        QPointF(view.mapToGlobal(at)),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        modifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view, event)


def test_left_drag_is_window_level(opened, qtbot):
    view = opened.view_area.view("axial")
    before = opened.session.window
    drag(qtbot, view, Qt.MouseButton.LeftButton, centre(view), centre(view) + QPoint(40, 20))
    after = opened.session.window
    assert after.width > before.width and after.center > before.center


def test_middle_drag_pans_right_drag_zooms(opened, qtbot):
    view = opened.view_area.view("coronal")
    drag(qtbot, view, Qt.MouseButton.MiddleButton, centre(view), centre(view) + QPoint(30, 0))
    assert opened.session.view_state("coronal").pan[0] > 0
    opened.actions_by_name["link_zoom"].trigger()  # unlinked: the other planes keep theirs
    assert not opened.session.link_zoom
    drag(qtbot, view, Qt.MouseButton.RightButton, centre(view), centre(view) + QPoint(0, -60))
    assert opened.session.view_state("coronal").zoom > 1.2
    assert opened.session.view_state("axial").zoom == 1.0


def test_zoom_is_linked_across_views_about_the_crosshair(opened, qtbot):
    s = opened.session
    assert s.link_zoom and opened.actions_by_name["link_zoom"].isChecked()
    s.set_cursor((4, 6, 3))  # off the centre, so keeping it put takes a pan
    others = {p: opened.view_area.view(p) for p in ("axial", "sagittal")}
    seen = {p: v.voxel_to_widget(s.cursor) for p, v in others.items()}
    view = opened.view_area.view("coronal")
    drag(qtbot, view, Qt.MouseButton.RightButton, centre(view), centre(view) + QPoint(0, -60))
    factor = s.view_state("coronal").zoom
    assert factor > 1.2
    for plane, other in others.items():
        assert s.view_state(plane).zoom == pytest.approx(factor)
        assert s.view_state(plane).pan != (0.0, 0.0)
        at = other.voxel_to_widget(s.cursor)  # the crosshair stays where the reader saw it
        assert (at.x(), at.y()) == pytest.approx((seen[plane].x(), seen[plane].y()), abs=1e-6)
    # The other convention mirrors the views: the crosshair mirrors with them, it does not leave the view.
    before = {p: opened.view_area.view(p).voxel_to_widget(s.cursor) for p in ("axial", "coronal", "sagittal")}
    s.convention = "neurological" if s.convention == "radiological" else "radiological"
    for plane, was in before.items():
        view = opened.view_area.view(plane)
        at = view.voxel_to_widget(s.cursor)
        mirrored = plane != "sagittal"
        want = view.width() - was.x() if mirrored else was.x()
        assert (at.x(), at.y()) == pytest.approx((want, was.y()), abs=1.0), plane


def test_click_moves_the_linked_crosshair(opened, qtbot):
    view = opened.view_area.view("axial")
    s = opened.session
    target = view.voxel_to_widget((5, 7, s.cursor[2]))
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=target.toPoint())
    assert s.cursor[:2] == (5, 7)
    # Every view follows: the coronal view now shows slice j = 7.
    assert opened.view_area.view("coronal").widget_to_voxel(QPointF(1, 1))[1] == 7


def test_wheel_scrolls_slices(opened, qtbot):
    view = opened.view_area.view("axial")
    k = opened.session.cursor[2]
    wheel(view, centre(view), 2)
    assert opened.session.cursor[2] == k + 2


def test_research_binding_left_click_and_drag_set_crosshair(opened, qtbot):
    opened.session.mouse_scheme = "research"
    view = opened.view_area.view("axial")
    before = opened.session.window
    s = opened.session
    drag(
        qtbot,
        view,
        Qt.MouseButton.LeftButton,
        view.voxel_to_widget((10, 10, s.cursor[2])).toPoint(),
        view.voxel_to_widget((20, 12, s.cursor[2])).toPoint(),
    )
    assert s.cursor[:2] == (20, 12) and s.window == before
    drag(
        qtbot,
        view,
        Qt.MouseButton.LeftButton,
        centre(view),
        centre(view) + QPoint(30, 0),
        Qt.KeyboardModifier.ControlModifier,
    )
    assert s.window.width > before.width


def test_hover_readout_shows_hu_index_and_position(opened, qtbot):
    view = opened.view_area.view("axial")
    s = opened.session
    pos = view.voxel_to_widget((s.image.grid.to_canonical((32, 20, s.cursor[2]))[0], 20, s.cursor[2]))
    qtbot.mouseMove(view, pos.toPoint())
    text = opened.readout.text()
    assert "HU" in text and "voxel (" in text and "RAS (" in text
    # The slice changes under the resting pointer (a key): the read-out describes the new slice.
    k = s.image.grid.to_source(s.cursor)[2]
    opened.handle_key("Up")
    assert s.image.grid.to_source(s.cursor)[2] != k
    assert f", {s.image.grid.to_source(s.cursor)[2]})" in opened.readout.text() and opened.readout.text() != text


def test_keys(opened, qtbot):
    s = opened.session
    view = opened.view_area.view("axial")
    view.setFocus()
    k = s.cursor[2]
    qtbot.keyClick(opened, Qt.Key.Key_Up)
    qtbot.keyClick(opened, Qt.Key.Key_PageUp)
    assert s.cursor[2] == min(k + 11, 23)
    qtbot.keyClick(opened, Qt.Key.Key_PageDown)
    qtbot.keyClick(opened, Qt.Key.Key_Down)
    assert s.cursor[2] == k
    qtbot.keyClick(opened, Qt.Key.Key_4)
    assert s.window == Window(-600, 1500)
    qtbot.keyClick(opened, Qt.Key.Key_7)
    assert s.window == Window(400, 2000)
    qtbot.keyClick(opened, Qt.Key.Key_I)
    assert s.invert
    s.set_view_state("axial", zoom=3.0)
    here = s.cursor
    qtbot.keyClick(opened, Qt.Key.Key_Space)  # fits the views; slice and window stay
    assert s.view_state("axial").zoom == 1.0 and s.window == Window(400, 2000) and s.cursor == here
    qtbot.keyClick(opened, Qt.Key.Key_0)
    assert s.window == Window(40, 400)


def test_arrow_keys_scroll_the_view_last_used(opened, qtbot):
    s = opened.session
    cor = opened.view_area.view("coronal")
    qtbot.mouseClick(cor, Qt.MouseButton.LeftButton, pos=centre(cor))
    j = s.cursor[1]
    qtbot.keyClick(opened, Qt.Key.Key_Up)
    assert s.cursor[1] == j + 1


def test_layouts_and_convention(opened, qtbot):
    s = opened.session
    opened.actions_by_name["layout_single"].trigger()
    assert len(opened.view_area.views) == 1
    opened.actions_by_name["layout_2x2"].trigger()
    assert len(opened.view_area.views) == 4
    before = list(opened.view_area.views)
    opened.actions_by_name["layout_1x3"].trigger()
    assert len(opened.view_area.views) == 3
    # Views of the old layout are gone from the screen at once, not left to paint under the new one's gaps.
    assert not any(v.isVisible() for v in before)
    host = opened.view_area.grid_host.grab().toImage()
    gap = opened.view_area.views[0].geometry().right() + 1
    assert {host.pixelColor(gap, y).name() for y in range(0, host.height(), 7)} == {"#000000"}
    opened.actions_by_name["conv_neurological"].trigger()
    assert s.convention == "neurological"
    from medae.viewer.planes import orientation_labels, plane_spec

    assert orientation_labels(plane_spec("axial", s.convention), s.image.grid.affine)["left"] == "L"


def test_preferences_and_geometry_persist(window, qtbot):
    from medae.gui.main_window import MainWindow
    from medae.gui.settings import Preferences, load_preferences

    window.apply_preferences(
        Preferences(
            mouse_scheme="research",
            convention="neurological",
            layout="2x2",
            colormap="viridis",
            opacity=0.3,
            link_zoom=False,
        )
    )
    assert not window.session.link_zoom and not window.shown_preferences().link_zoom
    window.resize(700, 500)  # inside the offscreen screen, which restoreGeometry respects
    qtbot.waitUntil(lambda: window.height() == 500)
    size = window.size()
    window.close()
    prefs = load_preferences()
    assert (prefs.mouse_scheme, prefs.convention, prefs.layout, prefs.colormap) == (
        "research",
        "neurological",
        "2x2",
        "viridis",
    )
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.session.mouse_scheme == "research" and again.session.layout == "2x2"
    assert not again.session.link_zoom and not again.actions_by_name["link_zoom"].isChecked()
    assert again.size() == size


def test_a_layout_and_convention_chosen_from_the_view_menu_come_back_at_the_next_start(window, qtbot, tmp_path):
    from medae.gui.main_window import MainWindow

    window.actions_by_name["layout_2x2"].trigger()
    window.actions_by_name["conv_neurological"].trigger()
    assert window.session.layout == "2x2"
    window.close()
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.session.layout == "2x2" and again.session.convention == "neurological"
    assert again.actions_by_name["layout_2x2"].isChecked()
    # A view enlarged by a double-click when the window closes is not the layout to come back to.
    again.view_area.toggle_enlarged("axial")
    assert again.session.layout == "single"
    again.close()
    third = MainWindow()
    qtbot.addWidget(third)
    assert third.session.layout == "2x2"
    # ... and the recent files name their folder when two share a name.
    from medae.gui.settings import add_recent

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "t1.nii.gz").write_bytes(b"x")
        add_recent(str(tmp_path / folder / "t1.nii.gz"))
    from medae.gui import menus

    menus.refresh_recent(third)
    texts = [a.text() for a in third.recent_menu.actions()]
    assert "t1.nii.gz  (a)" in texts and "t1.nii.gz  (b)" in texts


def test_a_broken_saved_preference_falls_back_to_its_default_and_the_viewer_starts(qtbot):
    from medae.gui.main_window import MainWindow
    from medae.gui.settings import Preferences, load_preferences, settings

    store = settings()
    garbage = {
        "mouse_scheme": "garbage",
        "convention": "upside-down",
        "layout": "9x9",
        "colormap": "nope",
        "device": "tpu",
    }
    for name, value in {**garbage, "opacity": "nan", "link_zoom": "false"}.items():
        store.setValue(f"prefs/{name}", value)
    store.sync()
    prefs = load_preferences()
    defaults = Preferences()
    assert all(getattr(prefs, name) == getattr(defaults, name) for name in [*garbage, "opacity"])
    assert prefs.link_zoom is False  # a good value beside them is kept
    window = MainWindow()  # as a start reads them: it must open
    qtbot.addWidget(window)
    assert window.session.layout == defaults.layout and window.session.style.colormap == defaults.colormap


def test_preferences_dialog_switches_to_research_binding(window, qtbot):
    from medae.gui.dialogs import KeysDialog, PreferencesDialog

    window.actions_by_name["prefs"].trigger()
    dlg = window.findChild(PreferencesDialog)
    assert dlg is not None and dlg.isVisible()
    dlg.mouse.setCurrentIndex(dlg.mouse.findData("research"))
    dlg.convention.setCurrentText("neurological")
    dlg.accept()
    assert window.session.mouse_scheme == "research" and window.session.convention == "neurological"
    from PySide6.QtWidgets import QTableWidget

    keys = KeysDialog(window.session.mouse_scheme, window)

    table = keys.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["left drag"] == "crosshair" and rows["H"] == "show/hide heatmap" and rows["wheel"] == "scroll slices"


def test_preferences_ok_applies_only_what_was_changed_in_the_dialog(window, qtbot):
    from medae.gui.dialogs import PreferencesDialog

    s = window.session
    # Set on screen since the start: the dialog's defaults must not undo them.
    s.layout, s.convention = "2x2", "neurological"
    s.set_style(colormap="inferno", opacity=0.3)
    window.actions_by_name["prefs"].trigger()
    dlg = window.findChild(PreferencesDialog)
    # The dialog shows what is on screen, not the defaults saved before.
    assert (dlg.layout_box.currentText(), dlg.convention.currentText(), dlg.colormap.currentText()) == (
        "2x2",
        "neurological",
        "inferno",
    )
    dlg.mouse.setCurrentIndex(dlg.mouse.findData("research"))
    dlg.opacity.setValue(0.6)  # the saved default, but not what is on screen: a change
    dlg.accept()
    assert s.mouse_scheme == "research" and s.style.opacity == 0.6
    assert (s.layout, s.convention, s.style.colormap) == ("2x2", "neurological", "inferno")
    assert window.prefs.layout == "2x2" and window.prefs.mouse_scheme == "research"


def test_key_help_lists_menu_shortcuts_and_the_presets_of_the_scan_on_screen(window, qtbot, ct_file):
    from PySide6.QtWidgets import QTableWidget

    from medae.gui.dialogs import KeysDialog

    window.open_path(ct_file)
    wait_idle(qtbot, window)
    help_action = next(a for a in window.findChildren(QAction) if a.text() == "&Keys and mouse")
    help_action.trigger()
    dlg = window.findChild(KeysDialog)
    table = dlg.findChild(QTableWidget)
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Ctrl+R"] == "Analyze" and rows["Esc"] == "Cancel" and rows["C"].startswith("Compare")
    assert rows["F1"] == "Keys and mouse" and rows["Ctrl+Q"] == "Quit"
    names = [p.name for p in window.session.presets()]
    assert rows["1"] == f"window preset: {names[0]}"
    assert str(len(names) + 1) not in rows  # keys past the last preset do nothing, so they are not listed


def test_closed_panels_come_back_from_the_view_menu(window, qtbot):
    dock = window.docks[0]
    dock.close()
    assert not dock.isVisible()
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    panels = next(a.menu() for a in view.actions() if a.menu() is not None and a.text().replace("&", "") == "Panels")
    toggle = next(a for a in panels.actions() if a.text() == dock.windowTitle())
    toggle.trigger()
    assert dock.isVisible()


def _panels(window):
    return sum(d.width() for d in window.docks if d.isVisible())


def _full_size(window, qtbot) -> list[int]:
    """The window made large; the panels' widths there."""
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: window.width() == 1600)
    qtbot.wait(50)
    return [d.width() for d in window.docks]


def test_on_a_small_window_the_panels_give_way_to_the_scan(window, qtbot):
    from medae.gui.window_state import PANELS_SHARE

    natural = _full_size(window, qtbot)
    window.resize(900, 600)
    qtbot.waitUntil(lambda: window.width() == 900 and _panels(window) <= PANELS_SHARE * 900 + 2)
    # Each gave way in proportion, and each gets its width back once the window is large again.
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: [d.width() for d in window.docks] == natural)


def test_a_first_start_on_a_small_screen_leaves_most_of_the_window_to_the_scan(qtbot):
    from medae.gui.main_window import MainWindow
    from medae.gui.settings import Preferences
    from medae.gui.window_state import PANELS_SHARE

    w = MainWindow(Preferences())
    qtbot.addWidget(w)
    w.resize(972, 691)  # a 1024 x 768 screen
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: _panels(w) <= PANELS_SHARE * w.width() + 2)


def test_panels_squeezed_by_a_small_window_are_wide_again_after_a_restart_on_a_large_one(window, qtbot):
    from medae.gui.main_window import MainWindow
    from medae.gui.settings import Preferences

    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: window.width() == 1600)
    qtbot.wait(50)
    natural = {d.objectName(): d.width() for d in window.docks}
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.width() == 800)
    qtbot.wait(50)
    assert {d.objectName(): d.width() for d in window.docks} != natural
    window.close()
    again = MainWindow(Preferences())
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    again.resize(1600, 1000)
    qtbot.waitUntil(lambda: {d.objectName(): d.width() for d in again.docks} == natural)


def _mouse(window, qtbot, start, xs):
    """A left-button press at ``start``, moves ``xs`` pixels to the right of it, and the release at the last."""
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QMouseEvent

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    steps = [(QEvent.Type.MouseButtonPress, xs[0], left, left)]
    steps += [(QEvent.Type.MouseMove, x, none, left) for x in xs[1:]]
    steps += [(QEvent.Type.MouseButtonRelease, xs[-1], left, none)]
    for kind, x, button, held in steps:
        at = start + QPointF(x, 0)
        event = QMouseEvent(kind, at, window.mapToGlobal(at), button, held, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(window, event)
        qtbot.wait(50)  # the main window moves its separators on a timer


def test_a_panel_width_dragged_by_the_user_is_the_one_it_gets_back(window, qtbot):
    from PySide6.QtCore import QPointF

    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: window.width() == 1600)
    qtbot.wait(50)
    study = next(d for d in window.docks if d.objectName() == "dock-Study")
    before = study.width()
    # The separator lies just right of the left panel; drag it 40 px to the right (the panels still within
    # their share of the window).
    _mouse(window, qtbot, QPointF(study.geometry().right() + 2, study.geometry().center().y()), [0, 20, 40])
    qtbot.waitUntil(lambda: study.width() > before + 30)
    assert _panels(window) <= 0.4 * 1600
    dragged = study.width()
    window.resize(800, 600)
    qtbot.waitUntil(lambda: study.width() < dragged)
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: study.width() == dragged)


def test_keys_and_compare_follow_the_plane_worked_in_when_views_are_rebuilt(opened, qtbot):
    coronal = opened.view_area.view("coronal")
    opened.activateWindow()
    qtbot.mouseClick(coronal, Qt.MouseButton.LeftButton, pos=coronal.rect().center())
    qtbot.waitUntil(coronal.hasFocus)
    assert opened.view_area.active_plane == "coronal"
    opened.actions_by_name["layout_2x2"].trigger()
    new = opened.view_area.view("coronal")
    assert new is not coronal and new.hasFocus() and opened.view_area.active_plane == "coronal"
    opened.actions_by_name["layout_1x3"].trigger()
    assert opened.view_area.view("coronal").hasFocus()
    # Compare mode (enabled by an analysis, here by hand) shows the plane worked in.
    opened.actions_by_name["compare"].setEnabled(True)
    opened.actions_by_name["compare"].trigger()
    assert opened.session.single_plane == "coronal"


def test_window_typed_as_numbers_applies_as_typed_and_cancel_puts_it_back(window, opened, qtbot):
    from PySide6.QtWidgets import QDialog

    window.findChild(QAction, "window_dialog").trigger()
    dlg = window.findChild(QDialog, "windowDialog")
    assert dlg is not None and dlg.isVisible()
    start = window.session.window
    assert dlg.level_box.suffix() == " HU" and dlg.level_box.decimals() == 0  # a CT in HU is typed in whole HU
    dlg.level_box.setValue(40)
    dlg.width_box.setValue(80)
    assert window.session.window == Window(40.0, 80.0)  # shown while the dialog is open
    assert dlg.range_label.text() == "0 to 80 HU"
    dlg.reject()
    assert window.session.window == start

    window.findChild(QAction, "window_dialog").trigger()
    dlg = [d for d in window.findChildren(QDialog, "windowDialog") if d.isVisible()][-1]
    dlg.width_box.lineEdit().setText("1500")  # typed without Enter, then OK
    dlg.level_box.selectAll()
    qtbot.keyClicks(dlg.level_box, "-35")
    assert dlg.range_label.text() == "-785 to 715 HU"  # the range follows the digits as they are typed
    dlg.level_box.lineEdit().setText("-600")
    dlg.accept()
    assert window.session.window == Window(-600.0, 1500.0)


def test_window_dialog_is_offered_only_with_a_scan_and_steps_finely_on_scaled_values(window, qtbot, tmp_path):
    import numpy as np

    from medae.gui.window_dialog import WindowDialog
    from medae.io.nifti import save_nifti
    from medae.volume import Volume

    assert not window.findChild(QAction, "window_dialog").isEnabled()
    arr = np.linspace(0.0, 0.004, 32 * 32 * 16, dtype=np.float32).reshape(32, 32, 16)  # an MR scaled to 1e-3
    path = tmp_path / "scaled.nii.gz"
    save_nifti(Volume(arr, np.eye(4), "MR"), path)
    window.open_path(path)
    wait_idle(qtbot, window)
    assert window.findChild(QAction, "window_dialog").isEnabled()
    dlg = WindowDialog(window.session, window)
    assert dlg.level_box.suffix() == "" and dlg.level_box.decimals() >= 5  # 0.004 / 100 must be reachable
    dlg.width_box.setValue(0.001)
    assert window.session.window.width == pytest.approx(0.001)
    dlg.accept()


def test_measure_mode_draws_a_ruler_with_its_length_in_mm(opened, qtbot):
    s = opened.session
    assert opened.actions_by_name["measure"].isEnabled()
    opened.actions_by_name["measure"].trigger()
    assert s.measure.active and opened.actions_by_name["measure"].isChecked()
    axial = opened.view_area.view("axial")
    i, j, k = s.cursor
    a = axial.voxel_to_widget((i - 5, j, k)).toPoint()
    b = axial.voxel_to_widget((i + 5, j, k)).toPoint()
    before = s.window
    drag(qtbot, axial, Qt.MouseButton.LeftButton, a, b)
    assert s.window == before  # the drag measured instead of changing the window
    assert s.measure.ruler is not None and s.measure.ruler.plane == "axial"
    # 10 voxels of 0.8 mm across the screen (within a screen pixel's worth of rounding).
    assert s.measure.ruler.length_mm(s.image.grid.affine) == pytest.approx(8.0, abs=1.0 / axial.pixels_per_mm() + 0.01)
    coronal = opened.view_area.view("coronal")
    a = coronal.voxel_to_widget((i, j, k - 2)).toPoint()
    b = coronal.voxel_to_widget((i, j, k + 2)).toPoint()
    drag(qtbot, coronal, Qt.MouseButton.LeftButton, a, b)
    assert s.measure.ruler.plane == "coronal" and len(s.measure.rulers) == 2  # a new drag adds a ruler
    tolerance = 1.0 / coronal.pixels_per_mm() + 0.01
    assert s.measure.ruler.length_mm(s.image.grid.affine) == pytest.approx(10.0, abs=tolerance)
    # Shift+drag: a circular region, centred where pressed, with the statistics of its voxels.
    centre = axial.voxel_to_widget((i, j, k)).toPoint()
    edge = axial.voxel_to_widget((i + 4, j, k)).toPoint()
    drag(qtbot, axial, Qt.MouseButton.LeftButton, centre, edge, Qt.KeyboardModifier.ShiftModifier)
    circle = s.measure.ruler
    assert circle.kind == "circle" and len(s.measure.rulers) == 3
    assert circle.length_mm(s.image.grid.affine) == pytest.approx(3.2, abs=1.0 / axial.pixels_per_mm() + 0.01)
    assert circle.region_stats(s.image.values, s.image.grid.affine)["voxels"] > 10
    assert s.cursor == (i, j, k)  # the shift-drag measured; it did not move the crosshair
    opened.handle_key("M")
    assert not s.measure.active and not opened.actions_by_name["measure"].isChecked()
    assert len(s.measure.rulers) == 3  # measuring stopped; the rulers stay on the scan
    drag(qtbot, axial, Qt.MouseButton.LeftButton, a, b)
    assert len(s.measure.rulers) == 3 and s.window != before  # left-drag is window/level again
    opened.actions_by_name["clear_measurements"].trigger()
    assert s.measure.rulers == []


def test_arrow_keys_in_the_findings_table_move_the_views(opened, qtbot):
    import numpy as np

    from tests.viewer_fixtures import result_for

    s = opened.session
    one = result_for(s.volume, blob_at=(10, 12, 8), peak=6.0)
    heat = np.zeros_like(one.heatmap.array)
    heat[5:15, 5:15, 4:12] = 6.0  # two regions of about 1 mL, far apart
    heat[25:35, 20:30, 12:20] = 8.0
    two = dataclasses.replace(one, heatmap=s.volume.with_array(heat)).at_threshold(3.0)
    s.set_result(two)
    table = opened.findings_panel.table
    assert len(s.findings) == 2 and table.selectionModel().selectedRows()[0].row() == 0
    table.setFocus()
    qtbot.keyClick(table, Qt.Key.Key_Down)
    assert table.selectionModel().selectedRows()[0].row() == 1
    assert s.result.labels.array[s.image.grid.to_source(s.cursor)] == s.findings[1].label
    qtbot.keyClick(table, Qt.Key.Key_Up)
    assert s.result.labels.array[s.image.grid.to_source(s.cursor)] == s.findings[0].label
    assert np.any(s.result.labels.array == s.findings[1].label)
    # One click on a row moves the views once; a click on the current row, after looking elsewhere,
    # moves them back to it.
    moves = []
    opened.findings_panel.chosen.connect(moves.append)
    rect = table.visualRect(table.model().index(1, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert moves == [1]
    qtbot.wait(10)
    s.set_cursor((0, 0, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert moves == [1, 1] and s.result.labels.array[s.image.grid.to_source(s.cursor)] == s.findings[1].label
    # Findings redrawn with fewer rows (the threshold raised) leave the reader where they are.
    s.set_cursor((0, 0, 0))
    s.set_findings(s.result.at_threshold(7.0))  # only the stronger region stays
    assert len(s.findings) == 1 and s.cursor == (0, 0, 0) and moves == [1, 1]


def test_home_end_and_the_crosshair_toggle(opened, qtbot):
    s = opened.session
    opened.view_area.view("axial").setFocus()
    qtbot.keyClick(opened, Qt.Key.Key_End)
    assert s.cursor[2] == s.slice_count("axial") - 1
    qtbot.keyClick(opened, Qt.Key.Key_Home)
    assert s.cursor[2] == 0
    assert s.crosshair and opened.actions_by_name["crosshair"].isChecked()
    view = opened.view_area.view("axial")
    shown = view.grab().toImage()
    qtbot.keyClick(opened, Qt.Key.Key_X)
    assert not s.crosshair and not opened.actions_by_name["crosshair"].isChecked()
    assert view.grab().toImage() != shown  # the lines are gone from the picture
    opened.actions_by_name["crosshair"].trigger()
    assert s.crosshair and view.grab().toImage() == shown


def test_zoom_keeps_the_point_under_the_pointer(opened, qtbot):
    view = opened.view_area.view("axial")
    s = opened.session
    at = QPoint(view.width() // 3, view.height() // 3)
    before = view.widget_to_voxel(QPointF(at))
    k = s.cursor[2]
    wheel(view, at, 2, Qt.KeyboardModifier.ControlModifier)
    assert s.view_state("axial").zoom == pytest.approx(1.15**2) and s.cursor[2] == k  # zoomed, not scrolled
    np.testing.assert_allclose(view.widget_to_voxel(QPointF(at)), before, atol=1e-6)
    start = QPoint(view.width() * 2 // 3, view.height() // 2)
    before = view.widget_to_voxel(QPointF(start))
    drag(qtbot, view, Qt.MouseButton.RightButton, start, start + QPoint(0, -50))
    assert s.view_state("axial").zoom > 1.15**2
    np.testing.assert_allclose(view.widget_to_voxel(QPointF(start)), before, atol=1e-6)


def test_views_only_hides_the_panels_and_brings_back_those_it_hid(window, qtbot):
    docks = window.docks
    docks[0].hide()  # a panel the user had closed stays closed
    shown = [d for d in docks if d.isVisible()]
    assert shown
    width = window.centralWidget().width()
    window.actions_by_name["views_only"].trigger()
    qtbot.waitUntil(lambda: window.centralWidget().width() > width)
    assert not any(d.isVisible() for d in docks) and window.actions_by_name["views_only"].isChecked()
    window.actions_by_name["views_only"].trigger()
    assert [d for d in docks if d.isVisible()] == shown and not docks[0].isVisible()
    assert not window.actions_by_name["views_only"].isChecked()
    # Hidden, the window shrinks; the panels then come back giving way to the scan, not at full width.
    window.resize(1600, 900)
    qtbot.wait(50)
    window.resizeDocks(shown, [300] * len(shown), Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: all(d.width() >= 280 for d in shown))
    window.actions_by_name["views_only"].trigger()
    window.resize(900, 600)
    qtbot.wait(50)
    window.actions_by_name["views_only"].trigger()
    qtbot.waitUntil(lambda: window.centralWidget().width() >= 0.5 * window.width())


def test_double_click_enlarges_a_view_and_again_goes_back(opened, qtbot):
    s = opened.session
    assert s.layout == "1x3"
    coronal = opened.view_area.view("coronal")
    qtbot.mouseDClick(coronal, Qt.MouseButton.LeftButton, pos=coronal.rect().center())
    assert s.layout == "single" and s.single_plane == "coronal"
    assert [v.plane for v in opened.view_area.views] == ["coronal"]
    assert opened.actions_by_name["layout_single"].isChecked()
    view = opened.view_area.view("coronal")
    qtbot.mouseDClick(view, Qt.MouseButton.LeftButton, pos=view.rect().center())
    assert s.layout == "1x3" and len(opened.view_area.views) == 3


def test_panels_hidden_by_f11_are_back_after_a_restart(window, qtbot):
    from medae.gui.main_window import MainWindow
    from medae.gui.settings import Preferences

    shown = [d.objectName() for d in window.docks if d.isVisible()]
    window.actions_by_name["views_only"].trigger()
    assert not any(d.isVisible() for d in window.docks)
    window.close()
    again = MainWindow(Preferences())
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    assert [d.objectName() for d in again.docks if d.isVisible()] == shown


def test_a_view_zoomed_while_large_keeps_the_crosshair_when_it_shrinks(opened, qtbot):
    s = opened.session
    view = opened.view_area.view("axial")
    view.resize(900, 600)
    s.set_cursor(tuple(n // 2 for n in s.image.grid.shape))
    s.set_view_state("axial", zoom=3.0, pan=(0.0, 0.0))
    # Panned so that the crosshair sits near the right edge of the large view.
    at = view.voxel_to_widget(s.cursor)
    s.set_view_state("axial", pan=((0.9 * view.width() - at.x()) / view.pixels_per_mm(), 0.0))
    assert view.voxel_to_widget(s.cursor).x() == pytest.approx(0.9 * view.width(), abs=1)
    view.resize(300, 600)  # as a layout of more views, or the end of compare mode, makes it
    assert view.rect().contains(view.voxel_to_widget(s.cursor).toPoint())
    assert s.view_state("axial").zoom == 3.0  # the zoom is kept; only the pan came to the crosshair


def test_zooming_the_heat_projection_keeps_the_crosshair_of_its_slice_view(opened, qtbot):
    s = opened.session
    s.layout = "2x2"
    QApplication.processEvents()
    mip = next(v for v in opened.view_area.views if v.mip)
    coronal = opened.view_area.view("coronal")
    s.set_cursor((10, 12, 8))
    before = coronal.voxel_to_widget(s.cursor)
    at = QPoint(mip.width() // 5, mip.height() // 5)
    wheel(mip, at, 3, Qt.KeyboardModifier.ControlModifier)
    assert s.view_state("coronal").zoom == pytest.approx(1.15**3)
    after = coronal.voxel_to_widget(s.cursor)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=1e-6)


def test_a_crosshair_zoomed_away_on_purpose_stays_away_when_the_view_resizes(opened, qtbot):
    s = opened.session
    view = opened.view_area.view("axial")
    view.resize(500, 500)
    s.set_cursor(tuple(n // 2 for n in s.image.grid.shape))
    s.set_view_state("axial", zoom=4.0, pan=(15.0, 0.0))  # the crosshair far off to the right
    assert view.voxel_to_widget(s.cursor).x() > view.width()
    for size in ((520, 500), (450, 500)):  # growing, then shrinking
        view.resize(*size)
        assert s.view_state("axial").pan == (15.0, 0.0)


def test_a_new_layout_shows_the_crosshair_of_a_plane_zoomed_in_the_one_before(opened, qtbot):
    s = opened.session
    opened.resize(1800, 700)
    s.layout = "single"
    s.single_plane = "axial"
    QApplication.processEvents()
    view = opened.view_area.view("axial")
    s.set_cursor(tuple(n // 2 for n in s.image.grid.shape))
    s.set_view_state("axial", zoom=3.0, pan=(0.0, 0.0))
    at = view.voxel_to_widget(s.cursor)  # to the right edge of the wide single view
    s.set_view_state("axial", pan=((0.96 * view.width() - at.x()) / view.pixels_per_mm(), 0.0))
    large = view.width()
    s.layout = "1x3"
    QApplication.processEvents()
    small = opened.view_area.view("axial")
    assert small.width() < large / 2
    assert small.rect().adjusted(8, 8, -8, -8).contains(small.voxel_to_widget(s.cursor).toPoint())


def _two_findings(volume):
    from tests.viewer_fixtures import result_for

    a, b = result_for(volume, blob_at=(10, 12, 8)), result_for(volume, blob_at=(34, 28, 16))
    labels = a.labels.array + 2 * b.labels.array
    heat = np.maximum(a.heatmap.array, b.heatmap.array)
    second = dataclasses.replace(b.findings[0], label=2)
    return dataclasses.replace(
        a, heatmap=volume.with_array(heat), labels=volume.with_array(labels), findings=[a.findings[0], second]
    )


def test_the_viewer_keys_still_work_after_a_finding_is_clicked(opened, qtbot):
    s = opened.session
    s.set_result(_two_findings(s.volume))
    table = opened.findings_panel.table
    rect = table.visualItemRect(table.item(0, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    table.setFocus()  # the click gives the table the focus, as on screen
    assert table.currentRow() == 0
    qtbot.keyClick(table, Qt.Key.Key_N)  # the table would take it as a search of its rows
    assert table.currentRow() == 1
    qtbot.keyClick(table, Qt.Key.Key_H)
    assert not s.heat_visible
    before = s.window
    qtbot.keyClick(table, Qt.Key.Key_2)  # window preset 2, not finding #2
    assert s.window != before and table.currentRow() == 1
    qtbot.keyClick(table, Qt.Key.Key_Up)  # the list's own navigation stays its own
    assert table.currentRow() == 0


def test_a_narrow_view_says_its_slice_in_fewer_words_before_cutting_it(qapp):
    from PySide6.QtGui import QFont, QFontMetrics

    from medae.gui.slice_view import _compact, _fitting

    assert _compact("slice j=78 (of 229)") == "j=78/229"
    metrics = QFontMetrics(QFont())
    variants = ["Coronal  slice j=78 (of 229)", "Coronal j=78/229", "j=78/229"]
    wide = metrics.horizontalAdvance(variants[0]) + 2
    assert _fitting(metrics, variants, wide) == variants[0]
    assert _fitting(metrics, variants, metrics.horizontalAdvance(variants[1]) + 1) == "Coronal j=78/229"
    assert _fitting(metrics, variants, metrics.horizontalAdvance("j=78/229") + 1) == "j=78/229"  # index and count kept


def test_about_names_the_version_the_model_and_its_notice_and_preferences_have_a_key(window):
    from medae._version import __version__
    from medae.gui.dialogs import AboutDialog

    window.actions_by_name["about"].trigger()
    (box,) = window.findChildren(AboutDialog)
    text = box.text.toPlainText()
    box.close()
    assert f"medae {__version__}" in text and "brain-t1-dae" in text and "McConnell Brain Imaging Centre" in text
    assert not window.actions_by_name["prefs"].shortcut().isEmpty()


def test_the_keys_dialog_fits_the_screen_and_needs_no_sideways_scroll(window, qtbot):
    from PySide6.QtWidgets import QTableWidget

    from medae.gui.dialogs import KeysDialog

    dlg = KeysDialog(window.session.mouse_scheme, window)
    qtbot.addWidget(dlg)
    dlg.show()
    room = window.screen().availableGeometry()
    assert dlg.height() <= room.height() and dlg.width() <= room.width()
    table = dlg.findChild(QTableWidget)
    assert table.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff and table.wordWrap()


def test_every_view_title_shortens_to_words_not_letters(opened, qtbot):
    opened.actions_by_name["layout_2x2"].trigger()
    qtbot.waitUntil(lambda: any(v.mip for v in opened.view_area.views))
    for view in opened.view_area.views:
        variants = view.title_variants()
        assert isinstance(variants, list) and all(len(v) >= 7 for v in variants), variants
        if view.mip:
            assert "projection" in variants[-1]
        else:
            assert re.fullmatch(r"[ijk]=\d+/\d+", variants[-1]), variants


def test_a_click_that_passes_to_the_window_is_no_panel_drag_and_side_panels_alone_share_the_room(window, qtbot):
    from PySide6.QtCore import QPointF

    natural = _full_size(window, qtbot)
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.width() == 800 and [d.width() for d in window.docks] != natural)
    # A click on the status bar reaches the window itself (a label ignores it): no width is taken from it.
    _mouse(window, qtbot, QPointF(window.statusBar().geometry().center()), [0])
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: [d.width() for d in window.docks] == natural)
    # A panel moved below the views takes none of the side panels' share.
    study = next(d for d in window.docks if d.objectName() == "dock-Study")
    analysis = next(d for d in window.docks if d is not study)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, study)
    qtbot.waitUntil(lambda: analysis.width() == natural[window.docks.index(analysis)])


def test_the_crosshair_keeps_clear_of_the_view_title_and_read_out(opened, qtbot):
    from medae.gui.slice_view import PLANE_COLORS

    view = opened.view_area.view("axial")
    s = opened.session
    x = int(round(view.voxel_to_widget(s.cursor).x()))
    image = view.grab().toImage()
    band = view.fontMetrics().height() + 6
    # The vertical line is drawn in the colour of the plane whose normal is the screen's column axis.
    colours = {PLANE_COLORS[p].rgb() for p in PLANE_COLORS}

    def on_line(y: int) -> bool:
        return image.pixelColor(x, y).rgb() in colours

    dpr = image.devicePixelRatio()
    assert dpr == 1
    assert on_line(band + 4) and on_line(view.height() - band - 4)
    # (the outer two pixels are the active view's frame)
    assert [y for y in range(3, band - 2) if on_line(y)] == []
    assert [y for y in range(view.height() - band + 2, view.height() - 3) if on_line(y)] == []


def test_every_menu_item_has_its_own_access_key(window):
    """Two items with one letter in a menu make the key move between them instead of choosing one."""
    import re

    def keys(menu):
        letters = []
        for action in menu.actions():
            if action.menu() is not None:
                keys(action.menu())
            found = re.search(r"&([^&])", action.text())
            if found and action.isVisible():
                letters.append(found.group(1).lower())
        dup = {k for k in letters if letters.count(k) > 1}
        assert not dup, (menu.title(), dup)

    for action in window.menuBar().actions():
        keys(action.menu())


def test_the_main_controls_have_names_a_screen_reader_announces(window):
    names = {window.view_area.view(p).accessibleName() for p in ("axial", "coronal", "sagittal")}
    assert names == {"Axial view", "Coronal view", "Sagittal view"}
    panel = window.overlay_panel
    assert panel.threshold.accessibleName() == "Threshold" and panel.colormap.accessibleName() == "Colormap"
    assert window.findings_panel.table.accessibleName() and window.progress.accessibleName() == "Progress"
    assert window.study_panel.tree.accessibleName() and window.tag_browser.tree.accessibleName() == "DICOM tags"

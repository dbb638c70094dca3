"""The window's state: its size on a first start, side panels that give way on a small window, preferences."""

from __future__ import annotations

import json
from dataclasses import replace

from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer

from medae.gui.settings import Preferences, save_preferences, settings

#: The most of the window's width the side panels take together; the views keep the rest.
PANELS_SHARE = 0.4


def _columns(window) -> dict:
    """The docked panels beside the views, by side (left, right); panels above or below the views are not."""
    sides = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea)
    out: dict = {}
    for dock in window.docks:
        if dock.isVisible() and not dock.isFloating() and window.dockWidgetArea(dock) in sides:
            out.setdefault(window.dockWidgetArea(dock), []).append(dock)
    return out


def _stored_widths(raw) -> dict[str, int]:
    """Panel widths saved as JSON by name; anything else (an old or hand-edited file) is ignored."""
    try:
        widths = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    if not isinstance(widths, dict):
        return {}
    return {k: int(v) for k, v in widths.items() if isinstance(k, str) and isinstance(v, int) and 40 <= v <= 4000}


class WindowStateMixin:
    """What ``MainWindow`` does with its geometry, docks and preferences.

    Expects ``session``, ``view_area``, ``docks``, ``prefs`` and ``_hidden_docks``, set up by the window, which
    calls ``_init_window_state`` before building its docks.
    """

    def _init_window_state(self) -> None:
        self._dock_widths: dict[str, int] = {}  # by panel name: the widths the user gave the panels
        self._fit_pending = False
        self._on_separator = False  # the mouse went down on a separator between the views and a panel

    def apply_preferences(self, prefs: Preferences, changed_from: Preferences | None = None) -> None:
        """Applies and stores preferences.

        Args:
            prefs: The preferences.
            changed_from: What the dialog started from (``shown_preferences``): only what differs from it
                is applied, so the display keeps what the user did not touch. None applies everything.
        """
        self.prefs = prefs
        s = self.session

        def changed(name: str) -> bool:
            return changed_from is None or getattr(changed_from, name) != getattr(prefs, name)

        if changed("mouse_scheme"):
            s.mouse_scheme = prefs.mouse_scheme
        if changed("convention"):
            s.convention = prefs.convention
        if changed("layout"):
            s.layout = prefs.layout
        style = {k: getattr(prefs, k) for k in ("colormap", "opacity") if changed(k)}
        if style:
            s.set_style(**style)
        if changed("smooth"):
            self.view_area.set_smooth(prefs.smooth)
        if changed("link_zoom"):
            s.link_zoom = prefs.link_zoom
        save_preferences(prefs)

    def shown_preferences(self) -> Preferences:
        """The preferences as the screen shows them now (what the Preferences dialog starts from)."""
        s = self.session
        return replace(
            self.prefs,
            mouse_scheme=s.mouse_scheme,
            convention=s.convention,
            layout=self.view_area.chosen_layout,  # a view enlarged by a double-click is a moment's look
            colormap=s.style.colormap,
            opacity=s.style.opacity,
            smooth=self.view_area.smooth,
            link_zoom=s.link_zoom,
        )

    def _restore_geometry(self) -> None:
        store = settings()
        geometry, state = store.value("window/geometry"), store.value("window/state")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            # A first start fits the screen it opens on (a 1366 x 768 laptop, a scaled high-DPI display).
            screen = self.screen().availableGeometry() if self.screen() is not None else None
            width, height = 1400, 860
            if screen is not None:
                width, height = min(width, int(screen.width() * 0.95)), min(height, int(screen.height() * 0.9))
            self.resize(width, height)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        # The widths the user gave the panels, not those a small window squeezed them to (the saved state's).
        self._dock_widths.update(_stored_widths(store.value("window/dock_widths")))

    def _save_dock_widths(self, store) -> None:
        widths = {d.objectName(): self._dock_widths.get(d.objectName(), d.width()) for d in self.docks}
        store.setValue("window/dock_widths", json.dumps(widths))

    def showEvent(self, event) -> None:  # noqa: D102 (Qt override)
        super().showEvent(event)
        self._schedule_fit()

    def resizeEvent(self, event) -> None:  # noqa: D102 (Qt override)
        super().resizeEvent(event)
        self._schedule_fit()

    def _schedule_fit(self) -> None:
        # After the layout has settled: resizeDocks inside a resize event is overridden by the layout that follows.
        if not self._fit_pending:
            self._fit_pending = True
            QTimer.singleShot(0, self._fit_docks)

    def event(self, event) -> bool:  # noqa: D102 (Qt override)
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress:
            # The main window takes the mouse itself on the separators between it and its panels, where no
            # child widget lies; a click on a label or the status bar only passes through to it.
            self._on_separator = self.childAt(event.position().toPoint()) is None
        handled = super().event(event)
        if kind == QEvent.Type.MouseButtonRelease and self._on_separator:
            # A drag of a separator sets the widths the panels get back whenever the window has room for them.
            self._on_separator = False
            for column in _columns(self).values():
                for dock in column:
                    self._dock_widths[dock.objectName()] = dock.width()
        return handled

    def _fit_docks(self) -> None:
        # Qt shrinks the central widget first, so on a small window the scan would be squeezed to slivers
        # between panels of full width. The panels give way instead, in proportion, down to their own
        # minimum, and get the widths the user gave them back when the window is large again.
        self._fit_pending = False
        self._fit_screen()
        columns = _columns(self)
        if not columns:
            return
        width = self.width()
        # Panels stacked or tabbed on one side share one column: it is as wide as the widest of them.
        natural = {
            side: max(self._dock_widths.setdefault(d.objectName(), d.width()) for d in docks)
            for side, docks in columns.items()
        }
        scale = min(1.0, PANELS_SHARE * width / max(1, sum(natural.values())))
        docks, sizes = [], []
        for side, column in columns.items():
            least = max(d.minimumSizeHint().width() for d in column)
            for dock in column:
                docks.append(dock)
                sizes.append(max(least, int(natural[side] * scale)))
        if sizes != [d.width() for d in docks]:
            self.resizeDocks(docks, sizes, Qt.Orientation.Horizontal)

    def _fit_screen(self) -> None:
        # Side by side, the least widths of the two panels and of the views can be more than a small or scaled
        # screen has (1024 x 768 at 200 % is 512 pixels wide to the widgets): the Analysis panel and the status
        # bar's Cancel would lie beyond its edge. Tabbed in one column, the panels need the width of one.
        screen, columns = self.screen(), _columns(self)
        if screen is None or len(columns) < 2:
            return
        room = screen.availableGeometry().width() - (self.frameGeometry().width() - self.width())
        if self.minimumSizeHint().width() <= room:
            return
        docks = [dock for column in columns.values() for dock in column]
        keep = next((d for d in docks if d.objectName() == "dock-Analysis"), docks[0])
        for dock in docks:
            if self.dockWidgetArea(dock) != self.dockWidgetArea(keep):
                self.tabifyDockWidget(keep, dock)
        keep.raise_()
        self.layout().activate()  # the smaller least width, before the window is made to fit
        if self.width() > room:
            self.resize(room, self.height())
        self.statusBar().showMessage("The screen is narrow: the side panels share one column, as tabs.", 8000)

    def toggle_views_only(self) -> bool:
        """Hides the panels to give the scan the whole window, or brings back those it hid; True when hidden."""
        hidden = self._hidden_docks
        if hidden:
            for dock in hidden:
                dock.show()
            self._hidden_docks = []
            # Back at their old widths; on a window made smaller meanwhile they give way, once laid out.
            self._schedule_fit()
            return False
        self._hidden_docks = [d for d in self.docks if d.isVisible()]
        for dock in self._hidden_docks:
            dock.hide()
        return bool(self._hidden_docks)

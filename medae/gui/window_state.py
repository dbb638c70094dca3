"""The window's state: its size on a first start, side panels that give way on a small window, preferences."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QByteArray, Qt, QTimer

from medae.gui.settings import Preferences, save_preferences, settings


class WindowStateMixin:
    """What ``MainWindow`` does with its geometry, docks and preferences.

    Expects ``session``, ``view_area``, ``docks``, ``prefs``, ``_dock_widths`` and ``_hidden_docks``, set up by
    the window.
    """

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
            layout=s.layout,
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

    def resizeEvent(self, event) -> None:  # noqa: D102 (Qt override)
        super().resizeEvent(event)
        self._fit_docks()

    def _fit_docks(self) -> None:
        # Qt shrinks the central widget first, so on a small window the scan would be squeezed to slivers
        # between panels of full width; the panels give way first, down to their own minimum, and get their
        # widths back when the window is large again.
        docked = [d for d in self.docks if d.isVisible() and not d.isFloating()]
        if not docked:
            return
        width = self.width()
        # Squeezed below 55% for the views, given back from 60% (a margin, so that a resize does not flip).
        if self._dock_widths and width - sum(self._dock_widths.get(d, d.width()) for d in docked) >= 0.6 * width:
            self.resizeDocks(docked, [self._dock_widths.get(d, d.width()) for d in docked], Qt.Orientation.Horizontal)
            self._dock_widths = {}
        elif self._dock_widths:
            # Growing, not yet large enough for the full widths: each panel gets up to a fifth of the window.
            sizes = [
                min(self._dock_widths.get(d, d.width()), max(d.minimumSizeHint().width(), int(0.2 * width)))
                for d in docked
            ]
            if any(size > d.width() for size, d in zip(sizes, docked, strict=True)):
                self.resizeDocks(docked, sizes, Qt.Orientation.Horizontal)
        elif width - sum(d.width() for d in docked) < 0.55 * width:
            self._dock_widths = self._dock_widths or {d: d.width() for d in docked}
            share = int(0.35 * width / len(docked))
            sizes = [max(share, d.minimumSizeHint().width()) for d in docked]
            self.resizeDocks(docked, sizes, Qt.Orientation.Horizontal)

    def toggle_views_only(self) -> bool:
        """Hides the panels to give the scan the whole window, or brings back those it hid; True when hidden."""
        hidden = self._hidden_docks
        if hidden:
            for dock in hidden:
                dock.show()
            self._hidden_docks = []
            # Back at their old widths; on a window made smaller meanwhile they give way, once laid out.
            QTimer.singleShot(0, self._fit_docks)
            return False
        self._hidden_docks = [d for d in self.docks if d.isVisible()]
        for dock in self._hidden_docks:
            dock.hide()
        return bool(self._hidden_docks)

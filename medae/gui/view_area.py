"""The reading area: the slice views in the chosen layout, the heatmap colour bar and the warnings."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from medae.gui.errors import guarded_paint
from medae.gui.slice_view import SliceView
from medae.viewer import compositing
from medae.viewer.planes import PLANES
from medae.viewer.session import ViewerSession


class ColorBar(QWidget):
    """The overlay's colour scale with its threshold and units, drawn from the same tables as the views."""

    def __init__(self, session: ViewerSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.setObjectName("colorbar")
        self.setFixedWidth(92)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
        session.overlay_changed.connect(self._repaint)
        session.result_changed.connect(self._repaint)
        self._pixels: np.ndarray | None = None

    def _repaint(self) -> None:
        self.update()

    @guarded_paint
    def paintEvent(self, event) -> None:  # noqa: D102
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(20, 20, 24))
        s = self.session
        if s.result is None:
            p.end()
            return
        style = s.style
        top, bottom = 28, self.height() - 34
        length = max(bottom - top, 2)
        self._pixels = compositing.colorbar(style, length, 18)
        img = QImage(self._pixels.data, 18, length, 18 * 4, QImage.Format.Format_RGB32)
        p.drawImage(QRectF(10, top, 18, length), img)
        ty = top + (1 - compositing.value_to_fraction(style, style.threshold)) * (length - 1)
        p.setPen(QColor(230, 230, 230))
        for value in (style.vmax, (style.vmax + style.vmin) / 2, style.vmin):
            y = top + (1 - compositing.value_to_fraction(style, value)) * (length - 1)
            p.drawLine(QPointF(28, y), QPointF(32, y))
            if abs(y - ty) > 16:  # keep the threshold's own label readable
                p.drawText(QPointF(35, y + 4), f"{value:.3g}")
        # A white line with a black rim: visible on every colormap (a blue one vanished on turbo's blue).
        p.setPen(QPen(QColor(0, 0, 0), 4))
        p.drawLine(QPointF(4, ty), QPointF(34, ty))
        p.setPen(QPen(QColor(255, 255, 255), 2))
        p.drawLine(QPointF(4, ty), QPointF(34, ty))
        p.setPen(QColor(80, 200, 255))
        # Near the top the label goes under its line, clear of the bar's title.
        p.drawText(QPointF(35, ty - 4 if ty - 16 >= top else ty + 14), f"thr {style.threshold:.3g}")
        p.setPen(QColor(230, 230, 230))
        units = getattr(s.result, "units", "") or ""
        p.drawText(
            QRectF(0, self.height() - 30, self.width(), 28),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            units,
        )
        p.drawText(
            QRectF(0, 4, self.width(), 20),
            Qt.AlignmentFlag.AlignCenter,
            "heat" + ("" if s.heat_visible else " (hidden)"),
        )
        p.end()


class ViewArea(QWidget):
    """Slice views in the session's layout (or the compare row), the colour bar and warnings.

    Signals:
        hovered(object): a ``Readout`` (or None) from any view.
        active_plane_changed(str): the plane the user last worked in; keys act on it.
        notice(str): a short message for the status bar.
    """

    hovered = Signal(object)
    active_plane_changed = Signal(str)
    notice = Signal(str)

    def __init__(self, session: ViewerSession, parent=None) -> None:
        super().__init__(parent)
        self.session = session
        self.active_plane = "axial"
        self.smooth = False
        self._layout_before: str | None = None  # the layout a double-click enlarged a view from
        self.views: list[SliceView] = []
        self.banner = QLabel(self)
        self.banner.setObjectName("warnings")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background:#7a5200; color:#fff3d0; padding:4px; font-weight:bold;")
        self.banner.hide()
        self.colorbar = ColorBar(session, self)
        self.grid_host = QWidget(self)
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.grid_host, 1)
        row.addWidget(self.colorbar)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.banner)
        outer.addLayout(row, 1)
        self.setStyleSheet("background:#000;")
        session.display_changed.connect(self.rebuild)
        session.result_changed.connect(self._on_result)
        session.image_changed.connect(self.refresh_warnings)
        self.rebuild()
        self._on_result()

    def _on_result(self) -> None:
        self.colorbar.setVisible(self.session.result is not None)
        self.refresh_warnings()
        self.rebuild()

    def refresh_warnings(self) -> None:
        """Shows every warning of the scan and its analysis in the banner."""
        warnings = self.session.warnings
        self.banner.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.banner.setVisible(bool(warnings))

    def layout_key(self) -> tuple:
        """What the current arrangement of views depends on."""
        s = self.session
        if s.compare and s.extra_layers:
            return ("compare", s.single_plane, tuple(s.extra_layers))
        # The plane matters to the single layout only: a double-click choosing it must not rebuild 1x3 first.
        return (s.layout, s.single_plane if s.layout == "single" else None, s.result is not None)

    def rebuild(self) -> None:
        """Recreates the views when the layout, plane or compare mode changed."""
        key = self.layout_key()
        if getattr(self, "_key", None) == key:
            for v in self.views:
                v.update()
            return
        self._key = key
        had_focus = any(v.hasFocus() for v in self.views)
        # Taken before the views go: hiding the focused one passes the focus, and with it the keys, to another.
        previous = self.active_plane
        for v in self.views:
            v.detach()
            self.grid.removeWidget(v)
            v.hide()  # at once: until it is deleted it would still paint, under the gaps of the new layout
            v.deleteLater()
        self.views = []
        s = self.session
        if key[0] == "compare":
            titles = {"input": "Input", "reconstruction": "Reconstruction", "residual": "Residual"}
            for col, layer in enumerate(("input", *s.extra_layers)):
                self._add(SliceView(s, s.single_plane, layer), 0, col, titles.get(layer, layer))
        elif key[0] == "single":
            self._add(SliceView(s, s.single_plane), 0, 0)
        elif key[0] == "1x3":
            for col, plane in enumerate(PLANES):
                self._add(SliceView(s, plane), 0, col)
        else:
            for n, plane in enumerate(PLANES):
                self._add(SliceView(s, plane), n // 2, n % 2)
            self._add(SliceView(s, "coronal", mip=True), 1, 1, "Coronal")
        self.active_plane = self.views[0].plane
        if had_focus:
            # The keys went to a view that is gone: the new view of the same plane takes them, so the
            # arrows keep moving slices instead of switching the side panel's tabs.
            view = next((v for v in self.views if v.plane == previous and not v.mip), self.views[0])
            self.active_plane = view.plane
            view.setFocus()

    def _add(self, view: SliceView, row: int, col: int, title: str = "") -> None:
        view.title = title
        view.smooth = self.smooth
        view.hovered.connect(self.hovered)
        view.activated.connect(self._activate)
        view.double_clicked.connect(self.toggle_enlarged)
        self.grid.addWidget(view, row, col)
        # Shown now, not when Qt gets round to the layout's deferred show: a view made on a new result is on
        # screen (and measurable, e.g. for a screenshot export) as soon as the result is.
        if self.grid_host.isVisible():
            view.show()
        self.views.append(view)

    @property
    def chosen_layout(self) -> str:
        """The layout the reader chose: the one a double-click enlarged a view from, while it is enlarged."""
        enlarged = self._layout_before and self.session.layout == "single"
        return self._layout_before if enlarged else self.session.layout

    def toggle_enlarged(self, plane: str) -> None:
        """Double-click: the view's plane alone in the window, or back to the layout it came from."""
        s = self.session
        if s.compare:
            self.notice.emit("Compare mode shows its three layers side by side; leave it (C) to enlarge one view.")
            return
        if s.layout != "single":
            self._layout_before = s.layout
            s.single_plane = plane
            s.layout = "single"
        elif self._layout_before:
            s.layout, self._layout_before = self._layout_before, None

    def _activate(self, plane: str) -> None:
        if plane != self.active_plane:
            self.active_plane = plane
            self.active_plane_changed.emit(plane)

    def set_smooth(self, smooth: bool) -> None:
        """Interpolated (True) or blocky voxels when zoomed in."""
        self.smooth = smooth
        for v in self.views:
            v.smooth = smooth
            v.update()

    def view(self, plane: str, layer: str = "input") -> SliceView | None:
        """The view of a plane and layer, if shown."""
        for v in self.views:
            if v.plane == plane and v.layer == layer and not v.mip:
                return v
        return None

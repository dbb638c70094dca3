"""One slice on screen: draws ``ViewerSession.render`` and turns mouse input into session changes."""

from __future__ import annotations

import math
import re

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from medae.gui.errors import guarded_paint
from medae.gui.measure_paint import paint_measurements
from medae.gui.painting import outlined_text
from medae.viewer.bindings import CLICK_SLOP_PX, MOUSE_SCHEMES, MouseAction
from medae.viewer.planes import orientation_labels, plane_spec, scale_bar
from medae.viewer.session import ViewerSession

PLANE_COLORS = {"axial": QColor(255, 80, 80), "coronal": QColor(80, 220, 80), "sagittal": QColor(90, 150, 255)}
LABEL_COLOR = QColor(255, 215, 90)
TEXT_COLOR = QColor(235, 235, 235)
_BUTTONS = {
    Qt.MouseButton.LeftButton: "left",
    Qt.MouseButton.MiddleButton: "middle",
    Qt.MouseButton.RightButton: "right",
}


def modifier_name(mods: Qt.KeyboardModifier) -> str:
    """The binding-table name of the held modifier ("", "shift", "ctrl" or "alt")."""
    if mods & Qt.KeyboardModifier.ControlModifier:
        return "ctrl"
    if mods & Qt.KeyboardModifier.ShiftModifier:
        return "shift"
    if mods & Qt.KeyboardModifier.AltModifier:
        return "alt"
    return ""


class SliceView(QWidget):
    """A view of one plane of one layer (input, reconstruction or residual).

    Signals:
        hovered(object): the ``Readout`` under the pointer, or None when it leaves the image.
        activated(str): the plane of this view, when the user interacts with it.
        double_clicked(str): the plane of this view, double-clicked (to enlarge it, or go back).
    """

    hovered = Signal(object)
    activated = Signal(str)
    double_clicked = Signal(str)

    def __init__(self, session: ViewerSession, plane: str, layer: str = "input", mip: bool = False, parent=None):
        super().__init__(parent)
        self.session, self.plane, self.layer, self.mip = session, plane, layer, mip
        self.smooth = False
        self.title = ""
        self.setMinimumSize(80, 80)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setObjectName(f"view-{plane}-{layer}{'-mip' if mip else ''}")
        # What a screen reader announces: the view's plane and layer, not "client".
        what = {"input": "", "reconstruction": " reconstruction", "residual": " residual"}.get(layer, f" {layer}")
        self.setAccessibleName(f"{plane.title()}{what} view{' (projection)' if mip else ''}")
        self._press: tuple[str, str, QPointF, object] | None = None
        self._moved = False
        self._pixels: np.ndarray | None = None
        self._hover: QPointF | None = None  # where the pointer rests over this view, for the read-out
        self._links = [
            (sig, sig.connect(self._repaint))
            for sig in (
                session.image_changed,
                session.window_changed,
                session.overlay_changed,
                session.display_changed,
                session.result_changed,
            )
        ]
        self._links.append((session.view_changed, session.view_changed.connect(self._on_view_changed)))
        self._links.append((session.cursor_changed, session.cursor_changed.connect(self._on_cursor)))
        self._links.append((session.measure.changed, session.measure.changed.connect(self._on_measure)))
        self._on_measure()

    def detach(self) -> None:
        """Stops following the session (before the widget is deleted)."""
        for sig, slot in self._links:
            sig.disconnect(slot)
        self._links = []

    def _repaint(self) -> None:
        self.update()

    def _on_measure(self) -> None:
        measuring = self.session.measure.active and not self.mip
        self.setCursor(Qt.CursorShape.CrossCursor if measuring else Qt.CursorShape.ArrowCursor)
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: D102 (Qt override)
        super().resizeEvent(event)
        # Pan is kept in mm: zoomed in a large view, the crosshair can lie beyond a smaller one (a layout of
        # more views, compare mode ended). The view then comes to the crosshair rather than lose it.
        s = self.session
        old = event.oldSize()
        # A view made anew (another layout, compare mode) first shows the plane the reader worked in elsewhere.
        new = not old.isValid() or old.width() < 2 or old.height() < 2
        shrank = new or self.width() < old.width() or self.height() < old.height()
        if s.image is None or self.mip or not shrank or self.width() < 2 or self.height() < 2:
            return

        def seen(size: QSize) -> bool:  # away from the very edge, where it is as good as lost
            inner = QRectF(0, 0, size.width(), size.height()).adjusted(8, 8, -8, -8)
            return inner.contains(self.voxel_to_widget(s.cursor, size))

        # Only a crosshair the reader saw before: one zoomed or panned away on purpose stays away.
        if (new or seen(old)) and not seen(self.size()):
            spec = plane_spec(self.plane, s.convention)
            u, v = spec.offset_mm(s.cursor, s.image.grid.shape, s.image.grid.spacing)
            s.set_view_state(self.plane, pan=(-u, -v))

    def _on_view_changed(self, plane: str) -> None:
        if plane == self.plane:
            self.update()

    # ----- geometry -------------------------------------------------------------------------
    def image_rect(self, size: QSize | None = None) -> QRectF:
        """Where the slice is drawn in widget coordinates (true proportions, zoom and pan applied).

        ``size``: of the widget to lay it out in (its own by default).
        """
        s = self.session
        width, height = (self.width(), self.height()) if size is None else (size.width(), size.height())
        spec = plane_spec(self.plane, s.convention)
        rows, cols = spec.image_shape(s.image.grid.shape)
        dx, dy = spec.pixel_mm(s.image.grid.spacing)
        w_mm, h_mm = cols * dx, rows * dy
        state = s.view_state(self.plane)
        ppmm = min(width / w_mm, height / h_mm) * state.zoom
        cx = width / 2 + state.pan[0] * ppmm
        cy = height / 2 + state.pan[1] * ppmm
        return QRectF(cx - w_mm * ppmm / 2, cy - h_mm * ppmm / 2, w_mm * ppmm, h_mm * ppmm)

    def pixels_per_mm(self) -> float:
        """Screen pixels per mm at the current zoom."""
        spec = plane_spec(self.plane, self.session.convention)
        rect = self.image_rect()
        cols = spec.image_shape(self.session.image.grid.shape)[1]
        return rect.width() / (cols * spec.pixel_mm(self.session.image.grid.spacing)[0])

    def widget_to_voxel(self, pos: QPointF) -> np.ndarray:
        """Continuous canonical voxel index under a widget position (in the slice through the cursor)."""
        s = self.session
        spec = plane_spec(self.plane, s.convention)
        rows, cols = spec.image_shape(s.image.grid.shape)
        rect = self.image_rect()
        col = (pos.x() - rect.left()) / rect.width() * cols - 0.5
        row = (pos.y() - rect.top()) / rect.height() * rows - 0.5
        return spec.to_voxel(s.cursor, col, row, s.image.grid.shape)

    def voxel_to_widget(self, index, size: QSize | None = None) -> QPointF:
        """Widget position of the centre of a canonical voxel (``size``: of the widget, its own by default)."""
        s = self.session
        spec = plane_spec(self.plane, s.convention)
        rows, cols = spec.image_shape(s.image.grid.shape)
        col, row = spec.to_screen(index, s.image.grid.shape)
        rect = self.image_rect(size)
        return QPointF(rect.left() + (col + 0.5) * rect.width() / cols, rect.top() + (row + 0.5) * rect.height() / rows)

    def inside(self, index) -> bool:
        """True when a canonical index lies on the grid."""
        shape = self.session.image.grid.shape
        return all(-0.5 <= index[a] <= shape[a] - 0.5 for a in range(3))

    # ----- painting -------------------------------------------------------------------------
    @guarded_paint
    def paintEvent(self, event) -> None:  # noqa: D102 (Qt override)
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        s = self.session
        if s.image is None:
            p.end()
            return
        try:
            self._pixels = s.render_mip(self.plane) if self.mip else s.render(self.plane, self.layer)
        except ValueError as exc:
            p.setPen(TEXT_COLOR)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, str(exc))
            p.end()
            return
        h, w = self._pixels.shape
        image = QImage(self._pixels.data, w, h, w * 4, QImage.Format.Format_RGB32)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
        rect = self.image_rect()
        p.drawImage(rect, image)
        if not self.mip:
            if s.crosshair:
                self._paint_crosshair(p)
            paint_measurements(self, p)
        self._paint_labels(p, rect)
        if self.hasFocus():
            p.setPen(QPen(PLANE_COLORS[self.plane], 2))
            p.drawRect(self.rect().adjusted(1, 1, -1, -1))
        p.end()

    def _paint_crosshair(self, p: QPainter) -> None:
        s = self.session
        spec = plane_spec(self.plane, s.convention)
        c = self.voxel_to_widget(s.cursor)
        gap = 8
        for axis, horizontal in ((spec.col_axis, False), (spec.row_axis, True)):
            other = next(pl for pl in PLANE_COLORS if plane_spec(pl).normal == axis)
            p.setPen(QPen(PLANE_COLORS[other], 1))
            if horizontal:
                p.drawLine(QPointF(0, c.y()), QPointF(c.x() - gap, c.y()))
                p.drawLine(QPointF(c.x() + gap, c.y()), QPointF(self.width(), c.y()))
            else:
                # Clear of the title and the window read-out: a line through a thin letter ("i=65") hides it.
                band = self.fontMetrics().height() + 6
                top, bottom = min(band, c.y() - gap), max(self.height() - band, c.y() + gap)
                p.drawLine(QPointF(c.x(), top), QPointF(c.x(), c.y() - gap))
                p.drawLine(QPointF(c.x(), c.y() + gap), QPointF(c.x(), bottom))

    def title_variants(self) -> list[str]:
        """The view's title line (plane, slice, volume), longest first, each shorter one saying the same."""
        s = self.session
        title = self.title or self.plane.title()
        if self.mip:
            # Before an analysis (or with the heat hidden) the view is the plain slice: say so.
            if s.heat is None:
                first = [f"{title} (heat projection after Analyze)", f"{title} (projection after Analyze)"]
            else:
                shown = "heat projection" if s.heat_visible else "heat hidden: H"
                first = [f"{title} ({shown})", f"{title} ({shown.replace('heat projection', 'projection')})"]
        else:
            slice_text = s.slice_label(self.plane)
            first = [f"{title}  {slice_text}", f"{title} {_compact(slice_text)}", _compact(slice_text)]
            meta = s.volume.meta
            if "volume_index" in meta:  # stepping through a 4D file: which volume is on screen
                volume = f"{meta['volume_index'] + 1}/{meta['volumes']}"
                first = [f"{first[0]}  vol {volume}", f"{first[1]} v{volume}", f"{first[2]} v{volume}"]
        return first

    def _paint_labels(self, p: QPainter, rect: QRectF) -> None:
        s = self.session
        spec = plane_spec(self.plane, s.convention)
        font = QFont(self.font())
        font.setPointSize(max(8, font.pointSize()))
        font.setBold(True)
        p.setFont(font)
        labels = orientation_labels(spec, s.image.grid.affine)
        w, h, m = self.width(), self.height(), 6
        align = Qt.AlignmentFlag
        # Top and bottom letters sit one text line in, clear of the title and window read-outs.
        for rect, flags, text in (
            (QRectF(m, 0, 40, h), align.AlignVCenter | align.AlignLeft, labels["left"]),
            (QRectF(w - 40 - m, 0, 40, h), align.AlignVCenter | align.AlignRight, labels["right"]),
            (QRectF(0, m + 18, w, 20), align.AlignHCenter | align.AlignTop, labels["top"]),
            (QRectF(0, h - 38 - m, w, 20), align.AlignHCenter | align.AlignBottom, labels["bottom"]),
        ):
            outlined_text(p, rect, flags, text, LABEL_COLOR)
        font.setBold(False)
        p.setFont(font)
        p.setPen(TEXT_COLOR)
        # A narrow view (small screen, 2x2 or compare layout) says the same in fewer words before it cuts any.
        metrics = p.fontMetrics()
        outlined_text(p, QPointF(m, 16), None, _fitting(metrics, self.title_variants(), w - 2 * m), TEXT_COLOR)
        win = s.layer_window(self.layer)
        unit = f" {s.units}" if s.units else ""
        zoom = s.view_state(self.plane).zoom
        readout = [
            f"W {win.width:.4g}  L {win.center:.4g}{unit}  x{zoom:.2g}",
            f"W{win.width:.4g} L{win.center:.4g} x{zoom:.2g}",
            f"W{win.width:.4g} L{win.center:.4g}",
        ]
        outlined_text(p, QPointF(m, h - m), None, _fitting(metrics, readout, w - 2 * m), TEXT_COLOR)
        ppmm = self.pixels_per_mm()
        # The bar keeps to the right half, clear of the bottom orientation letter at the centre.
        room = min(120.0, w / 4, (w - m - 30) - (w / 2 + 12))
        length_mm, length_px = scale_bar(1.0 / ppmm if ppmm > 0 else 0, room)
        if length_px >= 10 and w >= 160:
            x1, y1 = w - m - 30, h - m - 16
            x0 = x1 - length_px
            p.setPen(QPen(TEXT_COLOR, 2))
            p.drawLine(QPointF(x0, y1), QPointF(x1, y1))
            p.drawLine(QPointF(x0, y1 - 4), QPointF(x0, y1 + 4))
            p.drawLine(QPointF(x1, y1 - 4), QPointF(x1, y1 + 4))
            outlined_text(p, QPointF(x0, y1 - 6), None, f"{length_mm:g} mm", TEXT_COLOR)

    # ----- mouse ----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: D102
        if self.session.image is None:
            return
        self.setFocus()
        self.activated.emit(self.plane)
        button = _BUTTONS.get(event.button())
        if button is None:
            return
        s = self.session
        start = {"window": s.layer_window(self.layer), "view": s.view_state(self.plane)}
        mod = modifier_name(event.modifiers())
        if s.measure.active and button == "left" and mod in ("", "shift") and not self.mip:
            start["ruler"] = self._on_grid(event.position())
            start["kind"] = "circle" if mod == "shift" else "line"
            s.measure.start()
        self._press = (button, mod, event.position(), start)
        self._moved = False

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: D102
        s = self.session
        if s.image is None:
            return
        if self._press is None:
            self._hover = event.position()
            self._emit_hover()
            return
        button, mod, origin, start = self._press
        delta = event.position() - origin
        if not self._moved and max(abs(delta.x()), abs(delta.y())) < CLICK_SLOP_PX:
            return
        self._moved = True
        if "ruler" in start:
            s.measure.draw(self.plane, start["ruler"], self._on_grid(event.position()), start["kind"])
            return
        self.apply_drag(MOUSE_SCHEMES[s.mouse_scheme].drag_action(button, mod), delta, event.position(), start)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: D102
        if self._press is not None and not self._moved and self.session.image is not None:
            if MOUSE_SCHEMES[self.session.mouse_scheme].click == MouseAction.CROSSHAIR and self._press[0] == "left":
                self.set_crosshair(event.position())
        self._press = None

    def apply_drag(self, action: MouseAction, delta: QPointF, pos: QPointF, start: dict) -> None:
        """Carries out one step of a drag action."""
        s = self.session
        if action == MouseAction.WINDOW_LEVEL:
            # The view dragged in changes: the residual's own window, or the one the scan's layers share.
            s.set_layer_window(self.layer, start["window"].dragged(delta.x(), delta.y(), s.window_drag_scale()))
        elif action == MouseAction.PAN:
            ppmm = self.pixels_per_mm()
            pan = (start["view"].pan[0] + delta.x() / ppmm, start["view"].pan[1] + delta.y() / ppmm)
            s.set_view_state(self.plane, pan=pan)
        elif action == MouseAction.ZOOM:
            # About the point pressed: what the reader pointed at stays under the pointer.
            self.zoom_about(pos - delta, start["view"].zoom * math.exp(-delta.y() / 150.0), start["view"])
        elif action == MouseAction.CROSSHAIR:
            self.set_crosshair(pos)

    def _on_grid(self, pos: QPointF) -> np.ndarray:
        # A ruler end dragged past the scan's edge stops at the edge: the length is of what is on screen.
        index = self.widget_to_voxel(pos)
        return np.clip(index, 0.0, np.asarray(self.session.image.grid.shape, dtype=np.float64) - 1.0)

    def zoom_about(self, pos: QPointF, zoom: float, start=None) -> None:
        """Zooms so that the image point under ``pos`` stays there (``start``: the view state to zoom from).

        A heat projection zooms about the crosshair instead: it shares its plane's zoom and pan with the
        slice view, where the crosshair must stay put as zooming any other view keeps it.
        """
        s = self.session
        if self.mip:
            pos = self.voxel_to_widget(s.cursor)
        state = start or s.view_state(self.plane)
        zoom = min(max(float(zoom), 0.1), 40.0)
        base = self.pixels_per_mm() / s.view_state(self.plane).zoom  # screen pixels per mm at zoom 1
        if base <= 0:
            return
        dx, dy = pos.x() - self.width() / 2, pos.y() - self.height() / 2
        pan = (
            state.pan[0] + dx / (base * zoom) - dx / (base * state.zoom),
            state.pan[1] + dy / (base * zoom) - dy / (base * state.zoom),
        )
        s.zoom_view(self.plane, zoom, pan)

    def set_crosshair(self, pos: QPointF) -> None:
        """Moves the linked crosshair to the voxel under a widget position."""
        index = self.widget_to_voxel(pos)
        if self.inside(index):
            self.session.set_cursor(index)

    def focusInEvent(self, event) -> None:  # noqa: D102 (Qt override)
        super().focusInEvent(event)
        # The view with the focus frame is the one the slice keys move, also when Tab put the frame there.
        if self.session.image is not None:
            self.activated.emit(self.plane)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: D102
        if self.session.image is not None and event.button() == Qt.MouseButton.LeftButton and not self.mip:
            self.double_clicked.emit(self.plane)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: D102
        if self.session.image is None:
            return
        steps = event.angleDelta().y() / 120
        if steps and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.activated.emit(self.plane)
            self.zoom_about(event.position(), self.session.view_state(self.plane).zoom * 1.15**steps)
        elif steps:
            self.activated.emit(self.plane)
            self.session.move_slice(self.plane, int(math.copysign(max(1, round(abs(steps))), steps)))

    def _emit_hover(self) -> None:
        if self._hover is None or self.session.image is None:
            return
        index = self.widget_to_voxel(self._hover)
        self.hovered.emit(self.session.readout(index) if self.inside(index) else None)

    def _on_cursor(self) -> None:
        # Keys or the wheel changed the slice under a still pointer: the read-out must describe it.
        self.update()
        if self._hover is not None and not self.mip:
            self._emit_hover()

    def leaveEvent(self, event) -> None:  # noqa: D102
        self._hover = None
        self.hovered.emit(None)


def _compact(slice_text: str) -> str:
    """``slice j=78 (of 229)`` as ``j=78/229``."""
    return re.sub(r"^slice (\w=\d+) \(of (\d+)\)$", r"\1/\2", slice_text)


def _fitting(metrics, variants: list[str], width: float) -> str:
    """The first of ``variants`` (longest first) that fits ``width``; else the last, cut at the right."""
    for text in variants:
        if metrics.horizontalAdvance(text) <= width:
            return text
    return metrics.elidedText(variants[-1], Qt.TextElideMode.ElideRight, int(width))

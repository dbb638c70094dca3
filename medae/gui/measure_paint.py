"""Drawing a slice view's measurements: rulers with their lengths, circles with their statistics.

The labels are laid out together (``medae.viewer.labels``) after every line is drawn, so rulers measured
close together keep each length readable and on top of the lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen

from medae.gui.painting import outlined_text
from medae.viewer.labels import place_labels

RULER_COLOR = QColor(120, 230, 255)
#: Baseline to baseline of a label's lines.
LINE_STEP = 16
#: Where labels may go: clear of the title line at the top and of the read-outs and scale bar at the bottom.
TOP_BASELINE, BOTTOM_ROOM = 34.0, 40.0


@dataclass
class _Label:
    lines: list[str]
    at: QPointF  # the first line's baseline start, where the label would go alone
    anchor: QPointF  # the point of its measurement a leader line goes to, when the label had to move


def paint_measurements(view, p: QPainter) -> None:
    """Draws the rulers and circles of ``view``'s slice, then their labels, none covering another."""
    s = view.session
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    labels: list[_Label] = []
    for ruler in s.measure.rulers_on(view.plane, s.cursor):
        a, b = view.voxel_to_widget(ruler.start), view.voxel_to_widget(ruler.end)
        if ruler.kind == "circle":
            label = _paint_circle(view, p, ruler, a)
        else:
            p.setPen(QPen(QColor(0, 0, 0), 4))
            p.drawLine(a, b)
            p.setPen(QPen(RULER_COLOR, 2))
            p.drawLine(a, b)
            for end in (a, b):
                p.drawEllipse(end, 3.0, 3.0)
            # The length sits beside the end lower on screen, clear of the line.
            lower = max((a, b), key=lambda q: q.y())
            label = _Label([f"{ruler.length_mm(s.image.grid.affine):.1f} mm"], lower + QPointF(6, 16), lower)
        if label is not None:
            labels.append(label)
    _paint_labels(view, p, labels)
    p.setRenderHint(QPainter.RenderHint.Antialiasing, False)


def _paint_circle(view, p: QPainter, circle, centre: QPointF) -> _Label | None:
    s = view.session
    radius = circle.length_mm(s.image.grid.affine) * view.pixels_per_mm()
    for color, width in ((QColor(0, 0, 0), 4), (RULER_COLOR, 2)):
        p.setPen(QPen(color, width))
        p.drawEllipse(centre, radius, radius)
    if view.layer != "input":  # the statistics are the scan's; compare mode shows them once, by the scan
        return None
    stats = s.measure.region_stats(circle, s.image.values, s.image.grid.affine, s.heat.values if s.heat else None)
    if not stats["voxels"]:
        return None
    unit = f" {s.units}" if s.units else ""
    lines = [f"{stats['mean']:.4g} \u00b1 {stats['sd']:.3g}{unit}"]
    if stats["clipped"]:
        lines[0] += " (part outside the scan)"
    lines.append(f"{stats['area_mm2']:.0f} mm\u00b2, {stats['min']:.4g} to {stats['max']:.4g}")
    if "heat_max" in stats:
        lines.append(f"heat {stats['heat_mean']:.1f}, max {stats['heat_max']:.1f}")
    # Beside the circle on the side with room for the text, else centred under it.
    width = max(p.fontMetrics().horizontalAdvance(t) for t in lines)
    x, y = centre.x() + radius + 6, centre.y() - 8 * (len(lines) - 2)
    edge = QPointF(centre.x() + radius, centre.y())
    if x + width > view.width() - 4:
        x, edge = centre.x() - radius - 6 - width, QPointF(centre.x() - radius, centre.y())
    if x < 4:
        x, y = max(4.0, centre.x() - width / 2), centre.y() + radius + 16
        edge = QPointF(centre.x(), centre.y() + radius)
    return _Label(lines, QPointF(x, y), edge)


def _paint_labels(view, p: QPainter, labels: list[_Label]) -> None:
    metrics = p.fontMetrics()
    ascent = metrics.ascent()
    sizes = [
        (max(metrics.horizontalAdvance(t) for t in lab.lines), LINE_STEP * (len(lab.lines) - 1) + metrics.height())
        for lab in labels
    ]
    wanted = [(lab.at.x(), lab.at.y() - ascent, w, h) for lab, (w, h) in zip(labels, sizes, strict=True)]
    bounds = (
        4.0,
        TOP_BASELINE - ascent,
        view.width() - 8.0,
        view.height() - BOTTOM_ROOM - TOP_BASELINE + metrics.height(),
    )
    for lab, want, (x, top, w, h) in zip(labels, wanted, place_labels(wanted, bounds), strict=True):
        box = QRectF(x, top, w, h)
        if abs(top - want[1]) > metrics.height() or abs(x - want[0]) > metrics.height():
            # Moved away from its measurement to stay clear of another label: a thin line says whose it is.
            near = QPointF(
                min(max(lab.anchor.x(), box.left()), box.right()), min(max(lab.anchor.y(), box.top()), box.bottom())
            )
            p.setPen(QPen(RULER_COLOR, 1, Qt.PenStyle.DotLine))
            p.drawLine(QLineF(lab.anchor, near))
        for n, text in enumerate(lab.lines):
            outlined_text(p, QPointF(x, top + ascent + LINE_STEP * n), None, text, RULER_COLOR)

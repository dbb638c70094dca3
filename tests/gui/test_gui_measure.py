"""Measurements on screen: labels of rulers drawn close together stay readable."""

from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF


def test_lengths_of_rulers_drawn_close_together_do_not_cover_each_other(opened, qtbot, monkeypatch):
    import medae.gui.measure_paint as measure_paint

    s = opened.session
    axial = opened.view_area.view("axial")
    k = s.cursor[2]
    for n in range(4):  # four rulers whose lower ends are a voxel or two apart
        s.measure.start()
        s.measure.draw("axial", (12 + n, 10, k), (20 + n, 22 + n % 2, k))
    s.measure.start()
    s.measure.draw("axial", (21, 24, k), (23, 24, k), "circle")  # and a region beside them
    drawn = []
    real = measure_paint.outlined_text
    monkeypatch.setattr(
        measure_paint,
        "outlined_text",
        lambda p, at, flags, text, color: (drawn.append((at, text)), real(p, at, flags, text, color)),
    )
    axial.grab()
    metrics = QFontMetricsF(axial.font())
    boxes = [
        QRectF(at.x(), at.y() - metrics.ascent(), metrics.horizontalAdvance(text), metrics.height())
        for at, text in drawn
    ]
    assert sum(text.endswith(" mm") for _at, text in drawn) == 4 and len(drawn) >= 6  # the circle's lines too
    for n, a in enumerate(boxes):
        assert axial.rect().contains(a.toRect())
        for b in boxes[n + 1 :]:
            # Before, the lengths were drawn over one another, unreadable.
            assert not a.intersects(b), (drawn[n][1], a, b)

"""Text drawn over a scan."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QPainter


def outlined_text(p: QPainter, where: QRectF | QPointF, flags, text: str, color: QColor) -> None:
    """Text with a dark rim, readable on bright bone, an inverted scan and the crosshair alike.

    ``where`` is a rectangle (with alignment ``flags``) or a baseline point (``flags`` None).
    """

    def draw(dx: float, dy: float) -> None:
        if flags is None:
            p.drawText(where + QPointF(dx, dy), text)
        else:
            p.drawText(where.translated(dx, dy), flags, text)

    p.setPen(QColor(0, 0, 0))
    for dx, dy in ((-1, -1), (1, 1), (-1, 1), (1, -1)):  # the diagonals already close the rim
        draw(dx, dy)
    p.setPen(color)
    draw(0, 0)

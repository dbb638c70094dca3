"""Where text labels go on a view so that none covers another (the lengths of rulers drawn close together).

Qt-free: boxes are (left, top, width, height) in screen pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[float, float, float, float]


def _overlaps(a: Box, b: Box, gap: float, side_gap: float) -> bool:
    across = a[0] < b[0] + b[2] + side_gap and b[0] < a[0] + a[2] + side_gap
    return across and a[1] < b[1] + b[3] + gap and b[1] < a[1] + a[3] + gap


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


def place_labels(wanted: Sequence[Box], bounds: Box, gap: float = 2.0, side_gap: float = 10.0) -> list[Box]:
    """Places labels in order, each as near its wanted place as it can be without covering one placed before.

    A label that collides is tried just above, below, left and right of the labels in its way (and of
    each other's sides), inside ``bounds``; of the free places, the nearest wins. Where none is free (a view
    too small for them all) it keeps its wanted place: overlapping beats leaving the view.

    Args:
        wanted: Each label's box where it would go alone.
        bounds: The area labels must stay in (a label larger than it keeps its top left corner inside).
        gap: Pixels kept between two labels one above the other.
        side_gap: Pixels kept between two labels side by side, so that "12.2 mm 11.5 mm" does not read as one.

    Returns:
        The boxes, in the order given.
    """
    left, top, right, bottom = bounds[0], bounds[1], bounds[0] + bounds[2], bounds[1] + bounds[3]
    placed: list[Box] = []
    for x, y, w, h in wanted:
        room = (left, top, max(left, right - w), max(top, bottom - h))  # where the label's corner may go
        x, y = _clamp(x, room[0], room[2]), _clamp(y, room[1], room[3])

        def fits(cx: float, cy: float, w: float = w, h: float = h, room: tuple = room) -> bool:
            inside = room[0] <= cx <= room[2] and room[1] <= cy <= room[3]
            return inside and not any(_overlaps((cx, cy, w, h), p, gap, side_gap) for p in placed)

        xs, ys = {x}, {y}
        for px, py, pw, ph in placed:
            xs.update((px + pw + side_gap, px - w - side_gap))
            ys.update((py + ph + gap, py - h - gap))

        # Straight up, down or sideways first; only when all those are taken, the corners between them (few
        # labels get there, and trying every corner for every label would slow the repaint of a busy slice).
        free = [(x, cy) for cy in ys if fits(x, cy)] + [(cx, y) for cx in xs if fits(cx, y)]
        if not free:
            free = [(cx, cy) for cx in xs for cy in ys if fits(cx, cy)]
        # Up or down before sideways: a stack of lengths reads more easily than a row of them.
        best = min(free, key=lambda c: ((c[0] - x) * 3) ** 2 + (c[1] - y) ** 2, default=(x, y))
        placed.append((best[0], best[1], w, h))
    return placed

"""The distance ruler: a line drawn on one slice, measured in world millimetres.

Qt-free state (like the rest of ``medae.viewer``): the view turns a drag into ``Measure.draw`` calls and
paints ``Measure.ruler_on``; the length comes from the grid's affine, so anisotropic, oblique and
sheared grids measure true distances, not screen pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from medae.viewer.planes import plane_spec


@dataclass(frozen=True)
class Ruler:
    """A measured line.

    Attributes:
        plane: The plane it was drawn in.
        start: Continuous canonical voxel index of the first end.
        end: Continuous canonical voxel index of the second end (same slice as ``start``).
    """

    plane: str
    start: tuple[float, float, float]
    end: tuple[float, float, float]

    def length_mm(self, affine: np.ndarray) -> float:
        """Length in world millimetres, through the canonical grid's affine."""
        step = np.asarray(self.end, dtype=np.float64) - np.asarray(self.start, dtype=np.float64)
        return float(np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3] @ step))

    def slice_index(self) -> int:
        """The slice of its plane it lies in."""
        return int(round(self.start[plane_spec(self.plane).normal]))


class Measure:
    """Whether left-drag measures (the M key), and the ruler last drawn.

    Signals:
        changed: the mode or the ruler changed (views repaint).
    """

    changed = Signal()

    def __init__(self) -> None:
        self.active = False
        self.ruler: Ruler | None = None

    def set_active(self, on: bool) -> None:
        """Turns measuring on or off; turning it off removes the ruler."""
        if bool(on) != self.active or (not on and self.ruler is not None):
            self.active, self.ruler = bool(on), (self.ruler if on else None)
            self.changed.emit()

    def draw(self, plane: str, start, end) -> None:
        """Sets the ruler from ``start`` to ``end`` (canonical indices in one slice of ``plane``)."""
        self.ruler = Ruler(plane, tuple(float(x) for x in start[:3]), tuple(float(x) for x in end[:3]))
        self.changed.emit()

    def clear(self) -> None:
        """Removes the ruler and leaves measuring (a new scan)."""
        if self.active or self.ruler is not None:
            self.active, self.ruler = False, None
            self.changed.emit()

    def ruler_on(self, plane: str, cursor) -> Ruler | None:
        """The ruler to draw in a view of ``plane`` whose slice passes through ``cursor``, if any."""
        r = self.ruler
        if r is None or r.plane != plane or r.slice_index() != int(cursor[plane_spec(plane).normal]):
            return None
        return r

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
    """Whether left-drag measures (the M key), and the rulers drawn on the scan.

    Rulers stay when measuring stops (a reader measures, then reads on); ``clear`` removes them, and a new
    scan starts without any.

    Signals:
        changed: the mode or the rulers changed (views repaint).
    """

    changed = Signal()

    def __init__(self) -> None:
        self.active = False
        self.rulers: list[Ruler] = []
        self._drawing = False

    @property
    def ruler(self) -> Ruler | None:
        """The ruler drawn last, if any."""
        return self.rulers[-1] if self.rulers else None

    def set_active(self, on: bool) -> None:
        """Turns measuring on or off (the rulers stay)."""
        if bool(on) != self.active:
            self.active = bool(on)
            self.changed.emit()

    def start(self) -> None:
        """A new drag begins: its first ``draw`` adds a ruler, later ones move its end."""
        self._drawing = False

    def draw(self, plane: str, start, end) -> None:
        """Sets the ruler being drawn from ``start`` to ``end`` (canonical indices in one slice of ``plane``)."""
        ruler = Ruler(plane, tuple(float(x) for x in start[:3]), tuple(float(x) for x in end[:3]))
        if self._drawing and self.rulers:
            self.rulers[-1] = ruler
        else:
            self.rulers.append(ruler)
            self._drawing = True
        self.changed.emit()

    def clear(self) -> None:
        """Removes every ruler and leaves measuring (a new scan, or the user's command)."""
        if self.active or self.rulers:
            self.active, self.rulers, self._drawing = False, [], False
            self.changed.emit()

    def rulers_on(self, plane: str, cursor) -> list[Ruler]:
        """The rulers to draw in a view of ``plane`` whose slice passes through ``cursor``."""
        k = int(cursor[plane_spec(plane).normal])
        return [r for r in self.rulers if r.plane == plane and r.slice_index() == k]

"""Measurements on one slice: distance rulers and circular regions with their statistics.

Qt-free state (like the rest of ``medae.viewer``): the view turns a drag into ``Measure.draw`` calls and
paints ``Measure.rulers_on``; lengths and radii come from the grid's affine, so anisotropic, oblique and
sheared grids measure true distances, not screen pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from psygnal import Signal

from medae.viewer.planes import plane_spec


@dataclass(frozen=True)
class Ruler:
    """A measured line, or a circular region.

    Attributes:
        plane: The plane it was drawn in.
        start: Continuous canonical voxel index of the first end (a circle's centre).
        end: Continuous canonical voxel index of the second end (a point on a circle's edge); same slice.
        kind: "line" or "circle".
    """

    plane: str
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    kind: str = "line"

    def length_mm(self, affine: np.ndarray) -> float:
        """Length in world millimetres, through the canonical grid's affine."""
        step = np.asarray(self.end, dtype=np.float64) - np.asarray(self.start, dtype=np.float64)
        return float(np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3] @ step))

    def slice_index(self) -> int:
        """The slice of its plane it lies in."""
        return int(round(self.start[plane_spec(self.plane).normal]))

    def region_stats(self, values: np.ndarray, affine: np.ndarray, heat: np.ndarray | None = None) -> dict:
        """Statistics of the voxels of a circle's slice within its radius (in world mm from its centre).

        Args:
            values: The scan on the canonical grid.
            affine: The canonical grid's affine.
            heat: The heatmap on the same grid, if any.

        Returns:
            ``voxels``, ``area_mm2``, ``mean``, ``sd``, ``min``, ``max`` of the scan's values (NaN left out),
            and ``heat_mean``, ``heat_max`` with a heatmap; ``voxels`` 0 when the circle holds no voxel centre;
            ``clipped`` when part of the circle lies outside the scan (the figures are of the part inside).
        """
        spec = plane_spec(self.plane)
        k = self.slice_index()
        a = np.asarray(affine, dtype=np.float64)[:3, :3]
        ca, ra = spec.col_axis, spec.row_axis
        c0, r0 = self.start[ca], self.start[ra]
        radius = self.length_mm(affine)
        # Only the voxels in the circle's bounding box, in index units: how far the radius reaches along
        # each in-plane axis, through the plane's metric (on a sheared grid, further than radius / step).
        plane = a[:, [ca, ra]]
        reach_c, reach_r = radius * np.sqrt(np.diag(np.linalg.inv(plane.T @ plane)))
        half_c, half_r = int(np.ceil(reach_c)) + 1, int(np.ceil(reach_r)) + 1
        cols = np.arange(max(0, int(c0) - half_c), min(values.shape[ca], int(c0) + half_c + 2))
        rows = np.arange(max(0, int(r0) - half_r), min(values.shape[ra], int(r0) + half_r + 2))
        dc, dr = np.meshgrid(cols - c0, rows - r0, indexing="ij")
        mm = np.linalg.norm(a[:, ca][None, None, :] * dc[..., None] + a[:, ra][None, None, :] * dr[..., None], axis=2)
        inside = mm <= radius
        index: list = [slice(None)] * 3
        index[spec.normal] = k
        index[ca] = cols[:, None]
        index[ra] = rows[None, :]
        # Fancy indexing puts the two in-plane axes first, in (col, row) order as built.
        picked = np.asarray(values[tuple(index)], dtype=np.float64)[inside]
        picked = picked[np.isfinite(picked)]
        pixel_mm2 = float(np.linalg.norm(np.cross(a[:, ca], a[:, ra])))
        clipped = bool(
            c0 - reach_c < -0.5
            or c0 + reach_c > values.shape[ca] - 0.5
            or r0 - reach_r < -0.5
            or r0 + reach_r > values.shape[ra] - 0.5
        )
        out = {"voxels": int(picked.size), "area_mm2": float(inside.sum()) * pixel_mm2, "clipped": clipped}
        if picked.size:
            out.update(
                mean=float(picked.mean()), sd=float(picked.std()), min=float(picked.min()), max=float(picked.max())
            )
        if heat is not None and picked.size:
            h = np.asarray(heat[tuple(index)], dtype=np.float64)[inside]
            out.update(heat_mean=float(h.mean()), heat_max=float(h.max()))
        return out


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
        self._stats: dict[Ruler, dict] = {}  # region statistics on ``_stats_of``, for repaints
        self._stats_of: tuple = (None, None)  # the (values, heat) arrays they were measured on

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

    def draw(self, plane: str, start, end, kind: str = "line") -> None:
        """Sets the ruler being drawn from ``start`` to ``end`` (canonical indices in one slice of ``plane``).

        ``kind`` "circle": a region centred on ``start`` through ``end``.
        """
        ruler = Ruler(plane, tuple(float(x) for x in start[:3]), tuple(float(x) for x in end[:3]), kind)
        if self._drawing and self.rulers:
            self.rulers[-1] = ruler
        else:
            self.rulers.append(ruler)
            self._drawing = True
        self.changed.emit()

    def clear(self) -> None:
        """Removes every ruler and leaves measuring (a new scan, or the user's command)."""
        self._stats, self._stats_of = {}, (None, None)
        if self.active or self.rulers:
            self.active, self.rulers, self._drawing = False, [], False
            self.changed.emit()

    def region_stats(self, ruler: Ruler, values: np.ndarray, affine: np.ndarray, heat: np.ndarray | None) -> dict:
        """``ruler.region_stats``, kept while the ruler and the arrays stay: views repaint on every drag."""
        # Held by identity, not by id(): a new scan's array may take a freed one's id.
        if self._stats_of[0] is not values or self._stats_of[1] is not heat:
            self._stats, self._stats_of = {}, (values, heat)
        if ruler not in self._stats:
            self._stats[ruler] = ruler.region_stats(values, affine, heat)
        return self._stats[ruler]

    def rulers_on(self, plane: str, cursor) -> list[Ruler]:
        """The rulers to draw in a view of ``plane`` whose slice passes through ``cursor``."""
        k = int(cursor[plane_spec(plane).normal])
        return [r for r in self.rulers if r.plane == plane and r.slice_index() == k]

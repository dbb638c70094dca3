"""Volumes prepared for display: turned to the closest canonical (RAS) axes and coded to 16 bits.

Turning is a flip/transpose, never a resampling, so every displayed voxel is a stored voxel and its
world position comes from the true (possibly oblique) affine. 16-bit codes make window/level a
table look-up (``compositing``); integer scans of up to 16 bits are coded exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medae import geometry
from medae.volume import Volume


@dataclass(frozen=True)
class Encoded:
    """A volume as 16-bit codes.

    Attributes:
        codes: uint16 array, same shape (may be a view of the source for 16-bit integer data).
        values: float64 table (65,536,) of the value each code stands for.
        exact: True when codes map back to the stored values without rounding.
    """

    codes: np.ndarray
    values: np.ndarray
    exact: bool


def encode(array: np.ndarray) -> Encoded:
    """Codes a volume to uint16 for table look-ups."""
    dt = array.dtype
    if dt == np.int16 or dt == np.uint16:
        values = np.arange(65536, dtype=np.uint16).view(dt).astype(np.float64)
        return Encoded(array.view(np.uint16), values, True)
    if dt.kind in "biu" and dt.itemsize == 1:
        values = np.arange(65536, dtype=np.float64)
        if dt.kind == "i":
            values -= 128
            return Encoded((array.astype(np.int16) + 128).astype(np.uint16), values, True)
        return Encoded(array.astype(np.uint16), values, True)
    finite = np.asarray(array, dtype=np.float64) if dt.kind in "iu" else array
    lo, hi = float(np.nanmin(finite)), float(np.nanmax(finite))
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        lo, hi = (lo, lo + 1.0) if np.isfinite(lo) else (0.0, 1.0)
    if dt.kind in "iu" and hi - lo < 65536:
        # Integers of any width that span fewer than 65,536 values still code exactly.
        codes = (np.asarray(array, dtype=np.int64) - int(lo)).astype(np.uint16)
        return Encoded(codes, np.arange(65536, dtype=np.float64) + int(lo), True)
    scale = 65535.0 / (hi - lo)
    scaled = np.subtract(array, lo, dtype=np.float32)
    scaled *= np.float32(scale)
    scaled += np.float32(0.5)
    np.clip(scaled, 0, 65535, out=scaled)
    codes = np.nan_to_num(scaled, nan=0.0).astype(np.uint16)
    return Encoded(codes, lo + np.arange(65536, dtype=np.float64) / scale, False)


class CanonicalGrid:
    """The index mapping between a volume's own grid and its canonical (RAS-turned) grid.

    Attributes:
        shape: Canonical array shape.
        affine: Canonical affine (canonical index -> RAS+ world mm).
        source_shape: The volume's own array shape.
        source_affine: The volume's own affine.
    """

    def __init__(self, shape: tuple[int, int, int], affine: np.ndarray) -> None:
        self.source_shape = tuple(int(s) for s in shape)
        self.source_affine = np.asarray(affine, dtype=np.float64)
        probe = np.empty(self.source_shape, dtype=np.uint8)
        turned, self.affine = geometry.reorient(probe, self.source_affine, "RAS")
        self.shape = tuple(int(s) for s in turned.shape)
        # Canonical index -> source index is an integer permutation with flips.
        self._to_source = np.rint(np.linalg.inv(self.source_affine) @ self.affine).astype(np.int64)
        self._to_canonical = np.rint(np.linalg.inv(self.affine) @ self.source_affine).astype(np.int64)

    def turn(self, array: np.ndarray) -> np.ndarray:
        """An array on the volume's own grid, as a view on the canonical grid."""
        if tuple(array.shape[:3]) != self.source_shape:
            raise ValueError(f"array shape {array.shape} is not on this grid {self.source_shape}")
        return geometry.reorient(array, self.source_affine, "RAS")[0]

    def to_source(self, index) -> tuple[int, int, int]:
        """Canonical voxel index -> the volume's own (i, j, k)."""
        v = self._to_source @ np.array([*np.asarray(index, dtype=np.int64)[:3], 1])
        return int(v[0]), int(v[1]), int(v[2])

    def source_axis(self, axis: int) -> int:
        """The volume's own axis (0, 1, 2 for i, j, k) that a canonical axis runs along."""
        return int(np.flatnonzero(self._to_source[:3, axis])[0])

    def to_canonical(self, index) -> tuple[int, int, int]:
        """The volume's own (i, j, k) -> canonical voxel index."""
        v = self._to_canonical @ np.array([*np.asarray(index, dtype=np.int64)[:3], 1])
        return int(v[0]), int(v[1]), int(v[2])

    def world(self, index) -> np.ndarray:
        """RAS+ world mm of a (possibly fractional) canonical index."""
        return geometry.apply_affine(self.affine, np.asarray(index, dtype=np.float64))

    def from_world(self, point) -> np.ndarray:
        """Continuous canonical index of a RAS+ world point."""
        return geometry.apply_affine(np.linalg.inv(self.affine), np.asarray(point, dtype=np.float64))

    def clamp(self, index) -> tuple[int, int, int]:
        """The nearest voxel inside the grid."""
        idx = np.rint(np.asarray(index, dtype=np.float64)).astype(np.int64)
        return tuple(int(np.clip(idx[a], 0, self.shape[a] - 1)) for a in range(3))  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the canonical axes."""
        return geometry.spacing(self.affine)


class ImageLayer:
    """One scan (or a volume on its grid) ready to draw.

    Attributes:
        volume: The source volume, untouched.
        grid: Index mapping to the canonical grid.
        values: The stored values on the canonical grid (a view), for read-outs.
        encoded: 16-bit codes on the canonical grid.
    """

    def __init__(self, volume: Volume, grid: CanonicalGrid | None = None) -> None:
        self.volume = volume
        self.grid = grid or CanonicalGrid(volume.shape, volume.affine)
        self.values = self.grid.turn(volume.array)
        enc = encode(self.values)
        # Slices are usually axial and the slice axis the shortest: Fortran order keeps an axial
        # slice contiguous (10x faster to look up) while coronal and sagittal slices stay small.
        self.encoded = Encoded(np.asfortranarray(enc.codes), enc.values, enc.exact)

    def value_at(self, index) -> float:
        """The stored value at a canonical voxel index."""
        i, j, k = self.grid.clamp(index)
        return float(self.values[i, j, k])


class HeatLayer:
    """A heatmap on the scan's grid, quantised to 256 levels for the blend table."""

    def __init__(self, heat: Volume, grid: CanonicalGrid) -> None:
        self.volume = heat
        self.grid = grid
        self.values = grid.turn(np.asarray(heat.array, dtype=np.float32))
        self._levels: np.ndarray | None = None
        self._range: tuple[float, float] | None = None

    def levels(self, vmin: float, vmax: float) -> np.ndarray:
        """uint8 levels over [vmin, vmax]; recomputed only when the range changes."""
        from medae.viewer.compositing import quantize_heat

        if self._levels is None or self._range != (vmin, vmax):
            self._levels = np.asfortranarray(quantize_heat(self.values, vmin, vmax))
            self._range = (vmin, vmax)
        return self._levels

    def value_at(self, index) -> float:
        """Heat at a canonical voxel index."""
        i, j, k = self.grid.clamp(index)
        return float(self.values[i, j, k])


@dataclass(frozen=True)
class Readout:
    """What lies under a point: the value, where it is, and the heat there."""

    value: float
    units: str
    index: tuple[int, int, int]
    world: tuple[float, float, float]
    heat: float | None
    heat_units: str

    def text(self) -> str:
        """One line for the status bar."""
        unit = f" {self.units}" if self.units else ""
        val = f"{self.value:.0f}" if self.units == "HU" else f"{self.value:.4g}"
        parts = [
            f"value {val}{unit}",
            "voxel ({}, {}, {})".format(*self.index),
            "RAS ({:.1f}, {:.1f}, {:.1f}) mm".format(*self.world),
        ]
        if self.heat is not None:
            parts.append(f"heat {self.heat:.2f} {self.heat_units}".rstrip())
        return "   ".join(parts)

"""The ``Volume``: one 3D scan as an array, its geometry, and what it is.

Array axes are voxel indices (i, j, k) as in nibabel; ``affine`` maps (i, j, k, 1) to RAS+ world
millimetres. For DICOM, i runs along a row (columns), j down the columns (rows), k across slices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from medae import geometry


@dataclass
class Volume:
    """A 3D scan.

    Attributes:
        array: Voxel data, original dtype kept (e.g. int16 HU for CT), shape (I, J, K).
        affine: 4x4 float64, voxel index -> RAS+ world mm.
        modality: DICOM modality code ("MR", "CT", ...) or "OT" when unknown.
        meta: Non-identifying description: study/series UIDs, series description, body part,
            window centre/width, manufacturer, ... Safe to export.
        phi: Patient-identifying fields (name, ID, birth date, accession, institution). Kept apart so
            that exports can drop them.
        source: Where the volume came from (file or folder path), for messages.
        warnings: Problems found while loading that the user should know about.
    """

    array: np.ndarray
    affine: np.ndarray
    modality: str = "OT"
    meta: dict[str, Any] = field(default_factory=dict)
    phi: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.array.ndim != 3:
            raise ValueError(f"Volume array must be 3D, got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"Volume affine must be 4x4, got {self.affine.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel grid shape (I, J, K)."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        return geometry.spacing(self.affine)

    @property
    def orientation(self) -> str:
        """Three-letter RAS+ code of the array axes, e.g. "RAS" or "LPS"."""
        return geometry.orientation_code(self.affine)

    @property
    def location(self) -> str:
        """Where the scan is, for messages: a DICOM series' own folder (not a folder of studies above it), or its file.

        Empty for a volume made in memory.
        """
        files = self.meta.get("source_files") or []
        if files:
            return os.path.commonpath([os.path.dirname(str(f)) for f in files])
        return str(self.source or "")

    def with_array(self, array: np.ndarray, **changes: Any) -> Volume:
        """A copy on the same grid with other voxel values (e.g. a heatmap)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} does not match the volume's {self.array.shape}")
        return replace(self, array=array, warnings=list(self.warnings), **changes)

    def world_to_voxel(self, points: np.ndarray) -> np.ndarray:
        """Continuous voxel indices of world points (N, 3)."""
        return geometry.apply_affine(np.linalg.inv(self.affine), points)

    def voxel_to_world(self, indices: np.ndarray) -> np.ndarray:
        """World RAS+ mm of voxel indices (N, 3)."""
        return geometry.apply_affine(self.affine, indices)

    def describe(self) -> str:
        """One line for logs and messages."""
        sp = "x".join(f"{s:.3g}" for s in self.spacing)
        return f"{self.modality} {'x'.join(map(str, self.shape))} @ {sp} mm {self.orientation}"


def value_sample(array: np.ndarray) -> np.ndarray:
    """Every 4th voxel along each axis of a large array (all of a small one): enough for value percentiles."""
    return array[::4, ::4, ::4] if array.size > 1_000_000 else array


def padding_value(data: np.ndarray, magnitude: bool = False) -> float | None:
    """The value a file fills outside its acquired field of view with, when it lies far below the scan's own.

    Resampled and converted scans fill the corners a rotation or crop left empty with the type's minimum
    (-32768) or a large negative (-3024 in CT): below any Hounsfield value, or further below the scan's
    other values than their whole range. Zero background, CT air at -1000 and the background of a
    standardised skull-stripped scan are the scan's own.

    Args:
        data: The values.
        magnitude: The scan is known to be a magnitude image (MR), which holds no negative values: then
            one negative value under all of its values is a fill too, -1024 included (written by tools
            made for CT). Without that knowledge such a value may be a CT's air, set to one value.
    """
    sample = value_sample(data)
    if sample.size == 0:
        return None
    low = sample.min()
    at = sample == low
    if not 0.001 <= at.mean() <= 0.9:
        return None
    if low <= -1500:
        return float(low)
    lo, hi = np.percentile(sample[~at], [0.5, 99.5])
    if magnitude and low < 0 <= lo and hi > 0:
        return float(low)
    return float(low) if hi > lo and low < lo - 2.0 * (hi - lo) else None


#: Meta keys that say how a grid is written back (the file's distance unit, its NIfTI space code), so that
#: results on a scan's grid are written as the scan was.
GRID_META_KEYS = ("space_unit", "nifti_space_code")


def grid_meta(meta: dict) -> dict:
    """The entries of ``meta`` that results on the same grid carry over (see ``GRID_META_KEYS``)."""
    return {key: meta[key] for key in GRID_META_KEYS if meta.get(key)}

"""The three reading planes on the canonical grid: which axes run across and down the screen.

On the canonical (RAS-turned) grid axis 0 points Right, 1 Anterior, 2 Superior. Radiological
convention shows the patient's right on the screen's left (as if facing the patient); neurological
shows it on the right. Sagittal views put anterior on the left in both. Rows count downwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
CONVENTIONS: tuple[str, ...] = ("radiological", "neurological")
_POS = ("R", "A", "S")
_NEG = ("L", "P", "I")


@dataclass(frozen=True)
class PlaneSpec:
    """How one plane maps canonical voxels to screen pixels.

    Attributes:
        plane: "axial", "coronal" or "sagittal".
        normal: Canonical axis the slices step along.
        col_axis: Canonical axis that runs across the screen.
        row_axis: Canonical axis that runs down the screen.
        col_flip: True when screen columns count against ``col_axis``.
        row_flip: True when screen rows count against ``row_axis``.
    """

    plane: str
    normal: int
    col_axis: int
    row_axis: int
    col_flip: bool
    row_flip: bool

    def image_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(rows, cols) of a slice of a canonical array of ``shape``."""
        return shape[self.row_axis], shape[self.col_axis]

    def extract(self, array: np.ndarray, index: int) -> np.ndarray:
        """One slice in screen orientation, as a view of a canonical array."""
        sl: list = [slice(None)] * 3
        sl[self.normal] = int(index)
        plane = array[tuple(sl)]
        # After dropping the normal the remaining axes keep their order.
        rest = [a for a in range(3) if a != self.normal]
        image = plane if rest.index(self.row_axis) == 0 else plane.T
        return image[:: -1 if self.row_flip else 1, :: -1 if self.col_flip else 1]

    def to_voxel(self, cursor: tuple[int, int, int], col: float, row: float, shape: tuple[int, ...]) -> np.ndarray:
        """Continuous canonical index of a screen pixel position in the slice through ``cursor``."""
        idx = np.asarray(cursor, dtype=np.float64).copy()
        idx[self.col_axis] = (shape[self.col_axis] - 1 - col) if self.col_flip else col
        idx[self.row_axis] = (shape[self.row_axis] - 1 - row) if self.row_flip else row
        return idx

    def to_screen(self, index, shape: tuple[int, ...]) -> tuple[float, float]:
        """(col, row) pixel position of a canonical index in this plane."""
        c = float(index[self.col_axis])
        r = float(index[self.row_axis])
        if self.col_flip:
            c = shape[self.col_axis] - 1 - c
        if self.row_flip:
            r = shape[self.row_axis] - 1 - r
        return c, r

    def pixel_mm(self, spacing: tuple[float, float, float]) -> tuple[float, float]:
        """Size in mm of one pixel across and down."""
        return float(spacing[self.col_axis]), float(spacing[self.row_axis])

    def pan_keeping(
        self,
        index,
        shape: tuple[int, ...],
        spacing: tuple[float, float, float],
        pan: tuple[float, float],
        factor: float,
    ) -> tuple[float, float]:
        """The pan that keeps a canonical index where it is on screen when the zoom grows by ``factor``.

        Pan is the image centre's offset from the view centre in mm, so a point ``u`` mm from the image
        centre lies ``(pan + u) * pixels_per_mm`` from the view centre; keeping that fixed while the pixels
        per mm scale by ``factor`` gives ``(pan + u) / factor - u``, whatever the view's size.
        """
        u, v = self.offset_mm(index, shape, spacing)
        return (pan[0] + u) / factor - u, (pan[1] + v) / factor - v

    def offset_mm(self, index, shape: tuple[int, ...], spacing: tuple[float, float, float]) -> tuple[float, float]:
        """How far a canonical index lies from the slice's centre, in mm across and down the screen."""
        rows, cols = self.image_shape(shape)
        col, row = self.to_screen(index, shape)
        dx, dy = self.pixel_mm(spacing)
        return (col + 0.5 - cols / 2) * dx, (row + 0.5 - rows / 2) * dy

    def screen_directions(self, affine: np.ndarray) -> dict[str, np.ndarray]:
        """World unit vectors pointing to the screen's right and down."""
        rzs = np.asarray(affine, dtype=np.float64)[:3, :3]
        right = rzs[:, self.col_axis] * (-1 if self.col_flip else 1)
        down = rzs[:, self.row_axis] * (-1 if self.row_flip else 1)
        return {"right": right / np.linalg.norm(right), "down": down / np.linalg.norm(down)}


def plane_spec(plane: str, convention: str = "radiological") -> PlaneSpec:
    """The screen mapping of a plane under a display convention."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    radiological = convention == "radiological"
    if plane == "axial":
        return PlaneSpec("axial", 2, 0, 1, radiological, True)
    if plane == "coronal":
        return PlaneSpec("coronal", 1, 0, 2, radiological, True)
    if plane == "sagittal":
        return PlaneSpec("sagittal", 0, 1, 2, True, True)
    raise ValueError(f"plane must be one of {PLANES}, got {plane!r}")


def direction_label(vector: np.ndarray, secondary: float = 0.25) -> str:
    """Patient-direction letters of a world (RAS+) vector, e.g. "L" or "LA" when oblique.

    Args:
        vector: Direction in RAS+ world coordinates.
        secondary: Smallest |cosine| for a second or third letter to be shown (0.25 is about 15 deg).
    """
    v = np.asarray(vector, dtype=np.float64)
    v = v / (np.linalg.norm(v) or 1.0)
    order = np.argsort(-np.abs(v))
    letters = []
    for n, axis in enumerate(order):
        if n > 0 and abs(v[axis]) < secondary:
            break
        letters.append((_POS if v[axis] >= 0 else _NEG)[axis])
    return "".join(letters)


def orientation_labels(spec: PlaneSpec, affine: np.ndarray) -> dict[str, str]:
    """Letters for the four screen edges of a plane, from the true affine.

    Returns:
        Dict with "left", "right", "top" and "bottom".
    """
    d = spec.screen_directions(affine)
    return {
        "right": direction_label(d["right"]),
        "left": direction_label(-d["right"]),
        "bottom": direction_label(d["down"]),
        "top": direction_label(-d["down"]),
    }


def scale_bar(mm_per_pixel: float, max_pixels: float = 120.0) -> tuple[float, float]:
    """A round scale-bar length that fits in ``max_pixels`` screen pixels.

    Returns:
        (length in mm from the 1-2-5 series, length in screen pixels).
    """
    if mm_per_pixel <= 0:
        return 0.0, 0.0
    limit = max_pixels * mm_per_pixel
    best = 1.0
    for exp in range(-2, 5):
        for m in (1, 2, 5):
            length = m * 10.0**exp
            if length <= limit:
                best = length
    return best, best / mm_per_pixel

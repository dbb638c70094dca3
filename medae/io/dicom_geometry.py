"""Slice geometry of one DICOM stack: sort, check and build the affine. Pure numpy.

Slices are ordered by their position projected on the slice normal (row cosines x column cosines),
never by InstanceNumber or file name. The slice step comes from positions, not SliceThickness.

Checks, each naming the files on either side of the problem:
- duplicate positions (closer than a tenth of the usual step: a second acquisition shifted by a hair
  repeats them too), missing slices (a step that is a multiple of the usual one) and irregular
  steps, with a 1 % relative tolerance: these are *problems*: the stack is not a regular grid, and
  loading it raises ``GeometryError`` rather than stacking it silently;
- positions that do not lie on one straight line: also a problem;
- gantry/detector tilt (the step is not parallel to the normal): a *warning*. The affine's third
  column is then the real step vector, i.e. the affine is sheared. That places every voxel exactly
  where the scanner says it is without interpolating the data; tools that need orthogonal voxels
  can resample from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medae.geometry import LPS_TO_RAS

REL_TOL = 0.01  # 1 % of the slice step
ABS_TOL_MM = 0.005  # positions are often written with two decimals
#: Two slices closer than this share of a step repeat a position: no stack steps by a tenth of its own step, while
#: a second acquisition of the same stack is often shifted by a fraction of a millimetre.
REPEAT_REL = 0.1


@dataclass
class StackGeometry:
    """The grid a stack of slices forms.

    Attributes:
        order: Indices into the input slices, in k order (ascending along the normal).
        affine: 4x4 voxel (i, j, k) -> RAS+ mm.
        step: Slice step in mm along the normal (the median one when irregular).
        tilt_deg: Angle between the slice step and the slice normal (0 when not tilted).
        warnings: Non-fatal findings (tilt, spacing guessed).
        problems: Findings that make the stack unusable as a regular grid (gaps, duplicates,...).
    """

    order: np.ndarray
    affine: np.ndarray
    step: float
    tilt_deg: float = 0.0
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def normal_of(orientation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit row direction, column direction and slice normal from ImageOrientationPatient.

    Raises:
        ValueError: the cosines are zero or far from orthogonal.
    """
    row = np.asarray(orientation[:3], dtype=np.float64)
    col = np.asarray(orientation[3:6], dtype=np.float64)
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if nr < 1e-6 or nc < 1e-6:
        raise ValueError("ImageOrientationPatient has a zero direction")
    row, col = row / nr, col / nc
    if abs(float(row @ col)) > 0.01:
        raise ValueError("ImageOrientationPatient row and column directions are not perpendicular")
    normal = np.cross(row, col)
    return row, col, normal / np.linalg.norm(normal)


def stack_geometry(
    positions: np.ndarray,
    orientation: np.ndarray,
    pixel_spacing: tuple[float, float],
    names: list[str],
    fallback_step: float | None = None,
) -> StackGeometry:
    """Sorts slices and checks that they form a regular grid.

    Args:
        positions: (N, 3) ImagePositionPatient of each slice, LPS mm.
        orientation: ImageOrientationPatient shared by the slices.
        pixel_spacing: (row spacing, column spacing) = PixelSpacing[0], PixelSpacing[1].
        names: File (and frame) names for messages, parallel to ``positions``.
        fallback_step: Slice step for a single slice (SpacingBetweenSlices or SliceThickness).

    Returns:
        The stack geometry; ``problems`` is empty when the slices form a regular grid.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    row, col, normal = normal_of(orientation)
    row_sp, col_sp = float(pixel_spacing[0]), float(pixel_spacing[1])
    dist = positions @ normal
    order = np.argsort(dist, kind="stable")
    d = dist[order]
    p = positions[order]
    warnings: list[str] = []
    problems: list[str] = []
    n = len(d)

    if n == 1:
        step = fallback_step if fallback_step and fallback_step > 0 else 1.0
        if not fallback_step:
            warnings.append("A single slice without SliceThickness: a 1 mm slice step was assumed.")
        return StackGeometry(order, _affine(row, col, normal * step, p[0], row_sp, col_sp), step, 0.0, warnings)

    steps = np.diff(d)
    ref = reference_step(steps)
    # Positions written with few decimals carry a rounding error in each coordinate; along an oblique
    # normal the three add up, so a regular stack can look irregular by more than 1 % of a 1 mm step.
    rounding = _quantum(positions) * float(np.abs(normal).sum())
    dup_tol = max(ABS_TOL_MM, REPEAT_REL * ref)
    tol = max(ABS_TOL_MM, REL_TOL * ref, rounding)
    dups = np.flatnonzero(steps <= dup_tol)
    if dups.size:
        offset = float(steps[dups].max())
        # Two acquisitions a hair apart (a repeated stack, shifted by a fraction of a step) repeat every position.
        nearly = ""
        if offset > ABS_TOL_MM:
            nearly = f", {offset:.3g} mm apart: the positions repeat with a tiny offset, as two acquisitions or stacks "
            nearly += "interleaved do"
        problems.append(
            f"{dups.size} duplicate slice position(s), e.g. {_pair(names, order, dups[0])} "
            f"both at {d[dups[0]]:.3f} mm along the normal"
            + (f" (also {_pairs(names, order, dups[1:4])})" if dups.size > 1 else "")
            + nearly
        )
    if ref > 0:
        ratio = steps / ref
        bad = np.flatnonzero((steps > dup_tol) & (np.abs(steps - ref) > tol))
        gaps = [b for b in bad if ratio[b] > 1.5 and abs(steps[b] - round(ratio[b]) * ref) <= tol * round(ratio[b])]
        odd = [b for b in bad if b not in gaps]
        if gaps:
            missing = int(sum(round(ratio[b]) - 1 for b in gaps))
            problems.append(
                f"{missing} missing slice(s): "
                + "; ".join(f"between {_pair(names, order, b)} ({steps[b]:.3g} mm apart)" for b in gaps[:4])
                + (f"; and {len(gaps) - 4} more gaps" if len(gaps) > 4 else "")
                + f" where the series steps {ref:.4g} mm"
            )
        if odd:
            problems.append(
                "irregular slice spacing: "
                + "; ".join(f"{steps[b]:.4g} mm between {_pair(names, order, b)}" for b in odd[:4])
                + (f"; and {len(odd) - 4} more" if len(odd) > 4 else "")
                + f" where the series steps {ref:.4g} mm (tolerance 1 %)"
            )
    step = ref if ref > 0 else (fallback_step or 1.0)

    # The step vector from the end points; sideways motion along the stack is gantry tilt.
    span = p[-1] - p[0]
    along = float(span @ normal)
    if abs(along) < 1e-9:
        affine = _affine(row, col, normal * step, p[0], row_sp, col_sp)
        return StackGeometry(order, affine, step, 0.0, warnings, problems)
    if not problems:
        # A regular stack: the mean step end to end, not the median of neighbours, whose rounding (positions
        # written with one or two decimals) would put the far slices a millimetre or more out of place.
        step = abs(along) / (n - 1)
    vec = span / (n - 1)
    lateral_total = np.linalg.norm(span - along * normal)
    tilt = float(np.degrees(np.arctan2(np.linalg.norm(vec - (vec @ normal) * normal), abs(vec @ normal))))
    sheared = lateral_total > max(0.02, 0.05 * min(row_sp, col_sp), 2 * rounding)
    # Each slice should sit on the line from the first to the last one (off-line = inconsistent).
    t = (d - d[0]) / along
    residual = np.linalg.norm(p - (p[0] + np.outer(t, span)), axis=1)
    worst = int(np.argmax(residual))
    if residual[worst] > max(0.05, 0.1 * min(row_sp, col_sp), 2 * rounding):
        problems.append(
            f"slice positions are not on one line: {names[order[worst]]} is {residual[worst]:.3g} mm "
            "off the line through the first and last slices"
        )
    if sheared:
        warnings.append(
            f"gantry/detector tilt of {tilt:.2f} degrees (each slice is shifted "
            f"{np.linalg.norm(vec - (vec @ normal) * normal):.3g} mm sideways): the volume keeps the slices as "
            "acquired with a sheared affine, which places every voxel exactly; resample it if a tool "
            "needs orthogonal voxels."
        )
        kvec = normal * step + (vec - (vec @ normal) * normal) * (step / abs(vec @ normal))
    else:
        tilt = 0.0
        kvec = normal * step
    return StackGeometry(order, _affine(row, col, kvec, p[0], row_sp, col_sp), step, tilt, warnings, problems)


def reference_step(steps: np.ndarray) -> float:
    """The usual slice step among the steps between sorted positions (0 when all positions coincide).

    The median of the steps, leaving out those under a tenth of the large ones: two acquisitions a hair apart
    (0.02 mm of a 2.5 mm step) step alternately by the hair and by a whole step, and the median would be the hair.
    """
    big = steps[steps > ABS_TOL_MM]
    if not big.size:
        return 0.0
    whole = big[big >= REPEAT_REL * float(np.percentile(big, 90))]
    return float(np.median(whole))


def repeats(positions_along_normal: np.ndarray) -> bool:
    """Whether positions (mm along the normal) repeat: two of them closer than a tenth of the usual step."""
    if len(positions_along_normal) < 2:
        return False
    steps = np.diff(np.sort(positions_along_normal))
    return bool(np.any(steps <= max(ABS_TOL_MM, REPEAT_REL * reference_step(steps))))


def _quantum(positions: np.ndarray) -> float:
    """The precision positions were written with, else 0.

    0.1, 0.01 or 0.001 mm when every coordinate is a multiple of it (the last digit of a DICOM decimal
    string); a difference of two such positions is then off by up to that much in each coordinate.
    """
    for q in (0.1, 0.01, 0.001):
        if np.all(np.abs(positions / q - np.round(positions / q)) < 1e-4):
            return q
    return 0.0


def _affine(
    row: np.ndarray, col: np.ndarray, kvec: np.ndarray, origin: np.ndarray, row_sp: float, col_sp: float
) -> np.ndarray:
    # i runs along a row (column index), so it moves by the column spacing PixelSpacing[1];
    # j runs down a column and moves by the row spacing PixelSpacing[0].
    lps = np.eye(4)
    lps[:3, 0] = row * col_sp
    lps[:3, 1] = col * row_sp
    lps[:3, 2] = kvec
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps


def _pair(names: list[str], order: np.ndarray, b: int) -> str:
    return f"{names[order[b]]} and {names[order[b + 1]]}"


def _pairs(names: list[str], order: np.ndarray, idx: np.ndarray) -> str:
    return ", ".join(_pair(names, order, int(b)) for b in idx)

"""Pure geometry on 4x4 affines (voxel index -> RAS+ world mm). Only numpy.

Conventions follow nibabel: orientation codes name the direction each array axis *increases*
towards, so "RAS" means i -> Right, j -> Anterior, k -> Superior.
"""

from __future__ import annotations

import numpy as np

_POS = ("R", "A", "S")
_NEG = ("L", "P", "I")
# DICOM patient coordinates are LPS+; RAS+ flips the first two axes.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Applies a 4x4 affine to points of shape (..., 3)."""
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:3, :3].T + affine[:3, 3]


def spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size along each array axis: the norms of the affine's columns."""
    norms = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    return tuple(float(n) for n in norms)  # type: ignore[return-value]


def listed_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size as a scanner lists it: the pixel size in the slice, and the distance between slice planes.

    On a grid without shear this is ``spacing``. A gantry-tilted series steps each slice sideways as well
    as along the table; its third column is then longer than the distance between the slices (1.55 mm for
    1.5 mm slices at 15 degrees), which is what the series was acquired with.
    """
    m = np.asarray(affine, dtype=np.float64)[:3, :3]
    across = np.linalg.norm(np.cross(m[:, 0], m[:, 1]))
    i, j, k = spacing(affine)
    return i, j, (abs(float(np.linalg.det(m))) / across if across > 0 else k)


def voxel_ml(affine: np.ndarray) -> float:
    """The volume of one voxel in mL (the affine in mm)."""
    return abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0


def axis_directions(affine: np.ndarray) -> np.ndarray:
    """For each array axis, the world axis (0=R,1=A,2=S) it is closest to, with its sign.

    Returns:
        Array (3, 2) of (world_axis, sign) per array axis; a permutation even for oblique affines.
    """
    rzs = np.asarray(affine, dtype=np.float64)[:3, :3]
    unit = rzs / np.where(np.linalg.norm(rzs, axis=0) == 0, 1, np.linalg.norm(rzs, axis=0))
    out = np.zeros((3, 2), dtype=int)
    free = [0, 1, 2]
    # Greedy by largest |cosine| so each array axis gets a distinct world axis (as nibabel's io_orientation).
    order = np.dstack(np.unravel_index(np.argsort(-np.abs(unit), axis=None), (3, 3)))[0]
    done: set[int] = set()
    for world, arr in order:
        if arr in done or world not in free:
            continue
        out[arr] = (world, 1 if unit[world, arr] >= 0 else -1)
        done.add(int(arr))
        free.remove(int(world))
    return out


def orientation_code(affine: np.ndarray) -> str:
    """Three-letter code such as "RAS", "LPS" or "LAS" for the array axes."""
    return "".join((_POS if sign > 0 else _NEG)[world] for world, sign in axis_directions(affine))


def obliquity_deg(affine: np.ndarray) -> float:
    """Largest angle in degrees between an array axis and its nearest world axis (0 = not oblique)."""
    rzs = np.asarray(affine, dtype=np.float64)[:3, :3]
    unit = rzs / np.linalg.norm(rzs, axis=0)
    cos = np.max(np.abs(unit), axis=0)
    return float(np.degrees(np.arccos(np.clip(cos.min(), -1, 1))))


def reorient(array: np.ndarray, affine: np.ndarray, code: str = "RAS") -> tuple[np.ndarray, np.ndarray]:
    """Flips and transposes array axes so they point along ``code``; no resampling.

    Returns:
        The reoriented array (a view where possible) and its affine; world coordinates of every
        voxel are unchanged.
    """
    code = code.upper()
    target = []
    for letter in code:
        if letter in _POS:
            target.append((_POS.index(letter), 1))
        elif letter in _NEG:
            target.append((_NEG.index(letter), -1))
        else:
            raise ValueError(f"bad orientation code {code!r}")
    if sorted(w for w, _ in target) != [0, 1, 2]:
        raise ValueError(f"orientation code {code!r} must name each of R/L, A/P, S/I once")
    current = axis_directions(affine)
    perm = [int(np.where(current[:, 0] == world)[0][0]) for world, _ in target]
    out = np.transpose(array, perm + list(range(3, array.ndim)))
    new_aff = np.asarray(affine, dtype=np.float64)[:, perm + [3]].copy()
    for new_axis, (_world, sign) in enumerate(target):
        if current[perm[new_axis], 1] != sign:
            n = out.shape[new_axis]
            out = np.flip(out, axis=new_axis)
            # The new first voxel is the old last one along this axis.
            new_aff[:3, 3] = new_aff[:3, 3] + new_aff[:3, new_axis] * (n - 1)
            new_aff[:3, new_axis] = -new_aff[:3, new_axis]
    return out, new_aff


def voxel_corners(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """World coordinates (8, 3) of the centres of the grid's corner voxels."""
    idx = np.array(
        [[i, j, k] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)],
        dtype=np.float64,
    )
    return apply_affine(affine, idx)


def rotation_matrix(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """3x3 rotation about x, then y, then z (world axes), angles in degrees."""
    ax, ay, az = np.radians(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx

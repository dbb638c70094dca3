"""Isolated bright voxels (hot pixels, corrupted samples) found and replaced before a scan is analysed.

A single voxel far brighter than every one of its 26 neighbours is not anatomy that an MR image can hold
at its own resolution, but once resampled to the model grid it looks like a tiny lesion, and the analysis
would list it. The residual used to pass a median filter that hid such voxels, and with them textured
anomalies the network does see (see ``residual.py``); removing them at the input keeps both right.
"""

from __future__ import annotations

import numpy as np

from medae.volume import value_sample

# How far above the brightest of its neighbours a voxel must lie, in units of the scan's 1st-99th
# percentile range. Anatomy never does this; neither does noise (a voxel 3 sigma above its
# neighbourhood is a small fraction of the range) nor a noise-textured lesion (its voxels vary by up to
# half the local intensity).
SPIKE_MARGIN = 1.0

_FACES = [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1)]
_OTHERS = [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if abs(i) + abs(j) + abs(k) > 1]


def bright_spikes(data: np.ndarray, margin: float = SPIKE_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Voxels brighter than all 26 neighbours by more than ``margin`` times the scan's value range.

    Args:
        data: A 3D scan.
        margin: See ``SPIKE_MARGIN``.

    Returns:
        The spikes' voxel indices (N, 3) and the median of each one's neighbours, its replacement.
    """
    none = (np.empty((0, 3), np.intp), np.empty(0, np.float32))
    if data.ndim != 3 or min(data.shape) < 3:
        return none
    sample = value_sample(data)
    lo, hi = np.percentile(sample, [1.0, 99.0])
    span = float(hi) - float(lo)
    if not span > 0:
        return none
    # Scans are C- or Fortran-ordered: neighbours are found at fixed offsets in the flat memory, which is
    # several times faster on a 512 x 512 x 300 volume than indexing with voxel coordinates.
    nx, ny, nz = data.shape
    if data.flags.f_contiguous and not data.flags.c_contiguous:
        order, steps = "F", np.array([1, nx, nx * ny])
    else:
        order, steps = "C", np.array([ny * nz, nz, 1])
    flat = np.ravel(data, order=order)  # a view unless the array is neither C- nor F-ordered
    # A spike lies ``margin * span`` above neighbours that are at least about the 1st percentile, so only
    # voxels above that can be one (about 1% of a scan); the others' neighbourhoods are never gathered.
    cand = np.flatnonzero(flat > lo + margin * span)
    ijk = np.stack(np.unravel_index(cand, data.shape, order=order), axis=1)
    inner = ((ijk > 0) & (ijk < np.array(data.shape) - 1)).all(axis=1)
    cand = cand[inner]
    values = flat[cand].astype(np.float32)
    # The six face neighbours rule out almost every candidate (bright tissue has bright neighbours), so
    # the other twenty are gathered only for the few left.
    for offsets in (_FACES, _OTHERS):
        spiky = np.ones(len(cand), bool)
        for o in offsets:
            spiky &= values - flat[cand + int(np.dot(o, steps))] > margin * span
        cand, values = cand[spiky], values[spiky]
        if cand.size == 0:
            return none
    neighbours = np.stack([flat[cand + int(np.dot(o, steps))] for o in _FACES + _OTHERS]).astype(np.float32)
    where = np.stack(np.unravel_index(cand, data.shape, order=order), axis=1)
    return where, np.median(neighbours, axis=0)


def despike(data: np.ndarray, margin: float = SPIKE_MARGIN) -> tuple[np.ndarray, int]:
    """``data`` with its isolated bright voxels set to their neighbours' median (a copy when any), and their count."""
    where, fill = bright_spikes(data, margin)
    if len(where) == 0:
        return data, 0
    out = data.copy()
    out[tuple(where.T)] = fill.astype(out.dtype) if np.issubdtype(out.dtype, np.floating) else np.round(fill)
    return out, len(where)

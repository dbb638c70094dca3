"""Slices that hold no signal inside the scan: dropped, zero-filled or corrupted slices.

A slice written as one constant value (typically 0) between slices that hold the head is missing data, not
anatomy: left as it is, a dark slab through the brain is the strongest "abnormality" in the scan. Such
slices are found along each array axis, filled from their neighbours so that the alignment and the network
see a plausible head, and reported so that the analysis leaves them unassessed.
"""

from __future__ import annotations

import numpy as np


def dropped_slices(data: np.ndarray) -> tuple[np.ndarray | None, list[str]]:
    """Finds slices of one constant value lying between slices that hold signal.

    Args:
        data: The scan's voxels (3D).

    Returns:
        A boolean mask of the dropped slices' voxels (None when there are none) and, per array axis
        that has them, a description ("2 slice(s) along array axis 2 (index 104-105, from 0)").
    """
    if data.ndim != 3 or min(data.shape) < 3:
        return None, []
    mask = None
    notes = []
    for axis in range(3):
        flat = _constant_slices(data, axis)
        # Only between slices with signal: constant slices at either end are the field of view's edge
        # (air set to zero, padding), not missing data.
        varying = np.flatnonzero(~flat)
        if varying.size < 2:
            continue
        inner = np.zeros_like(flat)
        inner[varying[0] : varying[-1] + 1] = flat[varying[0] : varying[-1] + 1]
        if not inner.any():
            continue
        mask = _add_slices(mask, notes, inner, axis, data.shape)
    return mask, notes


#: A slice whose tissue is this much darker (or brighter, by its inverse) than the slices around it lost
#: its signal in part (a spike, a coil element dropping out, a slice of a corrupted acquisition); no anatomy
#: changes the brightness of the head's tissue so between neighbouring slices.
DIMMED_BELOW = 0.6
#: Slices holding less of the head than this share of its largest cross-section (the top and bottom of the
#: head, where scalp and fat make up a slice) are not judged.
_MIN_HEAD_SHARE = 0.5


def dimmed_slices(data: np.ndarray, affine: np.ndarray | None = None) -> tuple[np.ndarray | None, list[str]]:
    """Finds slices through the head whose tissue is far darker or brighter than the slices around them.

    Args:
        data: The scan's voxels (3D).
        affine: Voxel -> RAS+ mm; with it, sagittal slices within 5 mm of the head's middle are not judged
            (the fissure between the hemispheres holds fluid, not tissue, in a slice of its own).

    Returns:
        A boolean mask of their voxels (None when there are none) and, per array axis that has them, a
        description as ``dropped_slices`` gives.
    """
    if data.ndim != 3 or min(data.shape) < 5 or data.dtype.kind not in "iuf":
        return None, []
    sample = np.asarray(data)[::2, ::2, ::2].astype(np.float32, copy=False)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return None, []
    level = 0.3 * float(np.percentile(finite, 99))
    if level <= 0:
        return None, []
    mask = None
    notes = []
    for axis in range(3):
        moved = np.moveaxis(np.asarray(data), axis, 0)
        # Every slice, about 20,000 voxels of each: whole-array sums, no loop over slices (a 512 x 512 x 300
        # scan has over a thousand slices along its three axes).
        step = max(1, int(np.sqrt(moved[0].size / 20_000)))
        sub = moved[:, ::step, ::step]
        head = sub > level
        areas = head.sum(axis=(1, 2)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            levels = np.where(head, sub, 0).sum(axis=(1, 2), dtype=np.float64) / areas
        del sub, head
        judged = areas >= _MIN_HEAD_SHARE * areas.max() if areas.max() > 0 else np.zeros(len(moved), bool)
        midline = _midline(judged, axis, affine)
        odd = np.zeros(len(moved), dtype=bool)
        for i in range(1, len(moved) - 1):
            near = [j for j in range(i - 3, i + 4) if j != i and 0 <= j < len(moved) and judged[j]]
            # Inside the head's span (judged slices on both sides): at its edges slices hold less of it from
            # one to the next.
            inside = judged[max(0, i - 3) : i].any() and judged[i + 1 : i + 4].any()
            if not inside or len(near) < 2 or midline[i]:
                continue
            if areas[i] < DIMMED_BELOW * np.median(areas[near]):
                odd[i] = True  # so dim that its tissue fell below the head's level
            elif np.isfinite(levels[i]):
                ratio = levels[i] / float(np.median(levels[near]))
                odd[i] = ratio < DIMMED_BELOW or ratio > 1.0 / DIMMED_BELOW
        if not odd.any():
            continue
        mask = _add_slices(mask, notes, odd, axis, data.shape)
    return mask, notes


def _add_slices(mask: np.ndarray | None, notes: list[str], flags: np.ndarray, axis: int, shape) -> np.ndarray:
    """``mask`` with the slices ``flags`` marks along ``axis`` added, and a note naming them."""
    index = np.flatnonzero(flags)
    along = [1, 1, 1]
    along[axis] = shape[axis]
    slab = np.broadcast_to(flags.reshape(along), shape)
    notes.append(f"{index.size} slice(s) along array axis {axis} (index {_ranges(index)}, from 0)")
    return slab.copy() if mask is None else mask | slab


def _midline(judged: np.ndarray, axis: int, affine: np.ndarray | None) -> np.ndarray:
    """Slices along ``axis`` within 5 mm of the middle of the head's span, when the axis runs left-right."""
    out = np.zeros(len(judged), dtype=bool)
    if affine is None or not judged.any():
        return out
    column = np.asarray(affine, dtype=np.float64)[:3, axis]
    step = float(np.linalg.norm(column))
    if step <= 0 or abs(column[0]) / step < 0.7:  # not a left-right axis
        return out
    span = np.flatnonzero(judged)
    middle = (span[0] + span[-1]) / 2.0
    out[np.abs(np.arange(len(judged)) - middle) * step <= 5.0] = True
    return out


def fill_from_neighbours(data: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """The scan with each run of dropped slices replaced by a linear blend of the slices on either side."""
    out = np.array(data, dtype=np.float32, copy=True)
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        flat = dropped.all(axis=others)
        for start, stop in _runs(np.flatnonzero(flat)):
            before, after = start - 1, stop
            if before < 0 or after >= data.shape[axis]:
                continue
            lo = np.take(out, before, axis=axis)
            hi = np.take(out, after, axis=axis)
            for i in range(start, stop):
                t = (i - before) / (after - before)
                index = [slice(None)] * 3
                index[axis] = i
                out[tuple(index)] = (1 - t) * lo + t * hi
    return out


def _constant_slices(data: np.ndarray, axis: int) -> np.ndarray:
    # A strided sample settles most slices cheaply (any two values differ: not constant); only the
    # slices whose sample is constant are read whole.
    moved = np.moveaxis(data, axis, 0)
    sample = moved[:, ::4, ::4]
    flat = sample.reshape(len(moved), -1)
    candidates = np.flatnonzero(flat.min(axis=1) == flat.max(axis=1))
    out = np.zeros(len(moved), dtype=bool)
    for i in candidates:
        s = moved[i]
        out[i] = bool(s.min() == s.max())
    return out


def _runs(index: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive runs of indices as (start, stop) pairs."""
    runs: list[tuple[int, int]] = []
    for i in index:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((int(i), int(i) + 1))
    return runs


def _ranges(index: np.ndarray) -> str:
    return ", ".join(f"{a}" if b - a == 1 else f"{a}-{b - 1}" for a, b in _runs(index))

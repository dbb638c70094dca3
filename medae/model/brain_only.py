"""Recognising skull-stripped scans, which many research and archive pipelines produce.

A skull-stripped scan is the brain alone on a background set to one value (usually 0, not always the
lowest). Aligned to a reference with a head around the brain, the optimiser stretches the brain towards
the skull and the reference's brain mask takes in background; such a scan is aligned to the reference
brain alone, and only the voxels the scan still has are assessed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medae import geometry

# A stripped scan's background is one exact value over much of the grid; a head scan's air is noise.
_MIN_BACKGROUND_FRACTION = 0.2
# What is left is a brain (an adult's is 1.0-1.9 L with its CSF); a head with scalp and skull is
# 3-5 L. A slab of a head with a masked background that falls under this is still aligned well to the
# reference brain, whose inner structure carries the alignment.
_MAX_BRAIN_ML = 2400.0


def stripped_foreground(data: np.ndarray, affine: np.ndarray) -> np.ndarray | None:
    """The voxels a skull-stripped scan kept, or None when the scan is not skull-stripped.

    Args:
        data: The scan's voxels.
        affine: Voxel -> RAS+ mm (for the voxel volume).
    """
    arr = np.asarray(data)
    if arr.size == 0:
        return None
    # The background is the most frequent value, not necessarily the lowest: stripped scans that were
    # standardised (zero mean in the brain) keep 0 outside. Every 4th voxel along each axis finds it
    # and rules most scans out without a pass over all of them.
    sample = arr[::4, ::4, ::4]
    values, counts = np.unique(sample, return_counts=True)
    top = int(np.argmax(counts))
    if counts[top] < _MIN_BACKGROUND_FRACTION * sample.size * 0.8:
        return None
    background = arr == values[top]
    n_bg = int(np.count_nonzero(background))
    if n_bg < _MIN_BACKGROUND_FRACTION * arr.size:
        return None
    voxel_ml = geometry.voxel_ml(affine)
    kept_ml = (arr.size - n_bg) * voxel_ml
    if kept_ml > _MAX_BRAIN_ML or kept_ml < 100.0:
        return None
    return ~background


def on_zero_background(data: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The kept voxels shifted to start at 0 on a background of 0, as the reference brain is.

    Registration starts from the images' centres of mass, which only mean something for non-negative
    intensities; a standardised scan has negative values inside the brain.
    """
    out = np.zeros(data.shape, np.float32)
    values = np.asarray(data, dtype=np.float32)[kept]
    out[kept] = values - values.min()
    return out


def kept_on_grid(foreground: np.ndarray, resample_fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The kept voxels on the model grid, interior holes (dark regions set to the background value) filled.

    Args:
        foreground: ``stripped_foreground``'s mask on the input grid.
        resample_fn: Maps an input-grid float array onto the model grid (linear, 0 outside).
    """
    from scipy import ndimage

    kept = resample_fn(foreground.astype(np.float32)) > 0.5
    return ndimage.binary_fill_holes(kept)


def correlation(values: np.ndarray, reference: np.ndarray, where: np.ndarray) -> float | None:
    """Pearson correlation of two model-grid images over ``where`` (None when undefined)."""
    a = np.asarray(values, dtype=np.float64)[where]
    b = np.asarray(reference, dtype=np.float64)[where]
    if a.size < 100 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])

"""Parts of a head scan set to zero after the acquisition: a face removed by defacing, padding outside the field.

Shared research scans are defaced (the face set to 0 so that the person cannot be recognised). Aligned as
it is, such a scan pulls the reference's face towards air: the brain's pose shifts by a millimetre or two
and its edge beside the removed face reads as abnormal. The blanked voxels are told apart from the air,
which holds noise, by being exactly zero in large connected regions.
"""

from __future__ import annotations

import numpy as np

from medae import geometry

#: A blanked region is at least this large; zeros the noise of the air happens to round to are single voxels.
MIN_BLANKED_ML = 5.0


def blanked_region(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The voxels blanked to exactly zero in large regions beside noisy air, or None when there are none.

    A scan whose whole background is zero (masked by the scanner, or resampled into a larger grid) has
    nothing to tell apart: None as well, and it is aligned as before.

    Args:
        data: The scan's voxels.
        affine: Voxel -> RAS+ mm (for the voxel volume).

    Returns:
        (the blanked voxels on a grid of every n-th voxel, about 1.5 mm, that grid's voxel -> RAS+ mm).
    """
    from scipy import ndimage

    arr = np.asarray(data)
    if arr.ndim != 3 or arr.size == 0 or arr.dtype.kind not in "iuf":
        return None
    # Looked for on a grid of about 1.5 mm: the alignment's finest level is coarser still, and a
    # 512 x 512 x 300 scan's labels at full size would cost seconds and a gigabyte.
    spacing = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    step = tuple(max(1, int(1.5 / s)) if s > 0 else 1 for s in spacing)
    coarse = arr[:: step[0], :: step[1], :: step[2]]
    voxel = geometry.voxel_ml(affine) * float(np.prod(step))
    zero = coarse == 0
    n_zero = int(np.count_nonzero(zero))
    if voxel <= 0 or n_zero * voxel < MIN_BLANKED_ML:
        return None
    level = 0.1 * float(np.percentile(coarse[::2, ::2, ::2], 99))
    if level <= 0 or n_zero > 0.5 * int(np.count_nonzero(coarse < level)):
        return None  # the air is zero almost everywhere: masked or padded, not blanked in part
    labels, n = ndimage.label(zero)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    large = np.flatnonzero(sizes * voxel >= MIN_BLANKED_ML)
    large = large[large > 0]
    if large.size == 0:
        return None
    coarse_affine = np.asarray(affine, dtype=np.float64).copy()
    coarse_affine[:3, :3] = coarse_affine[:3, :3] * np.asarray(step, dtype=np.float64)
    return np.isin(labels, large), coarse_affine

"""Foreign patches: local corruptions the network learns to undo (foreign patch interpolation).

Coarse noise teaches the network to restore healthy anatomy under smooth, brain-wide perturbations; small
local anomalies can still pass through its skip connections unchanged. Blending a soft-edged blob of
tissue from another place of a training scan (drawn at random: usually another one) into the input (Tan
et al., "Detecting outliers with foreign patch interpolation", MELBA 2022), while the target stays the
clean scan, teaches it to replace tissue that does not belong where it is. This is close to one lesion
kind of ``medae evaluate`` (foreign texture from elsewhere in the head), so a gain there says little: a
candidate trained with patches is judged on the other kinds and on held-out scans.
"""

from __future__ import annotations

import numpy as np


def foreign_patches(
    image: np.ndarray,
    mask: np.ndarray,
    donors: np.ndarray,
    donor_masks: np.ndarray,
    rng: np.random.Generator,
    count: tuple[int, int] = (1, 3),
    radius_vox: tuple[float, float] = (1.5, 6.0),
    alpha: tuple[float, float] = (0.3, 1.0),
) -> np.ndarray:
    """``image`` with soft blobs of donor tissue blended in, inside ``mask`` (a new array).

    Args:
        image: One scan on the model grid (I, J, K), float.
        mask: Its brain mask; patches are centred in it and only change voxels inside it.
        donors: Scans (N, I, J, K) to take tissue from (the training scans).
        donor_masks: Their brain masks; tissue is taken from inside them.
        rng: Random generator (the item's own, so that an item is a function of its seed).
        count: Least and most patches per scan.
        radius_vox: Range of each semi-axis, in voxels.
        alpha: Range of the blend weight at the patch's centre (1 replaces the tissue).
    """
    out = image.astype(np.float32, copy=True)
    inside = np.argwhere(mask > 0)
    if len(inside) == 0:
        return out
    shape = np.array(image.shape)
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        radii = rng.uniform(radius_vox[0], radius_vox[1], 3)
        half = np.ceil(radii + 1).astype(int)
        centre = inside[int(rng.integers(len(inside)))]
        d = int(rng.integers(len(donors)))
        donor_inside = np.argwhere(donor_masks[d] > 0)
        source = donor_inside[int(rng.integers(len(donor_inside)))] if len(donor_inside) else centre
        lo = np.maximum(centre - half, 0)
        hi = np.minimum(centre + half + 1, shape)
        # The donor window of the same size, moved inside the donor's grid where the source lies near an edge.
        src_lo = np.clip(source - (centre - lo), 0, shape - (hi - lo))
        src = donors[d][tuple(slice(a, a + n) for a, n in zip(src_lo, hi - lo, strict=True))].astype(np.float32)
        grids = np.meshgrid(*[np.arange(a, b) - c for a, b, c in zip(lo, hi, centre, strict=True)], indexing="ij")
        r = np.sqrt(sum((g / rr) ** 2 for g, rr in zip(grids, radii, strict=True)))
        # A soft edge (about one voxel) so that the patch's outline is not itself a sharp, easy cue.
        weight = np.clip((1.0 - r) * radii.min() + 1.0, 0.0, 1.0)
        weight *= float(rng.uniform(alpha[0], alpha[1]))
        region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        weight *= mask[region] > 0
        out[region] = (1.0 - weight) * out[region] + weight * src
    return out

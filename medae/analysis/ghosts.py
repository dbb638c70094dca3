"""Ghosts along the phase-encoding direction (motion, pulsation), measured in the air beyond the head.

A patient who moves during the acquisition, or blood that pulses, leaves faint copies of the head along
the phase-encoding axis. They cross the brain too, where the model sees tissue no healthy head has, so
they can be found as regions. In the air beyond the head the copies are easy to see: that air is
brighter beyond the head's ends along the phase axis than along the others, where it holds noise only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medae.volume import Volume, padding_value

#: The air beyond the head along one axis brighter than along another by more than this share of the
#: tissue's brightness. 31 healthy generated heads (16 of 0.8-1.3 times the training's variation), and
#: heads resampled, rotated, shifted, padded or requantised: at most 0.012 (the noise floor is the same
#: along every axis); a copy of the head shifted by half the field of view at 5 %,
#: 10 %, 15 % and 25 % of its brightness: 0.025, 0.049, 0.07 and 0.12 (regions were found from 15 % on).
GHOST_WARN_ABOVE = 0.04

_AXES = ("left-right", "front-back", "top-bottom")
#: Air this far from the head's extent is beyond its scalp and hair.
_CLEAR_MM = 5.0


@dataclass(frozen=True)
class CoarseHead:
    """A scan on a grid of about 1.5 mm, with its tissue-bright voxels: what the air measures look at.

    Attributes:
        array: The scan every few voxels, float32.
        head: Voxels above 30% of the 99th percentile (tissue, above the ghosts' own brightness).
        tissue: The median of those voxels.
        spacing: The coarse grid's voxel size in mm.
        pad: The value the file fills outside its acquired field with (-32768 after a resampling), when
            it has one: not air, and far enough below it to outweigh any ghost.
    """

    array: np.ndarray
    head: np.ndarray
    tissue: float
    spacing: np.ndarray
    pad: float | None = None


def coarse_head(volume: Volume) -> CoarseHead | None:
    """The scan every few voxels (about 1.5 mm: statistics over the air need no more) and its head.

    For MR scans only (the air measures are MR's), so a negative fill is padding, as in any magnitude image.

    Returns:
        None when the scan holds no tissue to compare with (no positive values, or not numbers).
    """
    step = tuple(max(2, int(1.5 / s)) if s > 0 else 2 for s in volume.spacing)
    a = np.asarray(volume.array)[:: step[0], :: step[1], :: step[2]]
    if a.size == 0 or a.dtype.kind not in "iuf":
        return None
    a = a.astype(np.float32, copy=False)
    level = float(np.percentile(a[::2, ::2, ::2], 99))  # a sparser sample: sorting all of a large scan costs
    head = a > 0.3 * level
    if level <= 0 or not head.any():
        return None
    spacing = np.asarray(volume.spacing, dtype=np.float64) * np.asarray(step)
    return CoarseHead(a, head, float(np.median(a[head])), spacing, padding_value(a, magnitude=True))


def ghost_excess(volume: Volume, coarse: CoarseHead | None = None) -> tuple[str, float] | None:
    """The axis whose air beyond the head is brightest against the others, and by how much of the tissue.

    Args:
        volume: The scan.
        coarse: ``coarse_head(volume)``, when made already.

    Returns:
        (the axis in words, the excess as a share of the tissue's median), or None when fewer than two
        axes leave air beyond the head (a field of view that fits it tightly shows nothing to compare).
    """
    coarse = coarse if coarse is not None else coarse_head(volume)
    if coarse is None:
        return None
    a, head, tissue, spacing, pad = coarse.array, coarse.head, coarse.tissue, coarse.spacing, coarse.pad
    directions = volume.affine[:3, :3] / np.linalg.norm(volume.affine[:3, :3], axis=0)
    means: dict[str, float] = {}
    for axis in range(3):
        anatomical = int(np.argmax(np.abs(directions[:, axis])))
        inside = np.nonzero(head.any(axis=tuple(b for b in range(3) if b != axis)))[0]
        clear = int(round(_CLEAR_MM / spacing[axis]))
        below = np.arange(0, max(0, inside[0] - clear))
        beyond = np.arange(min(a.shape[axis], inside[-1] + clear + 1), a.shape[axis])
        ends = [below, beyond]
        if anatomical == 2:  # below the head is the neck, not air: only the air above it counts
            ends = [beyond if directions[2, axis] > 0 else below]
        # Exact zeros, or the file's own fill value, are padding (a scan resampled into a larger grid), not
        # air: they hold no noise, and a fill of -32768 on one side would read as ghosts on the others.
        air = [x[(x != 0) & (x != pad)] for x in (np.take(a, idx, axis=axis) for idx in ends if idx.size)]
        count = sum(x.size for x in air)
        if count >= 2000:
            means[_AXES[anatomical]] = sum(float(x.sum()) for x in air) / count
    if len(means) < 2:
        return None
    axis = max(means, key=means.get)
    return axis, (means[axis] - min(means.values())) / tissue


def check_ghosts(excess: tuple[str, float] | None) -> list[str]:
    """A warning when ghosts are bright enough to be found as regions."""
    if excess is None or excess[1] <= GHOST_WARN_ABOVE:
        return []
    axis, amount = excess
    return [
        f"The air beyond the head along the {axis} axis is brighter than along the others by {amount:.0%} of "
        "the tissue's brightness: ghosts of the head (patient motion or pulsation, along the phase-encoding "
        "direction). They cross the brain too, where they can be found as regions; check the image before "
        "reading the findings, and repeat the scan if it is degraded."
    ]

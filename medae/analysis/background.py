"""The air beyond the head: how noisy the scan is, and whether artefacts fill what should be dark.

In MR the air around the head holds noise only. Its level, against the tissue's, says how noisy the whole
scan is: noise is tissue no healthy head has, so a noisy scan gets findings that are noise. Bright
structures there (ghosts, wrap-around, streaks) cross the head too. Where no air is left at all in a field
of view far larger than a head, noise or ghosts fill it. Each is said as a warning, never guessed away.
"""

from __future__ import annotations

import numpy as np

from medae.analysis.ghosts import CoarseHead, coarse_head
from medae.volume import Volume

#: The air's median against the tissue's: at most 0.068 on the 192 generated healthy heads the model was
#: trained and calibrated on (0.020-0.068; synthetic, so real scanners' margins are not measured); noise at
#: 12% of white matter gives 0.16-0.20.
NOISE_WARN_ABOVE = 0.12
#: The air's 90th percentile: at most 0.125 on the same generated heads; a ghost of the head at 20% of its
#: brightness gives 0.17 (moderate ones, 0.15, are the ghost check's).
ARTEFACT_WARN_ABOVE = 0.16
#: Median difference of neighbouring tissue voxels (1.5 mm apart) against the tissue's median: at most
#: 0.073 on 50 generated healthy heads (texture and noise); Rician noise at SNR 12, 8 and 5 gives 0.10, 0.14
#: and 0.23. Used only where the air cannot be measured, so it warns where the air's measure would.
TISSUE_NOISE_WARN_ABOVE = 0.14
#: Tissue-bright volume of a head with its scalp: 2.5-3.5 L on the same generated heads (3.46 at most).
HEAD_ML_AT_MOST = 4000.0
_CLEAR_MM = 5.0
_MIN_AIR = 2000


def background_stats(volume: Volume, coarse: CoarseHead | None = None) -> dict | None:
    """The air's median and 90th percentile against the tissue's median, and the tissue-bright volume.

    The air is what lies over 5 mm from tissue-bright voxels, above the head's centre (below it are the
    neck and the shoulders, dimmed by the coil but no air), without padding (exact zeros, a fill value far
    below the scan's own) and without a constant background (a skull-stripped scan's, a blanked one's).

    Args:
        volume: The scan.
        coarse: ``coarse_head(volume)``, when made already (the ghost measure looks at the same grid).

    Returns:
        ``{"median", "p90", "bright_ml", "blank_air", "tissue_noise"}`` (median and p90 None when fewer than
        2000 air voxels are left; ``blank_air`` whether the air there was set to one value; ``tissue_noise``
        the median difference of neighbouring tissue voxels against the tissue's median), or None when the
        scan holds no tissue to compare with.
    """
    from scipy import ndimage

    coarse = coarse if coarse is not None else coarse_head(volume)
    if coarse is None:
        return None
    a, head, tissue, spacing = coarse.array, coarse.head, coarse.tissue, coarse.spacing
    reach = [2 * max(1, int(round(_CLEAR_MM / s))) + 1 for s in spacing]
    far = ndimage.maximum_filter(head.view(np.uint8), size=reach) == 0
    far &= _above_centre(head, volume.affine)
    pad = coarse.pad
    if pad is not None:
        far &= a != pad
    values = a[far]
    stats = {
        "bright_ml": round(float(head.sum() * np.prod(spacing)) / 1000.0, 1),
        "median": None,
        "p90": None,
        "blank_air": False,
    }
    if values.size:
        common, count = _mode(values)
        # One value over most of the air is a background set by the scanner or a skull strip, not air's noise.
        if count > 0.5 * values.size:
            stats["blank_air"] = count >= _MIN_AIR
            values = values[values != common]
    air = np.abs(values)
    if air.size >= _MIN_AIR and tissue > 0:
        stats["median"] = round(float(np.median(air)) / tissue, 4)
        stats["p90"] = round(float(np.percentile(air, 90)) / tissue, 4)
    # Noise measured in the tissue itself, for a scan whose air is too noisy to be told from the head: the
    # median difference between neighbouring tissue voxels (noise, and the anatomy's own texture).
    both = head[1:] & head[:-1]
    if both.any() and tissue > 0:
        stats["tissue_noise"] = round(float(np.median(np.abs(np.diff(a, axis=0)[both]))) / tissue, 4)
    return stats


def _above_centre(head: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Voxels above the head's centre (by the axis that runs most nearly superior)."""
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    axis = int(np.argmax(np.abs(directions[2])))
    centre = float(np.mean(np.nonzero(head.any(axis=tuple(b for b in range(3) if b != axis)))[0]))
    index = np.arange(head.shape[axis])
    above = index > centre if directions[2, axis] > 0 else index < centre
    shape = [1, 1, 1]
    shape[axis] = head.shape[axis]
    return np.broadcast_to(above.reshape(shape), head.shape)


def _mode(values: np.ndarray) -> tuple[float, int]:
    uniq, counts = np.unique(values, return_counts=True)
    k = int(np.argmax(counts))
    return float(uniq[k]), int(counts[k])


def check_background(stats: dict | None, ghosts_said: bool) -> list[str]:
    """Warnings for a noisy scan, artefacts in the air, or a field with no air left in it."""
    if stats is None:
        return []
    if stats["median"] is None:
        if stats["bright_ml"] > HEAD_ML_AT_MOST and not stats.get("blank_air"):
            return [
                f"No dark air is left around the head: {stats['bright_ml'] / 1000:.1f} L of the field is as bright "
                "as tissue, more than any head. Heavy noise or ghosting fills the image; findings may be artefact. "
                "Check the image, and repeat the scan if it is degraded."
            ]
        noise = stats.get("tissue_noise")
        if noise is not None and noise > TISSUE_NOISE_WARN_ABOVE and not stats.get("blank_air"):
            return [
                f"The scan is noisy: neighbouring voxels of the tissue differ by {noise:.0%} of its brightness (at "
                "most 7% in the healthy heads the model was calibrated on), and too little dark air is left around "
                "the head to measure the noise there. Noise can be found as regions: read small or scattered "
                "findings with caution."
            ]
        return []
    out = []
    if stats["median"] > NOISE_WARN_ABOVE:
        out.append(
            f"The scan is noisy: the air beyond the head is at {stats['median']:.0%} of the tissue's brightness "
            f"(at most {0.068:.0%} in the healthy heads the model was calibrated on). Noise can be found as "
            "regions: read small or scattered findings with caution."
        )
    elif stats["p90"] > ARTEFACT_WARN_ABOVE and not ghosts_said:
        out.append(
            "The air beyond the head holds bright structures (ghosts, wrap-around or streaks; its brightest "
            f"tenth reaches {stats['p90']:.0%} of the tissue's brightness, at most 13% in the healthy heads). They "
            "may cross the head as well and be found as regions: check the image before reading the findings."
        )
    return out

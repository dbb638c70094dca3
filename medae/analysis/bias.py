"""A smooth intensity bias across the brain (an uncorrected coil sensitivity), measured against the reference.

Healthy tissue of one kind reads brighter on one side of the head than the other when a receive coil's
sensitivity was not corrected. The model was trained on mild bias only; a stronger one puts false regions
where the scan is darkest or brightest, or hides real ones. The bias is measured as a linear trend of the
log ratio between the aligned scan and the reference brain, over the brain's tissue, robust to lesions.
"""

from __future__ import annotations

import numpy as np

#: Largest bias factor (the fitted field's 98th over its 2nd percentile across the brain) of healthy
#: generated heads, of the training's variation and 1.3 times it, was 1.32 and 1.64; a linear gradient
#: of +-30 % across the head reads 1.7-2.0, and +-40 % (which gave false regions) 2.1-2.5.
BIAS_WARN_ABOVE = 1.7


def bias_factor(image: np.ndarray, mask: np.ndarray, reference: np.ndarray) -> float | None:
    """How much a smooth linear trend scales the scan's intensity across the brain (1 = none).

    Args:
        image: The scan on the model grid, normalised.
        mask: The voxels the model assesses.
        reference: The reference template on the same grid, with its tissue between about 0.3 and 1 (its
            scale against the scan does not matter: a constant ratio is the fit's intercept).

    Returns:
        The ratio of the fitted field's 98th to 2nd percentile over the brain, or None without enough tissue.
    """
    # Every second voxel along each axis: the trend needs no more, and the analysis's time matters.
    sub = (slice(None, None, 2),) * 3
    img, ref = image[sub], reference[sub]
    sel = mask[sub] & (ref > 0.3) & (img > 0.05)
    if sel.sum() < 500:
        return None
    idx = np.argwhere(sel).astype(np.float64)
    design = np.c_[np.ones(len(idx)), (idx - idx.mean(axis=0)) / 25.0]
    ratio = np.log(img[sel]) - np.log(ref[sel])
    keep = np.ones(len(ratio), dtype=bool)
    coef = np.zeros(design.shape[1])
    for _ in range(3):
        # Refitted without the tenth of the voxels furthest from the trend: lesions and misaligned edges.
        coef, *_ = np.linalg.lstsq(design[keep], ratio[keep], rcond=None)
        misfit = np.abs(ratio - design @ coef)
        keep = misfit < np.percentile(misfit, 90)
    field = design @ coef
    lo, hi = np.percentile(field, [2, 98])
    return float(np.exp(hi - lo))


def check_bias(factor: float | None) -> list[str]:
    """A warning when the bias is beyond what the model was trained on."""
    if factor is None or factor <= BIAS_WARN_ABOVE:
        return []
    return [
        f"The scan's intensity drifts smoothly across the brain by a factor of {factor:.1f} against the "
        "reference (an uncorrected coil sensitivity, or a bias field), more than the model was trained on: "
        "regions may be found where the scan is darkest or brightest, and real ones missed. Correct the bias "
        "field (for example with N4) and analyse again."
    ]

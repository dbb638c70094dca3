"""A smooth intensity bias across the brain (an uncorrected coil sensitivity), measured against the reference.

Healthy tissue of one kind reads brighter on one side of the head than the other when a receive coil's
sensitivity was not corrected. The model was trained on mild bias only; a stronger one puts false regions
where the scan is darkest or brightest, or hides real ones. The bias is measured as a linear trend and a radial
part of the log ratio between the aligned scan and the reference brain, fitted over the reference's white
matter and read across the brain's tissue, robust to lesions. White matter alone keeps a loss of tissue out of
the fit: enlarged ventricles and widened sulci (atrophy, or a child's brain) darken the reference's grey matter
and its edges where CSF took their place, which a fit over all tissue read as a field darker at the centre or
the edge, while a coil's field scales white matter as it scales every other tissue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest bias factor (the fitted linear field's 98th over its 2nd percentile across the brain) of healthy
#: generated heads, of the training's variation and 1.3 times it, was 1.32 and 1.64; a linear gradient
#: of +-30 % across the head reads 1.7-2.0, and +-40 % (which gave false regions) 2.1-2.5.
BIAS_WARN_ABOVE = 1.7

#: The same for the radial part alone (centre darker or brighter than the edge, as an uncorrected array
#: coil leaves it): 1.01-1.14 on 24 healthy generated heads (16 of 0.8-1.3 times the training's
#: variation); a centre 10 % darker and an edge 10 % brighter read 1.21-1.31 (one false region on one of
#: two heads), +-15 % 1.36-1.47 and +-20 % 1.53-1.66 (up to five false regions, none warned before).
RADIAL_WARN_ABOVE = 1.25

#: The reference's white matter (its intensity scaled to 0-1), where the field is fitted. Fitted there, the
#: 192 healthy heads of the training and calibration sets read at most 1.61 (linear) and 1.22 (radial), against
#: 1.45 and 1.18 fitted over all tissue; the same heads with their CSF spaces widened by 4 mm on the model grid
#: (atrophy) gave 2 warnings instead of 133, and a +-30 % or +-40 % gradient reads as it did (1.45-2.32 on 4
#: heads, against 1.54-2.26).
WHITE_ABOVE = 0.8

#: Log of 0.7: a voxel under 70 % of the field's prediction is no white matter (CSF holds under 60 % of it).
_FAR_DARKER = np.log(0.7)


@dataclass(frozen=True)
class Bias:
    """A smooth intensity field across the brain, as the ratio of its brightest to darkest part (1 = none).

    Attributes:
        factor: Of the linear trend (one side of the head brighter than the other).
        radial: Of the radial part (the centre darker or brighter than the edge).
    """

    factor: float
    radial: float


def bias_factor(image: np.ndarray, mask: np.ndarray, reference: np.ndarray) -> Bias | None:
    """How much a smooth field scales the scan's intensity across the brain: a linear trend and a radial part.

    Args:
        image: The scan on the model grid, normalised.
        mask: The voxels the model assesses.
        reference: The reference template on the same grid, with its tissue between about 0.3 and 1 (its
            scale against the scan does not matter: a constant ratio is the fit's intercept).

    Returns:
        Each part's 98th over 2nd percentile across the brain, or None without enough tissue.
    """
    # Every second voxel along each axis: the trend needs no more, and the analysis's time matters.
    sub = (slice(None, None, 2),) * 3
    img, ref = image[sub], reference[sub]
    sel = mask[sub] & (ref > 0.3) & (img > 0.05)
    white = sel & (ref > WHITE_ABOVE)
    if white.sum() < 500:
        return None
    idx = np.argwhere(sel).astype(np.float64)
    centre = idx.mean(axis=0)

    def design(points: np.ndarray) -> np.ndarray:
        # The model grid is isotropic, so the squared distance from the brain's centre is a radial field.
        u = (points - centre) / 25.0
        return np.c_[np.ones(len(points)), u, (u**2).sum(axis=1)]

    fit = design(np.argwhere(white).astype(np.float64))
    ratio = np.log(img[white]) - np.log(ref[white])
    keep = np.ones(len(ratio), dtype=bool)
    coef = np.zeros(fit.shape[1])
    for _ in range(3):
        # Refitted without the tenth of the voxels furthest from the trend (lesions, misaligned edges), nor
        # those far darker than it: CSF where enlarged ventricles took the reference's white matter.
        coef, *_ = np.linalg.lstsq(fit[keep], ratio[keep], rcond=None)
        residual = ratio - fit @ coef
        misfit = np.abs(residual)
        keep = (misfit < np.percentile(misfit, 90)) & (residual > _FAR_DARKER)
    # The field is read across all of the brain's tissue, as far as a coil's shading reaches.
    brain = design(idx)
    return Bias(_spread(brain[:, 1:4] @ coef[1:4]), _spread(brain[:, 4] * coef[4]))


def _spread(field: np.ndarray) -> float:
    lo, hi = np.percentile(field, [2, 98])
    return float(np.exp(hi - lo))


def check_bias(bias: Bias | None, artefacts_said: bool = False) -> list[str]:
    """A warning when the bias is beyond what the model was trained on.

    Args:
        bias: The measured field, or None.
        artefacts_said: Ghosts or bright structures in the air were already warned of. They add intensity
            unevenly across the brain too, and a bias correction would not remove them, so the advice
            names them first.
    """
    if bias is None:
        return []
    if bias.factor > BIAS_WARN_ABOVE:
        how = f"drifts smoothly across the brain by a factor of {bias.factor:.1f}"
    elif bias.radial > RADIAL_WARN_ABOVE:
        how = f"changes smoothly from the brain's centre to its edge by a factor of {bias.radial:.2f}"
    else:
        return []
    if artefacts_said:
        return [
            f"The scan's intensity {how} against the reference, more than the model was trained on. With the "
            "ghosts or artefacts warned of above, they are the likely cause, and a bias-field correction (N4) "
            "would not remove them: regions may be found where they fall. Check the image, and repeat the scan "
            "if it is degraded."
        ]
    return [
        f"The scan's intensity {how} against the reference (an uncorrected coil sensitivity, or a bias field), "
        "more than the model was trained on: regions may be found where the scan is darkest or brightest, and "
        "real ones missed. Correct the bias field (for example with N4) and analyse again."
    ]

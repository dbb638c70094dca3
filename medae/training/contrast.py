"""Tissue-contrast augmentation: other scanners' and sequences' contrast from one generator's scans.

Gamma and bias field change intensities globally or slowly in space; scanners and sequences also
differ in how far apart the tissue classes lie (grey against white matter against CSF). A T1 scan
whose tissue classes lie closer together, or further apart, than in every training scan looks
abnormal everywhere to a model that learnt one contrast. Here the brain's histogram is remapped
piecewise linearly between its deciles (as landmark-based histogram standardisation does), with the
gaps between deciles scaled by a smooth random curve, so neighbouring tissue classes move together
as they do between real protocols.
"""

from __future__ import annotations

import numpy as np

PERCENTILES = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)


def remap_landmarks(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Monotone piecewise-linear map taking intensities ``source`` (increasing) to ``target``.

    Beyond the outer landmarks the map continues with the overall slope, so a lesion brighter than any
    landmark keeps its contrast instead of being squashed onto the last one.
    """
    slope = (target[-1] - target[0]) / (source[-1] - source[0])
    out = np.interp(image, source, target).astype(np.float32)
    low, high = image < source[0], image > source[-1]
    out[low] = target[0] + (image[low] - source[0]) * slope
    out[high] = target[-1] + (image[high] - source[-1]) * slope
    return out


def random_contrast(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, sd: float) -> np.ndarray:
    """The image with another random tissue contrast inside the brain's 10th-90th percentile range.

    Args:
        image: Normalised model-space image.
        mask: The brain (where the deciles are measured).
        rng: Random generator (the training item's, so that items stay reproducible).
        sd: Standard deviation of the linear and of the quadratic term of the log gap scaling.

    Returns:
        The remapped image; unchanged when the brain has too little contrast to tell its deciles apart.
    """
    inside = image[mask] if mask.any() else image.ravel()
    source = np.percentile(inside, PERCENTILES)
    gaps = np.diff(source)
    if np.any(gaps <= 1e-6):
        return image
    t = np.linspace(-1.0, 1.0, gaps.size)
    gaps = gaps * np.exp(rng.normal(0, sd) * t + rng.normal(0, sd) * (1.5 * t**2 - 0.5))
    gaps *= (source[-1] - source[0]) / gaps.sum()
    target = np.concatenate([[source[0]], source[0] + np.cumsum(gaps)])
    return remap_landmarks(image, source, target)

"""Whether the aligned scan's tissues relate to one another as in the healthy scans the model was calibrated on.

The correlation with the reference (``checks.check_contrast``) catches an inverted or unrelated contrast, but
a scan of the right sequence family with another tissue contrast still correlates well: grey matter as bright
as white (a FLAIR, an inversion time of another protocol), values remapped non-linearly on export (a gamma,
a logarithmic window), CSF far brighter or darker. The model then marks the contrast as small regions. Here
the reference's own intensity sorts its voxels into CSF, grey and white matter; their medians in the aligned
scan (robust to lesions, which fill a small part of each class) give three relations that are compared with
the range the healthy calibration scans spanned, recorded in the model card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: The reference's tissue classes as bands of its own intensity (a T1 template scaled to 0-1): its CSF
#: (with the partial volume of sulci), its cortical and deep grey matter, and its white matter's core.
BANDS = {"csf": (0.0, 0.40), "grey": (0.58, 0.70), "white": (0.83, 1.01)}

#: How far beyond the healthy range a scan must lie to be warned of, as a fraction of the range's width on
#: each side: room for the healthy scans the calibration did not see. Not tuned to any altered scan.
MARGIN = 0.25


@dataclass(frozen=True)
class TissueContrast:
    """Relations between the aligned scan's tissue levels.

    Attributes:
        grey_place: Where grey matter lies between CSF (0) and white matter (1); near 1 when grey and white
            matter barely differ, low when their contrast is much stronger than in healthy T1.
        csf_white: CSF against white matter, both above the brain's darkest percentile.
        dark_white: The brain's darkest percentile against white matter in the stored values: a gamma or a
            logarithmic remapping moves it far from healthy scans while the other two barely change. None
            when the stored zero need not be the absence of signal (negative values: a processed image).
    """

    grey_place: float
    csf_white: float
    dark_white: float | None

    def as_dict(self) -> dict:
        """Rounded, for the report."""
        return {k: None if v is None else round(v, 4) for k, v in asdict(self).items()}


def tissue_contrast(
    image: np.ndarray, mask: np.ndarray, reference: np.ndarray, intensity: dict, zero_is_no_signal: bool
) -> TissueContrast | None:
    """The relations between CSF, grey and white matter of an aligned scan.

    Args:
        image: The scan on the model grid, normalised (the brain's darkest percentile at 0).
        mask: The voxels the model assesses.
        reference: The reference template on the same grid, its tissue between about 0.3 and 1.
        intensity: The normalisation (``method``, ``low`` and ``high`` in the scan's stored values).
        zero_is_no_signal: The stored values start at zero where there is no signal (an MR magnitude image
            with no negative values).

    Returns:
        The relations, or None when a class has too few voxels or white matter is no brighter than CSF (an
        inverted contrast, which the correlation check handles).
    """
    levels = {}
    for name, (lo, hi) in BANDS.items():
        values = image[mask & (reference >= lo) & (reference < hi)]
        if values.size < 500:
            return None
        levels[name] = float(np.median(values))
    csf, grey, white = levels["csf"], levels["grey"], levels["white"]
    if white - csf <= 0.05:
        return None
    dark_white = None
    if zero_is_no_signal and intensity.get("method") == "percentile":
        low, high = float(intensity["low"]), float(intensity["high"])
        white_stored = low + white * (high - low)
        if low >= 0 and white_stored > 0:
            dark_white = low / white_stored
    return TissueContrast((grey - csf) / (white - csf), csf / white, dark_white)


def healthy_range(measures: list[TissueContrast]) -> dict:
    """The range each relation spans over healthy scans, as a model card records it."""
    out: dict = {"n_scans": len(measures)}
    for name in ("grey_place", "csf_white", "dark_white"):
        values = [getattr(m, name) for m in measures if getattr(m, name) is not None]
        if values:
            out[name] = [round(float(min(values)), 4), round(float(max(values)), 4)]
    return out


_SAID = {
    ("grey_place", "high"): "grey and white matter barely differ (grey matter lies {v:.2f} of the way from CSF to "
    "white matter; healthy {a:.2f}-{b:.2f})",
    ("grey_place", "low"): "grey and white matter differ far more than in healthy T1, or much grey matter is lost "
    "to CSF (grey matter lies {v:.2f} of the way from CSF to white matter; healthy {a:.2f}-{b:.2f})",
    ("csf_white", "high"): "CSF is far brighter against white matter than in healthy T1 ({v:.2f} of white "
    "matter; healthy {a:.2f}-{b:.2f})",
    ("csf_white", "low"): "CSF is far darker against white matter than in healthy T1 ({v:.2f} of white matter; "
    "healthy {a:.2f}-{b:.2f})",
    ("dark_white", "high"): "the darkest tissue is far brighter against white matter than in healthy T1 ({v:.2f}; "
    "healthy {a:.2f}-{b:.2f}), as when values are compressed (a gamma below 1, a logarithmic window)",
    ("dark_white", "low"): "the darkest tissue is far darker against white matter than in healthy T1 ({v:.2f}; "
    "healthy {a:.2f}-{b:.2f}), as when values are stretched (a gamma above 1)",
}


def check_tissue_contrast(measure: TissueContrast | None, healthy: dict | None) -> list[str]:
    """A warning when the scan's tissue contrast lies beyond the healthy range by more than ``MARGIN``.

    Args:
        measure: The scan's relations, or None.
        healthy: The card's ``calibration.tissue_contrast`` (``healthy_range`` of its calibration scans), or
            None for a model that records none: nothing is checked.
    """
    if measure is None or not healthy:
        return []
    found = []
    for name in ("grey_place", "csf_white", "dark_white"):
        value, span = getattr(measure, name), healthy.get(name)
        if value is None or not span:
            continue
        a, b = float(span[0]), float(span[1])
        room = MARGIN * (b - a)
        side = "high" if value > b + room else "low" if value < a - room else None
        if side:
            found.append(_SAID[(name, side)].format(v=value, a=a, b=b))
    if not found:
        return []
    return [
        f"The scan's tissue contrast is unlike that of the healthy T1 scans the model was calibrated on: "
        f"{'; '.join(found)}. Another protocol (a FLAIR, a fat-suppressed or other inversion time) or values "
        "remapped on export can do this, and the model may mark the contrast as small regions that are not "
        "disease. Analyse the original T1-weighted series if there is one, and read any finding with caution."
    ]

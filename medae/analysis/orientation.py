"""Does the scan's orientation header look wrong? A check for flipped axes, tied to the model's reference.

A file whose header swaps front and back, or top and bottom (an Analyze .hdr/.img pair, which stores no
orientation; a faulty converter; a slice order written backwards), still aligns to the reference with
some similarity: registration cannot undo a mirror image, and the multi-start search covers tilts, not
half turns. The heatmap would then light up the scan's own healthy anatomy. So when the aligned scan
resembles the reference poorly, the same scan is aligned again as if each such axis were reversed; when
one of those matches far better, the header is the likely cause, and the user is told so instead of
getting a misleading heatmap. Left and right cannot be told apart this way (a brain is nearly
symmetric), and medae never reorients a scan by itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np

from medae.analysis.checks import FORCED, contrast_similarity
from medae.errors import InputError, ModelMismatchError
from medae.model.card import ModelCard
from medae.model.preprocess import to_model_space
from medae.progress import ProgressFn, check_cancel, report
from medae.volume import Volume

# World axes reversed about the scan's centre, with how to say it. Reversing left-right as well makes no
# difference to the match (symmetry), so these three cover every sign error of the three axes.
FLIPS = {
    "front-back (anterior-posterior)": (1.0, -1.0, 1.0),
    "top-bottom (superior-inferior)": (1.0, 1.0, -1.0),
    "front-back and top-bottom (a half turn)": (1.0, -1.0, -1.0),
}
# Correlations with the reference (see ``checks.CONTRAST_LIMITS``): generated T1 heads score 0.60-0.75,
# 0.52-0.60 with three large lesions; the sample head scores 0.76, stored with front and back swapped
# 0.33. The check runs only below ``TRIGGER`` and speaks only when a reversed reading is clearly a T1 head
# (``ACCEPT``) and beats the stored one by ``MARGIN``, so a scan that is simply unusual is never called
# mis-oriented.
TRIGGER = 0.5
ACCEPT = 0.5
MARGIN = 0.15


@dataclass(frozen=True)
class FlipMatch:
    """A reading of the scan with reversed axes that matches the reference better than the stored one."""

    name: str
    similarity: float
    stored_similarity: float


def flipped_affine(volume: Volume, signs: tuple[float, float, float]) -> np.ndarray:
    """The volume's affine with world axes reversed (``signs`` of -1) about the grid's centre."""
    centre = volume.voxel_to_world(((np.array(volume.shape) - 1) / 2.0)[None])[0]
    flip = np.eye(4)
    flip[:3, :3] = np.diag(signs)
    flip[:3, 3] = centre - np.asarray(signs) * centre
    return flip @ volume.affine


def find_flip(
    volume: Volume,
    card: ModelCard,
    reference: np.ndarray,
    reference_mask: np.ndarray,
    similarity: float | None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> FlipMatch | None:
    """The reversed reading that matches the reference clearly better, or None.

    Args:
        volume: The scan as loaded.
        card: The model card.
        reference: Reference template on the model grid.
        reference_mask: Its foreground mask.
        similarity: Correlation of the stored scan with the reference once aligned.
        progress: Progress callback (called only when the check runs).
        cancel: Cancel event.
    """
    if similarity is None or similarity >= TRIGGER or card.space.get("alignment", "register") != "register":
        return None
    best: FlipMatch | None = None
    for n, (name, signs) in enumerate(FLIPS.items()):
        check_cancel(cancel)
        report(progress, n / len(FLIPS), "The scan matches the reference poorly: checking its orientation")
        flipped = replace(volume, affine=flipped_affine(volume, signs), warnings=[])
        try:
            mi = to_model_space(flipped, card, reference, reference_mask, cancel=cancel)
        except InputError:
            continue
        s = contrast_similarity(mi.image, mi.mask, reference)
        if s is not None and s >= ACCEPT and s >= similarity + MARGIN and (best is None or s > best.similarity):
            best = FlipMatch(name, s, similarity)
    return best


def check_orientation(match: FlipMatch | None, force: bool = False, assumed: bool = False) -> list[str]:
    """Refuses (or, forced, warns about) a scan whose header looks flipped.

    Args:
        match: The reversed reading that matches far better, if any (``find_flip``).
        force: Warn instead of refusing.
        assumed: The file stores no valid orientation, so the loader assumed one: that is the likely cause.

    Raises:
        ModelMismatchError: a reversed reading matches far better and ``force`` is False.
    """
    if match is None:
        return []
    text = (
        f"the scan's orientation header looks wrong: the head matches the model's reference far better with "
        f"its {match.name} axis reversed (correlation {match.similarity:.2f}, against {match.stored_similarity:.2f} "
        "as stored), so the heatmap would mark healthy anatomy"
    )
    if assumed:
        text += " (the file stores no valid orientation, so a default one was assumed on loading)"
    if not force:
        # A head is nearly symmetric: whether left and right are reversed too (a half turn, e.g. a prone
        # patient entered as supine) cannot be seen in the image, and reversing only the named axis would
        # then mirror the scan and put every finding on the wrong side.
        convert = (
            " (a file that stores none, as Analyze .hdr/.img files and NIfTI files whose qform and sform codes are 0, "
            "must be converted again with its true orientation, e.g. from the original DICOM with dcm2niix)"
            if assumed
            else ""
        )
        raise ModelMismatchError(
            f"{text}. Left and right may be reversed as well, which the image cannot show: fix the orientation "
            f"from the acquisition's records, not by reversing only that axis{convert}, or pass --force to analyse "
            "anyway."
        )
    return [f"{FORCED} a likely orientation error: {text}. Interpret the result with great caution."]

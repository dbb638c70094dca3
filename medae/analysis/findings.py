"""Findings: connected regions of the calibrated heatmap above the threshold, measured and ranked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from medae import geometry
from medae.analysis.result import Finding
from medae.geometry import apply_affine
from medae.progress import check_cancel


def extract_findings(
    heatmap: np.ndarray,
    affine: np.ndarray,
    threshold: float,
    min_region_ml: float,
    to_reference: np.ndarray | None = None,
    midline_x: float = 0.0,
    max_findings: int = 50,
    reference: str | None = None,
    cancel: threading.Event | None = None,
) -> tuple[np.ndarray, list[Finding]]:
    """Labels and describes the regions above ``threshold``.

    Regions are ranked by their excess mass, the sum of (score - threshold) over the region, which
    weighs size and strength together: a large faint region and a small intense one both rank high.

    Args:
        heatmap: Calibrated scores on the input grid.
        affine: The input's voxel -> RAS+ mm affine.
        threshold: Score threshold.
        min_region_ml: Smaller regions are dropped.
        to_reference: Input world -> reference world (to tell left from right in the reference, whose
            midline is at ``midline_x``); None uses the input's own world x.
        midline_x: x of the midline in the reference frame.
        max_findings: At most this many are kept.
        reference: The name of the frame ``to_reference`` leads to when it is a template's (e.g.
            "mni152-2009a"): each finding then carries its centroid in those coordinates.
        cancel: Set to stop with ``CancelledError`` (checked between the steps; each is one array pass).

    Returns:
        The int16 label map (0 = background, 1 = first ranked) and the findings in rank order.
    """
    from scipy import ndimage

    above = heatmap > threshold
    # In the heatmap's own layout (Fortran, as the scan's): written to NIfTI without a transposed copy.
    order = "F" if heatmap.flags.f_contiguous and not heatmap.flags.c_contiguous else "C"
    labels = np.zeros(heatmap.shape, dtype=np.int16, order=order)
    if not above.any():
        return labels, []
    # Everything below works in the box around the voxels above threshold (small on a real scan), so a
    # CT-sized grid costs no full-size temporaries.
    # The box from each axis's projection: np.nonzero lists every voxel above (0.1 CPU s on a 512 x 512 x 300
    # map in C order, 0.8 s in Fortran order), where three reductions take 0.01 s.
    box = tuple(
        slice(int(hit[0]), int(hit[-1]) + 1)
        for hit in (
            np.flatnonzero(above.any(axis=tuple(b for b in range(above.ndim) if b != axis)))
            for axis in range(above.ndim)
        )
    )
    offset = np.array([b.start for b in box], dtype=np.float64)
    above = above[box]
    heat = heatmap[box]
    check_cancel(cancel)
    lab, n = ndimage.label(above, structure=np.ones((3, 3, 3), bool))
    check_cancel(cancel)
    voxel_ml = geometry.voxel_ml(affine)
    idx = np.arange(1, n + 1)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    excess = ndimage.sum_labels(heat - threshold, lab, idx)
    keep = [i for i in np.argsort(-excess) if sizes[i] * voxel_ml >= min_region_ml][:max_findings]
    if not keep:
        return labels, []
    check_cancel(cancel)
    peaks = ndimage.maximum(heat, lab, idx)
    peak_pos = [np.asarray(p, float) + offset for p in ndimage.maximum_position(heat, lab, idx)]
    check_cancel(cancel)
    means = ndimage.mean(heat, lab, idx)
    weights = np.where(above, heat - threshold, 0)
    check_cancel(cancel)
    cents = [np.asarray(c, float) + offset for c in ndimage.center_of_mass(weights, lab, idx)]
    findings = []
    remap = np.zeros(n + 1, dtype=np.int16)
    # Input voxel -> reference x, to tell which side of the midline each voxel of a region lies on.
    to_ref = affine if to_reference is None else to_reference @ affine
    boxes = ndimage.find_objects(lab)
    for rank, i in enumerate(keep, start=1):
        check_cancel(cancel)
        remap[i + 1] = rank
        cvox = np.asarray(cents[i], dtype=np.float64)
        cw = apply_affine(affine, cvox)
        ref = apply_affine(to_reference, cw) if to_reference is not None else cw
        dx = float(ref[0]) - midline_x
        side = "midline" if abs(dx) < 3.0 else ("right" if dx > 0 else "left")
        if _bilateral(lab[boxes[i]] == i + 1, weights[boxes[i]], to_ref, offset, boxes[i], midline_x):
            side = "bilateral"
        findings.append(
            Finding(
                label=rank,
                volume_ml=float(sizes[i] * voxel_ml),
                peak=float(peaks[i]),
                mean=float(means[i]),
                centroid_world=tuple(float(v) for v in cw),
                centroid_voxel=tuple(float(v) for v in cvox),
                peak_world=tuple(float(v) for v in apply_affine(affine, peak_pos[i])),
                side=side,
                centroid_reference=tuple(float(v) for v in ref) if reference and to_reference is not None else None,
            )
        )
    labels[box] = remap[lab]
    return labels, findings


def _bilateral(
    region: np.ndarray, weights: np.ndarray, to_ref: np.ndarray, offset: np.ndarray, box: tuple, midline_x: float
) -> bool:
    # A region that crosses the midline with at least a quarter of its excess, or of its volume, on each
    # side is on both sides: its weighted centroid alone would call it left or right (a large faint region
    # spread over both hemispheres around one strong spot is not "right").
    idx = np.nonzero(region)
    x = np.full(idx[0].shape, to_ref[0, 3] - midline_x)
    for a in range(3):
        x += to_ref[0, a] * (idx[a] + box[a].start + offset[a])
    for w in (weights[idx], np.ones(x.shape)):
        total = float(w.sum())
        if total > 0 and min(float(w[x > 3.0].sum()), float(w[x < -3.0].sum())) >= 0.25 * total:
            return True
    return False


#: How far from the opposite edge a fold reaches: the part of a head a field of view cuts off is rarely more.
WRAP_BAND_MM = 40.0
_SIDES = {0: ("left", "right"), 1: ("back", "front"), 2: ("bottom", "top")}


def wrap_warnings(array: np.ndarray, affine: np.ndarray, labels: np.ndarray, faces: list | None = None) -> list[str]:
    """A warning when the head is cut by the field of view and findings lie where the cut part would fold.

    A head larger than the field of view along the phase-encoding direction folds the part outside over
    onto the opposite edge (aliasing, wrap-around), where it reads as tissue no healthy head has. The
    top-bottom axis is left out (the neck always runs out of a head scan's field of view), and so is the
    slice axis of thick-slice scans (slices are selected, not encoded, so they cannot fold). An edge is
    cut where tissue, not air noise, reaches it.

    Args:
        array: The scan's voxels.
        affine: Voxel -> RAS+ mm.
        labels: The findings' label map on the same grid (1 = first ranked).
        faces: ``cut_faces(array, affine, labels)`` when the caller has them already.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    for face in cut_faces(array, affine, labels) if faces is None else faces:
        if face.ras == 2 or spacing[face.axis] > 1.5 * spacing.min():  # the neck leaves every field; slices cannot fold
            continue
        n = labels.shape[face.axis]
        band = min(n, max(1, int(round(WRAP_BAND_MM / spacing[face.axis]))))
        folded = _labels_within(labels, face.axis, range(n - band, n) if face.end == 0 else range(band))
        if folded:
            many = len(folded) > 1
            return [
                f"The head reaches the {face.name} edge of the field of view, so it was probably cut there; a cut "
                f"part folds over onto the opposite edge (wrap-around) when that is the phase-encoding direction, "
                f"and finding{'s' if many else ''} {_listed(folded)} lie{'' if many else 's'} within "
                f"{WRAP_BAND_MM:.0f} mm of that edge. Check the scan there for a fold before reading "
                f"{'them' if many else 'it'}."
            ]
    return []


#: Findings this close to a face of the field of view that cuts through tissue get a note.
CUT_BAND_MM = 12.0


def cut_edge_warnings(
    array: np.ndarray, affine: np.ndarray, labels: np.ndarray, faces: list | None = None
) -> list[str]:
    """A warning when findings lie at a face of the field of view that cuts through the head.

    The network learnt whole heads: where a field of view ends inside the brain (a slab, a scan of the top
    of the head), the tissue next to the cut is restored less well than elsewhere and can stand out as
    abnormal. The neck, cut by every head scan, holds no findings (it is outside the brain mask).
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    near: set[int] = set()
    edges: list[str] = []
    for face in cut_faces(array, affine, labels) if faces is None else faces:
        n = labels.shape[face.axis]
        band = max(1, int(round(CUT_BAND_MM / spacing[face.axis])))
        if band >= n:
            continue
        found = _labels_within(labels, face.axis, range(band) if face.end == 0 else range(n - band, n))
        if found:
            near.update(found)
            edges.append(face.name)
    if not near:
        return []
    many = len(near) > 1
    them = "them" if many else "it"
    return [
        f"Finding{'s' if many else ''} {_listed(sorted(near))} lie{'' if many else 's'} within {CUT_BAND_MM:.0f} mm "
        f"of the {' and '.join(dict.fromkeys(edges))} edge of the field of view, which cuts through the head there; "
        f"tissue next to a cut is restored less well than elsewhere, so compare {them} with the scan before "
        f"reading {them} as abnormal."
    ]


class _Face(NamedTuple):
    axis: int
    end: int
    ras: int  # the world axis (0 right, 1 front, 2 top) the voxel axis runs closest to
    name: str  # which edge of the patient it is: "left", "front", "bottom", ...


def cut_faces(array: np.ndarray, affine: np.ndarray, labels: np.ndarray) -> Iterator[_Face]:
    """The faces of the grid that tissue reaches (the field of view cuts the body there), when there are findings."""
    if labels.ndim != 3 or not labels.any():
        return
    sample = np.asarray(array[::4, ::4, ::4], dtype=np.float32)
    # Tissue, well above the noise of the air (whose peaks reach a fifth of the tissue's brightness).
    level = 0.3 * float(np.percentile(sample, 99)) if sample.size else 0.0
    if level <= 0:
        return
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    for axis in range(3):
        direction = affine[:3, axis] / spacing[axis]
        ras = int(np.argmax(np.abs(direction)))
        increasing = direction[ras] > 0  # voxel index grows towards right/front/top
        for end in (0, labels.shape[axis] - 1):
            # A view of the face: np.take along an axis first copies a Fortran-ordered scan (every NIfTI) to C
            # order, a whole-volume transpose per face (10 s for the six faces of a 512 x 512 x 300 scan).
            face = np.asarray(array)[(slice(None),) * axis + (end,)]
            if np.count_nonzero(face > level) / face.size >= 0.01:  # else air at this edge: nothing cut
                yield _Face(axis, end, ras, _SIDES[ras][int(increasing) if end else int(not increasing)])


def _labels_within(labels: np.ndarray, axis: int, rows: range) -> list[int]:
    """The finding labels present in ``rows`` (a range of step 1) along ``axis``, ascending."""
    # A view: np.take would first copy a Fortran-ordered label map whole to C order.
    band = np.asarray(labels)[(slice(None),) * axis + (slice(rows.start, rows.stop),)]
    return sorted(int(v) for v in np.unique(band) if v > 0)


def _listed(labels: list[int]) -> str:
    return ", ".join(str(k) for k in labels[:5]) + (" and more" if len(labels) > 5 else "")


#: Above either, the findings are more than lesions usually make: say what else can cause them.
WIDESPREAD_ML = 100.0
WIDESPREAD_COUNT = 6


def widespread_warnings(findings: list) -> list[str]:
    """A warning when the findings are many or large.

    Heavy noise, motion ghosts or a strong bias field make the whole scan unlike healthy ones, as
    extensive disease does, and only a reader can tell which.
    """
    total = sum(f.volume_ml for f in findings)
    if total <= WIDESPREAD_ML and len(findings) < WIDESPREAD_COUNT:
        return []
    return [
        f"The findings are widespread ({len(findings)} region(s), {total:.0f} mL in all): extensive abnormality, "
        "or a degraded scan (heavy noise, motion ghosts, a strong intensity bias) or one unlike the training data. "
        "Check the image quality before reading the heatmap."
    ]


def finding_warnings(
    findings: list, labels: np.ndarray, volume, wrap_check: bool, too_bright: float | None = None
) -> list[str]:
    """What the reader should know about the findings as drawn: widespread, folded, at a cut, too bright.

    They depend on the threshold, so a result drawn at another one says them again (``at_threshold``).
    """
    faces = list(cut_faces(volume.array, volume.affine, labels))  # once for both notes: a pass over the scan
    wrap = wrap_warnings(volume.array, volume.affine, labels, faces) if wrap_check else []
    cut = cut_edge_warnings(volume.array, volume.affine, labels, faces)
    return widespread_warnings(findings) + wrap + cut + bright_warnings(volume.array, labels, too_bright)


def bright_warnings(array: np.ndarray, labels: np.ndarray, too_bright: float | None) -> list[str]:
    """A warning when findings hold values brighter than any tissue of the model's kind of scan.

    ``too_bright`` is the input value above which no tissue lies (three times white matter in a T1 brain:
    fat, blood products and enhancing vessels stay below about twice). Metal and its pile-up artefacts,
    or a corrupted region, reach far beyond: they are no tissue for the model to judge.
    """
    if too_bright is None or not labels.any():
        return []
    from medae.volume import value_sample

    array = np.asarray(array)
    # Three times white matter assumes values in proportion to the signal; a scan whose values were remapped
    # (a gamma, a histogram match) has tissue beyond it too (its scalp fat). What no tissue of the scan itself
    # reaches outside the findings is the level then.
    rest = value_sample(array)[value_sample(labels) == 0]
    level = max(too_bright, float(np.percentile(rest, 99.9))) if rest.size else too_bright
    hot = labels[array > level]
    found = sorted(int(v) for v in np.unique(hot[hot > 0]))
    if not found:
        return []
    many = len(found) > 1
    return [
        f"Finding{'s' if many else ''} {_listed(found)} hold{'' if many else 's'} values brighter than any tissue "
        f"of this kind of scan (over {level:.4g}: three times white matter, and brighter than the rest of the "
        "scan): likely an artefact (metal and its bright rim, or corrupted data) rather than tissue. Check the "
        f"image before reading {'them' if many else 'it'} as a lesion."
    ]

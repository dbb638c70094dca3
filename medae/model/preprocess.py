"""Volume -> model space (align, resample, normalise, mask) and model-space maps -> the input's own grid.

The whole mapping is one 4x4 affine between model voxel indices and input voxel indices, so the inverse is
exact and maps return to the input grid with the input's shape and affine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from medae.errors import InputError
from medae.geometry import apply_affine, voxel_ml
from medae.model.blanked import blanked_region
from medae.model.brain_only import correlation, kept_on_grid, on_zero_background, stripped_foreground
from medae.model.card import ModelCard
from medae.model.despike import despike
from medae.model.dropouts import dimmed_slices, dropped_slices, fill_from_neighbours
from medae.model.registration import Alignment, register_to_reference, register_within_input
from medae.progress import ProgressFn, check_cancel, report
from medae.volume import Volume, padding_value


@dataclass
class ModelInput:
    """A scan in model space.

    Attributes:
        image: Normalised intensities on the model grid (float32).
        mask: Foreground on the model grid (bool).
        model_to_input: 4x4, model voxel index -> input voxel index.
        alignment: The reference -> input world transform found by registration.
        coverage: Fraction of the model mask that the input's field of view covers.
        intensity: Numbers used for normalisation (for the report).
        warnings: What the user should know.
        skull_stripped: The scan is the brain alone: aligned to the reference brain, and only the voxels
            it kept are assessed.
        filled: Where ``image`` holds the reference brain because the scan's field of view ends short
            of it (None when it covers the whole brain): network input, never scored.
        blanked_ml: How much of the scan, blanked to zero in one piece (a defaced face, padding outside the
            acquired field), the alignment left out (0 when none).
    """

    image: np.ndarray
    mask: np.ndarray
    model_to_input: np.ndarray
    alignment: Alignment
    coverage: float
    intensity: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skull_stripped: bool = False
    filled: np.ndarray | None = None
    blanked_ml: float = 0.0


def model_to_input_matrix(card: ModelCard, volume_affine: np.ndarray, alignment: Alignment) -> np.ndarray:
    """Model voxel index -> input voxel index."""
    return np.linalg.inv(volume_affine) @ alignment.ref_to_input @ card.affine


def center_alignment(card: ModelCard, volume: Volume, mask: np.ndarray | None = None) -> Alignment:
    """Places the model grid's centre on the centre of the input's foreground (or field of view)."""
    if mask is not None and mask.any():
        idx = np.argwhere(mask)
        centre_vox = (idx.min(0) + idx.max(0)) / 2.0
    else:
        centre_vox = (np.array(volume.shape) - 1) / 2.0
    centre_world = apply_affine(volume.affine, centre_vox)
    model_centre = apply_affine(card.affine, (np.array(card.shape) - 1) / 2.0)
    t = np.eye(4)
    t[:3, 3] = centre_world - model_centre
    return Alignment(t, None, "center")


def resample(
    array: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], order: int = 1, cval: float = 0.0, output=None
) -> np.ndarray:
    """Samples ``array`` on a grid of ``shape`` where output index -> ``matrix`` -> array index.

    Integer input is read as it is (no float copy of a large scan is made).
    """
    from scipy import ndimage

    return ndimage.affine_transform(
        array,
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=tuple(shape),
        order=order,
        mode="constant",
        cval=cval,
        output=output if output is not None else (np.float32 if order > 0 else None),
        prefilter=False,
    )


def inside_grid(matrix: np.ndarray, source_shape: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Which voxels of a grid of ``shape`` fall inside a source grid (output index -> ``matrix`` -> source index).

    A voxel is inside when its centre lies within half a voxel of the source's voxel centres.
    """
    inside = np.ones(shape, bool)
    idx = [np.arange(n, dtype=np.float64) for n in shape]
    for axis in range(3):
        m = matrix[axis]
        coord = m[0] * idx[0][:, None, None] + m[1] * idx[1][None, :, None] + m[2] * idx[2][None, None, :] + m[3]
        inside &= (coord > -0.5) & (coord < source_shape[axis] - 0.5)
    return inside


def resample_support(
    array: np.ndarray,
    matrix: np.ndarray,
    shape: tuple[int, ...],
    order: int = 1,
    cval: float = 0.0,
    layout: str = "C",
) -> np.ndarray:
    """Like ``resample`` for a small map onto a large grid, computed only where the map differs from ``cval``.

    Bringing a model-space map (about 1 M voxels) back onto a scan's grid (up to 80 M voxels) is the
    costly direction. The map is ``cval`` outside its support (a heatmap is zero outside the brain), so
    only the output box that the support's bounding box maps into is sampled, in slabs (small
    temporaries), with torch's multi-threaded ``grid_sample``. Samples between the map's edge voxel and
    the outside blend towards ``cval``.

    ``layout="F"`` returns the map in Fortran order, the order of a loaded scan and of a NIfTI file: writing
    it then needs no transposed copy (0.5-0.9 CPU s for a 512 x 512 x 300 map). Both layouts hold the same
    values, bit for bit: every sample is computed from the same float32 coordinates.
    """
    import torch
    import torch.nn.functional as F

    if layout not in ("C", "F"):
        raise ValueError(f"layout must be 'C' or 'F', not {layout!r}")
    # Zeros come from calloc: pages outside the support are never written, so never touched until read.
    out = (np.zeros if cval == 0 else lambda s, **kw: np.full(s, cval, **kw))(
        tuple(shape), dtype=np.float32, order=layout
    )
    held = np.asarray(array) != cval
    support = np.argwhere(held)
    if support.size == 0:
        return out
    lo = support.min(axis=0) - 1.0
    hi = support.max(axis=0) + 1.0
    corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]).T
    out_corners = (np.linalg.inv(matrix) @ corners)[:3]
    o_lo = np.maximum(0, np.floor(out_corners.min(axis=1)).astype(int))
    o_hi = np.minimum(np.asarray(shape), np.ceil(out_corners.max(axis=1)).astype(int) + 1)
    if (o_hi <= o_lo).any():
        return out
    src = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32) - np.float32(cval))[None, None]
    n = np.maximum(np.asarray(array.shape, dtype=np.float64) - 1, 1)
    # Source index -> grid_sample's normalised coordinate (align_corners=True): 2 * idx / (n - 1) - 1,
    # with the components in grid_sample's (x, y, z) = (k, j, i) order.
    lin = ((2 / n)[:, None] * matrix[:3, :3])[::-1]
    off = ((2 / n) * (matrix[:3, :3] @ o_lo + matrix[:3, 3]) - 1)[::-1]
    size = [int(v) for v in o_hi - o_lo]
    j = np.arange(size[1], dtype=np.float32)[:, None, None]
    k = np.arange(size[2], dtype=np.float32)[None, :, None]
    plane = torch.from_numpy(
        (j * lin[:, 1].astype(np.float32) + k * lin[:, 2].astype(np.float32) + off).astype(np.float32)
    )
    step = torch.from_numpy(lin[:, 0].astype(np.float32))
    mode = "bilinear" if order > 0 else "nearest"
    # A sample reads the 2 x 2 x 2 source voxels around its coordinate, so it can differ from cval only within
    # the image of the cube (-1, 1)^3 around a support voxel; one output voxel more covers float32 rounding.
    # Each slab samples only the box around the support voxels that reach it: a brain fills about two thirds
    # of the slabs' whole box, and slabs beyond its ends are skipped. The support is placed in blocks of
    # 2 x 2 x 2 voxels (an eighth of the points to place and sort); a voxel lies within half a voxel of its
    # block's centre, so a block reaches 1.5 source voxels.
    held = np.pad(held, [(0, n % 2) for n in held.shape])
    blocks = held.reshape(held.shape[0] // 2, 2, held.shape[1] // 2, 2, held.shape[2] // 2, 2).any(axis=(1, 3, 5))
    to_out = np.linalg.inv(matrix)
    reach = 1.5 * np.abs(to_out[:3, :3]).sum(axis=1) + 1.0
    reached = (np.argwhere(blocks) * 2.0 + 0.5) @ to_out[:3, :3].T + to_out[:3, 3]
    axis = 0 if layout == "C" else 2
    reached = reached[np.argsort(reached[:, axis], kind="stable")]

    def slab_box(c0: int, c1: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The part of the box that slab rows c0..c1 (box indices along ``axis``) need: (lo, hi), box indices."""
        first = np.searchsorted(reached[:, axis], o_lo[axis] + c0 - reach[axis], side="left")
        last = np.searchsorted(reached[:, axis], o_lo[axis] + c1 - 1 + reach[axis], side="right")
        if first >= last:
            return None
        near = reached[first:last]
        lo_ = np.maximum(o_lo, np.floor(near.min(axis=0) - reach).astype(int)) - o_lo
        hi_ = np.minimum(o_hi, np.ceil(near.max(axis=0) + reach).astype(int) + 1) - o_lo
        return (lo_, hi_) if (hi_ > lo_).all() else None

    def sample(grid: torch.Tensor) -> np.ndarray:
        slab = F.grid_sample(src, grid[None], mode=mode, padding_mode="zeros", align_corners=True)[0, 0]
        if cval:
            slab += cval
        return slab.numpy()

    # A sample's coordinate is plane[j, k] + i * step in float32 in both layouts (the same two roundings),
    # so the layouts hold the same bits; only the order in which slabs are cut and stored differs.
    if layout == "C":
        rows = max(1, 1_000_000 // (size[1] * size[2]))

        def fill(a0: int) -> None:
            a1 = min(size[0], a0 + rows)
            box = slab_box(a0, a1)
            if box is None:
                return
            (_, j0, k0), (_, j1, k1) = box
            grid = plane[None, j0:j1, k0:k1] + torch.arange(a0, a1, dtype=torch.float32)[:, None, None, None] * step
            out[o_lo[0] + a0 : o_lo[0] + a1, o_lo[1] + j0 : o_lo[1] + j1, o_lo[2] + k0 : o_lo[2] + k1] = sample(grid)

        starts = range(0, size[0], rows)
    else:
        # Slabs along the last axis, sampled as (k, j, i): each is a contiguous block of the transposed view.
        rows = max(1, 1_000_000 // (size[0] * size[1]))
        across = torch.arange(0, size[0], dtype=torch.float32)[:, None] * step  # (i, 3)
        plane_kj = plane.permute(1, 0, 2)
        out_t = out.T

        def fill(c0: int) -> None:
            c1 = min(size[2], c0 + rows)
            box = slab_box(c0, c1)
            if box is None:
                return
            (i0, j0, _), (i1, j1, _) = box
            grid = plane_kj[c0:c1, j0:j1, None, :] + across[i0:i1]
            out_t[o_lo[2] + c0 : o_lo[2] + c1, o_lo[1] + j0 : o_lo[1] + j1, o_lo[0] + i0 : o_lo[0] + i1] = sample(grid)

        starts = range(0, size[2], rows)

    # grid_sample parallelises over the batch only; slabs in two threads use both cores (torch ops
    # release the GIL). Each slab writes its own rows, so the result does not depend on the order.
    from concurrent.futures import ThreadPoolExecutor

    with torch.inference_mode(), ThreadPoolExecutor(max(1, min(4, torch.get_num_threads()))) as pool:
        list(pool.map(fill, starts))
    return out


def normalise(values: np.ndarray, mask: np.ndarray, spec: dict) -> tuple[np.ndarray, dict]:
    """Intensity normalisation as the card says.

    ``percentile`` (MR): the ``low``/``high`` percentiles inside the mask map to 0 and 1.
    ``window`` (CT): HU ``low``..``high`` map to 0..1. Both clip to ``clip`` so that lesions brighter
    than healthy tissue stay visible to the model without exploding.
    """
    method = spec.get("method", "percentile")
    clip = spec.get("clip", [-0.5, 2.0])
    if method == "window":
        lo, hi = float(spec["low"]), float(spec["high"])
    elif method == "percentile":
        inside = values[mask] if mask.any() else values.ravel()
        if inside.size == 0:
            raise InputError("The scan is empty where the model looks; nothing to analyse.")
        lo, hi = (float(v) for v in np.percentile(inside, [spec.get("low", 1.0), spec.get("high", 99.0)]))
    else:
        raise InputError(f"Unknown intensity normalisation {method!r} in the model card.")
    # Relative: a scan stored in tiny units (1e-20 a step, a float export's scaling) still has contrast.
    if not hi - lo > 1e-6 * max(abs(lo), abs(hi), 1e-30):
        raise InputError(
            f"The scan has no contrast where the model looks: most of it has one intensity ({lo:.4g}), as in a "
            "saturated (clipped) or blank acquisition. Check that it is the right series and that its "
            "intensities were not clipped on export."
        )
    out = (values - lo) / (hi - lo)
    np.clip(out, clip[0], clip[1], out=out)
    return out.astype(np.float32, copy=False), {"method": method, "low": lo, "high": hi}


def to_model_space(
    volume: Volume,
    card: ModelCard,
    reference: np.ndarray | None = None,
    reference_mask: np.ndarray | None = None,
    *,
    alignment: Alignment | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> ModelInput:
    """Maps a scan onto the model grid.

    Args:
        volume: The scan.
        card: The model card (space, intensity, mask settings).
        reference: Reference template on the model grid (needed for ``space.alignment == "register"``).
        reference_mask: Foreground mask on the model grid (used when ``mask.source == "reference"``).
        alignment: A known alignment, skipping registration (training caches it).
        progress: Progress callback.
        cancel: Cancel event.
    """
    warnings: list[str] = []
    data = np.asarray(volume.array)
    acquired = None
    # An MR model reads magnitude images: a negative fill under them is padding, even at CT air's -1024.
    pad_value = padding_value(data, magnitude=card.modality.upper() == "MR")
    if pad_value is not None:
        # Padding would dominate the alignment's intensity histogram and read as tissue-free anatomy: it is
        # background for the alignment and outside the field of view for the analysis.
        acquired = data != pad_value
        data = np.where(acquired, data, data[acquired].min())
    dropped, where = dropped_slices(data)
    if dropped is not None:
        # Missing slices inside the scan are filled from their neighbours (for the alignment and the
        # network) and, like padding, left unassessed.
        data = fill_from_neighbours(data, dropped)
        acquired = ~dropped if acquired is None else acquired & ~dropped
        warnings.append(
            f"Slices with no signal inside the scan (dropped or corrupted): {'; '.join(where)}. They were "
            "filled from their neighbours and are not assessed; check the series for missing data."
        )
    if card.modality.upper() == "MR":  # as the padding: an MR model's input is read as an MR scan
        # A slice through the head far darker or brighter than its neighbours lost part of its signal: as
        # it is, it reads as a slab of abnormal tissue across the brain.
        dimmed, where = dimmed_slices(data, volume.affine)
        if dimmed is not None:
            data = fill_from_neighbours(data, dimmed)
            acquired = ~dimmed if acquired is None else acquired & ~dimmed
            warnings.append(
                f"Slices far darker or brighter than their neighbours (partial signal loss or a corrupted "
                f"acquisition): {'; '.join(where)}. They were filled from their neighbours and are not assessed; "
                "check the series for artefacts."
            )
    if card.intensity.get("despike"):
        data, spikes = despike(data)
        if spikes:
            warnings.append(
                f"{spikes} isolated voxel(s) far brighter than all their neighbours (hot pixels or corrupted "
                "data) were replaced by their neighbours' median before the analysis."
            )
    method = card.space.get("alignment", "register")
    kept = None
    blanked_ml = 0.0
    blanked = None
    if method == "register" and reference is not None and reference_mask is not None:
        kept = stripped_foreground(data, volume.affine)
    stripped = kept is not None
    report(progress, 0.0, "Aligning to the model's reference")
    if alignment is None:
        if method == "register":
            if reference is None:
                raise InputError(
                    "This model needs its reference template to align scans; the model folder is incomplete."
                )
            mode = card.space.get("registration", "affine")
            if kept is None:
                # Left out of the match without a warning: once out, they change nothing the reader sees.
                blanked = blanked_region(data, volume.affine)
                if blanked is not None:
                    blanked_ml = float(blanked[0].sum() * voxel_ml(blanked[1]))
                alignment = register_to_reference(
                    data,
                    volume.affine,
                    reference,
                    card.affine,
                    mode=mode,
                    cancel=cancel,
                    moving_mask=None if blanked is None else (~blanked[0], blanked[1]),
                    **_brain_stage(card, reference_mask),
                )
                alignment = align_part_of_head(volume, data, card, reference, reference_mask, alignment, mode, cancel)
            else:
                alignment, stripped = _align_brain_only(volume, card, reference, reference_mask, kept, mode, cancel)
        elif method == "center":
            alignment = center_alignment(card, volume, _threshold_mask(data, card.mask))
        else:
            alignment = Alignment(np.eye(4), None, "identity")
    check_cancel(cancel)
    report(progress, 0.6, "Resampling to the model grid")
    m2i = model_to_input_matrix(card, volume.affine, alignment)
    pad = float(card.intensity.get("pad", data.min() if data.size else 0))
    values = resample(data, m2i, card.shape, order=1, cval=pad)
    inside = inside_grid(m2i, volume.shape, card.shape)
    if acquired is not None:
        inside &= resample(acquired.view(np.uint8), m2i, card.shape, order=1, cval=0.0) > 0.5
    if blanked is not None:
        # A region set to zero holds no data (a defaced face, a part cut away): like padding it is outside
        # the field of view, not dark tissue. Inside the brain it read as a large abnormality.
        coarse_from_model = np.linalg.inv(blanked[1]) @ np.asarray(volume.affine, dtype=np.float64) @ m2i
        gone = resample(blanked[0].view(np.uint8), coarse_from_model, card.shape, order=1, cval=0.0) > 0.5
        inside &= ~gone
        if reference_mask is not None:
            lost_ml = float((gone & reference_mask.astype(bool)).sum()) * voxel_ml(card.affine)
            if lost_ml >= BLANKED_BRAIN_WARN_ML:
                warnings.append(
                    f"About {lost_ml:.0f} mL of the brain's region is set to zero in the scan (blanked: no data, "
                    "as by a masking or defacing tool that reached the brain); it is not assessed. Check how the "
                    "scan was exported."
                )
    check_cancel(cancel)
    if card.mask.get("source") == "reference" and reference_mask is not None:
        mask = reference_mask.astype(bool)
    else:
        mask = _threshold_mask(values, card.mask) & inside
    assessable = mask.sum()
    if kept is not None:
        mask = mask & kept_on_grid(kept, lambda a: resample(a, m2i, card.shape, order=1, cval=0.0))
    coverage = float((mask & inside).sum() / max(1, assessable))
    if coverage < 0.9:
        warnings.append(
            f"The scan covers only {coverage:.0%} of the region the model analyses; the rest is not assessed."
        )
    mask = mask & inside
    try:
        image, used = normalise(values, mask, card.intensity)
    except InputError as exc:
        raise InputError(f"{volume.location or 'the scan'}: {exc}") from exc
    image[~inside] = 0.0
    filled = None
    if reference is not None and reference_mask is not None and not inside[reference_mask].all():
        # Brain the field of view left out is filled with the reference brain (never scored): a network
        # trained on whole brains reconstructs the edge of a cut-off one poorly for several voxels.
        filled = reference_mask & ~inside
        ref_image, _ = normalise(reference, reference_mask, card.intensity)
        image[filled] = ref_image[filled]
    report(progress, 1.0, "In model space")
    return ModelInput(
        image,
        mask,
        m2i,
        alignment,
        coverage,
        used,
        warnings,
        skull_stripped=stripped,
        filled=filled,
        blanked_ml=blanked_ml,
    )


#: Brain blanked to zero beyond this volume is said; less is within a defacing tool's reach of the face.
BLANKED_BRAIN_WARN_ML = 5.0


def _align_brain_only(
    volume: Volume,
    card: ModelCard,
    reference: np.ndarray,
    reference_mask: np.ndarray,
    kept: np.ndarray,
    mode: str,
    cancel: threading.Event | None,
) -> tuple[Alignment, bool]:
    """Aligns a scan whose background is one value and whose content is brain-sized.

    That is a skull-stripped brain, or a slab of a head whose air was set to zero: the scan is aligned
    both to the reference brain alone and to the whole head, and the alignment under which its voxels
    correlate best with the reference brain wins.

    Returns:
        (alignment, whether the brain-only alignment won).
    """
    data = np.asarray(volume.array)
    stage = _brain_stage(card, reference_mask)
    brain = register_to_reference(
        on_zero_background(data, kept),
        volume.affine,
        reference * reference_mask,
        card.affine,
        mode=mode,
        cancel=cancel,
        **stage,
    )
    try:
        head = register_to_reference(data, volume.affine, reference, card.affine, mode=mode, cancel=cancel, **stage)
    except InputError:
        return brain, True

    def fit(alignment: Alignment) -> float:
        m2i = model_to_input_matrix(card, volume.affine, alignment)
        where = reference_mask & kept_on_grid(kept, lambda a: resample(a, m2i, card.shape, order=1, cval=0.0))
        r = correlation(resample(data, m2i, card.shape, order=1, cval=0.0), reference, where)
        return -1.0 if r is None else r

    return (brain, True) if fit(brain) >= fit(head) else (head, False)


#: Below this share of the reference brain inside the scan, the scan is aligned within its own field of view.
PARTIAL_BELOW = 0.95


def align_part_of_head(
    volume: Volume,
    data: np.ndarray,
    card: ModelCard,
    reference: np.ndarray,
    reference_mask: np.ndarray | None,
    alignment: Alignment,
    mode: str,
    cancel: threading.Event | None,
) -> Alignment:
    """The alignment of a scan that shows part of the head: also measured within the scan (``register_within_input``).

    A whole head keeps the alignment it has (the one the model's healthy calibration was measured with).
    For part of a head the better of the two wins, judged as ``_align_brain_only`` judges: by how well the
    scan correlates with the reference brain where it has voxels. A scan missing a little keeps the
    brain-refined fit (it matched as well or better on the sample cut by 30-40 slices); a half head takes
    the fit measured within it.
    """
    if reference_mask is None or alignment.method == "identity":
        return alignment
    m2i = model_to_input_matrix(card, volume.affine, alignment)
    if inside_grid(m2i, volume.shape, card.shape)[reference_mask].mean() >= PARTIAL_BELOW:
        return alignment
    try:
        part = register_within_input(data, volume.affine, reference, card.affine, mode=mode, cancel=cancel)
    except InputError:
        return alignment

    def fit(candidate: Alignment) -> float:
        m2i = model_to_input_matrix(card, volume.affine, candidate)
        where = reference_mask & inside_grid(m2i, volume.shape, card.shape)
        r = correlation(resample(data, m2i, card.shape, order=1, cval=0.0), reference, where)
        return -1.0 if r is None else r

    return part if fit(part) > fit(alignment) else alignment


def _brain_stage(card: ModelCard, reference_mask: np.ndarray | None) -> dict:
    """Registration arguments for the card's brain stage (``space.brain_refine_mm``), if it has one.

    A card without it keeps the whole-head fit its calibration was measured with.
    """
    margin = card.space.get("brain_refine_mm")
    if margin is None or reference_mask is None:
        return {}
    return {"reference_mask": reference_mask, "brain_margin_mm": float(margin)}


def from_model_space(
    model_map: np.ndarray, model_input: ModelInput, input_shape: tuple[int, ...], order: int = 1, cval: float = 0.0
) -> np.ndarray:
    """Brings a model-space map back onto the input's voxel grid (shape ``input_shape``), in Fortran order.

    Fortran order is a loaded scan's (NIfTI and DICOM alike) and a NIfTI file's: maps combined with the scan
    and written out need no transposed copy.
    """
    i2m = np.linalg.inv(model_input.model_to_input)
    return resample_support(model_map, i2m, input_shape, order=order, cval=cval, layout="F")


def _threshold_mask(values: np.ndarray, spec: dict) -> np.ndarray:
    """Foreground by threshold (CT body: above ``threshold`` HU), largest component, holes filled."""
    from scipy import ndimage

    thr = spec.get("threshold")
    if thr is None:
        thr = float(np.percentile(values, 60)) * 0.2
    fg = values > float(thr)
    if not fg.any():
        return fg
    lab, n = ndimage.label(fg)
    if n > 1:
        sizes = ndimage.sum_labels(fg, lab, index=np.arange(1, n + 1))
        fg = lab == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(fg)

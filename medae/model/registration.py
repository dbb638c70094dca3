"""Affine alignment of a scan to the model's reference template, with SimpleITK's registration framework.

SimpleITK works in LPS+ physical space; medae's affines are RAS+. The conversions live here and nowhere
else. The returned ``Alignment`` maps reference (model-space) world points to input world points, which is
what resampling the input onto the model grid needs; its inverse brings maps back.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from medae.errors import CancelledError, InputError
from medae.geometry import LPS_TO_RAS

# Coarse to fine: a similarity transform (pose and size) at 8 then 4 mm, then a full affine at 4 mm.
# Per level: voxel size in mm, optimiser iterations, sampled fraction of the reference's voxels. Each
# level gets images already block-averaged to its voxel size, so ITK never smooths or differentiates a
# full-resolution image (that set-up cost was most of the time before). On 20 generated heads with a
# known pose this schedule is as accurate as refining the affine again at 2 mm (mean error 1.8 mm
# against the pose, which ignores the generator's own 2.5 mm deformation) in a quarter of the time.
SCHEDULE = {
    "similarity": ((8.0, 50, 0.25), (4.0, 50, 0.05)),
    "affine": ((4.0, 40, 0.2),),
    "brain": ((4.0, 40, 0.5),),
}
# The brain stage measures the match only in the reference brain grown by a margin, so that the brain and
# what surrounds it, not the scalp and neck, set the fit (see ``register_to_reference``). The margin is a
# face-connected dilation in steps of the reference's spacing: the full margin along the axes, about 0.58 of
# it diagonally. Its steps are half the affine stage's: at full steps one noisy head (noise 3.9%) ran away
# to scales of 1.3 and was kept on the whole-head fit. A 6 mm margin fitted the brain's outline best on
# average, but on some heads it moved the skull base and the inferior brain (healthy development scans then
# scored up to twice as high as under the whole-head fit); 25 mm keeps the skull and the CSF around the
# brain in the match and left no head worse (docs/benchmarks.md, registration).
DEFAULT_BRAIN_MARGIN_MM = 25.0


# An affine fit is kept only if its scales stay within these bounds and its Mattes MI is no worse than the
# similarity fit it started from, give or take the sampling noise between the two stages (see ``_diverged``).
AFFINE_SCALES = (0.5, 2.0)
AFFINE_SLACK = 0.05


@dataclass
class Alignment:
    """A 4x4 affine ``ref_to_input`` in RAS+ mm: reference world point -> input world point.

    Attributes:
        ref_to_input: The transform (identity when registration was skipped).
        metric: Final similarity metric value (lower is better for Mattes MI), or None.
        method: "affine", "similarity" or "identity".
    """

    ref_to_input: np.ndarray
    metric: float | None = None
    method: str = "affine"


def to_sitk(array: np.ndarray, affine: np.ndarray):
    """A SimpleITK image (float32) from an (i, j, k) array and a RAS+ affine."""
    import SimpleITK as sitk

    aff = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)  # RAS->LPS is the same flip
    sp = np.linalg.norm(aff[:3, :3], axis=0)
    img = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array, dtype=np.float32).transpose(2, 1, 0)))
    img.SetSpacing(tuple(float(s) for s in sp))
    img.SetOrigin(tuple(float(o) for o in aff[:3, 3]))
    img.SetDirection(tuple(float(d) for d in (aff[:3, :3] / sp).ravel()))
    return img


#: Voxels a scan needs along every axis to be aligned at all (ITK's recursive Gaussian smoothing).
MIN_VOXELS_TO_ALIGN = 4


def downsample(image: np.ndarray, affine: np.ndarray, target_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Block averaging to about ``target_mm`` voxels: registration needs no more detail.

    The blocks are summed from strided views, so no full-resolution temporary is made (a CT-sized
    input would otherwise need a second copy of itself in float32).
    """
    sp = np.linalg.norm(affine[:3, :3], axis=0)
    factors = np.maximum(1, np.floor(target_mm / sp + 1e-6).astype(int))
    # ITK's smoothing needs four voxels along every axis: a thin slab keeps its slices at coarse levels.
    factors = np.minimum(factors, np.maximum(1, np.asarray(image.shape[:3]) // MIN_VOXELS_TO_ALIGN))
    if (factors == 1).all():
        return np.asarray(image, dtype=np.float32), affine
    out_shape = tuple(int(n) for n in np.asarray(image.shape) // factors)
    small = np.zeros(out_shape, np.float32)
    image = np.asarray(image)
    # In slabs along the axis slowest in memory: each strided view reads every cache line of the whole scan, so
    # unslabbed the 384 views of a 512 x 512 x 300 scan (4 mm blocks) streamed it from memory 384 times; a slab
    # of a few MB stays in cache for all of them. Each output voxel sums the same terms in the same order: the
    # same bits. A scan that fits in cache (a 1 mm brain: 20 MB) is one slab.
    axis = int(np.argmax(np.abs(image.strides[:3])))
    per = out_shape[axis]
    if image.nbytes > 32 << 20:
        plane = image.nbytes // max(1, out_shape[axis])  # input bytes per output slice along the axis
        per = max(1, (4 << 20) // max(1, plane))
    for s0 in range(0, out_shape[axis], per):
        s1 = min(out_shape[axis], s0 + per)
        part = [slice(None)] * 3
        part[axis] = slice(s0 * factors[axis], s1 * factors[axis])
        src = image[tuple(part)]
        part[axis] = slice(s0, s1)
        dst = small[tuple(part)]
        size = dst.shape
        for a in range(factors[0]):
            for b in range(factors[1]):
                for c in range(factors[2]):
                    block = src[a :: factors[0], b :: factors[1], c :: factors[2]]
                    dst += block[: size[0], : size[1], : size[2]]
    small /= float(np.prod(factors))
    new = affine.copy()
    new[:3, :3] = affine[:3, :3] * factors
    # A block's centre: the mean of its voxel indices.
    new[:3, 3] = affine[:3, :3] @ ((factors - 1) / 2.0) + affine[:3, 3]
    return small, new


def from_sitk_transform(tx) -> np.ndarray:
    """A SimpleITK transform (LPS, fixed -> moving points) as a 4x4 RAS+ affine."""
    mat = np.eye(4)
    if hasattr(tx, "GetMatrix"):
        m = np.asarray(tx.GetMatrix()).reshape(3, 3)
        c = np.asarray(tx.GetCenter())
        t = np.asarray(tx.GetTranslation())
        mat[:3, :3] = m
        mat[:3, 3] = t + c - m @ c
    else:  # composite or other: probe with points (affine transforms are exactly recovered)
        pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64) * 100
        out = np.array([tx.TransformPoint(tuple(p)) for p in pts])
        mat[:3, 3] = out[0]
        mat[:3, :3] = (out[1:] - out[0]).T / 100
    return LPS_TO_RAS @ mat @ LPS_TO_RAS


def _pyramid(image: np.ndarray, affine: np.ndarray, sizes: list[float]) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """The image block-averaged to each voxel size (mm), each level made from the previous one."""
    out = {}
    for mm in sorted(sizes):
        image, affine = downsample(image, affine, target_mm=mm)
        out[mm] = (image, affine)
    return out


def _not_aligned(exc: RuntimeError) -> InputError:
    """ITK's failure as an error a person can act on."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    # ITK's own words, without the filter's class name and memory address; cut between words.
    detail = re.sub(r"^.*ITK ERROR: \w+\(0x[0-9a-fA-F]+\): ", "", lines[-1]) if lines else "registration failed"
    if len(detail) > 160:
        detail = detail[:160].rsplit(" ", 1)[0] + " ..."
    return InputError(
        f"The scan could not be aligned to the model's reference ({detail}). "
        "Check that it shows the body part the model was trained on and is not empty."
    )


# Starting rotations (degrees about the reference's x, y, z axes) tried at the coarsest level: the optimiser
# finds a head tilted by up to about 20 degrees from any start, so starts 30 degrees apart let heads lying
# at up to about 50 degrees from the reference (chin to chest, turned, rolled) align too.
START_MARGIN = 0.05
STARTS = ((0, 0, 0), (30, 0, 0), (-30, 0, 0), (0, 30, 0), (0, -30, 0), (0, 0, 30), (0, 0, -30))


def _method(sitk, fraction: float, seed: int, iterations: int, learning_rate: float, moving_gradient: bool, mask=None):
    """One ITK registration run's set-up: Mattes MI on a seeded random sample, regular-step descent.

    ``mask``: the scan's voxels that count (a sitk image); samples mapped elsewhere are left out.
    """
    reg = sitk.ImageRegistrationMethod()
    if mask is not None:
        reg.SetMetricMovingMask(mask)
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(min(1.0, fraction), seed)
    reg.SetMetricUseMovingImageGradientFilter(moving_gradient)
    reg.SetMetricUseFixedImageGradientFilter(False)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=learning_rate,
        minStep=1e-3,
        numberOfIterations=max(1, iterations),
        relaxationFactor=0.6,
        gradientMagnitudeTolerance=1e-6,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    return reg


def _best_start(sitk, init, fixed, moving, seed: int, cancel: threading.Event | None, mask=None):
    """A short coarse similarity fit from each of ``STARTS``; the best match wins.

    The upright start keeps ties up to ``START_MARGIN``. When a tilted start wins, the head may be turned
    about a second axis too, so the starts 30 degrees either way about the other two axes are tried from
    the winner (heads turned about two axes at once).
    """
    from medae import geometry

    def fit(angles_list):
        # Rotate about the reference's centre of mass; ITK's frame is LPS, so conjugate the RAS rotation.
        rot = np.eye(3)
        for angles in angles_list:
            rot = rot @ geometry.rotation_matrix(tuple(float(a) for a in angles))
        tx = sitk.Similarity3DTransform(init)
        tx.SetMatrix(
            (np.asarray(init.GetMatrix()).reshape(3, 3) @ LPS_TO_RAS[:3, :3] @ rot @ LPS_TO_RAS[:3, :3])
            .ravel()
            .tolist()
        )
        reg = _method(sitk, 0.1, seed, iterations=25, learning_rate=4.0, moving_gradient=False, mask=mask)
        reg.SetInitialTransform(tx, inPlace=True)
        try:
            reg.Execute(fixed, moving)
        except RuntimeError:
            return None, np.inf  # a start that loses the overlap is simply not a candidate
        return tx, float(reg.GetMetricValue())

    best, best_metric, best_start = None, np.inf, ()
    for n, angles in enumerate(STARTS):
        if cancel is not None and cancel.is_set():
            raise CancelledError()
        tx, m = fit([angles])
        # Another start must match clearly better than the upright one: with part of the head outside the
        # field of view a wrong pose can come within 0.001 of the right one, while a truly tilted head
        # matched 0.1-0.4 better from its nearest start on generated heads.
        m += START_MARGIN if n else 0.0
        if tx is not None and m < best_metric:
            best, best_metric, best_start = tx, m, angles
    if best_start and any(best_start):
        axis = int(np.flatnonzero(best_start)[0])
        for angles in STARTS[1:]:
            if np.flatnonzero(angles)[0] == axis:
                continue
            if cancel is not None and cancel.is_set():
                raise CancelledError()
            tx, m = fit([best_start, angles])
            if tx is not None and m + START_MARGIN < best_metric:
                best, best_metric = tx, m + START_MARGIN
    return best if best is not None else sitk.Similarity3DTransform(init)


def register_to_reference(
    image: np.ndarray,
    affine: np.ndarray,
    reference: np.ndarray,
    ref_affine: np.ndarray,
    *,
    mode: str = "affine",
    reference_mask: np.ndarray | None = None,
    brain_margin_mm: float = DEFAULT_BRAIN_MARGIN_MM,
    iterations: int = 50,
    sampling: float = 0.05,
    seed: int = 7,
    cancel: threading.Event | None = None,
    moving_mask: tuple[np.ndarray, np.ndarray] | None = None,
) -> Alignment:
    """Aligns ``image`` to ``reference`` by maximising Mattes mutual information.

    A similarity transform (rotation, translation, isotropic scale) is fitted first, from the best of
    several starting rotations (``STARTS``), then a full affine, each coarse to fine. With
    ``reference_mask``, the affine is refined once more on the brain alone (the match measured only
    within the reference brain and a margin around it): scalp, fat and neck vary between heads far more
    than the brain does and pulled the whole-head fit, so that the reference brain came out up to 16%
    too small on generated heads whose true brain it should cover. The result is deterministic for a
    given seed.

    Args:
        image: Input voxels (i, j, k), any dtype.
        affine: Input voxel -> RAS+ mm.
        reference: Reference template voxels.
        ref_affine: Reference voxel -> RAS+ mm.
        mode: "affine", "similarity" or "identity" (no registration: the scan is taken as already
            in the reference frame).
        reference_mask: The reference's brain (same grid): adds the brain stage to an affine fit.
        brain_margin_mm: How far around the reference brain the brain stage measures the match.
        iterations: Scales the optimiser iterations of every level (50 keeps ``SCHEDULE`` as written).
        sampling: Scales the sampled fraction of every level (0.05 keeps ``SCHEDULE`` as written).
        seed: Sampling seed.
        cancel: Checked between optimiser iterations.
        moving_mask: The scan's voxels that count and the voxel -> RAS+ mm of their grid (any grid over
            the scan); None for all. Voxels that were blanked (a defaced scan's face) would otherwise pull
            the reference's face towards air.

    Raises:
        InputError: the optimiser could not align the scan (e.g. no overlap).
    """
    if mode == "identity":
        return Alignment(np.eye(4), None, "identity")
    import SimpleITK as sitk

    # ITK's multi-threaded metric sampling is not reproducible bit for bit; one thread makes the same
    # scan give the same heatmap every time.
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        stages = [("similarity", SCHEDULE["similarity"])]
        if mode == "affine":
            stages.append(("affine", SCHEDULE["affine"]))
        brain = mode == "affine" and reference_mask is not None and bool(np.any(reference_mask))
        # The brain stage runs after the loop below (``_refine_on_brain``) but needs its levels too.
        levels_used = [*stages, ("brain", SCHEDULE["brain"])] if brain else stages
        sizes = sorted({mm for _, levels in levels_used for mm, _, _ in levels})
        moving_img, fixed_img = _levels(image, affine, reference, ref_affine, sizes)
        masks = _moving_masks(sitk, moving_mask, sizes)
        current = _initial(sitk, fixed_img[sizes[-1]], moving_img[sizes[-1]], seed, cancel, masks.get(sizes[-1]))
        current, metric, similarity = _fit_stages(
            sitk,
            current,
            stages,
            fixed_img,
            moving_img,
            iterations=iterations,
            sampling=sampling,
            seed=seed,
            cancel=cancel,
            masks=masks,
        )
        result = from_sitk_transform(current)
        if similarity is not None and _diverged(result, metric, similarity[1]):
            return Alignment(from_sitk_transform(similarity[0]), similarity[1], "similarity")
        if brain:
            refined = _refine_on_brain(
                sitk, current, fixed_img, moving_img, reference_mask, brain_margin_mm, ref_affine, seed, cancel, masks
            )
            if refined is not None:
                result = refined
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    return Alignment(result, metric, mode)


def _moving_masks(sitk, keep: tuple[np.ndarray, np.ndarray] | None, sizes) -> dict:
    """The scan's voxels that count, as SimpleITK masks at each voxel size (mm) of ``sizes`` ({} for all)."""
    if keep is None:
        return {}
    mask, affine = keep
    return {
        mm: sitk.Cast(to_sitk(img >= 0.5, aff), sitk.sitkUInt8)
        for mm, (img, aff) in _pyramid(mask.astype(np.float32), affine, sizes).items()
    }


def _levels(image, affine, reference, ref_affine, sizes) -> tuple[dict, dict]:
    """The scan and the reference as SimpleITK images at each voxel size (mm) of ``sizes``.

    The scan is clipped to its robust intensity range: registration should not chase a few hot voxels.
    """
    lo, hi = np.percentile(np.asarray(image)[::2, ::2, ::2], [1, 99.5])
    scan = {
        mm: to_sitk(np.clip(img, lo, hi), aff) for mm, (img, aff) in _pyramid(np.asarray(image), affine, sizes).items()
    }
    ref = {mm: to_sitk(*lv) for mm, lv in _pyramid(np.asarray(reference, dtype=np.float32), ref_affine, sizes).items()}
    return scan, ref


def _initial(sitk, fixed, moving, seed: int, cancel, mask=None):
    """The starting similarity transform: centres of mass matched, then the best of ``STARTS``."""
    try:
        init = sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Similarity3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
        )
    except RuntimeError as exc:
        raise _not_aligned(exc) from exc
    return _best_start(sitk, sitk.Similarity3DTransform(init), fixed, moving, seed, cancel, mask)


def _fit_stages(sitk, current, stages, fixed_img, moving_img, *, iterations, sampling, seed, cancel, masks=None):
    """Runs the similarity and (when asked) affine stages from ``current``, coarse to fine.

    Returns:
        (the fitted transform, its final metric, (the similarity fit, its metric) or None without an
        affine stage).
    """
    metric = None
    similarity: tuple | None = None
    for name, levels in stages:
        if name == "affine":
            similarity = (current, metric)
            tx = sitk.AffineTransform(3)
            tx.SetCenter(current.GetCenter())
            tx.SetMatrix(current.GetMatrix())
            tx.SetTranslation(current.GetTranslation())
            current = tx
        for mm, iters, fraction in levels:
            # The similarity stage takes gradients at the sampled points only (a gradient image cost more
            # than its optimisation); the affine stage diverged that way, so it keeps ITK's gradient image.
            reg = _method(
                sitk,
                fraction * sampling / 0.05,
                seed,
                iterations=round(iters * iterations / 50),
                learning_rate=2.0 * mm / 4.0,
                moving_gradient=name == "affine",
                mask=(masks or {}).get(mm),
            )
            reg.SetInitialTransform(current, inPlace=True)
            if cancel is not None:
                reg.AddCommand(sitk.sitkIterationEvent, lambda r=reg: cancel.is_set() and r.StopRegistration())
            try:
                reg.Execute(fixed_img[mm], moving_img[mm])
            except RuntimeError as exc:
                raise _not_aligned(exc) from exc
            if cancel is not None and cancel.is_set():
                raise CancelledError()
            metric = float(reg.GetMetricValue())
    return current, metric, similarity


def register_within_input(
    image: np.ndarray,
    affine: np.ndarray,
    reference: np.ndarray,
    ref_affine: np.ndarray,
    *,
    mode: str = "affine",
    seed: int = 7,
    cancel: threading.Event | None = None,
) -> Alignment:
    """Aligns a scan that shows part of the head, with the match measured over the scan's own voxels.

    ``register_to_reference`` samples the match over the whole reference: when the scan holds part of
    it, every reference point outside the scan drops out and a wrong pose that overlaps less can match
    as well (the sample scan's upper half came out 24 mm off, one hemisphere 12 mm). Here the roles are
    swapped: the scan is the fixed image, so every sampled point has a counterpart in the complete
    reference (within 2 mm of the whole scan's alignment for halves, hemispheres and slabs of the
    sample). There is no brain stage: its mask lies in the reference.

    Raises:
        InputError: the optimiser could not align the scan.
    """
    import SimpleITK as sitk

    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # reproducible, as in register_to_reference
    try:
        stages = [("similarity", SCHEDULE["similarity"])]
        if mode == "affine":
            stages.append(("affine", SCHEDULE["affine"]))
        sizes = sorted({mm for _, levels in stages for mm, _, _ in levels})
        fixed, moving = _levels(image, affine, reference, ref_affine, sizes)
        current = _initial(sitk, fixed[sizes[-1]], moving[sizes[-1]], seed, cancel)
        current, metric, similarity = _fit_stages(
            sitk, current, stages, fixed, moving, iterations=50, sampling=0.05, seed=seed, cancel=cancel
        )
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    # The fit maps scan points to reference points; the alignment is the other way round.
    result = np.linalg.inv(from_sitk_transform(current))
    if similarity is not None and _diverged(result, metric, similarity[1]):
        return Alignment(np.linalg.inv(from_sitk_transform(similarity[0])), similarity[1], "similarity")
    return Alignment(result, metric, mode)


def _refine_on_brain(
    sitk, start, fixed_img, moving_img, reference_mask, margin_mm, ref_affine, seed, cancel, masks=None
):
    """The affine refined with the match measured in the reference brain and a margin; None if it ran away.

    The refinement is kept only if it matches the brain at least as well as its start and its scales stay
    plausible (``AFFINE_SCALES``).
    """
    from scipy import ndimage

    spacing = float(np.linalg.norm(ref_affine[:3, :3], axis=0).mean())
    grown = ndimage.binary_dilation(reference_mask, iterations=max(1, round(margin_mm / spacing)))
    tx = sitk.AffineTransform(start)
    metric = start_metric = None
    for mm, iters, fraction in SCHEDULE["brain"]:
        mask_img, mask_aff = downsample(grown.astype(np.float32), ref_affine, target_mm=mm)
        mask = sitk.Cast(to_sitk(mask_img >= 0.5, mask_aff), sitk.sitkUInt8)
        reg = _method(
            sitk,
            fraction,
            seed,
            iterations=iters,
            learning_rate=mm / 8.0,
            moving_gradient=True,
            mask=(masks or {}).get(mm),
        )
        reg.SetMetricFixedMask(mask)
        reg.SetInitialTransform(tx, inPlace=True)
        if cancel is not None:
            reg.AddCommand(sitk.sitkIterationEvent, lambda r=reg: cancel.is_set() and r.StopRegistration())
        try:
            if start_metric is None:
                start_metric = float(reg.MetricEvaluate(fixed_img[mm], moving_img[mm]))
            reg.Execute(fixed_img[mm], moving_img[mm])
        except RuntimeError:
            return None
        if cancel is not None and cancel.is_set():
            raise CancelledError()
        metric = float(reg.GetMetricValue())
    result = from_sitk_transform(tx)
    if _diverged(result, metric, start_metric):
        return None
    return result


def _diverged(affine: np.ndarray, metric: float | None, start_metric: float | None) -> bool:
    """Whether the affine stage ran away from the similarity fit it started from.

    On a slab of a head (part of the brain in the field of view) the affine's free scales can collapse
    one axis: the sample head cut to 90 mm of slices ended with scales 1.83 / 1.07 / 0.13 and a Mattes
    MI of -0.06, against -0.98 for the similarity fit it started from, which was within 3 mm of the whole
    head's alignment. An affine that matches worse than its start, or that stretches or squeezes an axis
    beyond any head, is dropped for the similarity fit.
    """
    scales = np.linalg.svd(affine[:3, :3], compute_uv=False)
    implausible = scales.min() < AFFINE_SCALES[0] or scales.max() > AFFINE_SCALES[1]
    worse = metric is not None and start_metric is not None and metric > start_metric + AFFINE_SLACK
    return bool(implausible or worse)

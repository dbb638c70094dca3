"""Affine alignment of a scan to the model's reference template, with SimpleITK's registration framework.

SimpleITK works in LPS+ physical space; medae's affines are RAS+. The conversions live here and nowhere
else. The returned ``Alignment`` maps reference (model-space) world points to input world points, which is
what resampling the input onto the model grid needs; its inverse brings maps back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from medae.errors import CancelledError, InputError
from medae.geometry import LPS_TO_RAS


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


def downsample(image: np.ndarray, affine: np.ndarray, target_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased block averaging to about ``target_mm`` voxels: registration needs no more detail."""
    from scipy import ndimage

    sp = np.linalg.norm(affine[:3, :3], axis=0)
    factors = np.maximum(1, np.floor(target_mm / sp).astype(int))
    if (factors == 1).all():
        return image.astype(np.float32, copy=False), affine
    img = ndimage.uniform_filter(image.astype(np.float32), size=tuple(factors), mode="nearest")
    start = factors // 2
    small = img[start[0] :: factors[0], start[1] :: factors[1], start[2] :: factors[2]]
    new = affine.copy()
    new[:3, :3] = affine[:3, :3] * factors
    new[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
    return np.ascontiguousarray(small), new


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


def register_to_reference(
    image: np.ndarray,
    affine: np.ndarray,
    reference: np.ndarray,
    ref_affine: np.ndarray,
    *,
    mode: str = "affine",
    iterations: int = 50,
    sampling: float = 0.05,
    seed: int = 7,
    cancel: threading.Event | None = None,
) -> Alignment:
    """Aligns ``image`` to ``reference`` by maximising Mattes mutual information.

    A similarity transform (rotation, translation, isotropic scale) is fitted first, then a full
    affine, each coarse to fine. The result is deterministic for a given seed.

    Args:
        image: Input voxels (i, j, k), any dtype.
        affine: Input voxel -> RAS+ mm.
        reference: Reference template voxels.
        ref_affine: Reference voxel -> RAS+ mm.
        mode: "affine", "similarity" or "identity" (no registration: the scan is taken as already
            in the reference frame).
        iterations: Optimiser iterations per level.
        sampling: Fraction of reference voxels sampled for the metric.
        seed: Sampling seed.
        cancel: Checked between optimiser iterations.

    Raises:
        InputError: the optimiser could not align the scan (e.g. no overlap).
    """
    if mode == "identity":
        return Alignment(np.eye(4), None, "identity")
    import SimpleITK as sitk

    # ITK's multi-threaded metric sampling is not reproducible bit for bit; one thread makes the same
    # scan give the same heatmap every time (the cost here is about 0.3 s).
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        fixed = to_sitk(reference, ref_affine)
        image, affine = downsample(np.asarray(image), affine, target_mm=2.5)
        moving = to_sitk(image, affine)
        # Robust intensity range: registration should not chase a few hot voxels.
        lo, hi = np.percentile(np.asarray(image)[::2, ::2, ::2], [1, 99.5])
        moving = sitk.Clamp(moving, sitk.sitkFloat32, float(lo), float(hi))

        init = sitk.CenteredTransformInitializer(
            fixed, moving, sitk.Similarity3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
        )
        # Coarse similarity first (pose and size), then a full affine refined at the model's resolution.
        stages = [("similarity", sitk.Similarity3DTransform(init), [4, 2], [3.0, 1.0], iterations)]
        if mode == "affine":
            stages.append(("affine", None, [2, 1], [1.0, 0.0], iterations // 2))
        current = None
        metric = None
        for name, tx, shrink, sigmas, iters in stages:
            if name == "affine":
                tx = sitk.AffineTransform(3)
                tx.SetCenter(current.GetCenter())
                tx.SetMatrix(current.GetMatrix())
                tx.SetTranslation(current.GetTranslation())
            reg = sitk.ImageRegistrationMethod()
            reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
            reg.SetMetricSamplingStrategy(reg.RANDOM)
            reg.SetMetricSamplingPercentage(sampling, seed)
            reg.SetInterpolator(sitk.sitkLinear)
            reg.SetOptimizerAsRegularStepGradientDescent(
                learningRate=2.0,
                minStep=1e-3,
                numberOfIterations=iters,
                relaxationFactor=0.6,
                gradientMagnitudeTolerance=1e-6,
            )
            reg.SetOptimizerScalesFromPhysicalShift()
            reg.SetShrinkFactorsPerLevel(shrink)
            reg.SetSmoothingSigmasPerLevel(sigmas)
            reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
            reg.SetInitialTransform(tx, inPlace=True)
            if cancel is not None:
                reg.AddCommand(sitk.sitkIterationEvent, lambda r=reg: cancel.is_set() and r.StopRegistration())
            try:
                reg.Execute(fixed, moving)
            except RuntimeError as exc:
                raise InputError(
                    f"The scan could not be aligned to the model's reference ({str(exc).splitlines()[0][:160]}). "
                    "Check that it shows the body part the model was trained on and is not empty."
                ) from exc
            if cancel is not None and cancel.is_set():
                raise CancelledError()
            metric = float(reg.GetMetricValue())
            current = tx
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    return Alignment(from_sitk_transform(current), metric, mode)

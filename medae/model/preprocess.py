"""Volume -> model space (align, resample, normalise, mask) and model-space maps -> the input's own grid.

The whole mapping is one 4x4 affine between model voxel indices and input voxel indices, so the inverse is
exact and maps return to the input grid with the input's shape and affine.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from medae.errors import InputError
from medae.geometry import apply_affine
from medae.model.card import ModelCard
from medae.model.registration import Alignment, register_to_reference
from medae.progress import ProgressFn, check_cancel, report
from medae.volume import Volume


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
    """

    image: np.ndarray
    mask: np.ndarray
    model_to_input: np.ndarray
    alignment: Alignment
    coverage: float
    intensity: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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
    """Samples ``array`` on a grid of ``shape`` where output index -> ``matrix`` -> array index."""
    from scipy import ndimage

    return ndimage.affine_transform(
        np.asarray(array, dtype=np.float32) if order > 0 else array,
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=tuple(shape),
        order=order,
        mode="constant",
        cval=cval,
        output=output if output is not None else (np.float32 if order > 0 else None),
        prefilter=False,
    )


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
    if hi - lo < 1e-6:
        raise InputError(
            "The scan has no contrast where the model looks (constant intensity). Check that it is the right series."
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
    method = card.space.get("alignment", "register")
    report(progress, 0.0, "Aligning to the model's reference")
    if alignment is None:
        if method == "register":
            if reference is None:
                raise InputError(
                    "This model needs its reference template to align scans; the model folder is incomplete."
                )
            alignment = register_to_reference(
                data,
                volume.affine,
                reference,
                card.affine,
                mode=card.space.get("registration", "affine"),
                cancel=cancel,
            )
        elif method == "center":
            alignment = center_alignment(card, volume, _threshold_mask(data, card.mask))
        else:
            alignment = Alignment(np.eye(4), None, "identity")
    check_cancel(cancel)
    report(progress, 0.6, "Resampling to the model grid")
    m2i = model_to_input_matrix(card, volume.affine, alignment)
    pad = float(card.intensity.get("pad", data.min() if data.size else 0))
    values = resample(data, m2i, card.shape, order=1, cval=pad)
    inside = resample(np.ones(volume.shape, np.float32), m2i, card.shape, order=1, cval=0.0) > 0.5
    check_cancel(cancel)
    if card.mask.get("source") == "reference" and reference_mask is not None:
        mask = reference_mask.astype(bool)
    else:
        mask = _threshold_mask(values, card.mask) & inside
    coverage = float((mask & inside).sum() / max(1, mask.sum()))
    if coverage < 0.9:
        warnings.append(
            f"The scan covers only {coverage:.0%} of the region the model analyses; the rest is not assessed."
        )
    mask = mask & inside
    image, used = normalise(values, mask, card.intensity)
    image[~inside] = 0.0
    report(progress, 1.0, "In model space")
    return ModelInput(image, mask, m2i, alignment, coverage, used, warnings)


def from_model_space(
    model_map: np.ndarray, model_input: ModelInput, input_shape: tuple[int, ...], order: int = 1, cval: float = 0.0
) -> np.ndarray:
    """Brings a model-space map back onto the input's voxel grid (shape ``input_shape``)."""
    i2m = np.linalg.inv(model_input.model_to_input)
    return resample(model_map, i2m, input_shape, order=order, cval=cval)


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

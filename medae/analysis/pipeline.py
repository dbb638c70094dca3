"""The analysis: scan -> model space -> reconstruction -> calibrated residual -> back on the scan's grid.

The CLI, the batch runner and the viewer all call ``analyze``.
"""

from __future__ import annotations

import re
import threading
import time

import numpy as np

from medae.analysis.background import background_stats, check_background
from medae.analysis.bias import bias_factor, check_bias
from medae.analysis.checks import (
    check_alignment,
    check_contrast,
    check_coverage,
    check_input,
    contrast_similarity,
    other_modality,
)
from medae.analysis.findings import extract_findings, finding_warnings
from medae.analysis.ghosts import check_ghosts, coarse_head, ghost_excess
from medae.analysis.orientation import check_orientation, find_flip
from medae.analysis.result import AnalysisResult
from medae.analysis.tissue import check_tissue_contrast, tissue_contrast
from medae.errors import InputError, ModelMismatchError
from medae.model.preprocess import from_model_space, to_model_space
from medae.model.residual import (
    DEFAULT_POSTPROCESS,
    analysis_mask,
    calibrate,
    residual_map,
    scan_score,
    score_percentile,
)
from medae.progress import ProgressFn, check_cancel, report, sub_progress
from medae.volume import Volume, grid_meta


def analyze(
    volume: Volume,
    model,
    *,
    threshold: float | None = None,
    force: bool = False,
    reconstruction: bool = True,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> AnalysisResult:
    """Analyses one scan with one model.

    Args:
        volume: The scan.
        model: A ``LoadedModel`` (``medae.model.load_model``).
        threshold: Calibrated threshold for findings; the card's healthy-calibrated default when None.
        force: Analyse even when the scan does not fit the model (the refusal becomes a warning).
        reconstruction: Also map the reconstruction and residual back onto the input grid (the viewer's
            compare mode needs them; a headless run that writes only the heatmap saves time and memory).
        progress: Progress callback (fraction, message).
        cancel: Set to stop with ``CancelledError``.

    Raises:
        ModelMismatchError: the scan cannot be meaningfully analysed with this model.
        InputError: the scan cannot be brought to model space.
        CancelledError: cancelled.
    """
    card = model.card
    timings: dict[str, float] = {}
    t = time.perf_counter()
    warnings = list(volume.warnings) + check_input(volume, card, force=force)
    # Air beyond the head is dark in MR; a CT's is at -1000 HU and holds no ghosts to measure.
    # A CT or PET forced through an MR model has no MR air to measure.
    mr = card.modality.upper() == "MR" and not other_modality(volume, card)
    coarse = coarse_head(volume) if mr else None  # one coarse view of the head for both air measures
    ghosts = ghost_excess(volume, coarse) if coarse is not None else None
    ghost_warnings = check_ghosts(ghosts)
    background = background_stats(volume, coarse) if coarse is not None else None
    air_warnings = check_background(background, ghosts_said=bool(ghost_warnings))
    warnings += ghost_warnings + air_warnings
    # Ghosts and bright structures in the air reach into the brain; noise alone adds no smooth field.
    artefacts_said = bool(ghost_warnings) or any(not w.startswith("The scan is noisy") for w in air_warnings)
    report(progress, 0.0, "Preparing")

    try:
        mi, checked, similarity, bias, tissue = _prepare(volume, model, force, progress, cancel)
    except (ModelMismatchError, InputError) as exc:
        named = _naming_the_scan(exc, volume)
        if named is exc:
            raise
        raise named from exc
    warnings += checked + check_coverage(mi.coverage) + check_bias(bias, artefacts_said=artefacts_said)
    # A contrast already warned of as unlike the reference's needs no second warning.
    if not any(w.startswith("The scan's tissue contrast differs") for w in checked):
        warnings += check_tissue_contrast(tissue, card.calibration.get("tissue_contrast"))
    timings["preprocess"] = time.perf_counter() - t
    check_cancel(cancel)

    t = time.perf_counter()
    report(progress, 0.45, f"Reconstructing on {model.device_name}")
    image = mi.image * mi.mask
    if mi.filled is not None:
        image[mi.filled] = mi.image[mi.filled]
    recon = model.reconstruct(image)
    timings["network"] = time.perf_counter() - t
    check_cancel(cancel)

    t = time.perf_counter()
    report(progress, 0.75, "Scoring against healthy scans")
    post = {**DEFAULT_POSTPROCESS, **card.postprocess}
    resid = residual_map(image, recon, mi.mask, post)
    z = calibrate(resid, mi.mask, model.calibration, post)
    calib = card.calibration
    if not calib.get("scan_scores") or "threshold" not in calib:
        warnings.append(
            f"The model {card.id} carries no calibration on healthy scans: its scores are not z against healthy "
            "tissue, the scan has no percentile and the threshold is a default. Calibrate it (medae train "
            "--calibration-data) before reading the result."
        )
    m = analysis_mask(mi.mask, post)
    score = scan_score(z, m, float(calib.get("score_top_fraction", 0.001)))
    percentile = score_percentile(score, calib.get("scan_scores", []))
    thr = float(threshold if threshold is not None else calib.get("threshold", 3.0))
    check_cancel(cancel)

    report(progress, 0.85, "Mapping back onto the scan")
    heat = from_model_space(z, mi, volume.shape, order=1)
    recon_vol = resid_vol = None
    if reconstruction:
        recon_vol, resid_vol = _reconstruction_volumes(volume, recon, mi, {"model": card.id})
    check_cancel(cancel)
    to_ref = np.linalg.inv(mi.alignment.ref_to_input)
    # The midline of the reference frame: x = 0 for a template; the grid's centre for centred models.
    if "midline_x" in card.space:
        midline = float(card.space["midline_x"])
    elif mi.alignment.method == "center":
        from medae.geometry import apply_affine

        midline = float(apply_affine(card.affine, (np.array(card.shape) - 1) / 2.0)[0])
    else:
        midline = 0.0
    # Coordinates in the reference are worth reporting only when it is a template a reader knows (MNI).
    named = card.space.get("reference") if card.space.get("alignment") == "register" else None
    rule = {
        "min_region_ml": float(post.get("min_region_ml", 0.1)),
        "to_reference": to_ref,
        "midline_x": midline,
        "reference": named,
    }
    labels, findings = extract_findings(heat, volume.affine, thr, **rule)
    # Only MR folds a cut head over (wrap-around); what a CT holder or table touches is no fold.
    wrap_check = card.modality.upper() == "MR"
    too_bright = _too_bright(mi.intensity, card)
    notes = finding_warnings(findings, labels, volume, wrap_check, too_bright)
    warnings += notes
    timings["postprocess"] = time.perf_counter() - t
    report(progress, 1.0, "Done")

    # Written back in the input file's units and NIfTI space.
    meta = {"derived_from": volume.meta.get("series_uid"), "model": card.id, **grid_meta(volume.meta)}
    return AnalysisResult(
        volume=volume,
        heatmap=Volume(
            heat.astype(np.float32, copy=False),
            volume.affine,
            volume.modality,
            dict(meta, kind="heatmap"),
            source=volume.source,
        ),
        labels=Volume(labels, volume.affine, volume.modality, dict(meta, kind="findings"), source=volume.source),
        reconstruction=recon_vol,
        residual=resid_vol,
        findings=findings,
        score=score,
        percentile=percentile,
        threshold=thr,
        units=str(calib.get("units", "residual")),
        model_id=card.id,
        model_sha256=card.sha256,
        device=model.device_name,
        warnings=_dedupe(warnings),
        timings=timings,
        model_space=mi,
        extra={
            "alignment": {
                "method": mi.alignment.method,
                "similarity": None if mi.alignment.metric is None else round(-mi.alignment.metric, 4),
                # Mutual information is not a correlation: it has no upper bound of 1.
                "similarity_measure": "Mattes mutual information (nats; higher is closer)",
                "reference_to_input": np.round(mi.alignment.ref_to_input, 5).tolist(),
            },
            "normalisation": mi.intensity,
            "coverage": round(mi.coverage, 4),
            "skull_stripped": mi.skull_stripped,
            "blanked_ml": round(mi.blanked_ml, 1),
            "contrast_similarity": None if similarity is None else round(similarity, 4),
            "intensity_bias": None if bias is None else round(bias.factor, 3),
            "intensity_bias_radial": None if bias is None else round(bias.radial, 3),
            "tissue_contrast": None if tissue is None else tissue.as_dict(),
            "ghosting": None if ghosts is None else {"axis": ghosts[0], "excess": round(ghosts[1], 4)},
            "background": background,
        },
        region_rule=rule,
        wrap_check=wrap_check,
        too_bright=too_bright,
        finding_notes=notes,
    )


def _too_bright(intensity: dict, card) -> float | None:
    """The input value three times white matter above the dark end, in an MR model scaled to white matter.

    Only where the card's scaling maps white matter (a brain percentile of 75 or so) to 1; a CT model's
    window has no such level.
    """
    if card.modality.upper() != "MR" or intensity.get("method") != "percentile":
        return None
    if not 60 <= float(card.intensity.get("high", 0)) <= 90:
        return None
    lo, hi = float(intensity["low"]), float(intensity["high"])
    return lo + 3.0 * (hi - lo) if hi > lo else None


def _reconstruction_volumes(volume: Volume, recon: np.ndarray, mi, meta: dict) -> tuple[Volume, Volume]:
    """The reconstruction in input units on the input grid, and the residual input - reconstruction.

    Outside the assessed region the reconstruction is the input itself, so it reads as a whole scan.
    """
    lo, hi = mi.intensity["low"], mi.intensity["high"]
    recon_units = from_model_space(recon * (hi - lo) + lo, mi, volume.shape, order=1)
    assessed = from_model_space(mi.mask.astype(np.float32), mi, volume.shape, order=1) > 0.5
    original = np.array(volume.array, dtype=np.float32)
    np.copyto(recon_units, original, where=~assessed)
    residual = np.subtract(original, recon_units, out=original)
    meta = dict(meta, derived_from=volume.meta.get("series_uid"), **grid_meta(volume.meta))
    return (
        Volume(recon_units, volume.affine, volume.modality, dict(meta, kind="reconstruction"), source=volume.source),
        Volume(residual, volume.affine, volume.modality, dict(meta, kind="residual"), source=volume.source),
    )


def _prepare(volume: Volume, model, force: bool, progress, cancel):
    """The scan in model space and the checks of what the model sees.

    Returns:
        The model input, its warnings, the correlation with the reference, the bias field and the tissue
        contrast (the last three None when not measured).
    """
    card = model.card
    mi = to_model_space(
        volume,
        model.card,
        model.reference,
        model.reference_mask,
        progress=sub_progress(progress, 0.0, 0.45),
        cancel=cancel,
    )
    warnings = list(mi.warnings)
    if mi.alignment.method in ("affine", "similarity"):
        try:
            warnings += check_alignment(mi.alignment.ref_to_input, mi.alignment.metric, card, force=force)
        except ModelMismatchError as exc:
            raise ModelMismatchError(_with_geometry(str(exc), volume), exc.forceable) from exc
    similarity = bias = tissue = None
    # Forced past another modality, the orientation and sequence checks would only name causes that are
    # not the scan's (a CT called "inverted, like T2"): the warning already given stands. (Another body
    # part tag alone keeps them: the scan may still be the model's kind, and they are about it.)
    other_kind = force and other_modality(volume, card)
    if model.reference is not None:
        similarity = contrast_similarity(mi.image, mi.mask, model.reference)
        if not other_kind:
            flip = find_flip(
                volume,
                card,
                model.reference,
                model.reference_mask,
                similarity,
                progress=sub_progress(progress, 0.45, 0.45),
                cancel=cancel,
            )
            assumed = any(re.search(r"\bno (valid )?orientation\b", w) for w in volume.warnings)
            warnings += check_orientation(flip, force=force, assumed=assumed)
            if flip is None:
                warnings += check_contrast(similarity, card, force=force)
                bias = bias_factor(mi.image, mi.mask, model.reference)
                assessed = mi.mask if mi.filled is None else mi.mask & ~mi.filled
                # An MR magnitude image holds no negative values; a processed one (standardised) may.
                no_signal_at_zero = card.modality.upper() == "MR" and float(np.min(volume.array)) >= 0
                tissue = tissue_contrast(mi.image, assessed, model.reference, mi.intensity, no_signal_at_zero)
    return mi, warnings, similarity, bias, tissue


def _naming_the_scan(exc: ModelMismatchError | InputError, volume: Volume) -> ModelMismatchError | InputError:
    """The refusal led by the scan's file or folder, as every other refusal is (a batch names many scans)."""
    where = volume.location
    text = str(exc)
    if not where or text.startswith(where):
        return exc
    return type(exc)(f"{where}: {text[:1].lower()}{text[1:]}")


def _with_geometry(message: str, volume: Volume) -> str:
    """A failed alignment's message with the scan's size and what its header made medae assume.

    A voxel size that is wrong in the header (0, or in other units) is the usual cause, and says so.
    """
    across = " x ".join(f"{n * s:.0f}" for n, s in zip(volume.shape, volume.spacing, strict=True))
    notes = " ".join(w for w in volume.warnings if any(k in w for k in ("voxel size", "distances in", "pixdim")))
    return f"{message} The scan is {across} mm across as its header describes it. {notes}".rstrip()


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for w in items:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out

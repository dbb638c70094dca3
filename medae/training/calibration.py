"""Calibration against healthy scans: per-voxel residual statistics, scan scores and the default threshold.

Validation scans are scored leave-one-out (each scan's z-map uses statistics from the others), so the
healthy score distribution and the threshold are what a new healthy scan will see, not an optimistic fit.
"""

from __future__ import annotations

import threading

import numpy as np

from medae.model.residual import analysis_mask, residual_map, robust_stats, scan_score
from medae.progress import ProgressFn, check_cancel, report


def count_regions(z: np.ndarray, mask: np.ndarray, threshold: float, min_voxels: int) -> int:
    """Connected regions above ``threshold`` with at least ``min_voxels`` voxels."""
    from scipy import ndimage

    lab, n = ndimage.label((z > threshold) & mask)
    if n == 0:
        return 0
    sizes = np.bincount(lab.ravel())[1:]
    return int((sizes >= min_voxels).sum())


def calibrate_model(
    reconstruct,
    images: np.ndarray,
    masks: np.ndarray,
    post: dict,
    cal: dict,
    voxel_ml: float,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Healthy statistics for a trained model.

    Args:
        reconstruct: Function model-space image -> reconstruction.
        images: Healthy validation images (N, *grid), normalised, unmasked.
        masks: Their foreground masks.
        post: The card's ``postprocess`` section.
        cal: The config's ``calibration`` section (``score_top_fraction``, ``fp_rate``).
        voxel_ml: Volume of one model voxel in mL.
        progress: Progress callback.
        cancel: Cancel event.

    Returns:
        Maps for the weights file (``residual_mean``, ``residual_std``) and the card's calibration section.
    """
    n = len(images)
    if n < 3:
        raise ValueError("calibration needs at least 3 healthy validation scans")
    residuals = []
    for i in range(n):
        check_cancel(cancel)
        img = images[i].astype(np.float32) * masks[i]
        residuals.append(residual_map(img, reconstruct(img), masks[i], post))
        report(progress, 0.7 * (i + 1) / n, f"calibrating {i + 1}/{n}")
    stack = np.stack(residuals)
    union = analysis_mask(masks.all(0), post)
    floor = float(cal.get("std_floor", 1.0))
    stats = robust_stats(stack, union, floor_fraction=floor)
    top = float(cal.get("score_top_fraction", 0.001))
    z_maps, scores = [], []
    for i in range(n):
        others = np.delete(stack, i, axis=0)
        loo = robust_stats(others, union, floor_fraction=floor)
        m = analysis_mask(masks[i], post)
        z = (stack[i] - loo["residual_mean"]) / loo["residual_std"]
        z[~m] = 0
        z_maps.append(z)
        scores.append(scan_score(z, m, top))
    report(progress, 0.85, "choosing the threshold")
    min_vox = max(1, int(round(float(post.get("min_region_ml", 0.1)) / voxel_ml)))
    allowed = float(cal.get("fp_rate", 0.05)) * n
    candidates = np.arange(2.0, 30.0, 0.25)
    threshold = float(candidates[-1])
    for t in candidates:
        fps = sum(count_regions(z, analysis_mask(masks[i], post), t, min_vox) for i, z in enumerate(z_maps))
        if fps <= allowed:
            threshold = float(t)
            break
    # A small margin: the validation scans are few, new healthy scans vary a little more.
    threshold = round(threshold * float(cal.get("margin", 1.1)), 3)
    voxel_z = np.concatenate([z[analysis_mask(masks[i], post)] for i, z in enumerate(z_maps)])
    section = {
        "units": "z (healthy)",
        "method": "leave-one-out over healthy validation scans",
        "n_scans": n,
        "threshold": threshold,
        "min_region_voxels": min_vox,
        "scan_scores": [round(s, 4) for s in scores],
        "score_mean": float(np.mean(scores)),
        "score_std": float(np.std(scores, ddof=1)),
        "score_top_fraction": top,
        "std_floor": floor,
        "voxel_z_p99": float(np.percentile(voxel_z, 99)),
        "voxel_z_p999": float(np.percentile(voxel_z, 99.9)),
    }
    report(progress, 1.0, "calibrated")
    return stats, section

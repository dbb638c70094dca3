"""Simple baselines the anomaly model must beat, on exactly the model's preprocessing.

Each baseline maps a model-space image (registered, resampled, intensity-normalised; ``ModelInput``) to
an anomaly map on the model grid, post-processed like the model's residual (the card's filtering and smoothing,
eroded mask), so any difference comes from the method, not from the plumbing:

- ``intensity``: |image - median of the brain|, the "bright or dark spot" detector.
- ``zscore``: |image - healthy mean| / healthy std, voxel by voxel, from the normalised training images.
- ``pca``: residual of the projection onto the main principal components of the training images.

The statistics come from the model's own training scans. A threshold for each baseline is calibrated on
the model's validation scans with the same rule as the model's (see ``calibration.py``), so that the
"at the calibrated threshold" metrics compare like with like.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medae.errors import MedaeError
from medae.model.residual import DEFAULT_POSTPROCESS, analysis_mask, residual_map
from medae.progress import ProgressFn, check_cancel, report, sub_progress
from medae.training.calibration import count_regions

BASELINES = ("intensity", "zscore", "pca")
DESCRIPTIONS = {
    "intensity": "intensity thresholding: |image - brain median| in model space",
    "zscore": "voxel-wise z-score against the normalised healthy training images",
    "pca": "PCA of the healthy training images, reconstruction residual",
}


@dataclass
class HealthyStats:
    """What the baselines learn from healthy training images (all on the model grid).

    Attributes:
        mask: Voxels every statistic is defined on (the model's reference mask).
        mean: Per-voxel mean of the normalised images.
        std: Per-voxel standard deviation, with a floor.
        pca_mean: Mean vector over ``mask`` voxels.
        pca_components: (k, n_mask_voxels) orthonormal principal directions.
        thresholds: Calibrated threshold of each baseline.
        info: Numbers for the report (image counts, components, explained variance).
    """

    mask: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray
    thresholds: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def fit_healthy_stats(
    images: np.ndarray,
    masks: np.ndarray,
    reference_mask: np.ndarray | None,
    variance: float = 0.9,
    max_components: int = 32,
) -> HealthyStats:
    """Fits the z-score and PCA baselines on healthy model-space images (N, *grid)."""
    n = len(images)
    if n < 2:
        raise MedaeError(f"The baselines need at least 2 healthy training images; got {n}.")
    mask = reference_mask.astype(bool) if reference_mask is not None else masks.all(0)
    x = np.stack([(images[i].astype(np.float32) * masks[i])[mask] for i in range(n)])
    mean_vec = x.mean(0)
    std_vec = x.std(0, ddof=1)
    # A floor, as for the model's healthy statistics: few images give some voxels a tiny spread.
    floor = max(float(np.median(std_vec)) * 0.5, 1e-3)
    mean = np.zeros(mask.shape, np.float32)
    std = np.ones(mask.shape, np.float32)
    mean[mask] = mean_vec
    std[mask] = np.maximum(std_vec, floor)
    # PCA through the small Gram matrix: N images, ~10^6 voxels each.
    xc = x - mean_vec
    gram = xc @ xc.T
    evals, evecs = np.linalg.eigh(gram.astype(np.float64))
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
    total = float(evals.sum()) or 1.0
    k = int(np.searchsorted(np.cumsum(evals) / total, variance) + 1)
    k = max(1, min(k, n - 1, max_components))
    comps = (evecs[:, :k].T @ xc) / np.sqrt(np.maximum(evals[:k], 1e-12))[:, None]
    info = {
        "n_images": n,
        "pca_components": k,
        "pca_explained_variance": round(float(evals[:k].sum() / total), 4),
        "std_floor": round(floor, 5),
    }
    return HealthyStats(mask, mean, std, mean_vec.astype(np.float32), comps.astype(np.float32), info=info)


def baseline_maps(
    image: np.ndarray, mask: np.ndarray, stats: HealthyStats, post: dict, names: tuple[str, ...] = BASELINES
) -> dict[str, np.ndarray]:
    """Anomaly maps of the baselines for one model-space image (float32, model grid, 0 outside the mask).

    Args:
        image: Normalised model-space image (``ModelInput.image``).
        mask: Its foreground mask (``ModelInput.mask``).
        stats: The fitted healthy statistics.
        post: The model card's ``postprocess`` section (same smoothing and erosion as the model).
        names: Which baselines.
    """
    img = image.astype(np.float32) * mask
    out = {}
    for name in names:
        if name == "intensity":
            median = float(np.median(img[mask])) if mask.any() else 0.0
            out[name] = residual_map(img, np.full_like(img, median), mask, post)
        elif name == "zscore":
            out[name] = residual_map(img / stats.std, stats.mean / stats.std, mask, post)
        elif name == "pca":
            v = img[stats.mask] - stats.pca_mean
            recon_vec = stats.pca_mean + (stats.pca_components @ v) @ stats.pca_components
            recon = np.zeros_like(img)
            recon[stats.mask] = recon_vec
            # Outside the statistics' mask PCA knows nothing: no residual there.
            out[name] = residual_map(img, recon, mask & stats.mask, post)
        else:
            raise ValueError(f"unknown baseline {name!r}")
    return out


def calibrate_thresholds(
    stats: HealthyStats,
    images: np.ndarray,
    masks: np.ndarray,
    post: dict,
    cal: dict,
    min_region_voxels: int,
    names: tuple[str, ...] = BASELINES,
) -> dict[str, float]:
    """Per-baseline threshold from healthy validation images, by the model's rule.

    The lowest threshold at which at most ``fp_rate`` of the images hold a region of ``min_region_voxels``
    or more, times the same safety margin the model's calibration uses. The candidates are high quantiles
    of the healthy values, searched by bisection (the count of regions falls as the threshold rises).
    """
    maps: dict[str, list[np.ndarray]] = {name: [] for name in names}
    amasks = [analysis_mask(masks[i], post) for i in range(len(images))]
    for i in range(len(images)):
        for name, m in baseline_maps(images[i].astype(np.float32), masks[i], stats, post, names).items():
            maps[name].append(m)
    allowed = float(cal.get("fp_rate", 0.05)) * len(images)
    margin = float(cal.get("margin", 1.1))
    out = {}
    for name in names:
        values = np.concatenate([m[a] for m, a in zip(maps[name], amasks, strict=True)])
        candidates = np.unique(np.quantile(values, 1 - np.geomspace(1e-1, 1e-7, 120)))

        def fps(t: float, name: str = name) -> int:
            return sum(count_regions(m, a, t, min_region_voxels) for m, a in zip(maps[name], amasks, strict=True))

        lo, hi = 0, len(candidates)  # answer in candidates[lo:hi], or above them all
        while lo < hi:
            mid = (lo + hi) // 2
            if fps(float(candidates[mid])) <= allowed:
                hi = mid
            else:
                lo = mid + 1
        thr = float(candidates[lo]) if lo < len(candidates) else float(values.max())
        out[name] = thr * margin
    return out


def split_training_scans(scans: list, training: dict) -> tuple[list, list]:
    """The model's own train/validation split of its training scans, reproduced from the card.

    Training draws the validation scans with ``default_rng(seed).permutation`` over the sorted scan list;
    doing the same keeps the baselines' calibration scans out of their fit, as for the model.
    """
    cfg = training.get("config", {})
    n = len(scans)
    n_val = max(3, int(round(n * float(cfg.get("val_fraction", 0.25)))))
    if n < n_val + 2:
        raise MedaeError(f"{n} training scans are too few for the baselines; they need at least {n_val + 2}.")
    order = np.random.default_rng(int(cfg.get("seed", 0))).permutation(n)
    val = [scans[i] for i in sorted(order[:n_val])]
    train = [scans[i] for i in sorted(order[n_val:])]
    return train, val


def fit_baselines(
    model,
    data: str | Path | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    screens: dict | None = None,
) -> HealthyStats:
    """Fits every baseline on the model's training scans and calibrates their thresholds.

    Args:
        model: The ``LoadedModel``.
        data: Folder of the training scans; default: the card's ``training.data``.
        progress: Progress callback.
        cancel: Cancel event.
        screens: ``screen`` and ``screen_contrast`` for ``preprocess_scans``, as ``medae train`` passes them:
            the baselines learn from the scans the model learnt from, without those its training left out.

    Raises:
        MedaeError: the training scans cannot be found.
    """
    from medae.training.data import find_scans, preprocess_scans

    card = model.card
    folder = data if data is not None else card.training.get("data")
    if not folder or not Path(folder).exists():
        raise MedaeError(
            f"{folder or 'the model card'}: the model's training scans are needed for the z-score and PCA "
            "baselines but are not there. Pass --train-data with the folder, or regenerate it (for the shipped "
            "model: medae make-healthy --out data/healthy --n 96 --seed 1000)."
        )
    scans = find_scans(folder)
    train_scans, val_scans = split_training_scans(scans, card.training)
    # Reuse the preprocessing cache that training left beside the model, when there is one.
    cache = model.folder / "train_state" / "cache"
    cache = cache if cache.is_dir() else None
    report(progress, 0.0, "preparing the training scans for the baselines")
    images, masks, _ = preprocess_scans(
        train_scans,
        card,
        model.reference,
        model.reference_mask,
        cache=cache,
        progress=sub_progress(progress, 0.0, 0.6),
        cancel=cancel,
        **(screens or {}),
    )
    # The model is calibrated on its validation split plus any extra healthy scans the card names; so are
    # the baselines.
    extra = card.training.get("calibration_data")
    note = None
    if extra and Path(extra).exists():
        val_scans = val_scans + find_scans(extra)
    elif extra:
        note = f"{extra} (the model's extra calibration scans) is missing: baselines calibrated on the validation split"
    v_images, v_masks, _ = preprocess_scans(
        val_scans,
        card,
        model.reference,
        model.reference_mask,
        cache=cache,
        progress=sub_progress(progress, 0.6, 0.8),
        cancel=cancel,
        **(screens or {}),
    )
    check_cancel(cancel)
    report(progress, 0.8, "fitting the baselines")
    stats = fit_healthy_stats(images, masks, model.reference_mask)
    n_fit = len(images)  # the scans used, without those left out
    del images, masks
    post = {**DEFAULT_POSTPROCESS, **card.postprocess}
    min_vox = int(card.calibration.get("min_region_voxels", 1))
    stats.thresholds = calibrate_thresholds(stats, v_images, v_masks, post, card.calibration, min_vox)
    stats.info.update(
        {
            "train_data": str(folder),
            "calibration_data": extra,
            "n_fit": n_fit,
            "n_calibration": len(v_images),
            "thresholds": {k: round(v, 5) for k, v in stats.thresholds.items()},
        }
    )
    if note:
        stats.info["note"] = note
    report(progress, 1.0, "baselines ready")
    return stats

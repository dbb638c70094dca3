"""Benchmark metrics: voxel AP and AUROC, Dice, lesion detection, scan-level AUROC, bootstrap intervals.

Exact functions (``average_precision``, ``roc_auc``, ``dice``) work on plain arrays by sorting. A
benchmark pools tens of millions of brain voxels, so it keeps, per scan, histograms of scores over
65,536 order-preserving codes (the float16 value of each score) instead of the scores themselves: pooled
and bootstrapped metrics are then sums of histograms. Float16 keeps three significant digits, so only
scores that agree to about 0.1% are tied; the exact and histogram forms agree to that precision.

Bootstrap intervals resample whole scans with replacement (stratified: healthy and lesion scans
separately), so voxels of one scan, which are not independent, move together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_CODES = 1 << 16


# --- exact metrics on arrays -------------------------------------------------------------------------


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision: sum over thresholds of (recall step) x precision, ties as one threshold.

    This is the step-wise (non-interpolated) definition used by MOOD and scikit-learn.

    Args:
        scores: Higher means more anomalous.
        labels: True for anomalous samples.

    Returns:
        AP in [0, 1]; NaN when there is no positive.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    # Only the last element of a run of tied scores is a threshold.
    last = np.r_[np.diff(s) != 0, True]
    tp, fp = tp[last], fp[last]
    precision = tp / (tp + fp)
    recall_step = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(recall_step * precision))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties); NaN without both classes."""
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice overlap 2|A and B| / (|A| + |B|); 1 when both are empty."""
    p = np.asarray(pred, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    denom = int(p.sum()) + int(t.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int((p & t).sum()) / denom


def region_overlaps(truth_labels: np.ndarray, pred_regions: np.ndarray) -> tuple[dict[int, bool], int]:
    """Which true lesions a predicted region touches, and how many predicted regions touch none.

    Args:
        truth_labels: Integer map, 0 = background, k > 0 = lesion k.
        pred_regions: Integer map of predicted regions, 0 = background (e.g. connected components).

    Returns:
        ``{lesion k: detected}`` for every lesion present, and the count of false-positive regions.
    """
    t = np.asarray(truth_labels)
    p = np.asarray(pred_regions)
    both = (t > 0) & (p > 0)
    hit_lesions = set(np.unique(t[both]).tolist())
    hit_regions = set(np.unique(p[both]).tolist())
    lesions = [int(k) for k in np.unique(t) if k > 0]
    regions = [int(k) for k in np.unique(p) if k > 0]
    detected = {k: k in hit_lesions for k in lesions}
    return detected, sum(1 for r in regions if r not in hit_regions)


# --- histograms of score codes ----------------------------------------------------------------------


def score_codes(values: np.ndarray) -> np.ndarray:
    """Order-preserving uint16 codes of scores: their float16 bit patterns, negatives flipped."""
    v = np.clip(np.asarray(values, dtype=np.float32), -65504.0, 65504.0)  # float16's range; beyond it ties
    h = np.nan_to_num(v).astype(np.float16) + np.float16(0)  # adding 0 turns -0 into +0: one code for zero
    bits = np.ascontiguousarray(h).view(np.uint16)
    # IEEE floats order like sign-magnitude integers: flip negatives, set the sign bit of positives.
    neg = (bits & 0x8000) != 0
    return np.where(neg, ~bits, bits | 0x8000).astype(np.uint16)


def code_values(codes: np.ndarray) -> np.ndarray:
    """Scores (float32) of codes from ``score_codes``."""
    c = np.asarray(codes, dtype=np.uint16)
    pos = (c & 0x8000) != 0
    bits = np.where(pos, c & 0x7FFF, ~c).astype(np.uint16)
    return bits.view(np.float16).astype(np.float32)


def code_histogram(values: np.ndarray) -> np.ndarray:
    """Counts of each score code (length ``N_CODES``, int64)."""
    return np.bincount(score_codes(values).ravel(), minlength=N_CODES).astype(np.int64)


def _descending_cumulative(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True/false positives when predicting "abnormal" at or above each code, highest code first."""
    return np.cumsum(pos[..., ::-1], axis=-1), np.cumsum(neg[..., ::-1], axis=-1)


def hist_average_precision(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Average precision from histograms ``(..., n_codes)`` of positive and negative scores."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    tp, fp = _descending_cumulative(pos, neg)
    n_pos = tp[..., -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        ap = np.sum(pos[..., ::-1] * precision, axis=-1) / n_pos
    return np.where(n_pos > 0, ap, np.nan)


def hist_roc_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC from histograms: P(positive > negative) + P(tie) / 2."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    below = np.cumsum(neg, axis=-1) - neg
    n_pos, n_neg = pos.sum(-1), neg.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = np.sum(pos * (below + 0.5 * neg), axis=-1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def hist_best_dice(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best Dice over all thresholds, and the column of the lowest score predicted abnormal at the best."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    tp, fp = _descending_cumulative(pos, neg)
    n_pos = tp[..., -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(n_pos > 0, 2 * tp / (tp + fp + n_pos), np.nan)
    if np.all(np.isnan(d)):
        return np.full(d.shape[:-1], np.nan), np.zeros(d.shape[:-1], dtype=np.int64)
    best = np.nanargmax(np.where(np.isnan(d), -1, d), axis=-1)
    value = np.take_along_axis(d, best[..., None], axis=-1)[..., 0]
    return value, pos.shape[-1] - 1 - best


def hist_metrics(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AP, AUROC, best Dice and its column in one pass (shared cumulative sums), for bootstrap stacks.

    Float32 arithmetic: counts are exact to 2^24 and the metrics to about 1e-6 beyond that.
    """
    pos = np.asarray(pos, dtype=np.float32)
    neg = np.asarray(neg, dtype=np.float32)
    tp, fp = _descending_cumulative(pos, neg)
    n_pos, n_neg = tp[..., -1:], fp[..., -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / np.maximum(tp + fp, 1)
        ap = np.sum(pos[..., ::-1] * precision, axis=-1, dtype=np.float64) / n_pos[..., 0]
        # Negatives strictly below each column, from the top-down cumulative count.
        below = n_neg - fp
        auc = np.sum(pos[..., ::-1] * (below + 0.5 * neg[..., ::-1]), axis=-1, dtype=np.float64) / (
            n_pos[..., 0].astype(np.float64) * n_neg[..., 0]
        )
        d = 2 * tp / (tp + fp + n_pos)
    best = np.argmax(np.nan_to_num(d, nan=-1.0), axis=-1)
    dice_best = np.take_along_axis(d, best[..., None], axis=-1)[..., 0].astype(np.float64)
    has_pos = n_pos[..., 0] > 0
    ap = np.where(has_pos, ap, np.nan)
    auc = np.where(has_pos & (n_neg[..., 0] > 0), auc, np.nan)
    dice_best = np.where(has_pos, dice_best, np.nan)
    return ap, auc, dice_best, pos.shape[-1] - 1 - best


def merge_negative_runs(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merges each run of columns without any positive into one column; every metric here is unchanged.

    Thresholds between two scores of positives never change the recall; the best Dice and the AP only
    ever use thresholds at a positive's score, and AUROC only needs the negatives' order relative to the
    positives. Bootstrap replicates hold a subset of the positives, so they are unchanged too.

    Returns:
        The merged ``pos`` and ``neg`` (same leading axes) and the first original column of each new one.
    """
    has_pos = np.asarray(pos).reshape(-1, pos.shape[-1]).any(0)
    start = has_pos.copy()
    start[1:] |= has_pos[:-1]  # a new column after each positive column, for the run that follows
    start[0] = True
    first = np.nonzero(start)[0]
    return np.add.reduceat(pos, first, axis=-1), np.add.reduceat(neg, first, axis=-1), first


# --- bootstrap ---------------------------------------------------------------------------------------


def bootstrap_weights(strata: list[np.ndarray], n_items: int, n_boot: int, seed: int) -> np.ndarray:
    """Resampling weights (n_boot, n_items): each stratum's items drawn with replacement, its size kept.

    Args:
        strata: Index arrays, one per stratum (e.g. healthy scans, lesion scans).
        n_items: Total number of items (columns).
        n_boot: Number of bootstrap replicates.
        seed: Random seed, so intervals are reproducible.
    """
    rng = np.random.default_rng(seed)
    w = np.zeros((n_boot, n_items), dtype=np.float64)
    for idx in strata:
        idx = np.asarray(idx, dtype=int)
        if idx.size == 0:
            continue
        w[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), size=n_boot)
    return w


@dataclass
class Estimate:
    """A point estimate and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def to_dict(self, digits: int = 4) -> dict:
        """JSON form; NaN becomes None."""

        def r(x: float) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), digits)

        return {"value": r(self.value), "ci95": [r(self.low), r(self.high)]}


def interval(point: float, samples: np.ndarray, level: float = 0.95) -> Estimate:
    """Percentile interval of bootstrap ``samples`` around ``point`` (NaN replicates ignored)."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0 or not np.isfinite(point):
        return Estimate(float(point), float("nan"), float("nan"))
    a = (1 - level) / 2
    lo, hi = np.quantile(s, [a, 1 - a])
    # The percentile interval of a skewed statistic can exclude the point estimate; widen to keep it.
    return Estimate(float(point), float(min(lo, point)), float(max(hi, point)))


def weighted_ratio(num: np.ndarray, den: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """sum(num) / sum(den), and the same under each row of bootstrap ``weights`` (n_boot, n_items)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = num.sum() / den.sum() if den.sum() > 0 else float("nan")
        boot = (weights @ num) / (weights @ den)
    return float(point), boot


def weighted_scan_auroc(
    healthy: np.ndarray, lesion: np.ndarray, w_healthy: np.ndarray | None = None, w_lesion: np.ndarray | None = None
) -> np.ndarray | float:
    """Scan-level AUROC, optionally under bootstrap weights ``(n_boot, n)`` of each group."""
    h = np.asarray(healthy, dtype=np.float64)
    s = np.asarray(lesion, dtype=np.float64)
    if h.size == 0 or s.size == 0:
        return float("nan") if w_healthy is None else np.full(len(w_healthy), np.nan)
    pair = (s[None, :] > h[:, None]) + 0.5 * (s[None, :] == h[:, None])
    if w_healthy is None:
        return float(pair.mean())
    num = np.einsum("bh,hl,bl->b", w_healthy, pair, w_lesion)
    return num / (w_healthy.sum(1) * w_lesion.sum(1))


def compact_columns(*hists: np.ndarray) -> list[np.ndarray]:
    """Drops score codes that are empty in every histogram (same columns kept in each), order kept."""
    used = np.zeros(hists[0].shape[-1], dtype=bool)
    for h in hists:
        used |= np.asarray(h).reshape(-1, h.shape[-1]).any(0)
    return [np.asarray(h)[..., used] for h in hists]

"""From per-scan benchmark records to metrics with bootstrap 95% intervals, overall and by group.

Pools (how voxels and scans are counted):

- Voxel metrics (AP, AUROC, best Dice, Dice at the threshold) pool the brain voxels of every scan in a
  group's pool, as MOOD does: the healthy scans (their voxels are all negatives) plus the lesion scans
  holding a lesion of the group. Voxels of lesions outside the group are set aside (neither positive nor
  negative), so a per-size row is not penalised for the other lesions of its scans.
- Detection counts the group's lesions; false-positive regions are counted per healthy scan (and, for
  information, regions touching no lesion per lesion scan).
- Scan-level AUROC compares the healthy scans' scores with the pool's lesion scans' scores.

Each replicate of the bootstrap resamples the healthy scans and the pool's lesion scans with replacement
(the same draws for every method, so methods are compared on the same samples).
"""

from __future__ import annotations

import numpy as np

from medae.errors import MedaeError
from medae.training.evaluate import METHODS, ScanRecord
from medae.training.lesions import SIZE_BINS, size_bin
from medae.training.metrics import (
    N_CODES,
    Estimate,
    bootstrap_weights,
    code_values,
    compact_columns,
    hist_metrics,
    interval,
    merge_negative_runs,
    weighted_ratio,
    weighted_scan_auroc,
)

# Targets for the shipped model: (metric key, comparison, value, wording).
TARGETS = (
    ("voxel_ap", ">=", 0.40, "voxel average precision >= 0.40"),
    ("ap_ratio_to_best_baseline", ">=", 2.0, "voxel AP >= 2x the best simple baseline"),
    ("best_dice", ">=", 0.45, "best Dice >= 0.45"),
    ("scan_auroc", ">=", 0.90, "scan-level AUROC >= 0.90"),
    ("fp_regions_per_healthy_scan", "<=", 1.0, "<= 1 false-positive region per healthy scan"),
)
_CHUNK = 128


def _pos_hist(rec: ScanRecord, method: str, labels: set[int]) -> np.ndarray:
    codes = [c for k, c in rec.methods[method].lesion_codes.items() if k in labels]
    if not codes:
        return np.zeros(N_CODES, np.int64)
    return np.bincount(np.concatenate(codes), minlength=N_CODES)


def _hist_metrics(pos: np.ndarray, neg: np.ndarray, weights: np.ndarray) -> dict:
    """AP, AUROC and best Dice of pooled histograms (scans x codes), with bootstrap replicates."""
    codes = np.nonzero(pos.any(0) | neg.any(0))[0]
    pos, neg = compact_columns(pos, neg)
    pos, neg, first = merge_negative_runs(pos, neg)
    ap, auc, best, col = hist_metrics(pos.sum(0), neg.sum(0))
    thr = float(code_values(codes[first[int(col)]])) if codes.size and np.isfinite(best) else float("nan")
    boot: dict[str, list] = {"ap": [], "auc": [], "dice": []}
    for s in range(0, len(weights), _CHUNK):
        w = weights[s : s + _CHUNK]
        b_ap, b_auc, b_dice, _ = hist_metrics(w @ pos, w @ neg)
        boot["ap"].append(b_ap)
        boot["auc"].append(b_auc)
        boot["dice"].append(b_dice)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in boot.items()}
    return {
        "voxel_ap": (float(ap), cat["ap"]),
        "voxel_auroc": (float(auc), cat["auc"]),
        "best_dice": (float(best), cat["dice"]),
        "_best_dice_threshold": thr,
    }


def _group_summary(
    records: list[ScanRecord],
    labels_of: dict[int, set[int]],
    healthy: list[int],
    lesion_scans: list[int],
    n_boot: int,
    seed: int,
    overall: bool,
) -> tuple[dict, dict]:
    """Metrics of every method over one pool; returns (per-method estimates, per-method AP replicates)."""
    pool = healthy + lesion_scans
    w = bootstrap_weights(
        [np.arange(len(healthy)), len(healthy) + np.arange(len(lesion_scans))], len(pool), n_boot, seed
    )
    wh, wl = w[:, : len(healthy)], w[:, len(healthy) :]
    out, ap_boot = {}, {}
    for method in METHODS:
        ms = [records[i].methods[method] for i in pool]
        lab = [labels_of.get(i, set()) for i in pool]
        pos = np.stack([_pos_hist(records[i], method, labels_of.get(i, set())) for i in pool])
        neg = np.stack([m.neg_hist.astype(np.int64) for m in ms])
        hm = _hist_metrics(pos, neg, w)
        del pos, neg
        res = {k: interval(v[0], v[1]) for k, v in hm.items() if not k.startswith("_")}
        ap_boot[method] = (hm["voxel_ap"][0], hm["voxel_ap"][1])
        det = np.array([sum(m.detected.get(k, False) for k in ls) for m, ls in zip(ms, lab, strict=True)], float)
        n_les = np.array([len(ls) for ls in lab], float)
        res["detection_rate"] = interval(*weighted_ratio(det, n_les, w))
        tp = np.array([sum(m.tp_voxels.get(k, 0) for k in ls) for m, ls in zip(ms, lab, strict=True)], float)
        size = np.array(
            [sum(records[i].methods[method].lesion_codes[k].size for k in labels_of.get(i, set())) for i in pool], float
        )
        fp = np.array([m.fp_voxels for m in ms], float)
        res["dice_at_threshold"] = interval(*weighted_ratio(2 * tp, 2 * tp + fp + (size - tp), w))
        sh = np.array([records[i].methods[method].score for i in healthy])
        sl = np.array([records[i].methods[method].score for i in lesion_scans])
        res["scan_auroc"] = interval(
            float(weighted_scan_auroc(sh, sl)), weighted_scan_auroc(sh, sl, wh, wl) if n_boot else np.zeros(0)
        )
        if overall:
            fph = np.array([records[i].methods[method].fp_regions for i in healthy], float)
            res["fp_regions_per_healthy_scan"] = interval(*weighted_ratio(fph, np.ones_like(fph), wh))
            fpl = np.array([records[i].methods[method].fp_regions for i in lesion_scans], float)
            res["fp_regions_per_lesion_scan"] = interval(*weighted_ratio(fpl, np.ones_like(fpl), wl))
        entry = {k: v.to_dict() for k, v in res.items()}
        entry["best_dice_threshold"] = (
            None if not np.isfinite(hm["_best_dice_threshold"]) else round(hm["_best_dice_threshold"], 4)
        )
        entry["n_lesions"] = int(n_les.sum())
        entry["n_lesion_scans"] = len(lesion_scans)
        out[method] = entry
    return out, ap_boot


def summarise(records: list[ScanRecord], n_boot: int = 1000, seed: int = 0) -> dict:
    """Every metric of every method, overall, by lesion kind and by size bin, with 95% intervals.

    Returns:
        ``{"methods": {method: {"overall": ..., "by_kind": ..., "by_size": ...}}, "comparison": ...,
        "targets": [...]}``.
    """
    healthy = [i for i, r in enumerate(records) if r.healthy]
    lesion_scans = [i for i, r in enumerate(records) if not r.healthy]
    if not healthy or not any(r.lesions for r in records):
        raise MedaeError("The benchmark needs at least one healthy scan and one placed lesion; add test scans.")
    groups: list[tuple[str, str, dict[int, set[int]]]] = [
        ("overall", "all", {i: {les.label for les in records[i].lesions} for i in lesion_scans})
    ]
    kinds = sorted({records[i].kind for i in lesion_scans})
    for kind in kinds:
        groups.append(
            (
                "by_kind",
                kind,
                {i: {les.label for les in records[i].lesions} for i in lesion_scans if records[i].kind == kind},
            )
        )
    for lo, _hi in SIZE_BINS:
        name = size_bin(lo)
        groups.append(
            (
                "by_size",
                name,
                {i: {les.label for les in records[i].lesions if les.size_bin == name} for i in lesion_scans},
            )
        )
    methods: dict[str, dict] = {m: {"overall": {}, "by_kind": {}, "by_size": {}} for m in METHODS}
    comparison: dict = {}
    for g, (section, name, labels) in enumerate(groups):
        labels = {i: ls for i, ls in labels.items() if ls}
        if not labels:
            continue
        res, ap_boot = _group_summary(
            records, labels, healthy, sorted(labels), n_boot, seed + g, overall=section == "overall"
        )
        for m in METHODS:
            if section == "overall":
                methods[m]["overall"] = res[m]
            else:
                methods[m][section][name] = res[m]
        if section == "overall":
            comparison = _compare(ap_boot)
    overall = dict(methods["model"]["overall"])
    overall["ap_ratio_to_best_baseline"] = comparison.get("ap_ratio_to_best_baseline")
    return {"methods": methods, "comparison": comparison, "targets": check_targets(overall)}


def _compare(ap_boot: dict[str, tuple[float, np.ndarray]]) -> dict:
    """The model's AP over the best baseline's, with a paired bootstrap interval."""
    baselines = {m: v for m, v in ap_boot.items() if m != "model"}
    best = max(baselines, key=lambda m: -1 if not np.isfinite(baselines[m][0]) else baselines[m][0])
    model_ap, model_boot = ap_boot["model"]
    base_ap, base_boot = baselines[best]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = model_ap / base_ap if base_ap > 0 else float("inf")
        boot = model_boot / base_boot
    est = interval(ratio, boot) if np.isfinite(ratio) else Estimate(ratio, float("nan"), float("nan"))
    return {
        "best_baseline": best,
        "best_baseline_ap": round(float(base_ap), 4),
        "ap_ratio_to_best_baseline": est.to_dict(3),
    }


def check_targets(overall: dict) -> list[dict]:
    """Each target with the model's value and verdicts.

    ``met``: the point estimate meets the target; ``ci_clear``: the whole 95% interval does.
    """
    out = []
    for key, op, target, text in TARGETS:
        entry = overall.get(key) or {}
        value = entry.get("value")
        ci = entry.get("ci95") or [None, None]
        if value is None:
            out.append({"target": text, "metric": key, "value": None, "ci95": ci, "met": False, "ci_clear": False})
            continue
        met = value >= target if op == ">=" else value <= target
        edge = ci[0] if op == ">=" else ci[1]
        clear = edge is not None and (edge >= target if op == ">=" else edge <= target)
        out.append(
            {"target": text, "metric": key, "value": value, "ci95": ci, "met": bool(met), "ci_clear": bool(clear)}
        )
    return out

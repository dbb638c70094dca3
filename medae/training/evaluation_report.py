"""Benchmark outputs: ``evaluation.json``, a readable Markdown report, and the model card's ``evaluation``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from medae.atomic import write_text
from medae.errors import OutputError
from medae.training.baselines import DESCRIPTIONS
from medae.training.evaluate import METHODS, EvaluationSettings, ScanRecord
from medae.training.evaluation_summary import TARGETS

METHOD_TITLES = {
    "model": "model (autoencoder)",
    "intensity": "intensity deviation",
    "zscore": "voxel z-score",
    "pca": "PCA residual",
}
METRIC_TITLES = (
    ("voxel_ap", "voxel AP"),
    ("voxel_auroc", "voxel AUROC"),
    ("best_dice", "best Dice"),
    ("dice_at_threshold", "Dice @ thr"),
    ("detection_rate", "detection"),
    ("fp_regions_per_healthy_scan", "FP regions / healthy scan"),
    ("scan_auroc", "scan AUROC"),
)


def build_report(
    records: list[ScanRecord], run: dict, settings: EvaluationSettings, summary: dict, model, command: str
) -> dict:
    """The ``evaluation.json`` content."""
    card = model.card
    scans = []
    for r in records:
        scans.append(
            {
                "seed": r.seed,
                "kind": r.kind or "healthy",
                "variation": r.variation,
                **r.info,
                "scores": {m: round(r.methods[m].score, 4) for m in METHODS},
                "fp_regions": {m: r.methods[m].fp_regions for m in METHODS},
            }
        )
    lesions = []
    for r in records:
        for les in r.lesions:
            lesions.append(
                {
                    "scan_seed": r.seed,
                    **les.to_dict(),
                    "detected": {m: bool(r.methods[m].detected.get(les.label, False)) for m in METHODS},
                }
            )
    return {
        "model": {
            "id": card.id,
            "name": card.name,
            "sha256": card.sha256,
            "folder": str(model.folder),
            "threshold": card.calibration.get("threshold"),
            "units": card.calibration.get("units"),
        },
        "command": command,
        "date": run["date"],
        "machine": run["machine"],
        "time_s": run["time_s"],
        "settings": settings.to_dict(),
        "protocol": {
            "grid": "Every metric is computed on each test scan's own grid, inside its brain mask",
            "voxel_pool": "brain voxels of the healthy scans plus those of the lesion scans holding the group's "
            "lesions; other lesions' voxels set aside; no subsampling",
            "histogram": "scores are pooled as histograms of their float16 values (ties below ~0.1%)",
            "detection": "a lesion is detected when a predicted region (findings at the calibrated threshold, "
            "minimum region size of the card) overlaps its ground truth",
            "bootstrap": f"{settings.n_boot} replicates resampling healthy and lesion scans (stratified, paired "
            "across methods); 95% percentile intervals",
            "baselines": {m: DESCRIPTIONS[m] for m in METHODS if m != "model"},
        },
        "baselines": run["baselines"],
        "methods": summary["methods"],
        "comparison": summary["comparison"],
        "targets": summary["targets"],
        "scans": scans,
        "lesions": lesions,
        "warnings": run["warnings"],
    }


def card_section(report: dict) -> dict:
    """The short form that goes into the model card's ``evaluation``."""
    model = report["methods"]["model"]["overall"]
    keys = [k for k, _ in METRIC_TITLES] + ["fp_regions_per_lesion_scan"]
    return {
        "benchmark": "medae evaluate: synthetic held-out healthy and lesion scans (see docs/evaluation.md)",
        "date": report["date"],
        "command": report["command"],
        "machine": report["machine"],
        "settings": report["settings"],
        "metrics": {k: model[k] for k in keys if k in model},
        "baselines_voxel_ap": {m: report["methods"][m]["overall"]["voxel_ap"] for m in METHODS if m != "model"},
        "comparison": report["comparison"],
        "targets": report["targets"],
    }


def update_card(folder: Path, section: dict, sha256: str) -> None:
    """Rewrites ``card.json`` atomically with a new ``evaluation`` section; every other key is kept as is.

    The weights' hash covers ``weights.safetensors`` only, so the model still verifies afterwards.

    Args:
        folder: The model folder.
        section: The ``evaluation`` section (``card_section``).
        sha256: Hash of the weights that were evaluated; a card that names other weights (the model was
            replaced while the benchmark ran) is left alone.

    Raises:
        OutputError: the card cannot be read or written, or it now describes other weights.
    """
    path = Path(folder) / "card.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path}: cannot read the model card to record the evaluation ({exc}).") from exc
    if data.get("sha256") != sha256:
        raise OutputError(
            f"{path}: the model was replaced while the benchmark ran (its weights are not the ones evaluated), "
            "so the results were not written into its card. Run medae evaluate again."
        )
    data["evaluation"] = _finite(section)
    try:
        write_text(path, json.dumps(data, indent=2) + "\n")
    except (OSError, OutputError) as exc:
        raise OutputError(
            f"{path}: cannot update the model card ({exc}). Check that the model folder is "
            "writable, or pass --no-card to leave it as it is."
        ) from exc


def write_outputs(report: dict, out: Path, markdown: Path | None = None) -> list[Path]:
    """Writes ``evaluation.json`` and ``evaluation.md`` into ``out`` (and the Markdown to ``markdown``)."""
    text = render_markdown(report)
    paths = [out / "evaluation.json", out / "evaluation.md"]
    try:
        write_text(paths[0], json.dumps(_finite(report), indent=1, allow_nan=False) + "\n")
        write_text(paths[1], text)
        if markdown is not None:
            write_text(markdown, text)
            paths.append(markdown)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the evaluation ({exc}). Check that the folder is writable.") from exc
    return paths


def _finite(obj):
    """JSON has no NaN or infinity: such numbers become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(entry: dict | None, digits: int = 3) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    v, (lo, hi) = entry["value"], entry.get("ci95") or [None, None]
    if lo is None:
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render_markdown(report: dict) -> str:
    """The readable report: targets, the main table, breakdowns by lesion kind and size, the protocol."""
    s = report["settings"]
    m = report["model"]
    methods = report["methods"]
    n_les = len(report["lesions"])
    lines = [
        f"# Evaluation of `{m['id']}`",
        "",
        "Generated by `medae evaluate`; every number below comes from the run described here. Values are point "
        "estimates with bootstrap 95% intervals in brackets.",
        "",
        f"- Command: `{report['command']}`",
        f"- Date: {report['date']}; machine: {report['machine']}; wall time: {report['time_s']['total']:.0f} s",
        f"- Model: {m['name']} (sha256 `{m['sha256'][:16]}...`), calibrated threshold {m['threshold']} ({m['units']})",
        f"- Test set: {s['n_healthy']} healthy scans (seeds {s['healthy_seeds'][0]}-{s['healthy_seeds'][1]}) and "
        f"{s['n_lesion']} lesion scans (seeds {s['lesion_seeds'][0]}-{s['lesion_seeds'][1]}) holding {n_les} "
        f"lesions of radius {s['radius_range_mm'][0]:g}-{s['radius_range_mm'][1]:g} mm; generator variation "
        f"{s['variation'][0]:g}-{s['variation'][1]:g} (training used 1.0)",
        "",
        "## Targets",
        "",
    ]
    rows = []
    for t in report["targets"]:
        verdict = ("met" if t["ci_clear"] else "met (interval crosses the target)") if t["met"] else "NOT met"
        rows.append([t["target"], _fmt({"value": t["value"], "ci95": t["ci95"]}), verdict])
    lines += _table(["target", "value [95% CI]", "verdict"], rows)
    comp = report["comparison"]
    lines += [
        "",
        f"Best simple baseline by voxel AP: {comp.get('best_baseline')} (AP {comp.get('best_baseline_ap')}).",
        "",
        "## All lesions",
        "",
    ]
    rows = [
        [METHOD_TITLES[k]]
        + [_fmt(methods[k]["overall"].get(key), 2 if key.startswith("fp") else 3) for key, _ in METRIC_TITLES]
        for k in methods
    ]
    lines += _table(["method"] + [t for _, t in METRIC_TITLES], rows)
    for section, title in (("by_kind", "By lesion kind"), ("by_size", "By lesion size (equivalent radius)")):
        groups = list(methods["model"][section])
        lines += [
            "",
            f"## {title}",
            "",
            "Voxel AP of every method; detection, best Dice and scan AUROC of the model.",
            "",
        ]
        header = (
            ["group", "lesions"]
            + [f"AP {k}" for k in methods]
            + ["model detection", "model best Dice", "model scan AUROC"]
        )
        rows = []
        for g in groups:
            mg = methods["model"][section][g]
            rows.append(
                [g, str(mg["n_lesions"])]
                + [_fmt(methods[k][section][g]["voxel_ap"]) for k in methods]
                + [_fmt(mg["detection_rate"]), _fmt(mg["best_dice"]), _fmt(mg["scan_auroc"])]
            )
        lines += _table(header, rows)
    b = report.get("baselines", {})
    thr = ", ".join(f"{k} {v:.4g}" for k, v in (b.get("thresholds") or {}).items())
    lines += [
        "",
        "## How it is measured",
        "",
        "- Test scans are generated by the same healthy generator as the training scans, from seeds the model "
        "never saw and with a variation factor drawn per scan; lesion scans add 1-3 synthetic lesions of one "
        "kind (hyper- and hypo-intense, CSF-like holes and grey-matter islands in white matter, foreign texture "
        "from elsewhere in the head, noise blobs) with irregular shapes, soft edges and intensities relative to "
        "the local tissue (`medae/training/lesions.py`).",
        "- " + report["protocol"]["grid"] + "; model heatmaps come from `analyze`, baseline maps are computed on "
        "the same model-space input and brought back with the same mapping.",
        "- Voxel pool: " + report["protocol"]["voxel_pool"] + "; " + report["protocol"]["histogram"] + ".",
        "- Best Dice is the maximum over thresholds of the pooled Dice; Dice @ thr, detection and false-positive "
        "regions use each method's calibrated threshold: the card's for the model, the same rule on the same "
        f"healthy calibration scans for each baseline ({thr}).",
        "- Detection: " + report["protocol"]["detection"] + ".",
        "- Scan AUROC: scan scores (mean of the top 0.1% of voxel scores in model space) of lesion scans "
        "against healthy scans.",
        f"- Baselines (fitted on the model's {b.get('n_fit', '?')} training scans, thresholds from the "
        f"{b.get('n_calibration', '?')} held-out healthy scans the model was calibrated on; PCA keeps "
        f"{b.get('pca_components', '?')} components): "
        + "; ".join(f"{k}: {v}" for k, v in report["protocol"]["baselines"].items())
        + ".",
        "- Intervals: " + report["protocol"]["bootstrap"] + ".",
        "- Targets: " + "; ".join(t[3] for t in TARGETS) + ". A target is met when the point estimate meets it; "
        "the verdict says when the interval still crosses it.",
        "",
        "Limits: the test scans are synthetic variations of the same template the model was trained on, and the "
        "lesions are synthetic; these numbers measure what the model learnt about this generator, not its "
        "accuracy on patients.",
    ]
    if b.get("note"):
        lines += ["", f"Note: {b['note']}."]
    if report["warnings"]:
        lines += ["", "## Warnings during the run", ""] + [f"- {w}" for w in report["warnings"][:20]]
    ts = report["time_s"]
    lines += ["", "Time per stage (s): " + ", ".join(f"{k} {v:.0f}" for k, v in ts.items() if k != "total"), ""]
    return "\n".join(lines)

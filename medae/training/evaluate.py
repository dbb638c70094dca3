"""The benchmark behind ``medae evaluate``: held-out healthy and lesion scans, the model and three baselines.

Every test scan is generated here from seeds the model never saw (and with a little more or less
variation than training used), so the benchmark is reproducible from its settings alone. Each scan goes
through ``analyze`` exactly as a user's scan would; the baselines reuse the same model-space input and
their maps come back to the scan's grid the same way, so all methods are scored on the scan's own grid,
inside its brain mask. Per scan only compact statistics are kept (histograms of score codes, region
counts), so memory does not grow with the number of scans.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from medae import geometry
from medae.errors import MedaeError
from medae.progress import ProgressFn, check_cancel, report, sub_progress
from medae.training.lesions import KINDS, RADIUS_RANGE_MM, LesionRecord, make_lesion_scan
from medae.training.metrics import code_histogram, region_overlaps, score_codes

METHODS = ("model", "intensity", "zscore", "pca")


@dataclass
class EvaluationSettings:
    """What the benchmark generates; everything follows from these numbers.

    Attributes:
        n_healthy: Healthy test scans (seeds ``seed .. seed + n_healthy - 1``).
        n_lesion: Lesion test scans (the following seeds); kinds rotate through ``kinds``.
        seed: First seed; keep it far from the training seeds.
        n_boot: Bootstrap replicates for the 95% intervals.
        variation: Range of the healthy generator's variation factor (training used 1.0).
        lesions_per_scan: Range (inclusive) of lesions in one lesion scan.
        radius_range: Equivalent-sphere radius range of lesions, mm.
        kinds: Lesion kinds.
    """

    n_healthy: int = 12
    n_lesion: int = 24
    seed: int = 500000
    n_boot: int = 1000
    variation: tuple[float, float] = (0.85, 1.15)
    lesions_per_scan: tuple[int, int] = (1, 3)
    radius_range: tuple[float, float] = RADIUS_RANGE_MM
    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        if self.n_healthy < 1 or self.n_lesion < 1:
            raise MedaeError("The benchmark needs at least one healthy and one lesion scan (--n-healthy, --n-lesion).")
        if self.n_boot < 0:
            raise MedaeError("--bootstrap must be 0 (no intervals) or more.")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise MedaeError(f"Unknown lesion kind(s) {unknown}; choose from {', '.join(KINDS)}.")

    def cases(self) -> list[tuple[int, str | None]]:
        """(seed, lesion kind or None for healthy) of every test scan, in order."""
        out: list[tuple[int, str | None]] = [(self.seed + i, None) for i in range(self.n_healthy)]
        out += [(self.seed + self.n_healthy + j, self.kinds[j % len(self.kinds)]) for j in range(self.n_lesion)]
        return out

    def to_dict(self) -> dict:
        """JSON form."""
        return {
            "n_healthy": self.n_healthy,
            "n_lesion": self.n_lesion,
            "seed": self.seed,
            "n_boot": self.n_boot,
            "healthy_seeds": [self.seed, self.seed + self.n_healthy - 1],
            "lesion_seeds": [self.seed + self.n_healthy, self.seed + self.n_healthy + self.n_lesion - 1],
            "variation": list(self.variation),
            "lesions_per_scan": list(self.lesions_per_scan),
            "radius_range_mm": list(self.radius_range),
            "kinds": list(self.kinds),
        }


@dataclass
class MethodScan:
    """One method's result on one scan, reduced to what the metrics need.

    Attributes:
        neg_hist: Histogram of score codes over brain voxels outside every lesion (int32, ``N_CODES``).
        lesion_codes: Score codes of each lesion's voxels, by lesion label.
        score: Scan-level score.
        detected: Whether a predicted region overlaps each lesion, by label.
        fp_regions: Predicted regions that overlap no lesion.
        tp_voxels: Predicted-abnormal voxels inside each lesion, by label.
        fp_voxels: Predicted-abnormal brain voxels outside every lesion.
    """

    neg_hist: np.ndarray
    lesion_codes: dict[int, np.ndarray]
    score: float
    detected: dict[int, bool]
    fp_regions: int
    tp_voxels: dict[int, int]
    fp_voxels: int


@dataclass
class ScanRecord:
    """One test scan: how it was made, its lesions, and every method's reduced result."""

    seed: int
    kind: str | None
    variation: float
    lesions: list[LesionRecord]
    methods: dict[str, MethodScan]
    info: dict = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True for a scan without lesions."""
        return self.kind is None


def score_method(
    heat: np.ndarray, regions: np.ndarray, truth: np.ndarray, brain: np.ndarray, score: float
) -> MethodScan:
    """Reduces one method's map and regions on a scan's grid to a ``MethodScan``.

    Args:
        heat: Anomaly map on the scan's grid (higher = more abnormal).
        regions: Predicted regions (int labels) on the same grid.
        truth: Ground-truth lesion labels (0 = none).
        brain: The scan's brain mask; only these voxels count.
        score: The method's scan-level score.
    """
    h = heat[brain]
    t = truth[brain]
    pred = regions[brain] > 0
    lesion_labels = [int(k) for k in np.unique(t) if k > 0]
    codes = {k: score_codes(h[t == k]) for k in lesion_labels}
    neg_hist = code_histogram(h[t == 0]).astype(np.int32)
    detected, fp_regions = region_overlaps(np.where(brain, truth, 0), regions)
    for k in lesion_labels:
        detected.setdefault(k, False)
    tp = {k: int((pred & (t == k)).sum()) for k in lesion_labels}
    fp_vox = int((pred & (t == 0)).sum())
    return MethodScan(neg_hist, codes, float(score), detected, int(fp_regions), tp, fp_vox)


def brain_box(brain: np.ndarray, margin: int = 8) -> tuple[slice, ...]:
    """The brain mask's bounding box on its grid, with a margin (the whole grid if the mask is empty)."""
    idx = np.argwhere(brain)
    if idx.size == 0:
        return tuple(slice(0, n) for n in brain.shape)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, brain.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def map_to_box(model_map: np.ndarray, model_to_input: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """A model-space map resampled onto a box of the input grid: ``from_model_space`` limited to the box.

    Only the brain's box is scored, so resampling the rest of the field of view would be wasted time.
    """
    from medae.model.preprocess import resample_support

    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in box]
    # box index -> input index -> model index
    matrix = np.linalg.inv(model_to_input) @ shift
    return resample_support(model_map, matrix, tuple(s.stop - s.start for s in box), order=1)


def training_seeds(*folders: str | Path | None) -> set[int]:
    """Seeds of generated scans in folders (training, calibration), from their manifests (empty when unknown)."""
    import json

    seeds: set[int] = set()
    for folder in folders:
        if not folder:
            continue
        try:
            scans = json.loads((Path(folder) / "manifest.json").read_text()).get("scans", [])
        except (OSError, ValueError, AttributeError):
            continue
        seeds |= {int(s["seed"]) for s in scans if isinstance(s, dict) and "seed" in s}
    return seeds


def machine_description(model) -> str:
    """Where the benchmark ran, for the report."""
    return f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, network on {model.device_name}"


def evaluate(
    model,
    settings: EvaluationSettings,
    analyze_fn: Callable,
    *,
    template=None,
    train_data: str | Path | None = None,
    save_dir: Path | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    screens: dict | None = None,
) -> tuple[list[ScanRecord], dict]:
    """Generates the test scans, runs the model and the baselines on each, and reduces the results.

    Args:
        model: The ``LoadedModel`` under test.
        settings: What to generate.
        analyze_fn: ``medae.analysis.analyze`` (passed in, so the benchmark runs exactly what users run).
        template: A loaded ``Template`` (loaded here when None).
        train_data: Folder of the model's training scans, for the baselines (default: the card's).
        save_dir: When given, each test scan, its ground truth and the model's heatmap are written there.
        progress: Progress callback.
        cancel: Cancel event.
        screens: What ``medae train`` leaves out of the training (``fit_baselines``), so the baselines too.

    Returns:
        The per-scan records and run information (timings, machine, baseline details, warnings).

    Raises:
        MedaeError: test seeds overlap the training seeds, or the training scans cannot be found.
    """
    from medae.analysis.findings import extract_findings
    from medae.model.residual import DEFAULT_POSTPROCESS, analysis_mask, scan_score
    from medae.training.baselines import BASELINES, fit_baselines
    from medae.training.healthy import generate_healthy, head_distance
    from medae.training.template import load_template

    t_start = time.perf_counter()
    card = model.card
    data = train_data if train_data is not None else card.training.get("data")
    cases = settings.cases()
    overlap = training_seeds(data, card.training.get("calibration_data")) & {s for s, _ in cases}
    if overlap:
        raise MedaeError(
            f"Test seeds {sorted(overlap)[:5]} were used to make the model's training or calibration scans "
            f"({data}); choose a --seed whose range does not overlap them, so that the benchmark is held out."
        )
    report(progress, 0.0, "fitting the baselines on the training scans")
    stats = fit_baselines(model, data, progress=sub_progress(progress, 0.0, 0.1), cancel=cancel, screens=screens)
    t_baselines = time.perf_counter() - t_start
    if template is None:
        template = load_template()
    dist = head_distance(template)
    post = {**DEFAULT_POSTPROCESS, **card.postprocess}
    top = float(card.calibration.get("score_top_fraction", 0.001))
    min_ml = float(post.get("min_region_ml", 0.1))

    records: list[ScanRecord] = []
    warnings: list[str] = []
    stage = {"generate": 0.0, "analyze": 0.0, "baselines": 0.0, "metrics": 0.0}
    for n, (seed, kind) in enumerate(cases):
        check_cancel(cancel)
        name = f"{'healthy' if kind is None else kind}_{seed}"
        report(sub_progress(progress, 0.1, 1.0), n / len(cases), f"scan {n + 1}/{len(cases)}: {name}")
        t = time.perf_counter()
        rng = np.random.default_rng([seed, 3])
        variation = float(rng.uniform(*settings.variation))
        healthy = generate_healthy(template, seed, dist, variation=variation)
        if kind is None:
            volume, truth, brain, lesions = (
                healthy.volume,
                np.zeros(healthy.volume.shape, np.int16),
                healthy.brain > 0.5,
                [],
            )
        else:
            lo, hi = settings.lesions_per_scan
            n_les = int(rng.integers(lo, hi + 1))
            ls = make_lesion_scan(healthy, kind, n_les, seed, settings.radius_range)
            volume, truth, brain, lesions = ls.volume, ls.labels, ls.brain, ls.lesions
            if not lesions:
                warnings.append(f"{name}: no lesion could be placed; the scan counts as a lesion scan without one.")
        del healthy
        stage["generate"] += time.perf_counter() - t

        t = time.perf_counter()
        result = analyze_fn(volume, model, force=True)
        stage["analyze"] += time.perf_counter() - t
        warnings += [f"{name}: {w}" for w in result.warnings]

        t = time.perf_counter()
        mi = result.model_space
        amask = analysis_mask(mi.mask, post)
        from medae.training.baselines import baseline_maps

        methods: dict[str, MethodScan] = {}
        maps = baseline_maps(mi.image, mi.mask, stats, post, BASELINES)
        base_in: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        box = brain_box(brain)
        for b, m in maps.items():
            heat = map_to_box(m, mi.model_to_input, box)
            regions, _ = extract_findings(heat, volume.affine, stats.thresholds[b], min_ml)
            base_in[b] = (heat, regions, scan_score(m, amask, top))
        del maps
        stage["baselines"] += time.perf_counter() - t

        t = time.perf_counter()
        methods["model"] = score_method(result.heatmap.array, result.labels.array, truth, brain, result.score)
        for b, (heat, regions, score) in base_in.items():
            methods[b] = score_method(heat, regions, truth[box], brain[box], score)
        del base_in
        if save_dir is not None:
            _save_case(save_dir, name, volume, truth, result.heatmap)
        stage["metrics"] += time.perf_counter() - t
        info = {
            "shape": list(volume.shape),
            "spacing_mm": [round(s, 3) for s in volume.spacing],
            "orientation": volume.orientation,
            "brain_ml": round(float(brain.sum()) * geometry.voxel_ml(volume.affine), 1),
            "n_findings": len(result.findings),
            "time_s": {k: round(v, 2) for k, v in result.timings.items()},
        }
        records.append(ScanRecord(seed, kind, round(variation, 4), lesions, methods, info))
        del result, volume, truth, brain
    report(progress, 1.0, "scored every scan")
    run = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(model),
        "time_s": {
            "total": round(time.perf_counter() - t_start, 1),
            "fit_baselines": round(t_baselines, 1),
            **{k: round(v, 1) for k, v in stage.items()},
        },
        "baselines": stats.info,
        "warnings": _dedupe_counts(warnings),
    }
    return records, run


def _save_case(folder: Path, name: str, volume, truth: np.ndarray, heatmap) -> None:
    from medae.io.nifti import save_nifti

    folder.mkdir(parents=True, exist_ok=True)
    save_nifti(volume, folder / f"{name}.nii.gz")
    save_nifti(volume.with_array(truth.astype(np.int16)), folder / f"{name}_truth.nii.gz")
    save_nifti(heatmap, folder / f"{name}_heatmap.nii.gz")


def _dedupe_counts(items: list[str]) -> list[str]:
    """Warnings with the scan name dropped and repeats counted, so the report stays short."""
    counts: dict[str, int] = {}
    for w in items:
        text = w.split(": ", 1)[1] if ": " in w else w
        counts[text] = counts.get(text, 0) + 1
    return [f"{text} ({n} scan{'s' if n > 1 else ''})" for text, n in counts.items()]

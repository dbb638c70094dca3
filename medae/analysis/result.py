"""What an analysis produces: the calibrated heatmap, findings, score, and everything needed to report it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from medae.volume import Volume

#: What every result says it is, wherever it goes (report.json, the summary picture, a batch's report).
INTENDED_USE = (
    "Research software, not a medical device: not for diagnostic use. Findings are regions unlike the healthy "
    "scans the model learnt, not diagnoses."
)


@dataclass
class Finding:
    """One suspicious region: connected voxels above the threshold on the input grid.

    Attributes:
        label: Its value in the label map (1 = first ranked).
        volume_ml: Size in millilitres.
        peak: Highest calibrated score in the region.
        mean: Mean calibrated score in the region.
        centroid_world: Score-weighted centre, RAS+ mm.
        centroid_voxel: The same in input voxel indices (i, j, k).
        peak_world: Position of the peak, RAS+ mm.
        side: "left", "right", "midline" or "bilateral" (a quarter or more of the region on each side;
            the patient's), from the alignment to the reference.
        centroid_reference: The centroid in the model's reference frame (for a model aligned to a
            template, the template's coordinates, e.g. MNI152 mm), or None when there is no alignment.
    """

    label: int
    volume_ml: float
    peak: float
    mean: float
    centroid_world: tuple[float, float, float]
    centroid_voxel: tuple[float, float, float]
    peak_world: tuple[float, float, float]
    side: str
    centroid_reference: tuple[float, float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict with rounded numbers."""
        return {
            "label": self.label,
            "volume_ml": round(self.volume_ml, 3),
            "peak": round(self.peak, 3),
            "mean": round(self.mean, 3),
            "centroid_world_mm": [round(v, 2) for v in self.centroid_world],
            "centroid_voxel": [round(v, 2) for v in self.centroid_voxel],
            "peak_world_mm": [round(v, 2) for v in self.peak_world],
            "side": self.side,
            "centroid_reference_mm": None
            if self.centroid_reference is None
            else [round(v, 2) for v in self.centroid_reference],
        }

    def describe(self) -> str:
        """One line for lists and DICOM segment descriptions."""
        return f"#{self.label} {self.side} {self.volume_ml:.2f} mL peak {self.peak:.1f}"


@dataclass
class AnalysisResult:
    """The analysis of one scan with one model.

    Attributes:
        volume: The input scan.
        heatmap: Calibrated anomaly score per voxel (float32, the input's grid); 0 where not assessed.
        labels: Findings label map (int16, the input's grid).
        reconstruction: The "healthy-looking" scan in the input's units (outside the assessed region: the input).
        residual: Input minus reconstruction, in the input's units.
        findings: Ranked regions.
        score: Scan score (higher = more abnormal).
        percentile: The score's percentile among healthy scans.
        threshold: Calibrated threshold used for findings.
        units: Units of the heatmap and threshold.
        model_id: The model card's id.
        model_sha256: Hash of the weights.
        device: Where the network ran.
        warnings: Everything the reader should know (input checks, coverage, registration).
        timings: Seconds per stage.
        model_space: The model-space input (for baselines and debugging).
        extra: Other details for the report (alignment, normalisation).
        region_rule: How findings were drawn from the heatmap (``min_region_ml``, ``to_reference``,
            ``midline_x``), so that ``at_threshold`` draws them again the same way.
        wrap_check: Whether findings near a cut edge's opposite are named as possible wrap-around (MR).
        too_bright: The input value above which no tissue of the model's kind lies (None: not checked).
        finding_notes: The warnings about the findings as drawn (among ``warnings``; redrawn with them).
    """

    volume: Volume
    heatmap: Volume
    labels: Volume
    reconstruction: Volume | None
    residual: Volume | None
    findings: list[Finding]
    score: float
    percentile: float
    threshold: float
    units: str
    model_id: str
    model_sha256: str
    device: str
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model_space: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    region_rule: dict[str, Any] = field(default_factory=dict)
    wrap_check: bool = False
    finding_notes: list[str] = field(default_factory=list)
    too_bright: float | None = None

    @property
    def forced(self) -> bool:
        """True when the analysis was forced past a check that refuses (another modality, a failed alignment).

        Its score is then not a comparison with scans the model knows.
        """
        from medae.analysis.checks import FORCED

        return any(str(w).startswith(FORCED) for w in self.warnings)

    def at_threshold(self, threshold: float, cancel: threading.Event | None = None) -> AnalysisResult:
        """The same analysis with its findings drawn at another threshold; heatmap and score are unchanged.

        Raises:
            CancelledError: ``cancel`` was set (a large scan's regions take seconds to measure).
        """
        from medae.analysis.findings import extract_findings, finding_warnings
        from medae.progress import check_cancel

        rule = self.region_rule
        labels, findings = extract_findings(
            self.heatmap.array,
            self.volume.affine,
            float(threshold),
            float(rule.get("min_region_ml", 0.1)),
            to_reference=rule.get("to_reference"),
            midline_x=float(rule.get("midline_x", 0.0)),
            reference=rule.get("reference"),
            cancel=cancel,
        )
        check_cancel(cancel)
        lab = self.labels
        # The warnings about the findings themselves are those of the new findings, not of the first ones.
        notes = finding_warnings(findings, labels, self.volume, self.wrap_check, self.too_bright)
        return replace(
            self,
            labels=Volume(labels, lab.affine, lab.modality, dict(lab.meta), source=lab.source),
            findings=findings,
            threshold=float(threshold),
            warnings=[w for w in self.warnings if w not in self.finding_notes] + notes,
            finding_notes=notes,
        )

    def report(self) -> dict[str, Any]:
        """The ``report.json`` content."""
        v = self.volume
        return {
            "intended_use": INTENDED_USE,
            "score": round(self.score, 4),
            # JSON has no NaN: an uncalibrated model's percentile is unknown, written as null.
            "percentile": round(self.percentile, 2) if np.isfinite(self.percentile) else None,
            "threshold": self.threshold,
            "units": self.units,
            "forced": self.forced,
            "findings": [f.to_json() for f in self.findings],
            # A head is nearly symmetric: what the side rests on is the file's header, which the image cannot check.
            "side_basis": "the file's orientation (affine); a header that reverses left and right cannot be told "
            "from the image",
            "reference_frame": self.region_rule.get("reference"),
            "model": {"id": self.model_id, "sha256": self.model_sha256},
            "device": self.device,
            "warnings": list(self.warnings),
            "timings": {k: round(t, 3) for k, t in self.timings.items()},
            "input": {
                "source": v.source,
                "modality": v.modality,
                "shape": list(v.shape),
                "spacing_mm": [round(s, 4) for s in v.spacing],
                "orientation": v.orientation,
                "affine": np.round(v.affine, 6).tolist(),
                "series_uid": v.meta.get("series_uid"),
                "series_description": v.meta.get("series_description"),
            },
            **self.extra,
        }

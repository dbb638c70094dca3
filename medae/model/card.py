"""The model card (``card.json``): everything needed to use a model, and what it is good for.

The card is plain JSON (no pickle). ``space`` fixes the model's voxel grid in the reference frame,
``intensity`` the normalisation, ``calibration`` how residuals compare with healthy scans.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medae.errors import ModelError

CARD_VERSION = 1
#: What an alignment to the reference may need before the scan is taken for another body part or a broken
#: header (a card's ``space.alignment_limits`` replaces it): scales, and the Mattes MI above which it refuses
#: (``metric``) or warns (``metric_warn``). The analysis refuses such a scan; the training leaves it out.
ALIGNMENT_LIMITS = {"scale": [0.7, 1.45], "metric": -0.3, "metric_warn": -0.5}


@dataclass
class ModelCard:
    """A model's description.

    Attributes:
        id: Short stable identifier, e.g. "brain-t1-dae".
        name: Human-readable name.
        jobs: What the model serves: "anomaly", "compression", "sampling".
        modality: DICOM modality the model was trained on ("MR", "CT").
        body_part: e.g. "BRAIN".
        architecture: Network hyper-parameters (see ``network.build_network``).
        space: Model grid: ``shape``, ``spacing``, ``affine`` (model voxel -> reference RAS mm),
            ``orientation``, ``reference`` (name of the reference space), ``registration`` settings.
        intensity: Normalisation: ``method`` ("percentile" for MR, "window" for CT) and its numbers;
            ``despike`` replaces isolated bright voxels first (``despike.py``).
        mask: Foreground mask: ``source`` ("reference" or "threshold") and settings.
        postprocess: Residual post-processing: smoothing, median filter, minimum region size.
        calibration: Healthy statistics: scan-score distribution, default threshold, units.
        training: Data description, command, seed, steps, timings, hardware.
        evaluation: Metrics from ``medae evaluate``.
        sha256: Hash of ``weights.safetensors``; loading checks it.
        notes: Plain-language limits of what the model knows.
    """

    id: str
    name: str
    jobs: list[str]
    modality: str
    body_part: str
    architecture: dict[str, Any]
    space: dict[str, Any]
    intensity: dict[str, Any]
    mask: dict[str, Any] = field(default_factory=dict)
    postprocess: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    notes: list[str] = field(default_factory=list)
    card_version: int = CARD_VERSION

    @property
    def shape(self) -> tuple[int, int, int]:
        """Model grid shape."""
        return tuple(int(s) for s in self.space["shape"])  # type: ignore[return-value]

    @property
    def affine(self) -> np.ndarray:
        """Model voxel index -> reference RAS+ mm."""
        return np.asarray(self.space["affine"], dtype=np.float64)

    def to_json(self) -> str:
        """Serialised card."""
        return json.dumps(asdict(self), indent=2, default=_json_default) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "card.json") -> ModelCard:
        """Parses a card, with a clear error on anything missing."""
        required = ("id", "name", "jobs", "modality", "body_part", "architecture", "space", "intensity")
        missing = [k for k in required if k not in data]
        if missing:
            raise ModelError(
                f"{source}: the model card lacks {', '.join(missing)}. Re-export the model with medae train."
            )
        problems = [
            f"{k} is not an object"
            for k in ("architecture", "space", "intensity", "mask", "postprocess", "calibration")
            if k in data and not isinstance(data[k], dict)
        ]
        if not problems:
            shape = data["space"].get("shape")
            if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)):
                problems.append("space.shape is not three positive whole numbers")
            if "affine" not in data["space"] and "spacing" not in data["space"]:
                problems.append("space has neither affine nor spacing")
            channels = data["architecture"].get("channels")
            if not (isinstance(channels, list) and channels and all(isinstance(v, int) and v > 0 for v in channels)):
                problems.append("architecture.channels is not a list of positive whole numbers")
        if problems:
            raise ModelError(
                f"{source}: the model card is damaged: {'; '.join(problems)}. Restore the model folder (or train "
                "the model again with medae train)."
            )
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Reads ``card.json``."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelError(f"{path}: no model card. A model folder holds card.json and weights.safetensors.") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: the model card is not valid JSON ({exc}). Restore the model folder.") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{path}: the model card is not a JSON object. Restore the model folder.")
        return cls.from_dict(data, source=str(path))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot serialise {type(obj)}")

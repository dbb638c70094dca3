"""Training configuration: defaults for the shipped brain T1 model, overridable from a JSON file."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from medae.errors import MedaeError
from medae.model.residual import DEFAULT_POSTPROCESS

BRAIN_T1_DAE: dict[str, Any] = {
    "id": "brain-t1-dae",
    "name": "Brain T1 denoising autoencoder (coarse noise)",
    "jobs": ["anomaly"],
    "modality": "MR",
    "body_part": "BRAIN",
    "space": {
        "shape": [96, 112, 96],
        "spacing": 2.0,
        "centre": [0.0, -18.0, 12.0],
        "orientation": "RAS",
        "alignment": "register",
        "registration": "affine",
        # The affine refined on the brain and 25 mm around it (``registration.py``): on development scans,
        # with the same weights recalibrated, voxel AP 0.664 vs 0.657, scan AUROC 0.870 vs 0.859, false
        # regions per healthy scan 0 vs 0.08 against the whole-head fit alone.
        "brain_refine_mm": 25.0,
        "reference": "mni152-2009a",
    },
    # The 75th percentile of the brain (white matter in T1) maps to 1. The 99th did before: a large bright
    # lesion is more than 1% of the brain and moved it by up to a third, darkening the whole scan, so every
    # voxel looked abnormal and the lesion less so (voxel AP on bright lesions 0.10 -> 0.62 on development
    # scans). The clip leaves room for lesions three times as bright as white matter.
    # despike: isolated voxels far brighter than all their neighbours are replaced before the analysis
    # (``model/despike.py``); in MR they are defects, not anatomy.
    "intensity": {"method": "percentile", "low": 1.0, "high": 75.0, "clip": [-0.5, 3.0], "despike": True},
    "mask": {"source": "reference"},
    "architecture": {
        "variant": "dae",
        "channels": [8, 16, 32, 64],
        "latent_channels": 16,
        # Skip connections (U-Net): with the robust normalisation below and coarse noise the network
        # restores healthy detail sharply instead of copying anomalies through. On development scans,
        # against the same recipe without skips: voxel AP 0.66 vs 0.55, best Dice 0.64 vs 0.57 (grey-matter
        # islands 0.46 vs 0.20, noise blobs 0.61 vs 0.11). Under the old 99th-percentile normalisation
        # skips had lost (AP 0.23 vs 0.28); see the model's README.
        "skip": True,
        "norm": "INSTANCE",
        "act": "LEAKYRELU",
    },
    # Coarse noise (Kascenas et al., MedIA 2023): Gaussian noise drawn on a grid 1/8 of the model grid
    # and upsampled, so the network must restore healthy anatomy rather than copy its input. ``factor``
    # may be a list: one of its scales is drawn per training item.
    "noise": {"kind": "coarse", "factor": 8, "std": 0.2, "prob": 1.0},
    # Foreign patches (``training/patches.py``): with probability ``prob`` an item's input also gets
    # ``count`` soft blobs of tissue from elsewhere in a training scan, usually another (semi-axes
    # ``radius_vox``, blend ``alpha``); the target stays clean. Off in the shipped recipe; see the model's README.
    "patches": {"prob": 0.0, "count": [1, 3], "radius_vox": [1.5, 6.0], "alpha": [0.3, 1.0]},
    "loss": "l1",  # or "mse", "ssim", "l1+ssim"
    # 2500 steps on 72 training scans (about 26 minutes on 2 CPU cores with skip connections). Without
    # skips 4500 steps had beaten 2500 on development scans (AP 0.61 vs 0.58); with skips they did not
    # (voxel AP 0.637 vs 0.653; scan AUROC 0.859 vs 0.822, within the spread of two seeds).
    "steps": 2500,
    "batch": 1,
    "lr": 1e-3,
    "weight_decay": 1e-5,
    "val_fraction": 0.25,
    "val_every": 250,
    "checkpoint_every": 100,
    "seed": 0,
    # Networks trained one after another, member k with seed + k (its own validation split, initialisation
    # and augmentation); their mean reconstruction is the model's, calibrated on the scans no member trained
    # on. Averaging cancels what one network gets wrong by chance on healthy tissue, while what none has
    # learnt stays unrestored. Two members were measured against the shipped single network; see the
    # model's README.
    "ensemble": 1,
    "amp": True,
    "num_workers": 1,
    # Anatomical (elastic) variation is already in the generated healthy scans; on-the-fly elastic
    # deformation costs ~2 s per volume on a CPU, so it is off by default (set elastic_prob to use it).
    "augment": {
        "affine_prob": 0.4,
        "rotate_deg": 4.0,
        "scale": 0.04,
        "translate_vox": 2,
        "elastic_prob": 0.0,
        "bias_prob": 0.3,
        "gamma_prob": 0.3,
        "noise_prob": 0.3,
        "blur_prob": 0.2,
        # Tissue contrast of other scanners and sequences (``training/contrast.py``): half the items get
        # a random smooth remapping of the brain's histogram. On development scans, against the same
        # recipe without it: scan AUROC 0.86 vs 0.79, voxel AP 0.66 vs 0.66, best Dice 0.65 vs 0.64.
        "contrast_prob": 0.5,
        "contrast_sd": 0.3,
    },
    "postprocess": dict(DEFAULT_POSTPROCESS),
    # fp_rate: false-positive regions allowed per healthy calibration scan when the default threshold is
    # chosen (then raised by a 10% margin); a quarter of the project's budget of one per healthy scan.
    "calibration": {"score_top_fraction": 0.001, "fp_rate": 0.25, "std_floor": 1.0},
}

PRESETS = {"brain-t1-dae": BRAIN_T1_DAE}


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the JSON file's keys (sections merged one level deep), then ``overrides``."""
    cfg = copy.deepcopy(BRAIN_T1_DAE)
    layers = []
    if path is not None:
        p = Path(path)
        try:  # utf-8-sig: Windows Notepad saves a byte-order mark first
            layers.append(json.loads(p.read_text(encoding="utf-8-sig")))
        except (OSError, ValueError) as exc:  # ValueError: not JSON, or not text at all
            raise MedaeError(f"{p}: cannot read the training configuration ({exc}). It must be a JSON object.") from exc
        if isinstance(layers[0], dict) and isinstance(layers[0].get("training"), dict) and "card_version" in layers[0]:
            raise MedaeError(
                f"{p} is a model card, not a training configuration: its training.config holds the settings that "
                "model was trained with. Save that object alone as a JSON file and pass it to --config."
            )
    if overrides:
        layers.append(overrides)
    for layer in layers:
        if not isinstance(layer, dict):
            raise MedaeError(f"the training configuration must be a JSON object of settings, not {layer!r:.60}.")
        if layer.get("preset"):
            if layer["preset"] not in PRESETS:
                raise MedaeError(f"unknown preset {layer['preset']!r}; choose one of {sorted(PRESETS)}")
            cfg = copy.deepcopy(PRESETS[layer["preset"]])
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key].update(value)
            else:
                cfg[key] = value
    check_settings(cfg)
    check_grid(cfg)
    return cfg


#: Settings other than the preset's own that the training reads.
_EXTRA_KEYS = {"kl_weight": 1e-3, "preset": ""}
#: Settings a section may hold beyond the preset's own: read where the model is used, from the card.
_SECTION_EXTRAS = {
    "space": ("alignment_limits", "contrast_agent", "contrast_limits", "sequence", "midline_x"),
    "intensity": ("pad",),
    "mask": ("threshold",),
    "architecture": ("in_channels", "inference"),
    "calibration": ("margin",),
}
#: The kinds of the extras that are numbers (the others are checked where they are read).
_EXTRA_KINDS = {"space.midline_x": 0.0, "intensity.pad": 0.0, "mask.threshold": 0.0, "architecture.in_channels": 1}
#: Settings whose null means something (off, or chosen from the scan); any other null fails where it is read.
_NULLABLE = {"space.brain_refine_mm", "mask.threshold"}
#: Texts that take one of a few values: any other would be taken for one of them in silence, or fail late.
_CHOICES = {
    "loss": ("l1", "mse", "ssim", "l1+ssim"),
    "architecture.variant": ("ae", "dae", "vae"),
    "noise.kind": ("coarse", "none"),
    "space.alignment": ("register", "center", "identity"),
    "space.registration": ("affine", "similarity", "identity"),
    "intensity.method": ("percentile", "window"),
    "mask.source": ("reference", "threshold"),
}
#: Texts that name the model and what it learns; empty, the card names nothing.
_NAMES = ("id", "name", "modality", "body_part")
#: What a model may serve (the card's ``jobs``): the analysis, compressed studies' latents, new volumes.
_JOBS = ("anomaly", "compression", "sampling")
#: The accepted range of each number: (least, most, whether the least itself is refused); None is no bound.
#: Whole numbers are the settings whose default is one.
_RANGES: dict[str, tuple[float | None, float | None, bool]] = {
    "steps": (1, None, False),
    "batch": (1, None, False),
    "val_every": (1, None, False),
    "checkpoint_every": (1, None, False),
    "ensemble": (1, None, False),
    "seed": (0, 2**32 - 1, False),  # torch takes at most 64 bits, and each ensemble member adds its index
    "num_workers": (0, None, False),
    "lr": (0, None, True),
    "weight_decay": (0, None, False),
    "kl_weight": (0, None, False),
    # Above a half, more scans are held out than trained on; 0.99 left too few to train on at all.
    "val_fraction": (0, 0.5, True),
    "space.spacing": (0, None, True),
    "space.brain_refine_mm": (0, None, False),
    "architecture.latent_channels": (1, None, False),
    "architecture.in_channels": (1, None, False),
    "noise.std": (0, None, False),
    "augment.rotate_deg": (0, 180, False),
    "augment.scale": (0, 0.5, False),
    "augment.translate_vox": (0, None, False),
    "augment.contrast_sd": (0, None, False),
    "postprocess.median": (1, None, False),
    "postprocess.smooth_sigma_vox": (0, None, False),
    "postprocess.erode_vox": (0, None, False),
    "postprocess.min_region_ml": (0, None, False),
    "calibration.score_top_fraction": (0, 1, True),
    "calibration.fp_rate": (0, None, False),
    "calibration.std_floor": (0, None, True),
    "calibration.margin": (0, None, True),
}
#: Lists of numbers: (length, or None for one or more; each number's range; whether they must not decrease).
_LISTS: dict[str, tuple[int | None, tuple[float | None, float | None, bool], bool]] = {
    "space.shape": (3, (1, None, False), False),
    "space.centre": (3, (None, None, False), False),
    "intensity.clip": (2, (None, None, False), True),
    "architecture.channels": (None, (1, None, False), False),
    "patches.count": (2, (1, None, False), True),
    "patches.radius_vox": (2, (0, None, True), True),
    "patches.alpha": (2, (0, 1, False), True),
}


def check_settings(cfg: dict[str, Any]) -> None:
    """Refuses a setting the training does not know, or one of the wrong kind or out of range, before any scan is read.

    A misspelt key would otherwise be ignored in silence and a wrong value fail deep inside the training,
    after the scans were prepared (or, for ``steps`` of 0, write untrained weights as a model). Each message
    names the setting, its value and what it may be.
    """
    known = {**BRAIN_T1_DAE, **_EXTRA_KEYS}
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise MedaeError(
            f"unknown training setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(known))}."
        )
    _check_finite("", cfg)  # JSON as Python reads it takes NaN and Infinity
    for key, default in known.items():
        value = cfg.get(key, default)
        if not _same_kind(value, default):
            raise MedaeError(f"training setting {key} = {value!r:.60}: expected {_kind(default)}.")
        if isinstance(default, dict):
            _check_section(key, value, default)
        else:
            _check_value(key, value, default)


def _check_section(name: str, section: dict[str, Any], default: dict[str, Any]) -> None:
    """Refuses a key a section does not hold, or a value of the wrong kind or out of range."""
    allowed = set(default) | set(_SECTION_EXTRAS.get(name, ()))
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise MedaeError(
            f"unknown training setting(s) {', '.join(f'{name}.{k}' for k in unknown)}; {name} holds "
            f"{', '.join(sorted(allowed))}."
        )
    for key, value in section.items():
        full = f"{name}.{key}"
        if value is None and full in _NULLABLE:
            continue
        kind = default.get(key, _EXTRA_KINDS.get(full))
        if kind is None:  # an extra read where the model is used (a dict of limits, a text)
            continue
        if full == "noise.factor":  # one scale, or several drawn per item
            factors = value if isinstance(value, list) else [value]
            if not factors or not all(_same_kind(f, 8) and f >= 1 for f in factors):
                raise MedaeError(
                    f"training setting {full} = {value!r:.60}: expected a whole number or a list of them, "
                    "each at least 1."
                )
            continue
        if not _same_kind(value, kind):
            raise MedaeError(f"training setting {full} = {value!r:.60}: expected {_kind(kind)}.")
        _check_value(full, value, kind)
    _check_intensity_range(name, section)


def _check_value(name: str, value: Any, default: Any) -> None:
    """Refuses a value of the right kind outside its range, or a text outside its choices."""
    said = f"training setting {name} = {value!r:.60}"
    if name in _CHOICES and value not in _CHOICES[name]:
        raise MedaeError(f"{said}: choose one of {', '.join(_CHOICES[name])}.")
    if name in _NAMES and not value.strip():
        raise MedaeError(f"{said}: expected a text that is not empty (the card names the model by it).")
    if name == "jobs" and not (value and all(job in _JOBS for job in value)):
        raise MedaeError(f"{said}: expected a list of one or more of {', '.join(_JOBS)}.")
    if name.endswith("prob"):
        bounds: tuple[float | None, float | None, bool] | None = (0, 1, False)
    else:
        bounds = _RANGES.get(name)
    if bounds is not None and not isinstance(value, bool) and isinstance(value, int | float):
        if not _within(value, bounds):
            raise MedaeError(f"{said}: expected {_kind(default)} {_describe(bounds)}.")
    if name in _LISTS:
        length, each, ordered = _LISTS[name]
        whole = all(isinstance(v, int) for v in default) if isinstance(default, list) and default else False
        what = "whole numbers" if whole else "numbers"
        count = f"{length} {what}" if length else f"one or more {what}"
        rule = f"{count}, each {_describe(each).removeprefix('of ')}" if each != (None, None, False) else count
        if ordered:
            rule += (
                ", the first below the second" if name == "intensity.clip" else ", the first no more than the second"
            )
        good = (length is None and len(value) > 0) or len(value) == length
        good = good and all(_same_kind(v, 1 if whole else 1.0) and _within(v, each) for v in value)
        if good and ordered:
            good = all(a <= b for a, b in zip(value, value[1:], strict=False))
            if name == "intensity.clip":
                good = value[0] < value[1]
        if not good:
            raise MedaeError(f"{said}: expected {rule}.")


def _check_intensity_range(name: str, section: dict[str, Any]) -> None:
    """A normalisation's low and high: percentiles within 0..100, and low below high."""
    if name != "intensity":
        return
    low, high = section.get("low"), section.get("high")
    if not (isinstance(low, int | float) and isinstance(high, int | float)):
        return
    said = f"training settings intensity.low = {low!r}, intensity.high = {high!r}"
    if section.get("method", "percentile") == "percentile" and not 0 <= low < high <= 100:
        raise MedaeError(f"{said}: percentiles are from 0 to 100, low below high (e.g. 1 and 75).")
    if not low < high:
        raise MedaeError(f"{said}: the window's low end must be below its high end (e.g. -1000 and 400 HU).")


def _check_finite(name: str, value: Any) -> None:
    """Refuses NaN or an infinity anywhere in ``value`` (a setting, or a section or list of them)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _check_finite(f"{name}.{key}" if name else str(key), inner)
    elif not _finite(value):
        raise MedaeError(f"training setting {name} = {value!r:.60}: expected finite numbers (no NaN or Infinity).")


def _finite(value: Any) -> bool:
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def _within(value: float, bounds: tuple[float | None, float | None, bool]) -> bool:
    lo, hi, above = bounds
    if lo is not None and (value <= lo if above else value < lo):
        return False
    return hi is None or value <= hi


def _describe(bounds: tuple[float | None, float | None, bool]) -> str:
    lo, hi, above = bounds
    if lo is None:
        return "" if hi is None else f"of at most {hi}"
    least = f"above {lo}" if above else f"of at least {lo}"
    if hi is None:
        return least
    return f"from {lo} to {hi}" if not above else f"{least} and at most {hi}"


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, type(default))


def _kind(default: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a text in quotes"}
    return names.get(type(default), "a JSON object" if isinstance(default, dict) else "a JSON list")


def check_grid(cfg: dict[str, Any]) -> None:
    """Refuses a model grid the network cannot halve level by level and restore to the same size.

    Checked when the configuration is read, so that a wrong shape stops the run before the scans are
    preprocessed, not at the first training step.
    """
    levels = len(cfg.get("architecture", {}).get("channels", ()))
    shape = cfg.get("space", {}).get("shape")
    if not levels or not shape:
        return
    step = 2**levels
    _check_windows(cfg["architecture"].get("inference"), levels)
    if any(int(s) % step for s in shape):
        fit = [-(-int(s) // step) * step for s in shape]
        raise MedaeError(
            f"space.shape {list(shape)} does not suit the network: its {levels} levels each halve the grid, so "
            f"every size must be a multiple of {step}. Use for example {fit} (the field of view grows a little)."
        )


def _check_windows(inference: Any, levels: int) -> None:
    """Refuses sliding windows the network cannot take (found otherwise at the calibration, after the training)."""
    if inference is None:
        return
    said = f"training setting architecture.inference = {inference!r:.80}"
    if not isinstance(inference, dict) or inference.get("mode", "whole") not in ("whole", "sliding_window"):
        raise MedaeError(f'{said}: expected {{"mode": "whole"}} or {{"mode": "sliding_window", "roi_size": [...]}}.')
    if inference.get("mode") != "sliding_window":
        return
    step = 2**levels
    roi, overlap, batch = inference.get("roi_size"), inference.get("overlap", 0.25), inference.get("batch", 2)
    if not (
        isinstance(roi, list) and len(roi) == 3 and all(_same_kind(r, 1) and r >= step and r % step == 0 for r in roi)
    ):
        raise MedaeError(
            f"{said}: roi_size must be three whole numbers, each a multiple of {step} (the network's {levels} levels "
            "each halve the window)."
        )
    if not (_same_kind(overlap, 0.0) and 0 <= overlap < 1) or not (_same_kind(batch, 1) and batch >= 1):
        raise MedaeError(f"{said}: overlap must be a number from 0 up to (not including) 1, and batch at least 1.")

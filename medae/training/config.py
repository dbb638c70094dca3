"""Training configuration: defaults for the shipped brain T1 model, overridable from a JSON file."""

from __future__ import annotations

import copy
import json
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
_LOSSES = ("l1", "mse", "ssim", "l1+ssim")
_VARIANTS = ("ae", "dae", "vae")
#: Settings that must be a whole number of at least this much.
_COUNTS = {"steps": 1, "batch": 1, "val_every": 1, "checkpoint_every": 1, "ensemble": 1, "seed": 0, "num_workers": 0}


def check_settings(cfg: dict[str, Any]) -> None:
    """Refuses a setting the training does not know, or one of the wrong kind, before any scan is prepared.

    A misspelt key would otherwise be ignored in silence and a wrong value fail deep inside the training,
    after the scans were prepared (or, for ``steps`` of 0, write untrained weights as a model).
    """
    known = {**BRAIN_T1_DAE, **_EXTRA_KEYS}
    unknown = sorted(set(cfg) - set(known))
    if unknown:
        raise MedaeError(
            f"unknown training setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(known))}."
        )
    for key, default in known.items():
        value = cfg.get(key, default)
        if not _same_kind(value, default):
            raise MedaeError(f"training setting {key} = {value!r:.60}: expected {_kind(default)}.")
    for key, least in _COUNTS.items():
        if key in cfg and cfg[key] < least:
            raise MedaeError(f"training setting {key} = {cfg[key]}: it must be at least {least}.")
    if not cfg["lr"] > 0 or cfg.get("kl_weight", 0) < 0 or not 0 < cfg["val_fraction"] < 1:
        raise MedaeError(
            "training settings lr must be above 0, kl_weight at least 0, and val_fraction between 0 and 1."
        )
    if cfg["loss"] not in _LOSSES:
        raise MedaeError(f"training setting loss = {cfg['loss']!r}: choose one of {', '.join(_LOSSES)}.")
    variant = cfg["architecture"].get("variant", "dae")
    if variant not in _VARIANTS:
        raise MedaeError(f"architecture variant {variant!r}: choose one of {', '.join(_VARIANTS)}.")
    for name, default in BRAIN_T1_DAE.items():
        if isinstance(default, dict) and name in cfg:
            _check_section(name, cfg[name], default)


#: Settings a section may hold beyond the preset's own: read where the model is used, from the card.
_SECTION_EXTRAS = {
    "space": ("alignment_limits", "contrast_agent", "contrast_limits", "sequence", "midline_x"),
    "intensity": ("pad",),
    "mask": ("threshold",),
    "architecture": ("in_channels", "inference"),
    "calibration": ("margin",),
}
#: The values the training tells apart; any other would be taken as the last (no noise) without a word.
_NOISE_KINDS = ("coarse", "none")


def _check_section(name: str, section: dict[str, Any], default: dict[str, Any]) -> None:
    """Refuses a key a section does not hold, or a value of the wrong kind or out of range.

    A null is left to the code that reads the setting: for some (``space.brain_refine_mm``) it means off.
    """
    allowed = set(default) | set(_SECTION_EXTRAS.get(name, ()))
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise MedaeError(
            f"unknown training setting(s) {', '.join(f'{name}.{k}' for k in unknown)}; {name} holds "
            f"{', '.join(sorted(allowed))}."
        )
    for key, value in section.items():
        said = f"training setting {name}.{key} = {value!r:.60}"
        if value is None or default.get(key) is None:
            continue
        if (name, key) == ("noise", "factor"):  # one scale, or several drawn per item
            if not all(_same_kind(f, 8) and f >= 1 for f in (value if isinstance(value, list) else [value])):
                raise MedaeError(f"{said}: expected a whole number or a list of them, each at least 1.")
            continue
        if not _same_kind(value, default[key]):
            raise MedaeError(f"{said}: expected {_kind(default[key])}.")
        if key.endswith("prob") and not 0 <= value <= 1:
            raise MedaeError(f"{said}: a probability is between 0 and 1.")
    shape = section.get("shape")
    if name == "space" and shape is not None and (len(shape) != 3 or not all(_same_kind(s, 1) for s in shape)):
        raise MedaeError(f"training setting space.shape = {shape!r:.60}: expected three whole numbers.")
    if name == "space" and not section.get("spacing", 1) > 0:
        raise MedaeError(f"training setting space.spacing = {section['spacing']}: it must be above 0.")
    if name == "noise" and section.get("kind", "coarse") not in _NOISE_KINDS:
        raise MedaeError(f"training setting noise.kind = {section['kind']!r}: choose one of {', '.join(_NOISE_KINDS)}.")


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, int | float) and value == value  # NaN is no setting
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
    if any(int(s) % step for s in shape):
        fit = [-(-int(s) // step) * step for s in shape]
        raise MedaeError(
            f"space.shape {list(shape)} does not suit the network: its {levels} levels each halve the grid, so "
            f"every size must be a multiple of {step}. Use for example {fit} (the field of view grows a little)."
        )

"""Training: healthy scans -> a model folder (weights, card, calibration).

Single process, or several under ``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on CUDA). This
module splits the scans, has each network (one, or the members of an ensemble) trained by
``member.train_member``, calibrates and writes the folder. Checkpoints are written every
``checkpoint_every`` steps and a run resumes from them when started again with the same output folder.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medae.errors import MedaeError
from medae.model.card import ModelCard
from medae.progress import ProgressFn, report, sub_progress
from medae.training.calibration import calibrate_model
from medae.training.data import card_affine, find_scans, prepare_reference, preprocess_scans
from medae.training.member import MEMBER_SEED_STEP, TrainingRun, train_member
from medae.training.provenance import runs_for_card
from medae.training.template import TEMPLATE_NAME, TEMPLATE_NOTICE
from medae.volume import Volume


def _split(n: int, n_val: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the validation and training scans for one seed (sorted, so runs are reproducible)."""
    order = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in order[:n_val]), sorted(int(i) for i in order[n_val:])


def scan_ids(scans: list[tuple[str, str | None]], data) -> list[list]:
    """Scans as a checkpoint records them: path from the data folder (or the list's) and series.

    Relative, so that the same scans moved to another folder, or named from another working folder, are
    the same scans.
    """
    root = os.path.abspath(data if os.path.isdir(data) else os.path.dirname(os.path.abspath(data)))
    return [[os.path.relpath(os.path.abspath(path), root), series] for path, series in scans]


def _check_same_scans(member_dir: Path, drawn: list[list], data) -> None:
    """Refuses to go on from a checkpoint whose steps were trained on other scans than those drawn now.

    The split is drawn from the list of scans, so a scan added or removed moves others between training and
    validation: the steps to come would train on scans validated on so far, and the calibration take scans
    already trained on. Checkpoints from before this record are not checked.
    """
    from medae.training.checkpoint import checkpoint_info

    info = checkpoint_info(member_dir)
    if not info or info.get("scans") is None or info["scans"] == drawn:
        return
    before, now = {tuple(s) for s in info["scans"]}, {tuple(s) for s in drawn}
    moved = sorted(before ^ now)
    raise MedaeError(
        f"{member_dir}: the network there was trained up to step {info['step']} on other scans than {data} gives "
        f"for training now ({len(moved)} differ, e.g. {moved[0][0]}): a scan added or removed changes which scans "
        "are trained on and which are kept for validation. Train with the scans it was started with, or train "
        "into a new folder."
    )


def _check_replaces_own_model(out: Path, data) -> None:
    """Refuses to train from scratch into a finished model folder whose card names other training scans.

    Without a training state to go on from, the run starts again and replaces the model when done: that is
    how a model is retrained on its own scans, but a shipped model (which keeps no training state) would be
    lost to a department's run on its own.
    """
    import json

    from medae.model.store import CARD

    if not (out / CARD).is_file() or (out / "train_state").exists():
        return
    try:
        trained_on = json.loads((out / CARD).read_text())["training"]["data"]
    except (OSError, ValueError, KeyError, TypeError):
        trained_on = None
    if not _same_data(trained_on, data):
        raise MedaeError(
            f"{out} holds a model trained on {trained_on or 'scans its card does not name'}, not on {data}, and no "
            "training state to go on from: training there would replace it when done. Choose a new folder for "
            "--out (or remove that model first to retrain it)."
        )


def _same_data(recorded, data) -> bool:
    """Whether the data a card records (as its command gave them) are ``data``, however either path is written.

    The README's ``--data data/healthy`` retrains a shipped model; ``data/healthy/`` (as the shell completes it),
    ``./data/healthy`` or the folder's absolute path are the same scans.
    """
    if not isinstance(recorded, str) or not recorded:
        return False
    if os.path.normpath(recorded) == os.path.normpath(str(data)):
        return True
    try:
        return os.path.samefile(recorded, data)
    except OSError:  # the recorded folder is not here (relative to another working folder, or moved)
        return False


def card_from_config(cfg: dict) -> ModelCard:
    """The model card a config describes (before training fills in calibration and metrics)."""
    space = dict(cfg["space"])
    space["affine"] = card_affine(cfg).tolist()
    architecture = dict(cfg["architecture"])
    if int(cfg.get("ensemble", 1)) > 1:  # how many networks the weights hold
        architecture["ensemble"] = int(cfg["ensemble"])
    notes = [
        "Trained only on healthy scans; it flags what it has not seen, which is not always disease.",
    ]
    if space.get("reference") == "mni152-2009a":
        notes.append(
            "Healthy training scans are synthetic variations (anatomy, head, scanner, acquisition) of one "
            f"average brain, the {TEMPLATE_NAME}; real-population variation is wider than what it has seen."
        )
        notes.append(TEMPLATE_NOTICE)
    return ModelCard(
        id=cfg["id"],
        name=cfg["name"],
        jobs=list(cfg.get("jobs", ["anomaly"])),
        modality=cfg["modality"],
        body_part=cfg["body_part"],
        architecture=architecture,
        space=space,
        intensity=dict(cfg["intensity"]),
        mask=dict(cfg["mask"]),
        postprocess=dict(cfg["postprocess"]),
        notes=notes,
    )


def _dist_info() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def train(
    data: str | Path,
    out: Path,
    cfg: dict,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    command: str | None = None,
    calibration_data: str | Path | None = None,
    screen: Callable[[Volume, ModelCard], object] | None = None,
    screen_contrast: Callable[[float | None, ModelCard], object] | None = None,
) -> Path:
    """Trains a model and writes the model folder ``out``.

    Args:
        data: Folder of healthy scans (NIfTI/DICOM) or a text file listing them.
        out: Model folder; ``out/train_state`` holds checkpoints and the preprocessing cache.
        cfg: Training configuration (see ``config.py``).
        device: auto, cpu, cuda or mps.
        progress: Progress callback (fraction, message with loss and validation loss).
        cancel: Stops after the current step, leaving a checkpoint to resume from.
        command: The command line, recorded in the card.
        calibration_data: More healthy scans (never trained on) that join the validation split for
            calibration; more scans estimate the healthy tails (threshold, percentiles) better.
        screen: Raises a ``MedaeError`` for a loaded scan that is no healthy scan of the model's kind (the
            analysis's input checks, a layer above); such a scan is left out and named in the card.
        screen_contrast: The same for an aligned scan's correlation with the reference (the analysis's
            contrast check: another sequence, such as a T2 among T1 scans).
    """
    from medae.model.heavy_imports import import_network_libraries

    import_network_libraries()
    import torch

    from medae.model.loaded import LoadedModel, device_name, select_device, state_tensors
    from medae.model.store import save_model_folder

    rank, world = _dist_info()
    distributed = world > 1
    dev = select_device(device)
    if distributed:
        import torch.distributed as dist

        if dev.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", 0))
            dev = torch.device("cuda", local)
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    seed = int(cfg["seed"])
    torch.manual_seed(seed + rank)
    state_dir = out / "train_state"
    _check_replaces_own_model(out, data)
    card = card_from_config(cfg)

    scans = find_scans(data)  # before the reference (seconds): a folder with no scans is said at once
    n_val = max(3, int(round(len(scans) * float(cfg["val_fraction"]))))
    if len(scans) < n_val + 2:
        raise MedaeError(f"{data}: {len(scans)} scans are too few; training needs at least {n_val + 2}.")
    n_members = int(cfg.get("ensemble", 1))
    this_command = command or " ".join(sys.argv)
    # Each member draws its own split: member k's seed, seed + k, fixes its validation scans, its
    # initialisation and its augmentation. Calibration takes the scans no member trained on.
    splits = [_split(len(scans), n_val, seed + MEMBER_SEED_STEP * k) for k in range(n_members)]
    held_out = sorted(set.intersection(*(set(val) for val, _ in splits)))
    extra = find_scans(calibration_data) if calibration_data is not None else []
    if len(held_out) + len(extra) < 3:
        given = f" and {len(extra)} calibration scans given" if extra else ""
        raise MedaeError(
            f"Only {len(held_out)} scans of {data} are held out from all {n_members} ensemble members{given}, too "
            "few to calibrate on (at least 3); pass --calibration-data with more healthy scans none of them trains on."
        )
    member_dirs = [state_dir if k == 0 else state_dir / f"member{k}" for k in range(n_members)]
    drawn = [scan_ids([scans[i] for i in train_idx], data) for _, train_idx in splits]
    for member_dir, ids in zip(member_dirs, drawn, strict=True):
        _check_same_scans(member_dir, ids, data)

    def prepare(scan_list: list, lo: float, hi: float):
        """Scans in model space through the shared cache; progress from ``lo`` to ``hi``."""
        nonlocal prep_s
        t = time.time()
        prepared = preprocess_scans(
            scan_list,
            card,
            reference,
            ref_mask,
            cache=state_dir / "cache",
            progress=sub_progress(progress, lo, hi),
            cancel=cancel,
            screen=screen,
            screen_contrast=screen_contrast,
        )
        prep_s += time.time() - t
        return prepared

    # Compared as files, however named (relative, absolute, through a link); said before the training.
    trained = {(os.path.realpath(path), series) for path, series in scans}
    both = [path for path, series in extra if (os.path.realpath(path), series) in trained]
    if both:
        raise MedaeError(
            f"{calibration_data}: some calibration scans are also training data ({Path(both[0]).name}"
            f"{', ...' if len(both) > 1 else ''}); calibrate on scans the model never saw."
        )
    t0 = time.time()
    report(progress, 0.0, "preparing the reference")
    reference, ref_mask = prepare_reference(cfg)
    prep_s = time.time() - t0
    run = TrainingRun(cfg, dev, rank, world, out, this_command, progress, cancel)
    members, records = [], []
    skipped: list[str] = []
    span = 0.9 / n_members
    for k in range(n_members):
        lo, hi = k * span, (k + 1) * span
        val_idx, train_idx = splits[k]
        images, masks, t_skipped = prepare([scans[i] for i in train_idx], lo, lo + 0.1 * span)
        v_images, v_masks, v_skipped = prepare([scans[i] for i in val_idx], lo + 0.1 * span, lo + 0.15 * span)
        if len(v_images) < 3 or len(images) < 2:
            # Said now, not after every training step, when the calibration would find too few of them.
            unusable = "; ".join((t_skipped + v_skipped)[:3])
            raise MedaeError(
                f"{data}: of the scans drawn for training and validation, {len(images)} and {len(v_images)} could be "
                f"used; training needs at least 2 and 3. Replace or remove the scans that cannot be used "
                f"({unusable}) and run again."
            )
        net_k, record = train_member(
            run, k, member_dirs[k], images, masks, v_images, v_masks, lo + 0.15 * span, hi, scans=drawn[k]
        )
        members.append(net_k)
        records.append({**record, "n_train": len(images)})
        skipped += [m for m in t_skipped + v_skipped if m not in skipped]
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    if rank != 0:
        return out
    net = members[0]
    step, best_val, history = records[0]["step"], records[0]["best_val"], records[0]["history"]
    train_s = sum(r["train_s"] for r in records)
    devices = sorted({d for r in records for d in r["devices"]})
    runs = records[0]["runs"]

    # Calibrated as the analysis will apply the networks (the card's architecture.inference: the whole scan or
    # sliding windows; an ensemble's mean): statistics of another reconstruction would not describe its residuals.
    applied = LoadedModel(card, out, net, dev, members=members[1:])
    reconstruct = applied.reconstruct

    spacing = float(cfg["space"]["spacing"])
    if held_out:
        v_images, v_masks, v_skipped = prepare([scans[i] for i in held_out], 0.9, 0.91)
    else:
        v_images, v_masks, v_skipped = np.zeros((0, *card.shape), np.float32), np.zeros((0, *card.shape), bool), []
    skipped += [m for m in v_skipped if m not in skipped]
    n_extra = 0
    if calibration_data is not None:
        c_images, c_masks, c_skipped = prepare(extra, 0.91, 0.92)
        v_images = np.concatenate([v_images, c_images]) if len(v_images) else c_images
        v_masks = np.concatenate([v_masks, c_masks]) if len(v_masks) else c_masks
        skipped += c_skipped
        n_extra = len(c_images)
    if len(v_images) < 3:  # scans that could not be used: the trained state is kept, a rerun recalibrates
        unusable = "; ".join((v_skipped + (c_skipped if calibration_data is not None else []))[:3])
        raise MedaeError(
            f"Only {len(v_images)} healthy scans could be used to calibrate on; at least 3 are needed. The training "
            f"is done and kept: run again with --calibration-data holding more healthy scans. Left out: {unusable}."
        )
    stats, calib = calibrate_model(
        reconstruct,
        v_images.astype(np.float32),
        v_masks,
        cfg["postprocess"],
        cfg["calibration"],
        voxel_ml=spacing**3 / 1000.0,
        progress=sub_progress(progress, 0.92, 1.0),
        cancel=cancel,
    )
    card.calibration = calib
    card.training = {
        "data": str(data),
        "n_train": records[0]["n_train"],
        "n_val": len(v_images) - n_extra,
        "calibration_data": None if calibration_data is None else str(calibration_data),
        "n_calibration": len(v_images),
        "skipped": skipped,
        "command": this_command,
        "config": cfg,
        # Checkpoints from before this record name no runs.
        "runs": runs_for_card(runs, cfg),
        "steps": step,
        "best_val_loss": best_val,
        "history": history,
        "device": ", ".join(devices) or device_name(dev),
        "world_size": world,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "torch": torch.__version__,
        "time_s": {"preprocess": round(prep_s, 1), "train": round(train_s, 1)},
        "train_steps_per_s": round(step / max(train_s, 1e-9), 3),
    }
    if n_members > 1:
        card.training["members"] = [
            {
                "seed": seed + MEMBER_SEED_STEP * k,
                "steps": r["step"],
                "best_val_loss": r["best_val"],
                "train_s": round(r["train_s"], 1),
                "runs": runs_for_card(r["runs"], cfg),
            }
            for k, r in enumerate(records)
        ]
    tensors = state_tensors(net)
    for k, member in enumerate(members[1:], start=1):
        tensors.update({f"member{k}.{name}": v for name, v in state_tensors(member).items()})
    tensors.update({f"calibration.{k}": v.astype(np.float16) for k, v in stats.items()})
    if reference is not None:
        tensors["reference.image"] = reference.astype(np.float16)
        tensors["reference.mask"] = ref_mask.astype(np.uint8)
    save_model_folder(out, card, tensors)
    report(progress, 1.0, "done")
    return out

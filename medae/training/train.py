"""The training loop: healthy scans -> a model folder (weights, card, calibration).

Single process, or several under ``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on CUDA).
Checkpoints are written every ``checkpoint_every`` steps and a run resumes from them when started again
with the same output folder.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

from medae.errors import MedaeError
from medae.model.card import ModelCard
from medae.progress import ProgressFn, check_cancel, report, sub_progress
from medae.training.calibration import calibrate_model
from medae.training.checkpoint import load_best, load_checkpoint, save_best, save_checkpoint
from medae.training.data import AugmentedScans, card_affine, find_scans, prepare_reference, preprocess_scans
from medae.training.provenance import record_steps, runs_for_card
from medae.training.template import TEMPLATE_NAME, TEMPLATE_NOTICE

# Member k of an ensemble draws its split, initialisation and augmentation from seed + k * this; member 0
# is the single model the same config trains without an ensemble.
MEMBER_SEED_STEP = 1


def _split(n: int, n_val: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices of the validation and training scans for one seed (sorted, so runs are reproducible)."""
    order = np.random.default_rng(seed).permutation(n)
    return sorted(int(i) for i in order[:n_val]), sorted(int(i) for i in order[n_val:])


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


def _worker_init(_: int) -> None:
    """Data workers run numpy/MONAI on one thread each, leaving the other cores to the network."""
    import torch

    torch.set_num_threads(1)


def _previous_train_s(out: Path) -> float:
    """Training seconds recorded by an earlier run in ``out`` (checkpoints older than this field)."""
    import json

    try:
        return float(json.loads((out / "card.json").read_text())["training"]["time_s"]["train"])
    except (OSError, KeyError, ValueError, TypeError):
        return 0.0


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
    """
    import torch

    from medae.model.loaded import device_name, select_device, state_tensors
    from medae.model.network import build_network
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
    card = card_from_config(cfg)

    t0 = time.time()
    report(progress, 0.0, "preparing the reference")
    reference, ref_mask = prepare_reference(cfg)
    scans = find_scans(data)
    n_val = max(3, int(round(len(scans) * float(cfg["val_fraction"]))))
    if len(scans) < n_val + 2:
        raise MedaeError(f"{data}: {len(scans)} scans are too few; training needs at least {n_val + 2}.")
    n_members = int(cfg.get("ensemble", 1))
    this_command = command or " ".join(sys.argv)
    # Each member draws its own split: member k's seed, seed + k, fixes its validation scans, its
    # initialisation and its augmentation. Calibration takes the scans no member trained on.
    splits = [_split(len(scans), n_val, seed + MEMBER_SEED_STEP * k) for k in range(n_members)]
    held_out = sorted(set.intersection(*(set(val) for val, _ in splits)))
    if len(held_out) < 3 and calibration_data is None:
        raise MedaeError(
            f"Only {len(held_out)} scans of {data} are held out from all {n_members} ensemble members, too few to "
            "calibrate on; pass --calibration-data with healthy scans none of them trains on."
        )
    prep_s = time.time() - t0

    def prepare(scan_list: list, lo: float, hi: float):
        """Scans in model space through the shared cache; progress from ``lo`` to ``hi``."""
        nonlocal prep_s
        t = time.time()
        out = preprocess_scans(
            scan_list,
            card,
            reference,
            ref_mask,
            cache=state_dir / "cache",
            progress=sub_progress(progress, lo, hi),
            cancel=cancel,
        )
        prep_s += time.time() - t
        return out

    def train_member(k: int, member_dir: Path, lo: float, hi: float):
        """Trains (or resumes) ensemble member ``k``; returns its best network and its training record."""
        val_idx, train_idx = splits[k]
        prep_hi = lo + 0.15 * (hi - lo)
        images, masks, skipped = prepare([scans[i] for i in train_idx], lo, lo + 0.1 * (hi - lo))
        v_images, v_masks, v_skipped = prepare([scans[i] for i in val_idx], lo + 0.1 * (hi - lo), prep_hi)
        lo = prep_hi
        torch.manual_seed(seed + MEMBER_SEED_STEP * k + rank)
        net = build_network(cfg["architecture"]).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
        steps = int(cfg["steps"])
        info = load_checkpoint(member_dir, net, opt)
        start = int(info["step"]) if info else 0
        best_val = float(info.get("best_val", np.inf)) if info else np.inf
        history = list(info.get("history", [])) if info else []
        model = net
        if distributed:
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)

        batch = int(cfg["batch"])
        # Item i of the dataset is fixed by (seed, i); each rank takes its own items, so resuming is exact.
        dataset = AugmentedScans(images, masks, cfg, length=steps * batch * world, seed=seed + MEMBER_SEED_STEP * k)
        indices = [(s * world + rank) * batch + b for s in range(start, steps) for b in range(batch)]
        loader = torch.utils.data.DataLoader(
            torch.utils.data.Subset(dataset, indices),
            batch_size=batch,
            shuffle=False,
            num_workers=int(cfg.get("num_workers", 0)),
            persistent_workers=int(cfg.get("num_workers", 0)) > 0,
            pin_memory=dev.type == "cuda",
            worker_init_fn=_worker_init,
        )
        amp = bool(cfg.get("amp", True)) and dev.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        warmup = 50

        def lr_at(step: int) -> float:
            base = float(cfg["lr"])
            if step < warmup:
                return base * (step + 1) / warmup
            return base * 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, steps - warmup)))

        loss_name = str(cfg.get("loss", "l1"))
        ssim = None
        if "ssim" in loss_name:
            from monai.losses import SSIMLoss

            ssim = SSIMLoss(spatial_dims=3, data_range=1.0, win_size=7)

        def loss_fn(pred, target, mask):
            """``l1``, ``mse``, ``ssim``, or ``l1+ssim``: masked voxel losses, SSIM on the masked images."""
            total = 0.0
            if loss_name.startswith(("l1", "mse")):
                diff = (pred - target).abs() if loss_name.startswith("l1") else (pred - target) ** 2
                total = (diff * mask).sum() / mask.sum().clamp_min(1)
            if ssim is not None:
                total = total + ssim(pred * mask, target * mask)
            return total

        val_set = AugmentedScans(v_images, v_masks, {**cfg, "augment": {}}, length=len(v_images), seed=seed + 99)

        def validate() -> float:
            net.eval()
            losses = []
            with torch.no_grad(), torch.autocast(device_type=dev.type, enabled=amp):
                for i in range(len(v_images)):
                    item = val_set[i]
                    x = torch.from_numpy(item["input"])[None].to(dev)
                    y = torch.from_numpy(item["target"])[None].to(dev)
                    m = torch.from_numpy(item["mask"])[None].to(dev)
                    losses.append(float(loss_fn(net(x).float(), y, m)))
            net.train()
            return float(np.mean(losses))

        net.train()
        step = start
        t_train = time.time()
        # Training time over all runs of this output folder (a resumed run adds to the earlier ones).
        prev_train_s = float(info.get("train_s", _previous_train_s(out))) if info else 0.0
        # A run may be resumed on another machine (trained on a GPU, calibrated on a CPU): the card names
        # every device that took training steps.
        devices = list(info.get("devices", [])) if info else []
        runs = list(info.get("runs", [])) if info else []
        running = None
        stopped = False
        if start < steps and device_name(dev) not in devices:
            devices.append(device_name(dev))
        for item in loader:
            if cancel is not None and cancel.is_set():
                stopped = True
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            x, y, m = (item[k].to(dev, non_blocking=True) for k in ("input", "target", "mask"))
            with torch.autocast(device_type=dev.type, enabled=amp):
                pred, latent = model(x, return_latent=True)
            loss = loss_fn(pred.float(), y, m)
            if latent.mu is not None:
                kl = -0.5 * torch.mean(1 + latent.logvar - latent.mu.pow(2) - latent.logvar.exp())
                loss = loss + float(cfg.get("kl_weight", 1e-3)) * kl
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            value = float(loss.detach())
            running = value if running is None else 0.95 * running + 0.05 * value
            last_val = history[-1]["val"] if history else float("nan")
            if rank == 0:
                if step % int(cfg["val_every"]) == 0 or step == steps:
                    v = validate()
                    history.append({"step": step, "train": round(running, 5), "val": round(v, 5)})
                    last_val = v
                    if v < best_val:
                        best_val = v
                        save_best(member_dir, net)
                if step % int(cfg["checkpoint_every"]) == 0 or step == steps:
                    elapsed = prev_train_s + time.time() - t_train
                    save_checkpoint(
                        member_dir,
                        net,
                        opt,
                        step,
                        {
                            "best_val": best_val,
                            "history": history,
                            "train_s": elapsed,
                            "devices": devices,
                            "runs": record_steps(runs, this_command, cfg, start, step),
                        },
                    )
                report(
                    sub_progress(progress, lo, hi),
                    (step - start) / max(1, steps - start),
                    f"step {step}/{steps} loss {running:.4f} val {last_val:.4f}",
                )
        train_s = prev_train_s + time.time() - t_train
        if step > start:
            runs = record_steps(runs, this_command, cfg, start, step)
        if rank == 0 and step > start:
            save_checkpoint(
                member_dir,
                net,
                opt,
                step,
                {"best_val": best_val, "history": history, "train_s": train_s, "devices": devices, "runs": runs},
            )
        if distributed:
            import torch.distributed as dist

            dist.barrier()
            if stopped:
                dist.destroy_process_group()
        if stopped:
            check_cancel(cancel)
        if rank != 0:
            return net, {}
        load_best(member_dir, net)
        net.eval()
        return net, {
            "n_train": len(images),
            "skipped": skipped + v_skipped,
            "step": step,
            "best_val": best_val,
            "history": history,
            "train_s": train_s,
            "devices": devices,
            "runs": runs,
            "stopped": stopped,
        }

    members, records = [], []
    span = 0.9 / n_members
    for k in range(n_members):
        member_dir = state_dir if k == 0 else state_dir / f"member{k}"
        net_k, record = train_member(k, member_dir, k * span, (k + 1) * span)
        members.append(net_k)
        records.append(record)
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

    amp = bool(cfg.get("amp", True)) and dev.type == "cuda"

    def reconstruct(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(img[None, None]).to(dev)
        with torch.no_grad(), torch.autocast(device_type=dev.type, enabled=amp):
            # An ensemble's members each restore the scan; their mean is the reconstruction.
            return np.mean([m(x).float()[0, 0].cpu().numpy() for m in members], axis=0)

    spacing = float(cfg["space"]["spacing"])
    if held_out:
        v_images, v_masks, v_skipped = prepare([scans[i] for i in held_out], 0.9, 0.91)
    else:
        v_images, v_masks, v_skipped = np.zeros((0, *card.shape), np.float32), np.zeros((0, *card.shape), bool), []
    skipped = sorted({m for r in records for m in r["skipped"]} | set(v_skipped))
    n_extra = 0
    if calibration_data is not None:
        extra = find_scans(calibration_data)
        if set(extra) & set(scans):
            raise MedaeError(
                f"{calibration_data}: some calibration scans are also training data; calibrate on scans the model "
                "never saw."
            )
        c_images, c_masks, c_skipped = prepare(extra, 0.91, 0.92)
        v_images = np.concatenate([v_images, c_images]) if len(v_images) else c_images
        v_masks = np.concatenate([v_masks, c_masks]) if len(v_masks) else c_masks
        skipped += c_skipped
        n_extra = len(c_images)
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

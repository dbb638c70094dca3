"""One network of a model: the training loop of a single (or one ensemble) member, resumable.

Single process, or several under ``torchrun`` (DistributedDataParallel); the caller sets up the process
group and the data, and this loop trains, validates, checkpoints and returns the best network.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medae.errors import MedaeError
from medae.progress import ProgressFn, check_cancel, report, sub_progress
from medae.training.checkpoint import load_best, load_checkpoint, save_best, save_checkpoint
from medae.training.data import AugmentedScans
from medae.training.provenance import config_differences, record_steps

# Member k of an ensemble draws its split, initialisation and augmentation from seed + k * this; member 0
# is the single model the same config trains without an ensemble.
MEMBER_SEED_STEP = 1


@dataclass
class TrainingRun:
    """What every member of one ``medae train`` run shares.

    Attributes:
        cfg: Training configuration.
        dev: torch device.
        rank: This process's rank (0 without ``torchrun``).
        world: Number of processes.
        out: The model folder (an older card there may hold the training time of earlier runs).
        command: The command line, recorded with the steps it took.
        progress: Progress callback.
        cancel: Stops after the current step, leaving a checkpoint to resume from.
    """

    cfg: dict
    dev: object
    rank: int
    world: int
    out: Path
    command: str
    progress: ProgressFn | None = None
    cancel: threading.Event | None = None


def _worker_init(_: int) -> None:
    """Data workers run numpy/MONAI on one thread each, leaving the other cores to the network.

    They ignore Ctrl-C, which the terminal sends to every process of the command: the main process
    stops the run after the current step, and a worker that ended on it would fail that step.
    """
    import signal

    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _previous_train_s(out: Path) -> float:
    """Training seconds recorded by an earlier run in ``out`` (checkpoints older than this field)."""
    import json

    try:
        return float(json.loads((out / "card.json").read_text())["training"]["time_s"]["train"])
    except (OSError, KeyError, ValueError, TypeError):
        return 0.0


def train_member(
    run: TrainingRun,
    k: int,
    member_dir: Path,
    images: np.ndarray,
    masks: np.ndarray,
    v_images: np.ndarray,
    v_masks: np.ndarray,
    lo: float,
    hi: float,
    scans: list | None = None,
):
    """Trains (or resumes) ensemble member ``k`` from its checkpoint in ``member_dir``.

    Args:
        run: The shared settings of the run.
        k: Member index; its seed is the config's seed + ``k * MEMBER_SEED_STEP``.
        member_dir: Its checkpoint folder.
        images: Its training scans in model space (N, *grid), with ``masks``.
        masks: Foreground masks of ``images``.
        v_images: Its validation scans, with ``v_masks``.
        v_masks: Foreground masks of ``v_images``.
        lo: Progress at the start of its steps.
        hi: Progress at their end.
        scans: The scans drawn for its training, as ``scan_ids`` names them: kept in the checkpoint, so that a
            run started again on other scans is refused.

    Returns:
        The best network on validation (in eval mode) and the record of its training (empty on ranks
        other than 0).

    Raises:
        CancelledError: ``run.cancel`` was set; the checkpoint holds the last step.
    """
    import torch

    from medae.model.loaded import device_name
    from medae.model.network import build_network

    cfg, dev, rank, world = run.cfg, run.dev, run.rank, run.world
    distributed = world > 1
    seed = int(cfg["seed"])
    member_seed = seed + MEMBER_SEED_STEP * k
    torch.manual_seed(member_seed + rank)
    net = build_network(cfg["architecture"]).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
    steps = int(cfg["steps"])
    try:
        info = load_checkpoint(member_dir, net, opt)
    except RuntimeError as exc:  # torch's "size mismatch for ...": the network is not the one trained there
        raise MedaeError(
            f"{member_dir}: its checkpoint was trained with another network architecture than the settings give "
            "now; use the settings it was trained with, or train into a new folder."
        ) from exc
    start = int(info["step"]) if info else 0
    if info:
        _check_resumable(info, cfg, member_dir, finished=start >= steps)
    best_val = float(info.get("best_val", np.inf)) if info else np.inf
    history = list(info.get("history", [])) if info else []
    model = net
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)

    batch = int(cfg["batch"])
    # Item i of the dataset is fixed by (seed, i); each rank takes its own items, so resuming is exact.
    dataset = AugmentedScans(images, masks, cfg, length=steps * batch * world, seed=member_seed)
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

    # Validation inputs carry the coarse noise alone, so that its loss compares across recipes.
    val_cfg = {**cfg, "augment": {}, "patches": {}}
    val_set = AugmentedScans(v_images, v_masks, val_cfg, length=len(v_images), seed=seed + 99)

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
    prev_train_s = float(info.get("train_s", _previous_train_s(run.out))) if info else 0.0
    # A run may be resumed on another machine (trained on a GPU, calibrated on a CPU): the card names
    # every device that took training steps.
    devices = list(info.get("devices", [])) if info else []
    runs = list(info.get("runs", [])) if info else []
    running = None
    stopped = False
    if start < steps and device_name(dev) not in devices:
        devices.append(device_name(dev))
    for item in loader:
        if run.cancel is not None and run.cancel.is_set():
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
                        "runs": record_steps(runs, run.command, cfg, start, step),
                        "scans": scans,
                    },
                )
            report(
                sub_progress(run.progress, lo, hi),
                (step - start) / max(1, steps - start),
                f"step {step}/{steps} loss {running:.4f} val {last_val:.4f}",
            )
    train_s = prev_train_s + time.time() - t_train
    if step > start:
        runs = record_steps(runs, run.command, cfg, start, step)
    if rank == 0 and step > start:
        save_checkpoint(
            member_dir,
            net,
            opt,
            step,
            {
                "best_val": best_val,
                "history": history,
                "train_s": train_s,
                "devices": devices,
                "runs": runs,
                "scans": scans,
            },
        )
    if distributed:
        import torch.distributed as dist

        dist.barrier()
        if stopped:
            dist.destroy_process_group()
    if stopped:
        check_cancel(run.cancel)
    if rank != 0:
        return net, {}
    load_best(member_dir, net)
    net.eval()
    return net, {
        "step": step,
        "best_val": best_val,
        "history": history,
        "train_s": train_s,
        "devices": devices,
        "runs": runs,
    }


#: Settings that may change when a run is resumed midway: they shape no training step (how long to train,
#: how often to check, the calibration after the last step, what the card calls the model).
_RESUMABLE = (
    "steps",
    "num_workers",
    "amp",
    "val_every",
    "checkpoint_every",
    "calibration",
    "postprocess",
    "id",
    "name",
    "jobs",
)


def _check_resumable(info: dict, cfg: dict, member_dir, finished: bool = False) -> None:
    """Refuses to go on with training steps under settings other than those of the steps already taken.

    Once every step is taken (``finished``), a run again with other settings only recalibrates (the card
    records what differed), but not with another network: its card would describe other layers than its
    weights were trained in. Midway, another learning rate, loss or seed would mix two trainings in one set
    of weights.
    """
    runs = info.get("runs") or []
    if not runs:
        return
    changed = [k for k in config_differences(runs[-1]["config"], cfg) if k.split(".")[0] not in _RESUMABLE]
    if finished:
        # How the trained network is applied to a scan (whole, or in sliding windows) changes no layer: a
        # recalibration under it is what calibrates the model as it will run.
        network = [
            k for k in changed if k.split(".")[0] == "architecture" and not k.startswith("architecture.inference")
        ]
        if network:
            raise MedaeError(
                f"{member_dir}: its network was trained with other architecture settings ({', '.join(network[:4])} "
                "differ). Recalibrate it with the settings it was trained with, or train into a new folder."
            )
        return
    if changed:
        raise MedaeError(
            f"{member_dir}: training stopped at step {info['step']} with other settings ({', '.join(changed[:4])} "
            "differ). Resume with the settings it was started with, or train into a new folder."
        )

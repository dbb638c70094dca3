"""Resumable training state in safetensors + JSON (no pickle): network, optimiser moments, step."""

from __future__ import annotations

import json
from pathlib import Path

from medae.atomic import atomic_path, write_text

STATE = "checkpoint.safetensors"
META = "checkpoint.json"


def save_checkpoint(folder: Path, net, optimizer, step: int, info: dict) -> None:
    """Writes the training state atomically (tensors first, then the JSON that points at them)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    names = {id(p): n for n, p in net.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, val in optimizer.state.get(p, {}).items():
                if hasattr(val, "detach"):
                    tensors[f"opt.{names[id(p)]}.{key}"] = val.detach().cpu().contiguous().reshape(val.shape)
    with atomic_path(folder / STATE) as tmp:
        save_file(tensors, str(tmp))
    write_text(folder / META, json.dumps({"step": step, **info}, indent=1) + "\n")


def checkpoint_info(folder: Path) -> dict | None:
    """The JSON of the training state in ``folder`` (step, scans, runs) without its tensors; None when there is none."""
    try:
        return json.loads((folder / META).read_text())
    except FileNotFoundError:
        return None


def load_checkpoint(folder: Path, net, optimizer) -> dict | None:
    """Restores the state saved by ``save_checkpoint``; None when there is none."""
    import torch
    from safetensors.torch import load_file

    meta = folder / META
    if not meta.exists() or not (folder / STATE).exists():
        return None
    info = json.loads(meta.read_text())
    tensors = load_file(str(folder / STATE))
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    params = dict(net.named_parameters())
    for name, p in params.items():
        state = {}
        for key in ("exp_avg", "exp_avg_sq", "step"):
            t = tensors.get(f"opt.{name}.{key}")
            if t is not None:
                state[key] = t.to(p.device) if key != "step" else t.float()
        if state:
            if "step" not in state:
                state["step"] = torch.tensor(float(info["step"]))
            optimizer.state[p] = state
    return info


def best_weights_path(folder: Path) -> Path:
    """Where the best-on-validation network weights are kept."""
    return folder / "best.safetensors"


def save_best(folder: Path, net) -> None:
    """Keeps the network weights with the lowest validation loss so far."""
    from safetensors.torch import save_file

    with atomic_path(best_weights_path(folder)) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))


def load_best(folder: Path, net) -> bool:
    """Loads the best weights into ``net`` if they exist."""
    from safetensors.torch import load_file

    p = best_weights_path(folder)
    if not p.exists():
        return False
    net.load_state_dict(load_file(str(p)))
    return True

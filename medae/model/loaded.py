"""A model ready to run: network, card, reference template and healthy calibration maps on a device."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medae.errors import MedaeError, ModelError
from medae.model.card import ModelCard
from medae.model.store import read_tensors, resolve_model_dir

#: Where a user changes the device, named for both front ends.
_DEVICE_SETTING = "--device on the command line, Device in the viewer's File > Preferences"


def select_device(preference: str = "auto"):
    """``auto`` picks CUDA, then MPS, then CPU; a forced device that is missing is a clear error."""
    import torch

    pref = (preference or "auto").lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise MedaeError(
            f"The device {pref} was asked for but no CUDA GPU is available; choose auto or cpu ({_DEVICE_SETTING})."
        )
    if pref == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MedaeError(
            f"The device mps was asked for but Apple's MPS is not available; choose auto or cpu ({_DEVICE_SETTING})."
        )
    if pref not in ("cpu", "mps") and not pref.startswith("cuda"):
        raise MedaeError(f"Unknown device {preference!r}; choose auto, cpu, cuda or mps ({_DEVICE_SETTING}).")
    try:
        device = torch.device(pref)
    except RuntimeError:  # "cuda:x", "cuda 0": torch's own words would end the command in a traceback
        raise MedaeError(
            f"Unknown device {preference!r}; choose auto, cpu, cuda, cuda:N (N the GPU's number) or mps "
            f"({_DEVICE_SETTING})."
        ) from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        # Otherwise found only when the weights are moved there, as a CUDA error and a traceback.
        raise MedaeError(
            f"The device {pref} was asked for but this machine has {torch.cuda.device_count()} CUDA GPU(s), "
            f"numbered from 0; choose cuda:0 or auto ({_DEVICE_SETTING})."
        )
    return device


def device_name(device) -> str:
    """Human-readable device: the GPU's name, or "CPU (N threads)"."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"


@dataclass
class LoadedModel:
    """A model folder loaded onto a device.

    Attributes:
        card: The model card.
        folder: Where it was loaded from.
        net: The torch module, in eval mode.
        device: torch device.
        reference: Reference template on the model grid (None if the model aligns by centring).
        reference_mask: Foreground mask on the model grid (None if masks come from thresholds).
        calibration: Model-space healthy statistics, e.g. ``residual_mean`` and ``residual_std``.
        members: The other networks of an ensemble (``architecture.ensemble`` in the card); ``net`` is
            its first member, which alone serves encoding, decoding and sampling.
    """

    card: ModelCard
    folder: Path
    net: object
    device: object
    reference: np.ndarray | None = None
    reference_mask: np.ndarray | None = None
    calibration: dict[str, np.ndarray] = field(default_factory=dict)
    members: list = field(default_factory=list)

    @property
    def device_name(self) -> str:
        """Human-readable device."""
        return device_name(self.device)

    def reconstruct(self, image: np.ndarray) -> np.ndarray:
        """Reconstruction of a normalised model-space image (float32, the card's shape)."""
        import torch

        if tuple(image.shape) != self.card.shape:
            raise ModelError(f"model-space image has shape {image.shape}, the model expects {self.card.shape}")
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].to(self.device)
        amp = self.device.type == "cuda"
        inference = self.card.architecture.get("inference", {"mode": "whole"})
        out = None
        with torch.inference_mode(), torch.autocast(device_type=self.device.type, enabled=amp):
            for net in (self.net, *self.members):
                if inference.get("mode") == "sliding_window":
                    # Patch-trained or memory-bound models: overlapping windows blended with Gaussian weights.
                    from monai.inferers import sliding_window_inference

                    y = sliding_window_inference(
                        x,
                        roi_size=tuple(int(r) for r in inference["roi_size"]),
                        sw_batch_size=int(inference.get("batch", 2)),
                        predictor=net,
                        overlap=float(inference.get("overlap", 0.25)),
                        mode="gaussian",
                    )
                else:
                    y = net(x)
                y = y.float()[0, 0]
                out = y if out is None else out + y
        # An ensemble's reconstruction is the mean of its members' (each restores the scan on its own).
        return (out / (1 + len(self.members))).cpu().numpy()


def load_model(path: str | os.PathLike | None = None, device: str = "auto") -> LoadedModel:
    """Loads a model folder (default: the shipped model), checking the weights' sha256.

    Raises:
        ModelError: missing files, hash mismatch, not safetensors, or weights that do not fit the card.
    """
    from medae.model.heavy_imports import import_network_libraries

    import_network_libraries()
    import torch

    from medae.model.network import build_network

    folder = resolve_model_dir(path)
    card = ModelCard.read(folder / "card.json")
    tensors = read_tensors(folder, card)
    dev = select_device(device)
    nets = []
    for k in range(int(card.architecture.get("ensemble", 1))):
        prefix = "net." if k == 0 else f"member{k}.net."
        net = build_network(card.architecture)
        state = {n[len(prefix) :]: torch.from_numpy(np.array(v)) for n, v in tensors.items() if n.startswith(prefix)}
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(
                f"{folder}: the weights do not fit the architecture in the card ({str(exc)[:200]})."
            ) from exc
        nets.append(net.to(dev).eval())
    ref = tensors.get("reference.image")
    mask = tensors.get("reference.mask")
    calib = {k[len("calibration.") :]: v.astype(np.float32) for k, v in tensors.items() if k.startswith("calibration.")}
    grid = tuple(int(n) for n in card.shape)
    maps = {"reference.image": ref, "reference.mask": mask, **{f"calibration.{k}": v for k, v in calib.items()}}
    for name, arr in maps.items():
        # The weights are hashed, the card is not: a grid edited in it would fail deep inside an analysis.
        if arr is not None and arr.ndim == 3 and tuple(arr.shape) != grid:
            raise ModelError(
                f"{folder}: the card's grid (space.shape {list(grid)}) does not match the model's maps ({name} is "
                f"{list(arr.shape)}): card.json was edited or belongs to other weights. Restore the model folder."
            )
    return LoadedModel(
        card=card,
        folder=folder,
        net=nets[0],
        device=dev,
        reference=None if ref is None else ref.astype(np.float32),
        reference_mask=None if mask is None else mask.astype(bool),
        calibration=calib,
        members=nets[1:],
    )


def state_tensors(net) -> dict[str, np.ndarray]:
    """The network's parameters and buffers as ``net.*`` numpy arrays, for saving."""
    return {f"net.{k}": v.detach().cpu().numpy() for k, v in net.state_dict().items()}

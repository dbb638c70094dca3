"""New healthy-looking volumes from a variational model: decode latents drawn from the prior."""

from __future__ import annotations

import numpy as np

from medae.errors import ModelError
from medae.volume import Volume


def sample_volumes(model, n: int, seed: int = 0, temperature: float = 1.0) -> list[Volume]:
    """Draws ``n`` volumes on the model grid (reference space), in normalised intensity units.

    Raises:
        ModelError: the model is not variational.
    """
    import torch

    card = model.card
    if card.architecture.get("variant") != "vae" or card.architecture.get("skip"):
        raise ModelError(
            f"{card.id} is not a variational autoencoder without skip connections, so it cannot sample new "
            'volumes. Train one with: medae train ... --set \'architecture={"variant": "vae", "skip": false}\'.'
        )
    grid = tuple(s // model.net.factor for s in card.shape)
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(int(n)):
        z = torch.randn((1, model.net.latent_channels, *grid), generator=gen) * float(temperature)
        with torch.inference_mode():
            y = model.net.decode(z.to(model.device)).float()[0, 0].cpu().numpy()
        if model.reference_mask is not None:
            y = y * model.reference_mask
        out.append(
            Volume(
                y.astype(np.float32),
                card.affine,
                card.modality,
                meta={"series_description": f"sampled from {card.id} (seed {seed})", "kind": "sample"},
            )
        )
    return out

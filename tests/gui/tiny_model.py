"""A real (untrained, seeded) model folder small enough for GUI tests of the analysis path.

It goes through the real ``save_model_folder`` / ``load_model`` / ``analyze`` code; its calibration
threshold is set so that the bright block of ``mr_with_lesion`` is the one finding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medae.volume import Volume


def make_tiny_model(folder: Path) -> Path:
    """Writes the model folder and returns it."""
    import torch

    from medae.model.card import ModelCard
    from medae.model.loaded import state_tensors
    from medae.model.network import build_network
    from medae.model.store import save_model_folder

    torch.manual_seed(0)
    card = ModelCard(
        id="tiny-test",
        name="tiny test model",
        jobs=["anomaly"],
        modality="MR",
        body_part="BRAIN",
        architecture={"variant": "ae", "channels": [4, 8], "latent_channels": 2, "skip": False},
        space={
            "shape": [16, 16, 16],
            "spacing": 2.0,
            "affine": np.diag([2.0, 2, 2, 1]).tolist(),
            "alignment": "center",
            # The model grid spans 0-30 mm of its reference frame; its midline is at x = 15 mm.
            "centre": [15.0, 15.0, 15.0],
            "midline_x": 15.0,
        },
        intensity={"method": "percentile", "low": 1, "high": 99},
        calibration={"threshold": 0.5, "units": "z (healthy)"},
        # Its own post-processing, so that the shipped defaults can change without moving its one finding.
        postprocess={"median": 3, "smooth_sigma_vox": 1.0, "erode_vox": 1, "min_region_ml": 0.1},
    )
    return save_model_folder(folder, card, state_tensors(build_network(card.architecture)))


def mr_with_lesion() -> Volume:
    """A noisy MR-like block with one bright region on the patient's left (world x < 0)."""
    rng = np.random.default_rng(0)
    arr = rng.normal(100, 5, (32, 32, 24)).astype(np.float32)
    arr[20:26, 8:14, 10:16] = 300
    return Volume(arr, np.diag([-1.0, 1.0, 1.25, 1.0]), "MR", meta={"series_description": "T1 test"})

"""Coarse training noise at one scale or at several, one drawn per item."""

import numpy as np
import pytest
from training_fixtures import AUGMENT_OFF

from medae.training.data import AugmentedScans


def _roughness(factor) -> list[float]:
    """Per item: mean step between neighbouring voxels of the added noise, against its spread."""
    image = np.ones((1, 32, 32, 32), np.float32)
    mask = np.ones((1, 32, 32, 32), bool)
    cfg = {"augment": AUGMENT_OFF, "noise": {"kind": "coarse", "factor": factor, "std": 0.2, "prob": 1.0}}
    data = AugmentedScans(image, mask, cfg, length=24, seed=5)
    out = []
    for i in range(len(data)):
        item = data[i]
        noise = (item["input"] - item["target"])[0]
        out.append(float(np.abs(np.diff(noise, axis=0)).mean() / noise.std()))
    return out


@pytest.mark.parametrize("factor", [2, 8])
def test_one_scale_gives_noise_of_that_grain_on_every_item(factor):
    rough = np.array(_roughness(factor))
    # Grain 2 changes a lot from voxel to voxel, grain 8 little (trilinear between points 8 voxels apart).
    assert (rough > 0.25).all() if factor == 2 else (rough < 0.2).all()


def test_several_scales_are_drawn_per_item():
    rough = np.array(_roughness([2, 8]))
    fine, coarse = (rough > 0.25).sum(), (rough < 0.2).sum()
    assert fine + coarse == rough.size and fine >= 4 and coarse >= 4

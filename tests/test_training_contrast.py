"""Tissue-contrast augmentation: monotone, reproducible, and it really changes tissue contrast."""

import numpy as np
import pytest
from training_fixtures import AUGMENT_OFF

from medae.training.contrast import PERCENTILES, random_contrast, remap_landmarks
from medae.training.data import AugmentedScans


def _brain(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tissue classes (CSF 0.3, grey 0.75, white 1.0) with noise inside a ball."""
    rng = np.random.default_rng(seed)
    idx = np.indices((32, 32, 32)) - 15.5
    r = np.sqrt((idx**2).sum(0))
    mask = r < 14
    image = np.where(r < 7, 1.0, np.where(r < 11, 0.75, 0.3)).astype(np.float32)
    image += rng.normal(0, 0.03, image.shape).astype(np.float32)
    image[~mask] = 0
    return image, mask


def test_remap_takes_landmarks_to_targets_and_extrapolates_with_the_overall_slope():
    source = np.array([1.0, 2.0, 4.0])
    target = np.array([10.0, 30.0, 40.0])
    x = np.array([1.0, 1.5, 2.0, 3.0, 4.0, 0.0, 6.0])
    np.testing.assert_allclose(remap_landmarks(x, source, target), [10, 20, 30, 35, 40, 10 - 10, 40 + 20])


def test_random_contrast_is_monotone_keeps_the_decile_range_and_changes_tissue_gaps():
    image, mask = _brain()
    ranks = np.argsort(image.ravel(), kind="stable")
    ratios = []
    for seed in range(20):
        out = random_contrast(image, mask, np.random.default_rng(seed), sd=0.3)
        assert out.dtype == np.float32 and out.shape == image.shape
        assert np.all(np.diff(out.ravel()[ranks]) >= -1e-5)  # monotone: no tissue swaps brightness
        before, after = (np.percentile(a[mask], [PERCENTILES[0], PERCENTILES[-1]]) for a in (image, out))
        np.testing.assert_allclose(after, before, atol=1e-4)
        grey, white = (np.median(out[mask & (np.abs(image - v) < 0.1)]) for v in (0.75, 1.0))
        csf = np.median(out[mask & (np.abs(image - 0.3) < 0.1)])
        ratios.append((white - grey) / (grey - csf))
    # The grey-white gap against the CSF-grey gap (0.25 / 0.45 = 0.56 before) varies from draw to draw.
    assert np.ptp(ratios) > 0.1


def test_random_contrast_leaves_a_flat_image_alone():
    image = np.ones((8, 8, 8), np.float32)
    out = random_contrast(image, image > 0, np.random.default_rng(0), sd=0.3)
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_training_items_are_reproducible_with_contrast_augmentation(prob):
    image, mask = _brain()
    cfg = {
        "augment": {**AUGMENT_OFF, "contrast_prob": prob, "contrast_sd": 0.3},
        "noise": {},
    }
    data = AugmentedScans(image[None], mask[None], cfg, length=4, seed=3)
    a, b = data[2]["target"], AugmentedScans(image[None], mask[None], cfg, length=4, seed=3)[2]["target"]
    np.testing.assert_array_equal(a, b)
    changed = not np.allclose(a[0], image * mask)
    assert changed == (prob == 1.0)

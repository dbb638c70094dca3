"""Foreign patches: local blends of donor tissue in the training input, never in the target."""

import numpy as np
from scipy import ndimage
from training_fixtures import AUGMENT_OFF

from medae.training.data import AugmentedScans
from medae.training.patches import foreign_patches


def _scans():
    rng = np.random.default_rng(3)
    images = rng.uniform(0.2, 1.0, (3, 32, 32, 32)).astype(np.float32)
    images[1] += 2.0  # a donor unlike the others, so its tissue shows where it lands
    masks = np.zeros((3, 32, 32, 32), bool)
    masks[:, 4:28, 4:28, 4:28] = True
    return images, masks


def test_patches_are_local_blends_of_donor_tissue_inside_the_mask():
    images, masks = _scans()
    image, mask = images[0], masks[0]
    changed_any = False
    for seed in range(20):
        out = foreign_patches(image, mask, images[1:2], masks[1:2], np.random.default_rng(seed), count=(1, 1))
        changed = out != image
        assert not changed[~mask].any()  # nothing outside the brain
        # One compact blob within the largest radius (6 voxels, plus the soft edge), never the whole brain.
        labels, n = ndimage.label(changed)
        assert n <= 1
        if n:
            changed_any = True
            extent = [sl.stop - sl.start for sl in ndimage.find_objects(labels)[0]]
            assert max(extent) <= 2 * 7 + 1 and changed.sum() < 0.2 * mask.sum()
            # A blend towards the brighter donor: between the image and the donor's values.
            assert (out[changed] > image[changed]).all() and (out[changed] <= 3.0 + 1e-6).all()
    assert changed_any
    again = foreign_patches(image, mask, images[1:2], masks[1:2], np.random.default_rng(7))
    np.testing.assert_array_equal(
        again, foreign_patches(image, mask, images[1:2], masks[1:2], np.random.default_rng(7))
    )


def test_the_training_target_stays_clean_and_only_the_input_gets_patches():
    images, masks = _scans()
    cfg = {"augment": AUGMENT_OFF, "noise": {}, "patches": {"prob": 1.0, "count": [2, 2]}}
    with_patches = AugmentedScans(images, masks, cfg, length=8, seed=1)
    without = AugmentedScans(images, masks, {**cfg, "patches": {}}, length=8, seed=1)
    differs = 0
    for i in range(8):
        a, b = with_patches[i], without[i]
        np.testing.assert_array_equal(a["target"], b["target"])
        np.testing.assert_array_equal(b["input"], b["target"])
        differs += int((a["input"] != a["target"]).any())
    assert differs >= 6  # the same donor location can match by chance, but rarely


def test_a_recipe_without_patches_keeps_its_items():
    # Item i is a function of (seed, i) alone: the patch setting, when off, draws nothing from its stream,
    # so a recipe trained before the setting existed gets the very same items (and resumes exactly).
    from medae.training.data import coarse_noise

    images, masks = _scans()
    cfg = {"augment": {}, "noise": {"kind": "coarse", "factor": 8, "std": 0.2, "prob": 1.0}, "patches": {"prob": 0}}
    item = AugmentedScans(images, masks, cfg, length=4, seed=2)[3]
    rng = np.random.default_rng([2, 3])
    k = int(rng.integers(len(images)))
    assert rng.random() < 1.0  # the coarse noise's own draw
    target = images[k] * masks[k]
    expected = target + coarse_noise(target.shape, 8, 0.2, rng) * masks[k]
    np.testing.assert_array_equal(item["input"][0], expected.astype(np.float32))

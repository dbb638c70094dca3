"""Isolated bright voxels are found and replaced; anatomy, small lesions and noise are left alone."""

import numpy as np
import pytest

from medae.model.despike import bright_spikes, despike


def phantom(seed=0, noise=0.05):
    """A smooth head-like blob on a zero background, with scanner-like noise."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, 40)] * 3, indexing="ij")
    head = np.clip(1.5 - 2 * np.sqrt(x**2 + y**2 + z**2), 0, 1) * 1000
    return (head + rng.normal(0, noise * 1000, head.shape) * (head > 0)).astype(np.float32)


def test_hot_voxels_are_replaced_by_their_neighbours_median():
    img = phantom()
    hot = [(20, 20, 20), (12, 25, 18), (30, 10, 22)]
    spiked = img.copy()
    for i, p in enumerate(hot):
        spiked[p] = 30000.0 + i
    out, n = despike(spiked)
    assert n == 3
    where, _ = bright_spikes(spiked)
    assert sorted(map(tuple, where.tolist())) == sorted(hot)
    for p in hot:
        nb = np.delete(spiked[p[0] - 1 : p[0] + 2, p[1] - 1 : p[1] + 2, p[2] - 1 : p[2] + 2].ravel(), 13)
        assert out[p] == np.median(nb)
    untouched = np.ones(img.shape, bool)
    untouched[tuple(np.array(hot).T)] = False
    np.testing.assert_array_equal(out[untouched], img[untouched])
    assert spiked[hot[0]] == 30000.0, "the input is never modified"


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_memory_layout_does_not_matter(layout):
    img = phantom(seed=3)
    img[20, 21, 22] = 30000.0
    img[0, 5, 5] = 30000.0  # on the outer face: never judged, it has no full neighbourhood
    arr = {
        "C": img,
        "F": np.asfortranarray(img),
        "strided": np.ascontiguousarray(img.transpose(2, 0, 1)).transpose(1, 2, 0),
    }[layout]
    where, fill = bright_spikes(arr)
    assert where.tolist() == [[20, 21, 22]] and fill[0] < 2000


def test_integer_scans_keep_their_type():
    img = np.round(phantom()).astype(np.int16)
    img[20, 20, 20] = 32000
    out, n = despike(img)
    assert n == 1 and out.dtype == np.int16 and out[20, 20, 20] < 2000


def test_small_lesions_noise_and_clean_scans_are_left_alone():
    img = phantom(seed=1)
    out, n = despike(img)
    assert n == 0 and out is img
    # A 2x2x2 bright spot is a (tiny) lesion: every voxel of it has a bright neighbour.
    lesion = img.copy()
    lesion[18:20, 18:20, 18:20] += 3000
    assert despike(lesion)[1] == 0
    # Strong noise of a textured lesion (half the local intensity) never reaches the margin.
    rng = np.random.default_rng(2)
    textured = img.copy()
    textured[12:28, 12:28, 12:28] += rng.normal(0, 500, (16, 16, 16)).astype(np.float32)
    assert despike(textured)[1] == 0


def test_flat_and_tiny_arrays_have_no_spikes():
    assert despike(np.zeros((10, 10, 10), np.float32))[1] == 0
    assert despike(np.ones((2, 40, 40), np.float32))[1] == 0

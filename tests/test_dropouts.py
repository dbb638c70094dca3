"""Dropped slices: constant slices between slices with signal are missing data, filled and reported."""

import numpy as np

from medae.model.dropouts import dropped_slices, fill_from_neighbours


def _head(shape=(30, 32, 28)):
    rng = np.random.default_rng(0)
    data = rng.normal(20, 5, shape).astype(np.float32)  # noisy air
    data[5:25, 6:26, 4:24] += 500 + np.arange(20)[None, None, :] * 10.0  # the head, brighter upwards
    return data


def test_constant_slices_inside_are_found_and_the_edges_are_not():
    data = _head()
    data[:, :, :2] = 0  # air set to zero at the edge of the field of view: not missing data
    data[:, :, 12:14] = 0  # two slices dropped inside
    data[17, :, :] = 0  # and one along another axis
    mask, notes = dropped_slices(data)
    assert mask is not None and mask[:, :, 12:14].all() and mask[17].all()
    assert not mask[:16, :, :2].any() and not mask[3, 3, 20]  # (slice 17 of axis 0 crosses the edge)
    assert notes == [
        "1 slice(s) along array axis 0 (index 17, from 0)",
        "2 slice(s) along array axis 2 (index 12-13, from 0)",
    ]
    assert dropped_slices(_head()) == (None, [])


def test_dropped_slices_are_filled_by_a_blend_of_their_neighbours():
    data = _head()
    original = data.copy()
    data[:, :, 12:14] = 0
    mask, _ = dropped_slices(data)
    filled = fill_from_neighbours(data, mask)
    expected_12 = original[:, :, 11] + (original[:, :, 14] - original[:, :, 11]) / 3
    np.testing.assert_allclose(filled[:, :, 12], expected_12, rtol=1e-5)
    np.testing.assert_array_equal(filled[:, :, 20], original[:, :, 20])  # the rest untouched
